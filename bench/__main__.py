"""`python -m bench [--sizes 10000 100000] ...` runs the benchmark and writes bench/results.md.

`python -m bench case KIND --result FILE` is the child process that measures one run.
"""

import argparse
import sys
import time
from pathlib import Path

from bench.report import write_report
from bench.runner import OUT, Options, Runner

RESULTS = Path(__file__).resolve().parent / "results.md"


def main(argv: list[str]) -> int:
    if argv[:1] == ["case"]:
        from bench.case import main as case_main  # noqa: PLC0415

        return case_main(argv[1:])
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
    args = parser.parse_args(argv)
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
    print(f"wrote {args.output} (raw runs in {OUT})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
