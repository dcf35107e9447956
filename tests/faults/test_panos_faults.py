"""docs/sync.md#per-entry-results and docs/sync.md#retries, fault matrix, PAN-OS side, on a sync of
three register and three unregister batches (BATCH_SIZE=2). A batch the device cannot take stops
the target; the pairs of that batch are recorded as uncertain, what went before is recorded as
done, and the next run converges."""

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from app import RunFailed
from dagsync.core.canary import CANARY_IP
from dagsync.core.diff import subtract, union
from dagsync.core.models import TagMap
from dagsync.panos.messages import chunk_entries
from emulators.local import PANOS_SECRET
from tests.faults.harness import CANARY, assert_exact, desired_of, load_snapshot
from tests.integration.conftest import ClientSetup

BATCH = 2
Inject = Callable[[Any, int, ClientSetup], None]


@pytest.fixture
def settings() -> dict[str, str]:
    return {"BATCH_SIZE": str(BATCH)}


def move_everyone_to_staging(pce: Any) -> None:
    for name in ("web1", "web2", "db1", "lb1"):
        pce.relabel(f"/orgs/1/workloads/{name}", "env", "Staging")


def stopped_at(
    baseline: TagMap, desired: TagMap, stop: int, *, applied: bool
) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Device, confirmed and uncertain pairs after the run stops at uid-message `stop` (0-based):
    every earlier batch went through, that one was `applied` or not, nothing after it was sent."""
    sends = [("register", b) for b in chunk_entries(subtract(desired, baseline), BATCH)]
    sends += [("unregister", b) for b in chunk_entries(subtract(baseline, desired), BATCH)]
    device: dict[str, frozenset[str]] = dict(baseline)
    confirmed: dict[str, frozenset[str]] = dict(baseline)
    for verb, batch in sends[:stop]:
        device = union(device, batch) if verb == "register" else subtract(device, batch)
        confirmed = union(confirmed, batch) if verb == "register" else subtract(confirmed, batch)
    verb, batch = sends[stop]
    if applied:
        device = union(device, batch) if verb == "register" else subtract(device, batch)
    if verb == "unregister":
        confirmed = subtract(confirmed, batch)
    return device, confirmed, dict(batch)


def settle(panos: Any) -> None:
    """Wait for requests the client gave up on but the device is still working through."""
    deadline = time.monotonic() + 5
    while any(entry.status == 0 for entry in panos.requests) and time.monotonic() < deadline:
        time.sleep(0.02)


def key_revoked(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.revoke_keys_after(2 + stop)  # the HA state query and the canary check come first


def session_timeouts(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.error_code_next(10, code="22", type="user-id", after=stop)


def server_errors(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.fail_next(10, status=503, type="user-id", after=stop)


def resets(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.reset_next(10, type="user-id", after=stop)


def resets_after_apply(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.reset_next(10, after_apply=True, type="user-id", after=stop)


def timeouts(panos: Any, stop: int, setup: ClientSetup) -> None:
    setup.configure(timeout=0.2)
    panos.fail_next(0, type="user-id", after=stop)
    panos.delay_next(10, seconds=0.4, type="user-id")


def not_xml(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.fail_next(0, type="user-id", after=stop)
    panos.not_xml_next(type="user-id")


def xml_bomb(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.fail_next(0, type="user-id", after=stop)
    panos.malicious_next(variant="billion-laughs", type="user-id")


def external_entity(panos: Any, stop: int, setup: ClientSetup) -> None:
    panos.fail_next(0, type="user-id", after=stop)
    panos.malicious_next(variant="external-entity", type="user-id")


STOPPING = [
    pytest.param(key_revoked, False, r"refused the credentials \(HTTP 403\).*check api_key", id="403"),
    pytest.param(session_timeouts, False, r"code 22.*gave up after 3 attempts", id="code-22"),
    pytest.param(server_errors, False, r"answered HTTP 503.*gave up after 3 attempts", id="503"),
    pytest.param(resets, False, r"connection to PAN-OS .* failed .*gave up after 3 attempts", id="reset"),
    pytest.param(
        resets_after_apply, True, r"connection to PAN-OS .* failed .*gave up after 3", id="reset-after-apply"
    ),
    pytest.param(timeouts, True, r"did not answer within 0.2s \(gave up after 3 attempts", id="timeout"),
    pytest.param(not_xml, False, r"is not XML; check that PANOS_URL", id="not-xml"),
    pytest.param(
        xml_bomb, False, r"declares entities or external references \(EntitiesForbidden\)", id="bomb"
    ),
    pytest.param(
        external_entity, False, r"declares entities or external references \(EntitiesForbidden\)", id="xxe"
    ),
]


@pytest.mark.parametrize(
    "stop", [pytest.param(1, id="register-batch-2"), pytest.param(4, id="unregister-batch-2")]
)
@pytest.mark.parametrize(("inject", "applied", "message"), STOPPING)
def test_a_batch_the_device_cannot_take_stops_the_target_and_is_retried_next_run(
    deployment, pce, panos, clock, fast_retries, inject: Inject, applied: bool, message: str, stop: int
):
    deployment.invoke({})
    baseline = desired_of(pce)
    move_everyone_to_staging(pce)
    desired = desired_of(pce)
    inject(panos, stop, fast_retries)
    with pytest.raises(RunFailed, match=message) as failure:
        deployment.invoke({})
    settle(panos)
    assert "lollol" not in str(failure.value) and "root:" not in str(failure.value)
    device, confirmed, uncertain = stopped_at(baseline, desired, stop, applied=applied)
    assert panos.table() == union(device, CANARY)
    snapshot = load_snapshot(deployment)
    assert (snapshot.confirmed, snapshot.uncertain) == (confirmed, uncertain)
    panos.clear_faults()
    panos.add_api_key("test-api-key")
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired, {}, now=clock.now)


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(
            lambda panos: panos.error_code_next(2, code="22", type="user-id", after=1), id="code-22"
        ),
        pytest.param(lambda panos: panos.fail_next(2, status=502, type="user-id", after=1), id="502"),
        pytest.param(lambda panos: panos.reset_next(2, type="user-id", after=1), id="reset"),
        pytest.param(
            lambda panos: panos.reset_next(2, after_apply=True, type="user-id", after=4),
            id="reset-after-apply",
        ),
    ],
)
def test_a_transient_device_fault_is_retried_and_the_run_converges(deployment, pce, panos, clock, inject):
    deployment.invoke({})
    move_everyone_to_staging(pce)
    inject(panos)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        pytest.param(lambda panos: panos.not_xml_next(type="op"), "is not XML", id="not-xml"),
        pytest.param(lambda panos: panos.malicious_next(type="op"), r"declares entities", id="bomb"),
        pytest.param(lambda panos: panos.fail_next(10, status=500, type="op"), r"HTTP 500", id="500"),
    ],
)
def test_a_bad_answer_to_the_canary_check_stops_the_target_before_anything_is_sent(
    deployment, pce, panos, clock, inject, message
):
    deployment.invoke({})
    before, snapshot_before = panos.table(), load_snapshot(deployment)
    move_everyone_to_staging(pce)
    inject(panos)
    panos.clear_log()
    with pytest.raises(RunFailed, match=message):
        deployment.invoke({})
    assert panos.calls("user-id") == []
    assert (panos.table(), load_snapshot(deployment)) == (before, snapshot_before)
    panos.clear_faults()
    deployment.invoke({})
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_a_full_registered_ip_table_makes_the_run_partial_and_the_refused_pairs_uncertain(
    deployment, pce, panos, clock
):
    deployment.invoke({})
    panos.fill_table()
    pce.set_addresses("/orgs/1/workloads/db1", ["10.1.0.33"])
    refused = {"10.1.0.33": frozenset({"illumio.role.Db", "illumio.app.Ordering", "illumio.env.Production"})}
    with pytest.raises(RunFailed, match=r"partial.*3 pairs were refused by the device"):
        deployment.invoke({})
    desired = desired_of(pce)
    assert panos.table() == union(subtract(desired, refused), CANARY)
    snapshot = load_snapshot(deployment)
    assert (snapshot.confirmed, snapshot.uncertain) == (subtract(desired, refused), refused)
    panos.set_capacity(None)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired, {}, now=clock.now)


def test_an_entry_the_device_refuses_for_another_reason_is_retried_until_it_fits(
    deployment, pce, panos, clock
):
    crowded = frozenset(f"soc.tag{n:02d}" for n in range(30))
    panos.register_foreign("10.1.0.1", crowded)  # 30 of 32 tags taken: our four do not fit
    with pytest.raises(RunFailed, match=r"partial.*4 pairs were refused"):
        deployment.invoke({})
    desired = desired_of(pce)
    ours_refused = {"10.1.0.1": desired["10.1.0.1"]}
    assert panos.table() == union(union(subtract(desired, ours_refused), {"10.1.0.1": crowded}), CANARY)
    snapshot = load_snapshot(deployment)
    assert (snapshot.confirmed, snapshot.uncertain) == (subtract(desired, ours_refused), ours_refused)
    soc_keeps = frozenset(sorted(crowded)[:10])
    table = panos.table()
    panos.clear_table()  # the other tool unregisters 20 of its tags
    for ip, tags in table.items():
        panos.register_foreign(ip, soc_keeps if ip == "10.1.0.1" else tags, persistent=ip != CANARY_IP)
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired, {"10.1.0.1": soc_keeps}, now=clock.now)


def test_a_role_without_a_permission_fails_naming_the_permission_to_grant(deployment, pce, panos, clock):
    deployment.invoke({})
    move_everyone_to_staging(pce)
    panos.deny_permission("user-id", answer="unauth")  # status="unauth" code="16"
    with pytest.raises(RunFailed, match="grant it the XML API permission 'User-ID Agent'"):
        deployment.invoke({})
    panos.grant_permission("user-id")
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_an_expired_generated_key_is_replaced_within_the_run_and_the_run_is_ok(deployment, pce, panos, clock):
    panos.add_user("dagsync", "s3cret&pass")
    deployment.put_secret(PANOS_SECRET, json.dumps({"username": "dagsync", "password": "s3cret&pass"}))
    deployment.invoke({})
    move_everyone_to_staging(pce)
    panos.unauth_next(code="22", type="user-id")
    assert deployment.invoke({})["status"] == "ok"
    assert panos.keygen_count == 2
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_an_expired_configured_key_fails_pointing_at_the_secret(deployment, pce, panos, clock):
    deployment.invoke({})
    move_everyone_to_staging(pce)
    panos.unauth_next(code="22", type="user-id")
    with pytest.raises(RunFailed, match="the configured API key has expired or was revoked"):
        deployment.invoke({})
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_a_redirect_fails_naming_its_location_and_is_never_followed(deployment, pce, panos, clock):
    deployment.invoke({})
    move_everyone_to_staging(pce)
    panos.redirect_next(location="https://elsewhere.example/api/", type="user-id")
    panos.clear_log()
    with pytest.raises(
        RunFailed, match=r"redirecting to https://elsewhere\.example/api/; redirects are never followed"
    ):
        deployment.invoke({})
    assert [entry.status for entry in panos.calls("user-id")] == [302]
    assert deployment.invoke({})["status"] == "ok"
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
