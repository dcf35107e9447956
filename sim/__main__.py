"""`python -m sim --seed N --minutes M`: one seed's simulation and its report; exit 1 on a violation.

`--seeds 1,2,3 --jobs 2` runs several seeds, each in its own process, `--jobs` at a time.
Replaying a failing seed is the same command with that seed and the minutes up to the
violation's: the world, the faults and the function's inputs are the seed's alone.
"""

import argparse
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from sim.seeds import simulate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", help="comma-separated seeds, each in its own process")
    parser.add_argument("--minutes", type=int, default=1440, help="simulated minutes: one run each")
    parser.add_argument("--jobs", type=int, default=1, help="seeds simulated at once")
    parser.add_argument("--intensity", type=float, default=1.0, help="multiplies every change and fault rate")
    parser.add_argument("--out", type=Path, default=Path("sim/out"))
    args = parser.parse_args(argv)
    seeds = [int(seed) for seed in args.seeds.split(",")] if args.seeds else [args.seed]
    if len(seeds) == 1:
        results = [simulate(seeds[0], args.minutes, args.out, args.intensity)]
    else:
        # Fresh interpreters: each seed has its own moto, emulators and environment variables.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(simulate, seed, args.minutes, args.out, args.intensity) for seed in seeds]
            results = [future.result() for future in futures]
    for text, _ in results:
        print(text, flush=True)
    return 1 if any(violations for _, violations in results) else 0


if __name__ == "__main__":
    sys.exit(main())
