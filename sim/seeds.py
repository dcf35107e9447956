"""One seed simulated in the current process, as `python -m sim` runs each seed (in its own process)."""

import json
from pathlib import Path

from sim.report import render, summary
from sim.simulation import SimSpec, Simulation


def simulate(seed: int, minutes: int, out: Path, intensity: float) -> tuple[str, int]:
    """One seed: its report as text (and as JSON under `out`) and its number of violations."""
    report = Simulation(SimSpec(seed=seed, minutes=minutes, out=out, intensity=intensity)).run()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"seed-{seed}.json").write_text(json.dumps(summary(report), indent=1))
    return render(report), len(report.violations)
