"""Operator CLI: `python -m dagsync plan|sync|reconcile [--force] [--deadline SECONDS]`.

Same environment, configuration and engine as the Lambda function. `plan` prints what each DAG
would gain and lose when the device's DAG definitions can be read, and the JSON summary otherwise
(or always, with --json).
"""

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator, Sequence

from dagsync.core.errors import DagSyncError
from dagsync.core.invocation import SyncRequest
from dagsync.core.result import DagChange, RunResult, TargetResult
from dagsync.core.settings import load_settings
from dagsync.edges.observability import run_log_keys
from dagsync.edges.runtime import build_engine
from dagsync.sync.deadline import deadline_after

_COMMANDS = {
    "plan": SyncRequest(mode="sync", dry_run=True),
    "sync": SyncRequest(mode="sync"),
    "reconcile": SyncRequest(mode="reconcile"),
}
_HEADINGS = ("DAG", "FILTER", "JOINS", "LEAVES")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    deadline = deadline_after(args.deadline)  # counted from the start, secrets and setup included
    base = _COMMANDS[args.command]
    request = SyncRequest(mode=base.mode, dry_run=base.dry_run or args.dry_run, force=args.force)
    with run_log_keys(request):
        try:
            settings = load_settings(os.environ)
            for note in settings.insecure_settings():
                print(f"warning: {note}", file=sys.stderr)
            engine = build_engine(
                settings,
                run_id=f"cli-{uuid.uuid4()}",
                lease_seconds=settings.lease_seconds(args.deadline),
                remaining_seconds=None if deadline is None else deadline - time.monotonic(),
            )
            result = engine.run(request, deadline=deadline)
        except DagSyncError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if request.dry_run and not args.json and _has_dag_changes(result):
        print(render_plan(result))
    else:
        print(json.dumps(result.to_dict(), indent=2))
    return 1 if result.should_raise else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dagsync", description=__doc__)
    parser.add_argument("command", choices=sorted(_COMMANDS), help="plan is a dry run of sync")
    parser.add_argument("--force", action="store_true", help="let a run through the removal guard")
    parser.add_argument("--dry-run", action="store_true", help="compute and report, change nothing")
    parser.add_argument(
        "--deadline",
        type=_seconds,
        metavar="SECONDS",
        help="stop starting batches in time to commit within this many seconds (default: no deadline)",
    )
    parser.add_argument("--json", action="store_true", help="print the JSON summary, also for plan")
    return parser


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return seconds


def _has_dag_changes(result: RunResult) -> bool:
    return any(target.dag_changes is not None for target in result.targets)


def render_plan(result: RunResult) -> str:
    """The membership plan as an operator reads it: per target, each DAG's joins and leaves, then counts."""
    sections = [_render_target(target) for target in result.targets]
    footer = f"run {result.status}: {result.workloads} workloads, {result.pairs} pairs"
    if result.warnings:
        footer += f", {_count(len(result.warnings), 'warning')} (see --json)"
    return "\n\n".join([*sections, footer])


def _render_target(target: TargetResult) -> str:
    lines = [f"{target.target} ({target.status})"]
    if target.error:
        lines.append(f"  {target.error}")
    if target.dag_changes is None:
        lines.append("  DAG definitions were not read for this target")
    elif target.dag_changes:
        lines += _table([_HEADINGS, *(row for change in target.dag_changes for row in _rows(change))])
    else:
        lines.append("  no DAG gains or loses a member")
    # The plan's own counts: a blocked target sends nothing, yet the operator needs to see what it would.
    plan = target.plan or {}
    register = len(plan["register"]) if "register" in plan else target.registered
    unregister = len(plan["unregister"]) if "unregister" in plan else target.unregistered
    lines.append(f"  pairs: {register} to register, {unregister} to unregister")
    return "\n".join(lines)


def _rows(change: DagChange) -> Iterator[tuple[str, str, str, str]]:
    """One row per member line; a DAG's name and filter appear on its first."""
    if not change.evaluable:
        yield change.dag, change.filter, "cannot evaluate", ""
        return
    joins = [_member(ip, change) for ip in change.joins] or ["-"]
    leaves = [_member(ip, change) for ip in change.leaves] or ["-"]
    for index in range(max(len(joins), len(leaves))):
        first = index == 0
        yield (
            change.dag if first else "",
            change.filter if first else "",
            joins[index] if index < len(joins) else "",
            leaves[index] if index < len(leaves) else "",
        )


def _member(ip: str, change: DagChange) -> str:
    hostname = change.hostnames.get(ip)
    return f"{ip} ({hostname})" if hostname else ip


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


if __name__ == "__main__":
    sys.exit(main())
