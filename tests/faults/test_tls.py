"""TLS for real: both emulators over HTTPS with a throwaway CA, trusted only through ca_bundle."""

import hashlib
import json
import os
import ssl
import tempfile
from collections.abc import Iterator

import pytest
import trustme

from app import RunFailed
from emulators.local import PANOS_API_KEY, PANOS_SECRET, PCE_SECRET, LocalDeployment
from tests.faults.harness import assert_exact, desired_of, load_snapshot


@pytest.fixture(scope="module")
def device_ca() -> trustme.CA:
    return trustme.CA(organization_name="DAG Sync test device CA")


@pytest.fixture(scope="module")
def other_ca() -> trustme.CA:
    return trustme.CA(organization_name="Some other CA")


@pytest.fixture
def tls_deployment(pce, panos, device_ca) -> Iterator[LocalDeployment]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    device_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with LocalDeployment(pce=pce, panos=panos, ssl_context=context) as local:
        yield local


def trust(local: LocalDeployment, pce, *, pce_ca: trustme.CA | None, panos_ca: trustme.CA | None) -> None:
    pce_secret: dict[str, str] = {"auth_username": pce.auth_username, "secret": pce.secret}
    panos_secret = {"api_key": PANOS_API_KEY}
    if pce_ca is not None:
        pce_secret["ca_bundle"] = pce_ca.cert_pem.bytes().decode()
    if panos_ca is not None:
        panos_secret["ca_bundle"] = panos_ca.cert_pem.bytes().decode()
    local.put_secret(PCE_SECRET, json.dumps(pce_secret))
    local.put_secret(PANOS_SECRET, json.dumps(panos_secret))


def test_the_right_ca_bundle_in_both_secrets_syncs_over_https(tls_deployment, pce, panos, device_ca, clock):
    assert tls_deployment.env["PCE_URL"].startswith("https://")
    assert tls_deployment.env["PANOS_URL"].startswith("https://")
    trust(tls_deployment, pce, pce_ca=device_ca, panos_ca=device_ca)
    summary = tls_deployment.invoke({})
    assert summary["status"] == "ok"
    assert_exact(tls_deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.mark.parametrize("ca", ["none", "other"])
def test_an_untrusted_pce_certificate_fails_clearly_and_nothing_is_sent(
    tls_deployment, pce, panos, device_ca, other_ca, ca
):
    trust(tls_deployment, pce, pce_ca=other_ca if ca == "other" else None, panos_ca=device_ca)
    with pytest.raises(
        RunFailed,
        match=r"TLS verification of the PCE failed .*: unable to get local issuer certificate \(set ca_bundle in the PCE secret\)",
    ):
        tls_deployment.invoke({})
    assert (pce.requests, panos.requests) == ([], [])
    assert load_snapshot(tls_deployment).generation == 0


@pytest.mark.parametrize("ca", ["none", "other"])
def test_an_untrusted_panos_certificate_fails_clearly_and_nothing_is_sent(
    tls_deployment, pce, panos, device_ca, other_ca, clock, ca
):
    trust(tls_deployment, pce, pce_ca=device_ca, panos_ca=device_ca)
    tls_deployment.invoke({})
    before, snapshot_before = panos.table(), load_snapshot(tls_deployment)
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    trust(tls_deployment, pce, pce_ca=device_ca, panos_ca=other_ca if ca == "other" else None)
    panos.clear_log()
    with pytest.raises(
        RunFailed, match=r"TLS verification of PANOS_URL https://\S+ failed \(.*\); set ca_bundle"
    ):
        tls_deployment.invoke({})
    assert panos.requests == []
    assert panos.table() == before
    assert load_snapshot(tls_deployment) == snapshot_before
    trust(tls_deployment, pce, pce_ca=device_ca, panos_ca=device_ca)
    tls_deployment.invoke({})
    assert_exact(tls_deployment, panos, desired_of(pce), {}, now=clock.now)


@pytest.fixture
def planted_bundle(device_ca, other_ca) -> Iterator[str]:
    """Another CA's certificate, planted in the shared temp directory under the name that older
    versions gave the device CA's bundle file."""
    pem = device_ca.cert_pem.bytes()
    path = os.path.join(tempfile.gettempdir(), f"dagsync-ca-{hashlib.sha256(pem).hexdigest()[:16]}.pem")
    with open(path, "wb") as handle:
        handle.write(other_ca.cert_pem.bytes())
    yield path
    os.remove(path)


def test_a_ca_bundle_planted_in_the_shared_temp_directory_is_never_trusted(
    tls_deployment, pce, panos, device_ca, other_ca, planted_bundle, clock
):
    trust(tls_deployment, pce, pce_ca=device_ca, panos_ca=device_ca)
    summary = tls_deployment.invoke({})
    assert summary["status"] == "ok"
    with open(planted_bundle, "rb") as handle:
        assert handle.read() == other_ca.cert_pem.bytes()
    assert_exact(tls_deployment, panos, desired_of(pce), {}, now=clock.now)
