"""`python -m bench [--sizes 10000 100000] ...` runs the benchmark and writes bench/results.md.

`python -m bench case KIND --result FILE` is the child process that measures one run.
`python -m bench fanout [--fanout-serials 1 10 50] ...` measures only the fan-out section and
replaces it in bench/results.md. `python -m bench state [--sizes 100000]` measures what state and
label group tags cost (bench/state.py) and replaces that section.
"""

import argparse
import sys
import time
from pathlib import Path

from bench import fanout
from bench.report import write_report
from bench.runner import OUT, Options, Runner

RESULTS = Path(__file__).resolve().parent / "results.md"


def main(argv: list[str]) -> int:
    if argv[:1] == ["case"]:
        from bench.case import main as case_main  # noqa: PLC0415

        return case_main(argv[1:])
    if argv[:1] == ["state"]:
        from bench.state import main as state_main  # noqa: PLC0415

        return state_main(argv[1:], RESULTS)
    fanout_only = argv[:1] == ["fanout"]
    if fanout_only:
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000], help="estate sizes")
    parser.add_argument("--seed", type=int, default=1, help="estate and churn seed")
    parser.add_argument("--churn", type=float, default=1.0, help="churn step, in percent")
    parser.add_argument("--batch-size", type=int, default=500, help="BATCH_SIZE for every tool")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the floor and the steady state")
    parser.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="profile one extra floor and steady-state run per size with py-spy (default: on)",
    )
    parser.add_argument(
        "--only", help="comma-separated case keys to run, e.g. floor,dagsync/first,dagsync/steady (no report)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the results table")
    parser.add_argument(
        "--fanout-workloads", type=int, default=10_000, help="estate size of the fan-out runs"
    )
    parser.add_argument("--fanout-serials", type=int, nargs="+", default=[1, 10, 50], help="serial counts")
    parser.add_argument(
        "--fanout-scale", type=float, default=0.01, help="factor on the device's real per-entry cost"
    )
    parser.add_argument(
        "--fanout-response-ms",
        type=float,
        default=300.0,
        help="the device's response time to every request, in milliseconds (0: answer at once)",
    )
    parser.add_argument(
        "--fanout", action=argparse.BooleanOptionalAction, default=True, help="run the fan-out section"
    )
    args = parser.parse_args(argv)
    if fanout_only:
        return fanout.main(fanout.from_args(args), args.output)
    options = Options(
        sizes=tuple(args.sizes),
        seed=args.seed,
        churn_percent=args.churn,
        batch_size=args.batch_size,
        repeat=max(1, args.repeat),
        profile=args.profile,
        only=frozenset(args.only.split(",")) if args.only else None,
    )
    started = time.perf_counter()
    results = Runner(options).run()
    if options.only is not None:
        return 0
    command = "python -m bench" + ("" if not argv else " " + " ".join(argv))
    write_report(args.output, results, options, command, time.perf_counter() - started)
    if args.fanout:
        fanout.main(fanout.from_args(args), args.output)
    print(f"wrote {args.output} (raw runs in {OUT})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
