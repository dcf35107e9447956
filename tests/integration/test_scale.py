"""The scale targets on a 2,000-workload synthetic estate: the benchmark's path, sized for the suite.

The real handler runs against moto and both emulators (two firewalls behind Panorama, so every
check is per target). Expected pairs come from the estate's raw JSON through a small reference
mapping written here, and device work is read from the emulator's request log.
"""

import ipaddress
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from dagsync.core.canary import CANARY_IP
from dagsync.core.mapping import make_tag
from emulators.churn import churn
from emulators.estate import Estate, generate_estate
from emulators.local import PANOS_API_KEY, LocalDeployment
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator

WORKLOADS = 2_000
BATCH = 50  # small, so that 1% churn still spans several batches per direction
SERIALS = ("007951000000101", "007951000000102")
LABEL_KEYS = ("role", "app", "env", "loc")
SCHEDULED = json.loads((Path(__file__).resolve().parents[2] / "events" / "scheduled.json").read_text())
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})

TagTable = dict[str, frozenset[str]]


@pytest.fixture(autouse=True)
def every_run_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs read the whole inventory; with the change feed a quiet run that finds the
    canary missing leaves the reconcile to the next run's full export (docs/change-feed.md#watermark)."""
    monkeypatch.setenv("CHANGE_FEED", "off")


def expected_pairs(estate: Estate) -> TagTable:
    """docs/mapping.md on the raw PCE JSON (inline labels, default LABEL_KEYS, IPv6 included)."""
    grouped: dict[str, set[str]] = {}
    for workload in estate.workloads:
        tags = {
            tag
            for label in workload.get("labels") or ()
            if label["key"] in LABEL_KEYS and (tag := make_tag("illumio.", label["key"], label["value"]))
        }
        for interface in workload.get("interfaces") or ():
            ip = ipaddress.ip_address(interface["address"])
            if tags and not (interface.get("loopback") or ip.is_link_local or ip.is_loopback):
                grouped.setdefault(ip.compressed, set()).update(tags)
    return {ip: frozenset(tags) for ip, tags in grouped.items()}


def ours(table: TagTable) -> TagTable:
    """A device table without the canary and without other tools' tags."""
    result = {}
    for ip, tags in table.items():
        mine = frozenset(tag for tag in tags if tag.startswith("illumio."))
        if mine and ip != CANARY_IP:
            result[ip] = mine
    return result


def pairs(table: TagTable) -> set[tuple[str, str]]:
    return {(ip, tag) for ip, tags in table.items() for tag in tags}


def calls(panos: PanosEmulator, serial: str, verb: str | None = None) -> list[Any]:
    return [
        entry
        for entry in panos.calls(target=serial)
        if verb is None or (verb in entry.uid and entry.uid_ips[verb] != (CANARY_IP,))
    ]


@pytest.fixture
def estate(pce: PceEmulator) -> Estate:
    generated = generate_estate(WORKLOADS, seed=7)
    pce.load_estate(generated)
    return generated


@pytest.fixture
def panos() -> PanosEmulator:
    return PanosEmulator("panorama", api_keys=(PANOS_API_KEY,), firewalls=SERIALS)


@pytest.fixture
def settings() -> dict[str, str]:
    return {"PANOS_TARGET_SERIALS": ",".join(SERIALS), "BATCH_SIZE": str(BATCH)}


@pytest.fixture
def dynamodb_operations(deployment: LocalDeployment) -> Iterator[list[str]]:
    """Every DynamoDB operation the function sends, in order, seen where boto3 sends it."""
    seen: list[str] = []

    def record(event_name: str, **_: Any) -> None:
        seen.append(event_name.rsplit(".", 1)[-1])

    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None
    session.events.register("before-call.dynamodb", record)
    yield seen
    session.events.unregister("before-call.dynamodb", record)


def test_first_run_registers_every_desired_pair_exactly_once(deployment, estate, panos, dynamodb_operations):
    desired = expected_pairs(estate)
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    assert {"BatchWriteItem", "PutItem"} <= set(dynamodb_operations)  # what a commit sends is seen
    assert summary["workloads"] == WORKLOADS and summary["pairs"] == len(pairs(desired))
    for serial in SERIALS:
        registers = calls(panos, serial, "register")
        sent = [(ip, tag) for entry in registers for ip, tag in entry.uid_pairs["register"]]
        assert sorted(sent) == sorted(pairs(desired))  # every pair, none twice
        assert len(registers) == math.ceil(len(desired) / BATCH)
        assert all(entry.uid["register"] <= BATCH for entry in registers)
        assert calls(panos, serial, "unregister") == []
        assert ours(panos.table(serial=serial)) == desired


def test_steady_state_costs_one_canary_call_per_target_and_no_snapshot_write(
    deployment, estate, panos, dynamodb_operations
):
    deployment.invoke(SCHEDULED)
    panos.clear_log()
    dynamodb_operations.clear()
    summary = deployment.invoke(SCHEDULED)
    assert [
        (t["status"], t["registered"], t["unregistered"], t["api_calls"]) for t in summary["targets"]
    ] == [("ok", 0, 0, 1)] * len(SERIALS)
    for serial in SERIALS:
        (only,) = calls(panos, serial)
        assert only.type == "op" and "registered-ip" in only.params["cmd"]
    assert (panos.ha_queries(), len(panos.non_ha_requests())) == (1, len(SERIALS))
    assert dynamodb_operations  # the snapshot was read ...
    assert not DYNAMODB_WRITES.intersection(dynamodb_operations)  # ... and not written


def test_one_percent_churn_costs_one_call_per_batch_of_changed_ips_per_direction(
    deployment, estate, panos, dynamodb_operations
):
    deployment.invoke(SCHEDULED)
    before = {serial: ours(panos.table(serial=serial)) for serial in SERIALS}
    report = churn(estate, 1.0, seed=8)
    assert report.total == 4 * WORKLOADS // 100
    desired = expected_pairs(estate)
    panos.clear_log()
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "ok"
    for serial in SERIALS:
        gaining = [ip for ip, tags in desired.items() if tags - before[serial].get(ip, frozenset())]
        losing = [ip for ip, tags in before[serial].items() if tags - desired.get(ip, frozenset())]
        assert len(gaining) > BATCH and len(losing) > BATCH  # the churn spans several batches
        for verb, changed in (("register", gaining), ("unregister", losing)):
            sent = len(calls(panos, serial, verb))
            assert abs(sent - math.ceil(len(changed) / BATCH)) <= 1, (serial, verb, sent, len(changed))
        assert ours(panos.table(serial=serial)) == desired
