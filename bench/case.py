"""One measured run, in the current (fresh) process: `python -m bench case KIND --result FILE`.

The world's endpoints come from the environment, as a Lambda's configuration does. The process
is a cold start: wall time covers the run itself (the handler call, or the baseline's work), and
peak RSS is the process's high-water mark, interpreter and imports included.
"""

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.baselines import full_push, read_back_diff

if TYPE_CHECKING:
    from dagsync.core.settings import Settings
    from dagsync.panos.client import PanosClient
    from dagsync.pce.client import PceClient

KINDS = ("floor", "dagsync", "full-push", "read-back")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _clients() -> tuple["Settings", "PceClient", "PanosClient"]:
    """The baselines' and the floor's clients, configured and authenticated as the function's are."""
    from dagsync.core.settings import load_settings  # noqa: PLC0415
    from dagsync.edges.runtime import read_secret  # noqa: PLC0415
    from dagsync.net.credentials import PanosCredentials, PceCredentials  # noqa: PLC0415
    from dagsync.panos.client import PanosClient  # noqa: PLC0415
    from dagsync.pce.client import PceClient  # noqa: PLC0415

    settings = load_settings(os.environ)
    pce = PceClient(
        settings.pce_url,
        settings.pce_org_id,
        PceCredentials.from_secret(read_secret(settings.pce_secret_id), settings.pce_secret_id),
        verify_tls=settings.pce_verify_tls,
    )
    device = PanosClient(
        settings.panos_url,
        PanosCredentials.from_secret(read_secret(settings.panos_secret_id), settings.panos_secret_id),
        verify_tls=settings.panos_verify_tls,
    )
    return settings, pce, device


def _work(kind: str, event: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """What to time for `kind`, with everything it needs beforehand already set up."""
    if kind == "dagsync":
        import app  # noqa: PLC0415 - imported before timing, so its cost shows in rss_start only
        from emulators.local import FakeContext  # noqa: PLC0415

        def handler() -> dict[str, Any]:
            summary: dict[str, Any] = app.lambda_handler(event, FakeContext())
            target = summary["targets"][0]
            return {
                "status": summary["status"],
                "source": summary.get("source"),
                "events_seen": summary.get("events_seen"),
                "workloads_fetched": summary.get("workloads_fetched"),
                "event_to_device_seconds": summary.get("event_to_device_seconds"),
                "workloads": summary["workloads"],
                "pairs": summary["pairs"],
                "target_status": target["status"],
                **{key: target[key] for key in ("registered", "unregistered", "api_calls")},
            }

        return handler
    settings, pce, device = _clients()
    if kind == "floor":

        def floor() -> dict[str, Any]:
            return {"workloads": len(pce.fetch_workloads()), "pce_bytes": pce.bytes_received}

        return floor
    strategy = full_push if kind == "full-push" else read_back_diff

    def baseline() -> dict[str, Any]:
        done = strategy(settings, pce, device)
        return {**asdict(done), "api_calls": device.api_calls}

    return baseline


def run(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    work = _work(kind, event)
    result: dict[str, Any] = {"kind": kind, "rss_start_mb": _peak_rss_mb()}
    started = time.perf_counter()
    outcome = work()
    result["wall_s"] = time.perf_counter() - started
    result["rss_peak_mb"] = _peak_rss_mb()
    result.update(outcome)
    return result


def main(argv: list[str]) -> int:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench case")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--event", default="{}", help="the handler's event, as JSON")
    args = parser.parse_args(argv)
    result = run(args.kind, json.loads(args.event))
    args.result.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
