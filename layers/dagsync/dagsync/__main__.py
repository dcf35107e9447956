"""Operator CLI: `python -m dagsync plan|sync|reconcile [--force]`, same environment and engine as Lambda."""

import argparse
import json
import os
import sys
import uuid

from dagsync.config import load_settings
from dagsync.errors import DagSyncError
from dagsync.events import SyncRequest
from dagsync.runtime import build_engine

_COMMANDS = {
    "plan": SyncRequest(mode="sync", dry_run=True),
    "sync": SyncRequest(mode="sync"),
    "reconcile": SyncRequest(mode="reconcile"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagsync", description=__doc__)
    parser.add_argument("command", choices=sorted(_COMMANDS), help="plan is a dry run of sync")
    parser.add_argument("--force", action="store_true", help="let a run through the removal guard")
    parser.add_argument("--dry-run", action="store_true", help="compute and report, change nothing")
    args = parser.parse_args(argv)
    base = _COMMANDS[args.command]
    request = SyncRequest(mode=base.mode, dry_run=base.dry_run or args.dry_run, force=args.force)
    try:
        settings = load_settings(os.environ)
        engine = build_engine(settings, run_id=f"cli-{uuid.uuid4()}", lease_seconds=3600)
        result = engine.run(request)
    except DagSyncError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), indent=2))
    return 1 if result.should_raise else 0


if __name__ == "__main__":
    sys.exit(main())
