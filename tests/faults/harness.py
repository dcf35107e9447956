"""What the fault suite shares: the I/O seams, a fake lease clock and exact end-state checks."""

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from dagsync.core.canary import CANARY_IP
from dagsync.core.diff import subtract, union
from dagsync.core.mapping import map_workloads
from dagsync.core.models import Workload
from dagsync.panos.client import PanosClient
from dagsync.pce.transport import PceTransport
from dagsync.store.manifest import MANIFEST_KEY
from dagsync.store.snapshot import Snapshot, SnapshotStore
from dagsync.store.table import Table
from emulators.local import TABLE, LocalDeployment
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator

CrashMode = Literal["exception", "kill"]
PREFIX = "illumio."
CANARY = {CANARY_IP: frozenset({PREFIX + "canary"})}
START = 1_800_000_000.0


class Crash(BaseException):
    """The process dies here: nothing in the function catches it and no later I/O happens."""


class InjectedFault(Exception):
    """An unexpected exception raised inside the function; its own error handling still runs."""


Rule = Callable[[str], BaseException | None]


@dataclass
class Seams:
    """Every PCE GET, PAN-OS request and DynamoDB request the function makes, as one ordered trace.

    `crash_after(n)` lets call n (0-based) take effect and then stops the run there: in
    "exception" mode one InjectedFault is raised and the function's own cleanup still talks to
    the outside world; in "kill" mode every later call raises Crash, as if the process died.
    `fail(rule)` runs the rule before each DynamoDB request is sent; an exception it returns is
    raised where the SDK would raise it (throttling left after the SDK's own retries, say), and
    `resend(operation)` sends that request twice, as the SDK does when a first answer is lost.
    """

    trace: list[str] = field(default_factory=list)
    crash_at: int | None = None
    mode: CrashMode = "exception"
    dead: bool = False
    rules: list[Rule] = field(default_factory=list)
    resent: set[str] = field(default_factory=set)
    among: str = ""
    armed_at: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _backend: threading.Lock = field(default_factory=threading.Lock)

    def crash_after(self, index: int, mode: CrashMode, *, among: str = "") -> None:
        """Crash after call `index` from now on, counting only labels starting with `among`."""
        self.crash_at, self.mode, self.dead, self.among = index, mode, False, among
        self.armed_at = len(self.trace)

    def fail(self, rule: Rule) -> None:
        self.rules.append(rule)

    def resend(self, operation: str) -> None:
        self.resent.add(f"dynamodb {operation}")

    def heal(self) -> None:
        """The faults stop: a new process, or the outage is over."""
        self.crash_at, self.dead, self.rules, self.resent = None, False, [], set()

    def reset(self) -> None:
        self.heal()
        self.trace = []

    def around[R](self, label: str, call: Callable[[], R]) -> R:
        if self.dead:
            raise Crash(f"process already dead before {label}")
        result = call()
        with self._lock:
            self.trace.append(label)
            index = sum(1 for entry in self.trace[self.armed_at :] if entry.startswith(self.among)) - 1
        if self.crash_at is not None and label.startswith(self.among) and index == self.crash_at:
            self.crash_at = None
            if self.mode == "kill":
                self.dead = True
                raise Crash(f"process killed after {label}")
            raise InjectedFault(f"injected crash after {label}")
        return result

    def send[R](self, label: str, request: Callable[[], R]) -> R:
        """One DynamoDB request as the SDK sends it, with the rules' faults applied."""
        for rule in list(self.rules):
            error = rule(label)
            if error is not None:
                raise error
        # moto's in-process backend is not safe for two requests on one table at once (its
        # update_item copies an item another thread is changing); DynamoDB is. Each request is
        # atomic in DynamoDB, so sending them one at a time changes no outcome a test checks.
        with self._backend:
            if label in self.resent:
                self.resent.discard(label)
                request()
            return request()

    def count(self, label: str) -> int:
        return sum(1 for entry in self.trace if entry == label)


def throttle(operation: str, *, skip: int = 0) -> Rule:
    """Throttling that outlasts the SDK's retries, on `operation` after `skip` good calls."""
    seen = 0

    def rule(label: str) -> BaseException | None:
        nonlocal seen
        if label != f"dynamodb {operation}":
            return None
        seen += 1
        if seen <= skip:
            return None
        return dynamodb_error("ProvisionedThroughputExceededException", operation)

    return rule


def panos_label(body: bytes) -> str:
    form = parse_qs(body.decode(), keep_blank_values=True)
    kind = form.get("type", ["?"])[0]
    cmd = form.get("cmd", [""])[0]
    if kind == "user-id":
        verb = "unregister" if "<unregister>" in cmd else "register"
        if 'persistent="0"' in cmd:
            verb = "canary"
        return f"panos {verb}"
    if kind == "op" and "<high-availability>" in cmd:
        return "panos ha-state"
    if kind == "op":
        return "panos show" + (" canary" if f"<ip>{CANARY_IP}</ip>" in cmd else " all")
    return f"panos {kind}"


def pce_label(url: str) -> str:
    parts = urlsplit(url).path.rstrip("/").split("/")
    return f"pce {parts[-2] if parts[-2] in {'jobs', 'datafiles'} else parts[-1]}"


def dynamodb_error(code: str, operation: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "Rate of requests exceeds the allowed throughput"}}, operation
    )


def install_seams(monkeypatch: pytest.MonkeyPatch, seams: Seams) -> None:
    original_attempt = PanosClient._attempt
    original_call = Table.call
    original_get = PceTransport.get

    def attempt(self: PanosClient, body: bytes, headers: dict[str, str]) -> Any:
        return seams.around(panos_label(body), lambda: original_attempt(self, body, headers))

    def call(self: Table, operation: str, pk: str, request: Callable[[], Any]) -> Any:
        label = f"dynamodb {operation}"
        sent = partial(seams.send, label, request)
        return seams.around(label, lambda: original_call(self, operation, pk, sent))

    def get(self: PceTransport, url: str, *args: Any, **kwargs: Any) -> Any:
        return seams.around(pce_label(url), lambda: original_get(self, url, *args, **kwargs))

    monkeypatch.setattr(PanosClient, "_attempt", attempt)
    monkeypatch.setattr(Table, "call", call)
    monkeypatch.setattr(PceTransport, "get", get)


# -- end-state checks --------------------------------------------------------------------------


def desired_of(pce: PceEmulator) -> dict[str, frozenset[str]]:
    """The pairs docs/mapping.md asks for, computed from the emulator's own workload objects."""
    workloads = [
        Workload(
            href=w["href"],
            labels=tuple((label["key"], label["value"]) for label in w.get("labels") or ()),
            addresses=tuple(
                i["address"] for i in w.get("interfaces") or () if i.get("address") and not i.get("loopback")
            ),
        )
        for w in pce.workloads
        if not w.get("deleted")
    ]
    return map_workloads(
        workloads,
        prefix=PREFIX,
        label_keys=frozenset({"role", "app", "env", "loc"}),
        include_ipv6=True,
        reserved_ips=frozenset({CANARY_IP}),
    ).desired


def target_of(deployment: LocalDeployment) -> str:
    return urlsplit(deployment.env["PANOS_URL"]).netloc


def load_snapshot(deployment: LocalDeployment) -> Snapshot:
    return SnapshotStore(TABLE).load(target_of(deployment))


def table_items(deployment: LocalDeployment) -> list[dict[str, Any]]:
    client = deployment.client("dynamodb")
    items: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=TABLE, ConsistentRead=True):
        items.extend(page["Items"])
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def wipe_table(deployment: LocalDeployment) -> None:
    client = deployment.client("dynamodb")
    for item in table_items(deployment):
        client.delete_item(TableName=TABLE, Key={"pk": item["pk"], "sk": item["sk"]})


def assert_exact(
    deployment: LocalDeployment,
    panos: PanosEmulator,
    desired: Mapping[str, frozenset[str]],
    foreign: Mapping[str, frozenset[str]],
    *,
    now: float,
) -> None:
    """The device holds exactly our desired pairs, the foreign ones and the canary; the snapshot
    records exactly the desired pairs, none uncertain; no live lease is left behind (a killed run's
    expired lease stays until the next run that has something to send takes it over)."""
    expected = union(union(desired, foreign), CANARY)
    table = panos.table()
    missing, extra = subtract(expected, table), subtract(table, expected)
    assert (missing, extra) == ({}, {}), "device differs from the desired pairs"
    snapshot = load_snapshot(deployment)
    assert (snapshot.confirmed, snapshot.uncertain) == (dict(desired), {}), "snapshot differs"
    manifest = next(item for item in table_items(deployment) if item["sk"]["S"] == MANIFEST_KEY)
    assert float(manifest.get("lease_expires_at", {"N": "0"})["N"]) <= now, "a live lease is left"


def outcome(
    deployment: LocalDeployment, event: Mapping[str, Any] | None = None
) -> dict[str, Any] | BaseException:
    """The summary of one invocation, or the exception it ended with (RunFailed, Crash...)."""
    try:
        return deployment.invoke(dict(event or {}))
    except (Exception, Crash) as exc:
        return exc
