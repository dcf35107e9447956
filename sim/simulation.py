"""One seed's simulation: the world, the faults, a run every simulated minute, the checks after each.

The function is the real handler (`app.lambda_handler`) with its own execution environment,
configured through `ClientOptions` onto the simulated clock. The PCE and PAN-OS emulators serve
on loopback threads; DynamoDB and Secrets Manager are moto, in process. Nothing sleeps for real.
"""

import contextlib
import io
import json
import logging
import os
import random
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto import mock_aws

import app
from dagsync import SERVICE
from dagsync.edges.runtime import ClientOptions
from dagsync.net.retry import RetryPolicy
from dagsync.pce.client import PCE_RETRY
from dagsync.pce.transport import JobPolling, PceLimits
from emulators.local import (
    FUNCTION_ENVIRONMENT,
    PANOS_SECRET,
    REGION,
    TABLE,
    cold_start,
    provision,
    restore_environment,
)
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from sim.clock import SimClock
from sim.faults import (
    FAULTS,
    LATE_INDEX_SECONDS,
    VERY_LATE_INDEX_SECONDS,
    DeviceGate,
    FaultKind,
    Killed,
    PceGate,
    Process,
)
from sim.invariants import (
    CHECKS,
    EXPORT_BOUND_MINUTES,
    READ_BACK_SECONDS,
    TARGETED_BOUND_RUNS,
    Convergence,
    Expectations,
    Pair,
    RunRecord,
    Violation,
    foreign,
    ours,
    pairs_of,
    table_item_bound,
    touched_pairs,
)
from sim.world import ChangeKind, World, WorldSpec, poisson

START = 1_800_000_000.0 - 1_800_000_000.0 % 60  # a minute boundary, November 2027
FUNCTION_TIMEOUT_SECONDS = 60  # a per-minute schedule's timeout: a killed run's lease ends in 90 s
FIREWALLS = ("007951000000011", "007951000000012", "007951000000013")
PANOS_USER = "dagsync-svc"
PANOS_PASSWORD = "sim-device-password-5b1f0e"  # noqa: S105 - the emulated device's admin password
FOREIGN_TAGS = ("acme.scanner.seen", "corp-cmdb.owner.ops")
SCHEDULED_EVENT = {
    "version": "0",
    "id": "00000000-0000-4000-8000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2027-11-26T12:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:events:{REGION}:123456789012:rule/dagsync-sync"],
    "detail": {},
}
# Minutes from a removal guard block to the operator's forced run: the guard pages a person, who
# checks the PCE (here: the world made every change on purpose) and sends {"force": true}.
OPERATOR_MINUTES = 30
# Minutes after a fault ends within which everything it disturbed is back (docs/simulation.md#bounds).
RECOVERY_RUNS: dict[str, float] = {
    "pce_429": 2,
    "pce_5xx": 2,
    "pce_outage": 2,
    "duplicate_events": 2,
    "reorder_events": 2,
    "drop_from_page": 2,
    "device_reboot": 3,  # the canary is gone: the run ends incomplete, the next exports and reconciles
    "device_failover": 3,
    "target_down": 3,
    "key_expiry": 2,
    "table_full": 3,
    "dynamodb_kill": 4,  # the killed run's lease (the timeout plus 30 s) expires, then two runs
    "deadline": 3,
    "overlap": 2,
}


@dataclass(frozen=True)
class SimSpec:
    seed: int
    minutes: int
    world: WorldSpec = field(default_factory=WorldSpec)
    faults: tuple[FaultKind, ...] = FAULTS
    out: Path = Path("sim/out")
    intensity: float = 1.0  # multiplies every change rate and every fault rate


@dataclass
class Window:
    kind: FaultKind
    until: float
    target: str | None = None


@dataclass
class SeedReport:
    seed: int
    minutes: int
    runs: int = 0
    changes: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    device_calls: list[int] = field(default_factory=list)
    pce_requests: list[int] = field(default_factory=list)
    dynamodb_requests: list[int] = field(default_factory=list)
    dynamodb_units: list[float] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    latencies_unavailable: dict[str, list[float]] = field(default_factory=dict)
    table_items_max: int = 0
    table_items_bound: int = 0
    wall_seconds: float = 0.0
    logs: dict[int, str] = field(default_factory=dict)  # minute -> the run's log, for violations


class SimContext:
    """The Lambda context: its remaining time counts down on the simulated clock."""

    function_name = "dagsync-sim"
    memory_limit_in_mb = 1024
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:dagsync-sim"

    def __init__(self, clock: SimClock, seconds: float, request_id: str) -> None:
        self._clock = clock
        self._deadline = clock() + seconds
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


class Simulation:
    """Everything of one seed; `run()` simulates `spec.minutes` minutes and returns the report."""

    def __init__(self, spec: SimSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.fault_rng = random.Random(f"faults-{spec.seed}")
        self.clock = SimClock(START)
        self.process = Process()
        self.pce = PceEmulator(clock=self.clock)
        self.pce.retry_after = 0
        self.pce.running_polls = 0
        self.pce.max_jobs = 2
        self.pce.event_retention = 7 * 86_400.0
        self.world = World(spec.world, self.pce, self.rng, spec.seed)
        self.panos = PanosEmulator(
            "panorama",
            api_keys=(),
            users={PANOS_USER: PANOS_PASSWORD},
            sleep=self.clock.sleep,
            now=self.clock.monotonic,
        )
        for serial in FIREWALLS:
            self.panos.add_firewall(serial)
        self.pce_gate = PceGate(self.pce, self.process, random.Random(f"pages-{spec.seed}"))
        self.device_gate = DeviceGate(self.panos, self.process)
        self.report = SeedReport(spec.seed, spec.minutes)
        self.windows: list[Window] = []
        self.expect = Expectations()
        self.refused: set[str] = set()
        self.log_buffer = io.StringIO()
        self.targets: dict[str, str] = {}  # target name -> serial
        self.convergence: Convergence
        self._desired: set[tuple[str, str]] = set()
        self._request_ids = random.Random(f"requests-{spec.seed}")
        self._kill_at: int | None = None
        self._ours: dict[str, set[Pair]] = {}
        self._foreign: dict[str, set[Pair]] = {}
        self._dirty: set[str] = set()  # targets whose device table may have changed
        self._blocked_since: float | None = None  # the first run the removal guard held back
        self._blocked: set[str] = set()  # targets the guard holds back until the operator forces

    # -- set-up -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def deployment(self) -> Iterator[None]:
        servers = [LoopbackServer(self.pce_gate).start(), LoopbackServer(self.device_gate).start()]
        host = urlsplit(servers[1].url).netloc
        self.targets = {f"{host}/{serial}": serial for serial in FIREWALLS}
        env = {
            **FUNCTION_ENVIRONMENT,
            "PCE_URL": servers[0].url,
            "PCE_ORG_ID": str(self.pce.org_id),
            "PANOS_URL": servers[1].url,
            "PANOS_TARGET_SERIALS": ",".join(FIREWALLS),
            "CHANGE_FEED": "events",
            "FULL_EXPORT_MINUTES": "60",
            "FUNCTION_TIMEOUT_SECONDS": str(FUNCTION_TIMEOUT_SECONDS),
            # One target at a time: the order of device and DynamoDB requests is then the seed's alone.
            "PANOS_MAX_CONCURRENCY": "1",
            "POWERTOOLS_METRICS_NAMESPACE": "DagSyncSim",
        }
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        production = app.ENVIRONMENT.options
        app.ENVIRONMENT.options = ClientOptions(
            retry=RetryPolicy(attempts=3),
            pce_retry=replace(PCE_RETRY, attempts=4),
            pce_limits=PceLimits(polling=JobPolling(min_delay=0.001)),
            timeout=30.0,
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
            wall_clock=self.clock,
        )
        aws = mock_aws()
        aws.start()
        self.process.install()
        handlers = self._capture_logs()
        try:
            cold_start()
            dynamodb, secrets = (
                boto3.client("dynamodb", region_name=REGION),
                boto3.client("secretsmanager", region_name=REGION),
            )
            provision(dynamodb, secrets, self.pce)
            secrets.put_secret_value(
                SecretId=PANOS_SECRET,
                SecretString=json.dumps({"username": PANOS_USER, "password": PANOS_PASSWORD}),
            )
            self.convergence = Convergence(self.targets)
            self._dirty = set(self.targets)
            self._seed_devices()
            yield
        finally:
            for logger_name, handler, stream in handlers:
                if stream is None:
                    logging.getLogger(logger_name).removeHandler(handler)
                else:
                    handler.setStream(stream)  # type: ignore[attr-defined]
            aws.stop()
            for server in servers:
                server.stop()
            app.ENVIRONMENT.options = production
            restore_environment(saved)

    def _capture_logs(self) -> list[tuple[str, logging.Handler, Any]]:
        """Every line the function logs goes to this run's buffer, not to stdout."""
        swapped: list[tuple[str, logging.Handler, Any]] = []
        for handler in logging.getLogger(SERVICE).handlers:
            if isinstance(handler, logging.StreamHandler):
                swapped.append((SERVICE, handler, handler.setStream(self.log_buffer)))
        root = logging.StreamHandler(self.log_buffer)
        root.setLevel(logging.WARNING)
        logging.getLogger().addHandler(root)
        swapped.append(("", root, None))
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        return swapped

    def _seed_devices(self) -> None:
        """Another tool's tags, on our workloads' addresses and on its own, on every firewall."""
        addresses = sorted({ip for ip, _ in pairs_of(self.world.desired())})
        chosen = self.rng.sample(addresses, min(10, len(addresses)))
        for target, serial in self.targets.items():
            for index, ip in enumerate([*chosen, "198.18.0.7", "198.18.0.8"]):
                self.panos.register_foreign(ip, [FOREIGN_TAGS[index % 2]], serial=serial)
            self.expect.foreign[target] = {
                (ip, tag) for ip, tags in self.panos.table(serial=serial).items() for tag in tags
            }

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> SeedReport:
        started = time.perf_counter()
        # A run killed before it recorded a metric flushes none; Powertools warns of it on stderr.
        warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
        with self.deployment():
            self._desired = pairs_of(self.world.desired())
            for minute in range(self.spec.minutes):
                self.minute(minute)
            self._scan_table(self.spec.minutes)
        self.report.wall_seconds = time.perf_counter() - started
        self.report.latencies = self.convergence.latencies
        self.report.latencies_unavailable = self.convergence.latencies_unavailable
        return self.report

    def minute(self, minute: int) -> None:
        at = START + minute * 60
        self.clock.move_to(at)
        self._end_windows(at)
        run_faults = self._start_faults(minute, at)
        self._change_estate(at)
        self.clock.move_to(at + 60)  # the schedule fires
        self._run(minute, run_faults)
        if minute % 60 == 59:
            self._scan_table(minute)

    def _change_estate(self, at: float) -> None:
        spec = self.spec.world
        made = [
            (self.rng.uniform(0, 59.9), kind)
            for kind in spec.changes
            for _ in range(poisson(self.rng, spec.rate_per_minute(kind) * self.spec.intensity))
        ]
        for offset, kind in sorted(made, key=lambda item: item[0]):
            self.clock.move_to(at + offset)
            self._change(kind)

    def _change(self, kind: ChangeKind) -> None:
        delay = self._index_delay()
        self.pce.event_index_delay = delay
        description = self.world.apply(kind)
        self.pce.event_index_delay = 0.0
        if description is None:
            return
        self.report.changes[kind.name] = self.report.changes.get(kind.name, 0) + 1
        now = self.clock()
        desired = pairs_of(self.world.desired())
        moved = touched_pairs(self._desired, desired)
        self._desired = desired
        if not moved:
            return
        name = "quarantine" if kind.name in ("quarantine", "release") else kind.name
        targeted = kind.bound == "targeted" and delay < READ_BACK_SECONDS - 60
        bound = (
            (now + delay + TARGETED_BOUND_RUNS * 60 + 60)
            if targeted
            else (now + delay + EXPORT_BOUND_MINUTES * 60 + 60)
        )
        self.convergence.open(name, now, moved, bound)
        self._extend_for_windows()

    def _index_delay(self) -> float:
        for window in self.windows:
            if window.kind.name == "late_index":
                return self.fault_rng.uniform(*LATE_INDEX_SECONDS)
            if window.kind.name == "very_late_index":
                return self.fault_rng.uniform(*VERY_LATE_INDEX_SECONDS)
        return 0.0

    # -- faults -----------------------------------------------------------------------------

    def _start_faults(self, minute: int, at: float) -> set[str]:
        """Faults that start this minute; the run's own faults are returned for `_run` to arm."""
        armed: set[str] = set()
        for kind in self.spec.faults:
            if self.fault_rng.random() >= kind.per_day * self.spec.intensity / 1440:
                continue
            if any(window.kind.name == kind.name for window in self.windows):
                continue
            self.report.faults[kind.name] = self.report.faults.get(kind.name, 0) + 1
            length = self.fault_rng.randint(*kind.minutes)
            until = at + length * 60 + 60
            target = self.fault_rng.choice(sorted(self.targets)) if kind.where == "device" else None
            window = Window(kind, until, target)
            self._inject(window, armed)
            if kind.minutes != (1, 1) or kind.where == "events":
                self.windows.append(window)
            self._extend(window)
        return armed

    def _inject(self, window: Window, armed: set[str]) -> None:
        begin = self._begins.get(window.kind.name)
        if begin is None:
            armed.add(window.kind.name)  # a fault of the run itself, armed when it starts
        else:
            begin(window)

    @property
    def _begins(self) -> dict[str, Callable[[Window], None]]:
        """How each fault that is not the run's own starts."""
        return {
            "late_index": _nothing,  # read by _index_delay while the window lasts
            "very_late_index": _nothing,
            "duplicate_events": lambda _: setattr(self.pce_gate.pages, "duplicate", True),
            "reorder_events": lambda _: setattr(self.pce_gate.pages, "reorder", True),
            "drop_from_page": lambda _: setattr(self.pce_gate.pages, "drop_once", True),
            "pce_429": lambda _: setattr(self.pce, "rate_limit_next", self.fault_rng.randint(1, 6)),
            "pce_5xx": lambda _: setattr(self.pce, "fail_next", self.fault_rng.randint(1, 4)),
            "pce_outage": lambda _: setattr(self.pce, "fail_next", 10**9),
            "device_reboot": self._reboot,
            "device_failover": self._reboot,
            "target_down": lambda window: self.panos.set_unreachable(self._serial(window), "error"),
            "key_expiry": lambda _: self.panos.revoke_keys(),
            "table_full": lambda window: self.panos.fill_table(serial=self._serial(window)),
            "refused_address": self._refuse_address,
        }

    @property
    def _ends(self) -> dict[str, Callable[[Window], None]]:
        """How each fault that lasts ends."""
        return {
            "pce_outage": lambda _: setattr(self.pce, "fail_next", 0),
            "duplicate_events": lambda _: setattr(self.pce_gate.pages, "duplicate", False),
            "reorder_events": lambda _: setattr(self.pce_gate.pages, "reorder", False),
            "target_down": lambda window: self.panos.set_unreachable(self._serial(window), None),
            "table_full": lambda window: self.panos.set_capacity(None, serial=self._serial(window)),
        }

    def _serial(self, window: Window) -> str:
        if window.target is None:
            raise ValueError(f"{window.kind.name} needs a target")
        return self.targets[window.target]

    def _reboot(self, window: Window) -> None:
        """A firewall restarts; what it lost is due back within the fault's recovery."""
        serial, target = self._serial(window), str(window.target)
        name = window.kind.name
        before = ours(self.panos.table(serial=serial))
        self.panos.reboot(serial=serial, keep_persistent=name == "device_reboot")
        lost = before - ours(self.panos.table(serial=serial))
        self._dirty.add(target)
        self.convergence.open(
            name, self.clock(), lost, window.until + RECOVERY_RUNS[name] * 60, targets=[target]
        )
        for ip, tag in self.expect.foreign[target]:  # the other tool registers its own again
            self.panos.register_foreign(ip, [tag], serial=serial)

    def _refuse_address(self, _: Window) -> None:
        """The device answers `Invalid IP address` for one workload address from now on."""
        addresses = sorted({ip for ip, _ in self._desired} - self.refused)
        if addresses:
            ip = self.fault_rng.choice(addresses)
            self.refused.add(ip)
            self.panos.refuse_ips([ip])

    def _extend(self, window: Window) -> None:
        recovery = RECOVERY_RUNS.get(window.kind.name)
        if recovery is None:
            return
        targets = None if window.target is None else [window.target]
        self.convergence.extend(
            window.until + recovery * 60, targets=targets, unavailable=window.kind.unavailable
        )

    def _extend_for_windows(self) -> None:
        for window in self.windows:
            self._extend(window)

    def _end_windows(self, at: float) -> None:
        for window in [window for window in self.windows if window.until <= at + 60]:
            self.windows.remove(window)
            self._ends.get(window.kind.name, _nothing)(window)

    # -- one run ----------------------------------------------------------------------------

    def _run(self, minute: int, faults: set[str]) -> None:
        before = self._device_pairs()
        self.panos.clear_log()
        self.pce.clear_log()
        self.process.reset()
        self.log_buffer.seek(0)
        self.log_buffer.truncate()
        started = self.clock()
        timeout = float(FUNCTION_TIMEOUT_SECONDS)
        if "dynamodb_kill" in faults:
            self._kill_at = self.fault_rng.randint(1, 8)
        # An armed kill waits for a run that writes that much: a quiet run may write nothing.
        self.process.kill_after_writes = self._kill_at
        if "deadline" in faults:
            timeout = self.fault_rng.uniform(1.0, 6.0)
            self.panos.delay_next(self.fault_rng.randint(1, 4), seconds=self.fault_rng.uniform(1.0, 3.0))
        if "overlap" in faults:
            self.device_gate.overlap = lambda: self._invoke(
                minute, timeout=float(FUNCTION_TIMEOUT_SECONDS), second=True
            )
        forced = self._operator_due()
        self._invoke(minute, timeout=timeout, force=forced)
        self.device_gate.overlap = None
        self.panos.clear_faults()
        self.report.runs += 1
        self.report.device_calls.append(len(self.panos.requests))
        self.report.pce_requests.append(len(self.pce.requests))
        self.report.dynamodb_requests.append(self.process.requests)
        self.report.dynamodb_units.append(self.process.read_units + self.process.write_units)
        if self.process.dead:
            self._kill_at = None
            self.report.faults["dynamodb_kill (fired)"] = (
                self.report.faults.get("dynamodb_kill (fired)", 0) + 1
            )
            cold_start()  # the next invocation runs in a new execution environment
        self.process.reset()
        self._check(minute, started, before, forced=forced)

    def _operator_due(self) -> bool:
        """The operator's forced run, OPERATOR_MINUTES after the guard first held a target back."""
        if self._blocked_since is None or self.clock() < self._blocked_since + OPERATOR_MINUTES * 60:
            return False
        self._blocked_since = None
        self._blocked.clear()
        self.report.faults["operator_force"] = self.report.faults.get("operator_force", 0) + 1
        return True

    def _held_by_guard(self, summary: dict[str, Any]) -> None:
        """Targets the guard blocked wait for the operator: their open entries wait with them."""
        blocked = {
            str(result.get("target"))
            for result in summary.get("targets") or ()
            if result.get("status") == "blocked"
        }
        if not blocked:
            return
        if self._blocked_since is None:
            self._blocked_since = self.clock()
        self._blocked |= blocked
        self.convergence.extend(
            self._blocked_since + (OPERATOR_MINUTES + TARGETED_BOUND_RUNS + 1) * 60,
            targets=sorted(self._blocked & set(self.targets)),
            unavailable=True,
        )

    def _invoke(self, minute: int, *, timeout: float, second: bool = False, force: bool = False) -> None:
        request_id = str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4))
        context = SimContext(self.clock, timeout, request_id)
        event: dict[str, Any] = {"force": True} if force else {**SCHEDULED_EVENT, "id": request_id}
        status = "killed"
        with contextlib.redirect_stdout(self.log_buffer):
            try:
                summary = app.lambda_handler(event, context)
                status = str(summary.get("status", "ok"))
                source = str(summary.get("source"))
                self.report.sources[source] = self.report.sources.get(source, 0) + 1
                self._held_by_guard(summary)
            except Killed:
                status = "killed"
            except app.RunFailed:
                status = "failed"
        key = f"{'second ' if second else ''}{status}"
        self.report.statuses[key] = self.report.statuses.get(key, 0) + 1

    def _check(self, minute: int, started: float, before: dict[str, set[Pair]], *, forced: bool) -> None:
        requests = {
            target: [entry for entry in self.panos.requests if entry.target == serial]
            for target, serial in self.targets.items()
        }
        for target, sent in requests.items():
            if any(entry.type == "user-id" for entry in sent):
                self._dirty.add(target)
        after = self._device_pairs()
        record = RunRecord(
            minute=minute,
            started=started,
            ended=self.clock(),
            requests=requests,
            before=before,
            after=after,
            after_foreign=self._foreign,
            log=self.log_buffer.getvalue(),
            secrets=(self.pce.secret, PANOS_PASSWORD, *self.panos.issued_keys()),
            forced=forced,
        )
        violations = [v for check in CHECKS.values() for v in check(record, self.expect)]
        for target, pairs in after.items():
            disagree = {pair for pair in self._desired ^ pairs if pair[0] not in self.refused}
            violations += self.convergence.observe(minute, self.clock(), target, disagree)
        if violations:
            self.report.violations.extend(violations)
            self.report.logs[minute] = record.log
            self._write_log(minute, record.log)

    def _device_pairs(self) -> dict[str, set[Pair]]:
        """Our pairs on each device, read again only from a device something may have changed."""
        for target in self._dirty:
            table = self.panos.table(serial=self.targets[target])
            self._ours[target], self._foreign[target] = ours(table), foreign(table)
        self._dirty.clear()
        return dict(self._ours)

    def _scan_table(self, minute: int) -> None:
        client = boto3.client("dynamodb", region_name=REGION)
        count = sum(
            page["Count"] for page in client.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT")
        )
        ips = len({ip for ip, _ in self._desired})
        bound = table_item_bound(len(self.targets), ips)
        self.report.table_items_max = max(self.report.table_items_max, count)
        self.report.table_items_bound = bound
        if count > bound:
            self.report.violations.append(
                Violation(
                    "table_items_bounded", minute, f"{count} items, more than {bound} for {ips} addresses"
                )
            )

    def _write_log(self, minute: int, log: str) -> None:
        folder = self.spec.out / f"seed-{self.spec.seed}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"minute-{minute}.log").write_text(log)


def _nothing(_: Window) -> None:
    """A fault whose effect is read elsewhere while it lasts."""
