"""docs/configuration.md#secrets, fault matrix, Secrets Manager side: a secret that is missing, not JSON or lacks a
field fails the run before any network call, naming the secret and never its content."""

import json

import pytest

from app import RunFailed
from emulators.local import PANOS_API_KEY, PANOS_SECRET, PCE_SECRET, cold_start
from tests.faults.harness import assert_exact, desired_of, load_snapshot

MISSING = object()


def good_values(pce) -> dict[str, str]:
    return {
        PCE_SECRET: json.dumps({"auth_username": pce.auth_username, "secret": pce.secret}),
        PANOS_SECRET: json.dumps({"api_key": PANOS_API_KEY}),
    }


def store(deployment, secret_id: str, value: object) -> None:
    client = deployment.client("secretsmanager")
    if value is MISSING:
        client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    elif secret_id in {entry["Name"] for entry in client.list_secrets()["SecretList"]}:
        client.put_secret_value(SecretId=secret_id, SecretString=value)
    else:
        client.create_secret(Name=secret_id, SecretString=value)
    cold_start()


@pytest.mark.parametrize(
    ("secret_id", "value", "message"),
    [
        pytest.param(
            PCE_SECRET, MISSING, r"secret dagsync/pce could not be read: ResourceNotFound", id="pce-missing"
        ),
        pytest.param(
            PANOS_SECRET,
            MISSING,
            r"secret dagsync/panos could not be read: ResourceNotFound",
            id="panos-missing",
        ),
        pytest.param(PCE_SECRET, "secret=hunter2", r"secret dagsync/pce is not JSON", id="pce-not-json"),
        pytest.param(
            PANOS_SECRET, '{"api_key": "k-1', r"secret dagsync/panos is not JSON", id="panos-not-json"
        ),
        pytest.param(PCE_SECRET, '["hunter2"]', r"secret dagsync/pce must be a JSON object", id="pce-array"),
        pytest.param(
            PCE_SECRET,
            json.dumps({"auth_username": "api_1a2b3c4d5e"}),
            r"secret dagsync/pce: field 'secret' is missing",
            id="pce-no-secret-field",
        ),
        pytest.param(
            PCE_SECRET,
            json.dumps({"secret": "hunter2"}),
            r"field 'auth_username' is missing",
            id="pce-no-username",
        ),
        pytest.param(
            PANOS_SECRET,
            json.dumps({}),
            r"needs field 'api_key', or 'username' and 'password'",
            id="panos-empty",
        ),
        pytest.param(
            PANOS_SECRET,
            json.dumps({"username": "dagsync"}),
            r"field 'password' is missing",
            id="panos-no-password",
        ),
        pytest.param(
            PANOS_SECRET,
            json.dumps({"api_key": 42}),
            r"field 'api_key' must be a non-empty string",
            id="panos-key-not-text",
        ),
    ],
)
def test_a_bad_secret_fails_the_run_before_any_network_call(
    deployment, pce, panos, clock, secret_id, value, message
):
    deployment.invoke({})
    before, snapshot_before = panos.table(), load_snapshot(deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    pce.clear_log()
    panos.clear_log()
    store(deployment, secret_id, value)
    with pytest.raises(RunFailed, match=message) as failure:
        deployment.invoke({})
    assert "hunter2" not in str(failure.value) and "k-1" not in str(failure.value)
    assert (pce.requests, panos.requests) == ([], [])
    assert (panos.table(), load_snapshot(deployment)) == (before, snapshot_before)
    store(deployment, secret_id, good_values(pce)[secret_id])
    deployment.invoke({})
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
