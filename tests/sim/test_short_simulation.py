"""The simulation in short (docs/simulation.md): one fixed seed, hours of runs, every check after each."""

from pathlib import Path

import pytest

from sim.invariants import CHECKS
from sim.report import render
from sim.simulation import SimSpec, Simulation

SEED = 7
MINUTES = 360  # six simulated hours: a run a minute, in well under a minute of wall time
INTENSITY = 6.0  # changes and faults six times as often as in the month-long simulation


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    out: Path = tmp_path_factory.mktemp("sim")
    return Simulation(SimSpec(seed=SEED, minutes=MINUTES, out=out, intensity=INTENSITY)).run()


def test_a_short_simulation_violates_no_invariant(report) -> None:
    assert report.violations == [], render(report)


def test_every_minute_runs_the_function_once(report) -> None:
    assert report.runs == MINUTES


def test_the_short_simulation_changes_the_estate_and_injects_faults(report) -> None:
    assert report.changes.get("quarantine", 0) > 0
    assert {"dynamodb_kill (fired)", "overlap", "deadline", "pce_429"} <= set(report.faults)


def test_relabels_reach_the_devices_and_are_measured(report) -> None:
    assert report.latencies.get("relabel")


def test_every_check_is_named_in_the_registry() -> None:
    assert set(CHECKS) == {
        "no_foreign_tag_touched",
        "no_clear",
        "no_register_and_unregister_in_one_message",
        "no_unregister_beyond_guard",
        "no_secret_logged",
    }
