"""Runs every case against one world per estate size, each measured run in a fresh process."""

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profile import Share, available, summarise
from bench.profile import command as profile_command
from bench.world import World, WorldSpec

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
SCHEDULED_EVENT = (ROOT / "events" / "scheduled.json").read_text()  # what EventBridge sends every run


@dataclass
class Case:
    """One row of the results table: a kind of run, repeated `runs` times in fresh processes."""

    key: str  # e.g. "dagsync/steady"
    label: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        return self.runs[-1]

    @property
    def wall_s(self) -> float:
        return float(statistics.median(run["wall_s"] for run in self.runs))

    @property
    def rss_peak_mb(self) -> float:
        return float(max(run["rss_peak_mb"] for run in self.runs))

    def device(self) -> dict[str, Any]:
        tool = self.key.split("/")[0]
        return dict(self.last["usage"]["devices"]["dagsync" if tool == "floor" else tool])


@dataclass
class SizeResult:
    size: int
    cases: dict[str, Case] = field(default_factory=dict)
    churn: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, list[Share]] = field(default_factory=dict)  # case key -> where its time goes
    elapsed_s: float = 0.0


@dataclass(frozen=True)
class Options:
    sizes: tuple[int, ...]
    seed: int
    churn_percent: float
    batch_size: int
    repeat: int
    profile: bool
    only: frozenset[str] | None = None  # case keys to run (development); None runs every case


class Runner:
    def __init__(self, options: Options) -> None:
        self.options = options
        OUT.mkdir(exist_ok=True)

    def run(self) -> list[SizeResult]:
        return [self._size(size) for size in self.options.sizes]

    def _size(self, size: int) -> SizeResult:
        started = time.perf_counter()
        options = self.options
        result = SizeResult(size)
        _say(f"[{size:,}] starting the world (estate, emulators, DynamoDB)")
        world = World.start(WorldSpec(size, options.seed, options.batch_size))
        try:
            env, devices = world.env()

            def case(key: str, label: str, tool: str, kind: str) -> None:
                """One fresh-process run of `kind` against `tool`'s device, added to row `key`."""
                if options.only is not None and key not in options.only:
                    return
                found = result.cases.setdefault(key, Case(key, label))
                name = f"{size}-{key.replace('/', '-')}-{len(found.runs) + 1}"
                world.reset()
                load = os.getloadavg()[0]
                run = self._process(name, kind, {**env, "PANOS_URL": devices[tool]}, SCHEDULED_EVENT)
                run["usage"] = world.usage()
                run["load_before"] = load
                (OUT / f"{name}.json").write_text(json.dumps(run, indent=1))
                found.runs.append(run)
                _say(
                    f"[{size:,}] {label:<30} {run['wall_s']:7.2f} s  {run['rss_peak_mb']:6.0f} MB  "
                    f"{run['usage']['devices'][tool]['calls']:>6} device calls  (load {load:.1f})"
                )

            case("dagsync/first", "DAG Sync: first run", "dagsync", "dagsync")
            # Alternated, so that the ratio of the two compares runs made under the same conditions.
            for _ in range(options.repeat):
                case("floor", "PCE download + parse (floor)", "dagsync", "floor")
                case("dagsync/steady", "DAG Sync: steady state", "dagsync", "dagsync")
            if options.profile:
                self._profile(result, env, devices["dagsync"])
            case("full-push/first", "full push: first run", "full-push", "full-push")
            case("full-push/steady", "full push: steady state", "full-push", "full-push")
            case("read-back/first", "read-back diff: first run", "read-back", "read-back")
            case("read-back/steady", "read-back diff: steady state", "read-back", "read-back")
            result.churn = world.churn(options.churn_percent, options.seed + 1)
            _say(f"[{size:,}] churn {options.churn_percent:g}%: {result.churn}")
            case("dagsync/churn", f"DAG Sync: {options.churn_percent:g}% churn", "dagsync", "dagsync")
            case("full-push/churn", f"full push: {options.churn_percent:g}% churn", "full-push", "full-push")
            case(
                "read-back/churn",
                f"read-back diff: {options.churn_percent:g}% churn",
                "read-back",
                "read-back",
            )
            small = world.churn(100 / size, options.seed + 2)
            _say(f"[{size:,}] small change: {small}")
            case("dagsync/small", "DAG Sync: 4 workloads changed", "dagsync", "dagsync")
        finally:
            world.stop()
        result.elapsed_s = time.perf_counter() - started
        return result

    def _profile(self, result: SizeResult, env: dict[str, str], device: str) -> None:
        """One more floor and steady-state run each under py-spy; they are not rows of the table."""
        py_spy = available()
        if py_spy is None:
            _say("py-spy is not installed; no profiles")
            return
        for key, kind, root in (("floor", "floor", "floor"), ("dagsync/steady", "dagsync", "lambda_handler")):
            name = f"{result.size}-{key.replace('/', '-')}-profiled"
            run = self._process(name, kind, {**env, "PANOS_URL": device}, SCHEDULED_EVENT, py_spy)
            result.profiles[key] = summarise(OUT / f"{name}.folded", root)
            _say(f"[{result.size:,}] profiled {key}: {run['wall_s']:.2f} s under py-spy")

    def _process(
        self, name: str, kind: str, env: dict[str, str], event: str, profile: str | None = None
    ) -> dict[str, Any]:
        """One cold run in a child process; its stdout (the function's logs) goes to bench/out/."""
        result_file = OUT / f"{name}.json"
        command = [
            sys.executable,
            "-m",
            "bench",
            "case",
            kind,
            "--result",
            str(result_file),
            "--event",
            event,
        ]
        if profile is not None:
            command = profile_command(profile, OUT / f"{name}.folded", command)
        child_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        with (OUT / f"{name}.log").open("w") as log:
            done = subprocess.run(  # noqa: S603 - our own interpreter and module
                command, env=child_env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False
            )
        if done.returncode != 0:
            raise RuntimeError(f"case {name} failed (exit {done.returncode}); see {OUT / f'{name}.log'}")
        loaded: dict[str, Any] = json.loads(result_file.read_text())
        return loaded


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
