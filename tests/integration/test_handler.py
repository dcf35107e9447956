"""The handler's contract: events, configuration, secrets, races and results."""

import json
import threading

import pytest

from app import RunFailed
from dagsync.store.snapshot import SnapshotStore
from emulators.local import PANOS_SECRET, TABLE, LocalDeployment

SCHEDULED = {
    "version": "0",
    "id": "run-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-11-26T12:00:00Z",
    "region": "eu-west-1",
    "resources": [],
    "detail": {},
}


def no_network_calls(pce, panos):
    return pce.requests == [] and panos.requests == []


@pytest.mark.parametrize(
    "event",
    [{"dry_run": "yes"}, {"mode": "full"}, {"force": True, "extra": 1}, ["not", "an", "object"]],
)
def test_bad_manual_event_is_rejected_before_any_network_call(deployment, pce, panos, event):
    with pytest.raises(RunFailed, match=r"manual event|JSON object"):
        deployment.invoke(event) if isinstance(event, dict) else _invoke_raw(event)
    assert no_network_calls(pce, panos)


def _invoke_raw(event):
    from app import lambda_handler
    from emulators.local import FakeContext

    return lambda_handler(event, FakeContext())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_SIZE", "5000"),
        ("PCE_URL", "pce.example.com"),
        ("LABEL_KEYS", "env,,app"),
        ("DRY_RUN", "perhaps"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_variable_before_any_network_call(
    pce, panos, variable, value
):
    with (
        LocalDeployment(pce=pce, panos=panos, settings={variable: value}) as local,
        pytest.raises(RunFailed, match=variable),
    ):
        local.invoke(SCHEDULED)
    assert no_network_calls(pce, panos)


def test_missing_secret_fails_with_its_name_and_no_device_call(deployment, pce, panos):
    deployment.client("secretsmanager").delete_secret(SecretId=PANOS_SECRET, ForceDeleteWithoutRecovery=True)
    from emulators.local import cold_start

    cold_start()
    with pytest.raises(RunFailed, match=PANOS_SECRET):
        deployment.invoke(SCHEDULED)
    assert no_network_calls(pce, panos)


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        ("not json", "not JSON"),
        (json.dumps(["a"]), "JSON object"),
        (json.dumps({"username": "u"}), "password"),
    ],
)
def test_malformed_panos_secret_is_rejected_clearly(deployment, panos, secret, fragment):
    deployment.put_secret(PANOS_SECRET, secret)
    with pytest.raises(RunFailed, match=fragment):
        deployment.invoke(SCHEDULED)
    assert panos.requests == []


def test_username_and_password_secret_generates_one_key_per_cold_start(deployment, panos):
    panos.add_user("dagsync", "s3cret&pass")
    deployment.put_secret(PANOS_SECRET, json.dumps({"username": "dagsync", "password": "s3cret&pass"}))
    deployment.invoke(SCHEDULED)
    deployment.invoke(SCHEDULED)
    assert panos.keygen_count == 1


def test_a_run_that_loses_the_race_reports_conflict_and_sends_nothing(deployment, pce, panos):
    target = deployment.invoke(SCHEDULED)["targets"][0]["target"]
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    store = SnapshotStore(TABLE)
    store.acquire(store.load(target), "other-run", lease_seconds=600)
    panos.clear_log()
    summary = deployment.invoke(SCHEDULED)
    assert summary["status"] == "conflict"
    assert summary["targets"][0]["status"] == "conflict"
    assert panos.calls("user-id") == []


def test_two_racing_runs_never_both_commit_and_the_device_ends_exact(deployment, pce, panos):
    deployment.invoke(SCHEDULED)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    results: list[object] = []

    def run() -> None:
        try:
            results.append(deployment.invoke({})["targets"][0]["status"])
        except RunFailed as exc:
            results.append(str(exc))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) in (["conflict", "ok"], ["ok", "ok"])
    deployment.invoke({})
    assert "illumio.env.Quarantine" in panos.table()["10.1.0.1"]
    assert "illumio.env.Development" not in panos.table()["10.1.0.1"]


def test_summary_has_the_documented_shape(deployment):
    deployment.invoke(SCHEDULED)
    summary = deployment.invoke(SCHEDULED)
    documented = {
        "status",
        "mode",
        "dry_run",
        "workloads",
        "pairs",
        "targets",
        "unfinished",
        "warnings",
        "duration_ms",
        "device_address",
        "members",
    }
    # The run may add how it read the inventory (docs/results.md#summary); nothing else on a quiet run.
    assert documented <= set(summary) <= documented | {"source", "events_seen", "workloads_fetched"}
    assert set(summary["targets"][0]) == {
        "target",
        "status",
        "registered",
        "unregistered",
        "api_calls",
        "drift_repaired",
    }


def test_first_run_reads_the_device_and_says_so(deployment, panos):
    summary = deployment.invoke(SCHEDULED)
    assert summary["targets"][0]["reconciled"] is True
    assert len([call for call in panos.non_ha_requests() if call.type == "op"]) == 1


def test_secrets_never_appear_in_logs_or_results(pce, panos, capsys, log_lines):
    panos.add_user("dagsync", "pw-7f3a9c")
    with LocalDeployment(pce=pce, panos=panos) as local:
        local.put_secret(PANOS_SECRET, json.dumps({"username": "dagsync", "password": "pw-7f3a9c"}))
        results = [json.dumps(local.invoke(SCHEDULED))]
        pce.job_outcome = "failed"
        with pytest.raises(RunFailed) as failure:
            local.invoke({})  # a manual run always exports (docs/change-feed.md#decision)
        results.append(str(failure.value))
        pce.job_outcome = "done"
        panos.revoke_keys()
        with pytest.raises(RunFailed) as failure:
            local.invoke({})
        results.append(str(failure.value))
        generated_keys = list(panos.issued_keys())
    captured = capsys.readouterr()
    lines = log_lines()
    assert any(line.get("message") == "run summary" for line in lines)
    everything = captured.out + captured.err + json.dumps(lines) + "".join(results)
    for secret in [pce.secret, "pw-7f3a9c", *generated_keys]:
        assert secret not in everything
    assert "PCE" in results[1]


@pytest.mark.parametrize("variable", ["PCE_URL", "PANOS_URL"])
def test_a_url_carrying_credentials_is_rejected_without_echoing_them(pce, panos, log_lines, capsys, variable):
    url = "https://dagsync:pw-9c1e77@device.example.com"
    with (
        LocalDeployment(pce=pce, panos=panos, settings={variable: url}) as local,
        pytest.raises(RunFailed, match=f"{variable} must not carry a username or password") as failure,
    ):
        local.invoke(SCHEDULED)
    captured = capsys.readouterr()
    everything = str(failure.value) + captured.out + captured.err + json.dumps(log_lines())
    assert "pw-9c1e77" not in everything
    assert "dagsync:" not in everything
    assert no_network_calls(pce, panos)


def test_force_on_a_scheduled_event_is_rejected_before_any_network_call(deployment, pce, panos):
    with pytest.raises(RunFailed, match="force is accepted only on manual events"):
        deployment.invoke({**SCHEDULED, "detail": {"force": True}})
    assert no_network_calls(pce, panos)


def test_a_forced_run_says_so_in_its_summary_and_on_every_log_line(deployment, log_lines):
    summary = deployment.invoke({"force": True})
    assert summary["forced"] is True
    lines = log_lines()
    assert any(line.get("message") == "run summary" for line in lines)
    assert all(line.get("forced") is True for line in lines)


def test_the_run_after_a_forced_one_is_not_marked_forced(deployment, log_lines):
    deployment.invoke({"force": True})
    forced_lines = len(log_lines())
    summary = deployment.invoke(SCHEDULED)
    assert "forced" not in summary
    assert all("forced" not in line for line in log_lines()[forced_lines:])
