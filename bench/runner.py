"""Runs every case against one world per estate size, each measured run in a fresh process."""

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.profile import Share, available, summarise
from bench.profile import command as profile_command
from bench.world import World, WorldSpec

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parents[1]
SCHEDULED_EVENT = (ROOT / "events" / "scheduled.json").read_text()  # what EventBridge sends every run
FEED_CHANGED_WORKLOADS = 50  # MAX_TARGETED_WORKLOADS's default: the largest targeted update
Prepare = tuple[Any, ...] | None  # a world command and its arguments, run before a case


@dataclass
class Case:
    """One row of the results table: a kind of run, repeated `runs` times in fresh processes."""

    key: str  # e.g. "dagsync/steady"
    label: str
    change_feed: str  # the CHANGE_FEED the runs had: "off" (a full export every run) or "events"
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
        return dict(self.last["usage"]["devices"]["dagsync" if tool in ("floor", "feed") else tool])


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

            def case(
                key: str, label: str, tool: str, kind: str, *, feed: str = "off", prepare: Prepare = None
            ) -> None:
                """One fresh-process run of `kind` against `tool`'s device with CHANGE_FEED=`feed`,
                added to row `key`; `prepare` changes the world first (before the meters reset)."""
                if options.only is not None and key not in options.only:
                    return
                found = result.cases.setdefault(key, Case(key, label, feed))
                name = f"{size}-{key.replace('/', '-')}-{len(found.runs) + 1}"
                change = None if prepare is None else world.change(*prepare)
                world.reset()
                load = os.getloadavg()[0]
                case_env = {**env, "PANOS_URL": devices[tool], "CHANGE_FEED": feed}
                run = measure(name, kind, case_env, SCHEDULED_EVENT)
                run["usage"] = world.usage()
                run["load_before"] = load
                run["change"] = change
                (OUT / f"{name}.json").write_text(json.dumps(run, indent=1))
                found.runs.append(run)
                _say(
                    f"[{size:,}] {label:<30} {run['wall_s']:7.2f} s  {run['rss_peak_mb']:6.0f} MB  "
                    f"{run['usage']['devices'][tool]['calls']:>6} device calls  "
                    f"{run['usage']['pce']['requests']:>4} PCE requests  (load {load:.1f})"
                )

            # Full export on every run (CHANGE_FEED=off), as before the change feed: these rows keep
            # their meaning from earlier results.
            case("dagsync/first", "DAG Sync: first run", "dagsync", "dagsync")
            # Alternated, so that the ratio of the two compares runs made under the same conditions.
            for _ in range(options.repeat):
                case("floor", "PCE download + parse (floor)", "dagsync", "floor")
                case("dagsync/steady", "DAG Sync: steady state", "dagsync", "dagsync")
            if options.profile:
                self._profile(result, {**env, "CHANGE_FEED": "off"}, devices["dagsync"])
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
            self._feed_cases(case, options.repeat)
            if options.profile:  # where a targeted update's time goes: one more relabel, under py-spy
                world.change("relabel_one")
                feed_env = {**env, "CHANGE_FEED": "events"}
                self._profile(
                    result, feed_env, devices["dagsync"], (("feed/one", "dagsync", "lambda_handler"),)
                )
        finally:
            world.stop()
        result.elapsed_s = time.perf_counter() - started
        return result

    @staticmethod
    def _feed_cases(case: Callable[..., None], repeat: int) -> None:
        """The change feed (CHANGE_FEED=events) against the same world and device, after the rows
        above; every change from here on goes through the PCE emulator, which writes its event.

        The first run has no watermark and exports in full (writing the projection). The full
        export steady state is the same run made due as FULL_EXPORT_MINUTES would make it, so it
        carries the feed's own costs (the watermark, the projection's manifest); it alternates with
        the no-change run, as the floor does with the steady state. Only noise the feed ignores by
        type comes before an export: events older than an export inside the read-back window are
        read again by the next run.
        """

        def feed(key: str, label: str, prepare: Prepare = None) -> None:
            case(key, label, "dagsync", "dagsync", feed="events", prepare=prepare)

        feed("feed/first", "feed: first run (full export)")
        for _ in range(repeat):
            feed("feed/export", "DAG Sync: full export steady", ("export_due",))
            feed("feed/quiet", "feed: no relevant event", ("user_session",))
        feed("feed/noise", "feed: fe80:: churn only", ("link_local_churn",))
        feed("feed/one", "feed: one relabel", ("relabel_one",))
        changed = FEED_CHANGED_WORKLOADS
        feed("feed/fifty", f"feed: {changed} changed workloads", ("change_workloads", changed))

    def _profile(
        self,
        result: SizeResult,
        env: dict[str, str],
        device: str,
        runs: tuple[tuple[str, str, str], ...] = (
            ("floor", "floor", "floor"),
            ("dagsync/steady", "dagsync", "lambda_handler"),
        ),
    ) -> None:
        """One more run of each (key, kind, root frame) under py-spy; they are not rows of the table."""
        py_spy = available()
        if py_spy is None:
            _say("py-spy is not installed; no profiles")
            return
        for key, kind, root in runs:
            name = f"{result.size}-{key.replace('/', '-')}-profiled"
            run = measure(name, kind, {**env, "PANOS_URL": device}, SCHEDULED_EVENT, py_spy)
            result.profiles[key] = summarise(OUT / f"{name}.folded", root)
            _say(f"[{result.size:,}] profiled {key}: {run['wall_s']:.2f} s under py-spy")


def measure(
    name: str, kind: str, env: dict[str, str], event: str, profile: str | None = None
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
