"""What state and label group tags cost (docs/mapping.md#state-tags): the steady state of a full
export (CHANGE_FEED=off, nothing changed) with `STATE_TAGS=enforcement,managed,online` and
`LABEL_GROUP_TAGS=true`, against the same run without them, in one bench run:
`python -m bench state [--sizes 100000] [--repeat 3]`.

Both variants run against one world (bench/world.py): the same estate, the same PCE (serving
label groups nested three deep, see world.label_groups), each on its own emulated firewall so
each keeps its own snapshot. After each variant's first sync the steady states alternate, so
their ratio compares runs made under the same load. The section it writes in bench/results.md
gives, per variant, the median wall time, peak memory, PCE requests and bytes, device calls and
the pairs, and the ratio of the medians.
"""

import os
import statistics
import time
from pathlib import Path
from typing import Any

from bench.fanout import write_section
from bench.runner import OUT, SCHEDULED_EVENT, measure
from bench.world import World, WorldSpec

STATE_ENV = {"STATE_TAGS": "enforcement,managed,online", "LABEL_GROUP_TAGS": "true"}
VARIANTS = {"without": ("dagsync", {}), "with": ("dagsync-state", STATE_ENV)}
BOUND = 1.15  # the most the feature may cost over the same run without it


def run(size: int, repeat: int, seed: int, batch_size: int) -> dict[str, list[dict[str, Any]]]:
    """Each variant's first sync, then `repeat` alternating steady states; returns the steady runs."""
    OUT.mkdir(exist_ok=True)
    world = World.start(WorldSpec(size, seed, batch_size))
    steady: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    try:
        env, devices = world.env()

        def one(variant: str, label: str) -> dict[str, Any]:
            device, extra = VARIANTS[variant]
            world.reset()
            load = os.getloadavg()[0]
            case_env = {**env, **extra, "PANOS_URL": devices[device], "CHANGE_FEED": "off"}
            result = measure(f"{size}-state-{variant}-{label}", "dagsync", case_env, SCHEDULED_EVENT)
            usage = world.usage()
            result.update(
                load_before=load,
                pce_requests=usage["pce"]["requests"],
                pce_bytes=usage["pce"]["bytes_sent"],
                device_calls=usage["devices"][device]["calls"],
            )
            print(
                f"[{size:,}] {variant:<8} {label:<9} {result['wall_s']:7.2f} s {result['rss_peak_mb']:6.0f} MB "
                f"{result['pce_requests']:>3} PCE requests {result['device_calls']:>5} device calls "
                f"{result['pairs']:>8} pairs (load {load:.1f})",
                flush=True,
            )
            return result

        for variant in VARIANTS:
            one(variant, "first")
        for n in range(repeat):
            for variant in VARIANTS:
                steady[variant].append(one(variant, f"steady{n + 1}"))
    finally:
        world.stop()
    return steady


def report(size: int, steady: dict[str, list[dict[str, Any]]], elapsed_s: float, command: str) -> list[str]:
    def median(variant: str, key: str) -> float:
        return float(statistics.median(run[key] for run in steady[variant]))

    ratio = median("with", "wall_s") / median("without", "wall_s")
    lines = [
        f"### {size:,} workloads",
        "",
        f"`{command}` ({elapsed_s / 60:.1f} min for this size), {len(steady['with'])} alternating runs",
        "of each variant, medians (peak memory: the largest).",
        "",
        "| variant | wall s | peak MB | PCE requests | PCE bytes | device calls | pairs |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        last = steady[variant][-1]
        lines.append(
            f"| {variant} | {median(variant, 'wall_s'):.2f} | {max(r['rss_peak_mb'] for r in steady[variant]):.0f} "
            f"| {last['pce_requests']} | {last['pce_bytes']:,} | {last['device_calls']} | {last['pairs']:,} |"
        )
    verdict = "within" if ratio <= BOUND else "over"
    lines += ["", f"Wall time with / without: {ratio:.3f} ({verdict} the {BOUND}x bound).", ""]
    return lines


def main(argv: list[str], results: Path) -> int:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m bench state", description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="estate sizes")
    parser.add_argument("--repeat", type=int, default=3, help="steady-state runs of each variant")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    command = "python -m bench state" + ("" if not argv else " " + " ".join(argv))
    sections = [
        "## State and label group tags",
        "",
        "The steady state of a full export (CHANGE_FEED=off, nothing changed): without, and with",
        "`STATE_TAGS=enforcement,managed,online` and `LABEL_GROUP_TAGS=true` (label groups nested",
        "three deep over the app and env labels, bench/world.py), each on its own device and snapshot.",
        "",
    ]
    for size in args.sizes:
        started = time.perf_counter()
        steady = run(size, max(1, args.repeat), args.seed, args.batch_size)
        sections += report(size, steady, time.perf_counter() - started, command)
    write_section(results, sections)
    return 0
