"""PanosClient against the PAN-OS emulator over loopback HTTP."""

import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import trustme

from dagsync import panos
from dagsync.errors import PanosAuthError, PanosError, SecretError
from dagsync.panos import PanosClient, PanosCredentials, RegisteredIp
from dagsync.retry import RetryPolicy
from emulators.panos import PanosEmulator
from emulators.server import App, LoopbackServer, Request, Response

API_KEY = "LUFRPT-static-key-0123456789abcdef"
USER = "dagsync-api"
PASSWORD = "s3cr3t&p@ss=word"
FIREWALL_A = "007951000000101"
FIREWALL_B = "007951000000102"
FAST = RetryPolicy(attempts=3, base_delay=0)


@dataclass
class Rig:
    """One emulated device served on loopback, and a factory for clients pointed at it."""

    emulator: PanosEmulator
    url: str
    sleeps: list[float] = field(default_factory=list)

    def client(self, credentials: PanosCredentials | None = None, **kwargs: Any) -> PanosClient:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeout", 5.0)
        return PanosClient(
            self.url,
            credentials or PanosCredentials(api_key=API_KEY),
            sleep=self.sleeps.append,
            **kwargs,
        )


@pytest.fixture(autouse=True)
def _cold_start() -> Iterator[None]:
    panos.clear_key_cache()
    yield
    panos.clear_key_cache()


class Switchboard:
    """Forwards to the current test's emulator, so one loopback server serves the whole module."""

    def __init__(self) -> None:
        self.app: App | None = None

    def handle(self, request: Request) -> Response:
        assert self.app is not None
        return self.app.handle(request)


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[Switchboard, str]]:
    switchboard = Switchboard()
    with LoopbackServer(switchboard) as server:
        yield switchboard, server.url


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_server(certificate_authority: trustme.CA) -> Iterator[tuple[Switchboard, str]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    switchboard = Switchboard()
    with LoopbackServer(switchboard, ssl_context=context) as server:
        yield switchboard, server.url


@pytest.fixture
def serve(http_server: tuple[Switchboard, str]) -> Callable[[App], str]:
    """Point the module's server at an app for this test; returns the base URL."""
    switchboard, url = http_server

    def attach(app: App) -> str:
        switchboard.app = app
        return url

    return attach


@pytest.fixture
def firewall(serve: Callable[[App], str]) -> Rig:
    emulator = PanosEmulator("firewall", vsys=("vsys1", "vsys2"), api_keys=(API_KEY,), users={USER: PASSWORD})
    return Rig(emulator, serve(emulator))


@pytest.fixture
def silent_firewall(serve: Callable[[App], str]) -> Rig:
    emulator = PanosEmulator("firewall", api_keys=(API_KEY,), duplicate_mode="silent")
    return Rig(emulator, serve(emulator))


@pytest.fixture
def panorama(serve: Callable[[App], str]) -> Rig:
    emulator = PanosEmulator(
        "panorama", api_keys=(API_KEY,), users={USER: PASSWORD}, firewalls=(FIREWALL_A, FIREWALL_B)
    )
    return Rig(emulator, serve(emulator))


def password_client(rig: Rig, **kwargs: Any) -> PanosClient:
    return rig.client(PanosCredentials(username=USER, password=PASSWORD), **kwargs)


def tags(*names: str) -> frozenset[str]:
    return frozenset(names)


def start_points(rig: Rig) -> list[int]:
    points = []
    for logged in rig.emulator.calls("op"):
        query = ET.fromstring(logged.params["cmd"]).find("object/registered-ip")  # noqa: S314
        assert query is not None
        points.append(int(query.findtext("start-point") or "0"))
    return points


# -- register / unregister results ----------------------------------------------------------------


def test_register_of_new_ips_reports_no_failures(firewall: Rig) -> None:
    outcome = firewall.client().register(
        {"10.0.0.1": tags("illumio.app.Web"), "10.0.0.2": tags("illumio.env.Prod")}
    )
    assert (outcome.sent, dict(outcome.failed), outcome.benign) == (2, {}, 0)
    assert firewall.emulator.table() == {
        "10.0.0.1": tags("illumio.app.Web"),
        "10.0.0.2": tags("illumio.env.Prod"),
    }


def test_registrations_are_persistent(firewall: Rig) -> None:
    firewall.client().register({"10.0.0.1": tags("illumio.app.Web")})
    record = firewall.emulator.record("10.0.0.1")
    assert record is not None
    assert record.persistent is True


def test_duplicate_register_counts_as_done_when_the_device_reports_an_entry_error(firewall: Rig) -> None:
    client = firewall.client()
    client.register({"10.0.0.1": tags("illumio.app.Web")})
    outcome = client.register({"10.0.0.1": tags("illumio.app.Web")})
    assert (dict(outcome.failed), outcome.benign, outcome.done) == ({}, 1, 1)


def test_duplicate_register_counts_as_done_when_the_device_stays_silent(silent_firewall: Rig) -> None:
    client = silent_firewall.client()
    client.register({"10.0.0.1": tags("illumio.app.Web")})
    outcome = client.register({"10.0.0.1": tags("illumio.app.Web")})
    assert (dict(outcome.failed), outcome.benign, outcome.done) == ({}, 0, 1)


def test_unregister_of_a_missing_ip_counts_as_done(firewall: Rig) -> None:
    outcome = firewall.client().unregister({"10.0.0.9": tags("illumio.app.Web")})
    assert (dict(outcome.failed), outcome.benign) == ({}, 1)


def test_unregister_of_a_missing_ip_on_a_silent_device_is_done(silent_firewall: Rig) -> None:
    outcome = silent_firewall.client().unregister({"10.0.0.9": tags("illumio.app.Web")})
    assert (dict(outcome.failed), outcome.benign, outcome.done) == ({}, 0, 1)


def test_unregister_removes_only_the_listed_tags(firewall: Rig) -> None:
    firewall.emulator.register_foreign("10.0.0.1", ["other.tool.Tag", "illumio.app.Web"])
    firewall.client().unregister({"10.0.0.1": tags("illumio.app.Web")})
    assert firewall.emulator.table() == {"10.0.0.1": tags("other.tool.Tag")}


def test_table_full_entry_is_reported_failed_while_others_are_applied(firewall: Rig) -> None:
    firewall.emulator.register_foreign("10.0.0.1", ["other.tool.Tag"])
    firewall.emulator.set_capacity(2)
    outcome = firewall.client().register({"10.0.0.2": tags("illumio.a"), "10.0.0.3": tags("illumio.a")})
    assert list(outcome.failed) == ["10.0.0.3"]
    assert "max registered-ip reached" in outcome.failed["10.0.0.3"]
    assert "10.0.0.2" in firewall.emulator.table()


def test_entry_rejected_for_a_long_tag_is_reported_failed(firewall: Rig) -> None:
    outcome = firewall.client().register(
        {"10.0.0.1": tags("illumio." + "x" * 130), "10.0.0.2": tags("illumio.a")}
    )
    assert list(outcome.failed) == ["10.0.0.1"]
    assert outcome.done == 1


def test_one_register_call_sends_exactly_one_message(firewall: Rig) -> None:
    firewall.client().register({f"10.0.0.{n}": tags("illumio.a") for n in range(1, 51)})
    calls = firewall.emulator.calls("user-id")
    assert len(calls) == 1
    assert calls[0].uid == {"register": 50}


# -- request shape ---------------------------------------------------------------------------------


def test_key_travels_in_the_x_pan_key_header_only(firewall: Rig) -> None:
    firewall.client().register({"10.0.0.1": tags("illumio.a")})
    logged = firewall.emulator.calls("user-id")[0]
    assert logged.method == "POST"
    assert logged.key_carriers == ("header",)
    assert "key" not in logged.params
    assert API_KEY not in logged.params["cmd"]


def test_vsys_is_passed_and_selects_the_table(firewall: Rig) -> None:
    firewall.client(vsys="vsys2").register({"10.0.0.1": tags("illumio.a")})
    assert firewall.emulator.calls("user-id")[0].vsys == "vsys2"
    assert firewall.emulator.table(vsys="vsys2") == {"10.0.0.1": tags("illumio.a")}
    assert firewall.emulator.table(vsys="vsys1") == {}


def test_counters_track_calls_and_body_bytes(firewall: Rig) -> None:
    client = firewall.client()
    client.register({"10.0.0.1": tags("illumio.a")})
    client.registered_ips()
    assert client.api_calls == 2
    assert client.bytes_sent == sum(logged.body_bytes for logged in firewall.emulator.requests)


# -- Panorama --------------------------------------------------------------------------------------


def test_target_routes_to_the_child_firewall(panorama: Rig) -> None:
    panorama.client(target_serial=FIREWALL_A).register({"10.0.0.1": tags("illumio.a")})
    assert panorama.emulator.calls("user-id")[0].target == FIREWALL_A
    assert panorama.emulator.table(serial=FIREWALL_A) == {"10.0.0.1": tags("illumio.a")}
    assert panorama.emulator.table(serial=FIREWALL_B) == {}
    assert panorama.emulator.table() == {}


def test_without_target_panorama_keeps_its_own_table(panorama: Rig) -> None:
    panorama.client().register({"10.0.0.1": tags("illumio.a")})
    assert panorama.emulator.table() == {"10.0.0.1": tags("illumio.a")}
    assert panorama.emulator.table(serial=FIREWALL_A) == {}


def test_target_and_vsys_are_both_passed_through(panorama: Rig) -> None:
    panorama.client(target_serial=FIREWALL_A, vsys="vsys1").registered_ips()
    logged = panorama.emulator.calls("op")[0]
    assert (logged.target, logged.vsys) == (FIREWALL_A, "vsys1")


def test_unknown_serial_is_a_non_retryable_error_naming_it(panorama: Rig) -> None:
    with pytest.raises(PanosError, match="007951000000999") as caught:
        panorama.client(target_serial="007951000000999").register({"10.0.0.1": tags("illumio.a")})
    assert (caught.value.code, caught.value.retryable) == ("17", False)
    assert len(panorama.emulator.calls("user-id")) == 1


def test_unreachable_child_firewall_fails_that_target_only(panorama: Rig) -> None:
    panorama.emulator.set_unreachable(FIREWALL_A)
    with pytest.raises(PanosError, match="not connected"):
        panorama.client(target_serial=FIREWALL_A).register({"10.0.0.1": tags("illumio.a")})
    assert panorama.client(target_serial=FIREWALL_B).register({"10.0.0.1": tags("illumio.a")}).done == 1


def test_child_firewall_that_hangs_times_out_and_is_retried(panorama: Rig) -> None:
    panorama.emulator.set_unreachable(FIREWALL_A, "timeout", delay=1.0)
    client = panorama.client(
        target_serial=FIREWALL_A, timeout=0.2, retry=RetryPolicy(attempts=2, base_delay=0)
    )
    with pytest.raises(PanosError, match="did not answer") as caught:
        client.register({"10.0.0.1": tags("illumio.a")})
    assert caught.value.retryable is True
    assert client.api_calls == 2


# -- authentication --------------------------------------------------------------------------------


def test_keygen_happens_once_for_two_clients_of_one_device(panorama: Rig) -> None:
    password_client(panorama, target_serial=FIREWALL_A).register({"10.0.0.1": tags("illumio.a")})
    password_client(panorama, target_serial=FIREWALL_B).register({"10.0.0.1": tags("illumio.a")})
    assert panos.keygen_calls == 1
    assert panorama.emulator.keygen_count == 1


def test_keygen_sends_credentials_in_the_form_body(firewall: Rig) -> None:
    password_client(firewall).registered_ips()
    keygen = firewall.emulator.calls("keygen")[0]
    assert (keygen.method, keygen.params["user"], keygen.params["password"]) == ("POST", USER, PASSWORD)


def test_generated_key_is_used_in_the_header(firewall: Rig) -> None:
    password_client(firewall).registered_ips()
    op = firewall.emulator.calls("op")[0]
    assert op.key_carrier == "header"
    assert "password" not in op.params


def test_a_403_drops_the_generated_key_so_the_next_run_keygens_again(firewall: Rig) -> None:
    password_client(firewall).registered_ips()
    firewall.emulator.revoke_keys()
    with pytest.raises(PanosAuthError):
        password_client(firewall).registered_ips()
    assert panos.keygen_calls == 1
    assert password_client(firewall).registered_ips() == {}
    assert panos.keygen_calls == 2


def test_a_403_is_not_retried_and_does_not_keygen_in_a_loop(firewall: Rig) -> None:
    client = password_client(firewall)
    client.registered_ips()
    firewall.emulator.revoke_keys_after(0)
    with pytest.raises(PanosAuthError):
        client.register({"10.0.0.1": tags("illumio.a")})
    assert len(firewall.emulator.calls("user-id")) == 1
    assert panos.keygen_calls == 1
    assert firewall.sleeps == []


def test_a_revoked_static_key_is_an_auth_error_pointing_at_the_secret(firewall: Rig) -> None:
    firewall.emulator.revoke_keys_after(1)
    client = firewall.client()
    client.register({"10.0.0.1": tags("illumio.a")})
    with pytest.raises(PanosAuthError, match="api_key in the PAN-OS secret") as caught:
        client.register({"10.0.0.2": tags("illumio.a")})
    assert caught.value.retryable is False
    assert len(firewall.emulator.calls("user-id")) == 2


def test_keygen_with_a_wrong_password_is_an_auth_error(firewall: Rig) -> None:
    client = firewall.client(PanosCredentials(username=USER, password="wrong-password"))
    with pytest.raises(PanosAuthError, match="username/password") as caught:
        client.registered_ips()
    assert "wrong-password" not in str(caught.value)
    assert firewall.emulator.calls("op") == []


# -- retries ---------------------------------------------------------------------------------------


def test_code_22_is_retried_then_succeeds(firewall: Rig) -> None:
    firewall.emulator.error_code_next(2, code="22")
    client = firewall.client()
    assert client.register({"10.0.0.1": tags("illumio.a")}).done == 1
    assert client.api_calls == 3
    assert len(firewall.sleeps) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_http_5xx_is_retried_then_succeeds(firewall: Rig, status: int) -> None:
    firewall.emulator.fail_next(1, status=status)
    client = firewall.client()
    assert client.register({"10.0.0.1": tags("illumio.a")}).done == 1
    assert client.api_calls == 2


def test_retries_are_spaced_by_the_retry_policy(firewall: Rig) -> None:
    firewall.emulator.fail_next(2)
    policy = RetryPolicy(attempts=3, base_delay=1.0, jitter=lambda: 1.0)
    firewall.client(retry=policy).registered_ips()
    assert firewall.sleeps == [1.0, 2.0]


def test_exhausted_retries_raise_a_retryable_panos_error(firewall: Rig) -> None:
    firewall.emulator.fail_next(5, status=503)
    client = firewall.client()
    with pytest.raises(PanosError, match="after 3 attempts") as caught:
        client.register({"10.0.0.1": tags("illumio.a")})
    assert caught.value.retryable is True
    assert client.api_calls == 3


def test_connection_reset_is_retried(firewall: Rig) -> None:
    firewall.emulator.reset_next(1, type="user-id")
    client = firewall.client()
    assert client.register({"10.0.0.1": tags("illumio.a")}).done == 1
    assert client.api_calls == 2


def test_reset_after_the_device_applied_the_batch_converges_on_retry(firewall: Rig) -> None:
    firewall.emulator.reset_next(1, after_apply=True, type="user-id")
    outcome = firewall.client().register({"10.0.0.1": tags("illumio.a")})
    assert (dict(outcome.failed), outcome.benign) == ({}, 1)
    assert firewall.emulator.table() == {"10.0.0.1": tags("illumio.a")}


def test_not_xml_answer_is_not_retried(firewall: Rig) -> None:
    firewall.emulator.not_xml_next(1)
    client = firewall.client()
    with pytest.raises(PanosError, match="not XML") as caught:
        client.register({"10.0.0.1": tags("illumio.a")})
    assert (caught.value.retryable, client.api_calls) == (False, 1)


@pytest.mark.parametrize("variant", ["billion-laughs", "external-entity"])
def test_malicious_xml_is_refused_and_not_retried(firewall: Rig, variant: str) -> None:
    firewall.emulator.malicious_next(1, variant=variant)  # type: ignore[arg-type]
    client = firewall.client()
    with pytest.raises(PanosError, match="entities") as caught:
        client.registered_ips()
    assert (caught.value.retryable, client.api_calls) == (False, 1)


# -- reading the table -----------------------------------------------------------------------------


def test_paged_listing_of_1501_ips_takes_four_calls(firewall: Rig) -> None:
    for n in range(1501):
        firewall.emulator.register_foreign(f"10.1.{n // 256}.{n % 256}", ["illumio.a"])
    found = firewall.client().registered_ips()
    assert len(found) == 1501
    assert start_points(firewall) == [1, 501, 1001, 1501]


def test_a_full_last_page_costs_one_more_empty_call(firewall: Rig) -> None:
    for n in range(500):
        firewall.emulator.register_foreign(f"10.1.{n // 256}.{n % 256}", ["illumio.a"])
    assert len(firewall.client().registered_ips()) == 500
    assert start_points(firewall) == [1, 501]


def test_listing_reports_tags_and_persistence(firewall: Rig) -> None:
    firewall.emulator.register_foreign("10.0.0.1", ["illumio.a", "other.b"], persistent=False)
    assert firewall.client().registered_ips() == {
        "10.0.0.1": RegisteredIp(tags=tags("illumio.a", "other.b"), persistent=False)
    }


def test_listing_filtered_by_tag_is_one_call(firewall: Rig) -> None:
    firewall.emulator.register_foreign("10.0.0.1", ["illumio.a"])
    firewall.emulator.register_foreign("10.0.0.2", ["other.b"])
    assert set(firewall.client().registered_ips(tag="illumio.a")) == {"10.0.0.1"}
    assert len(firewall.emulator.calls("op")) == 1


def test_listing_filtered_by_ip_is_one_call(firewall: Rig) -> None:
    firewall.emulator.register_foreign("10.0.0.1", ["illumio.a"])
    firewall.emulator.register_foreign("10.0.0.2", ["illumio.a"])
    assert set(firewall.client().registered_ips(ip="10.0.0.2")) == {"10.0.0.2"}
    assert len(firewall.emulator.calls("op")) == 1


def test_listing_of_an_empty_table_is_empty(firewall: Rig) -> None:
    assert firewall.client().registered_ips() == {}


def test_pre_8_0_device_listing_is_a_clear_error(serve: Callable[[App], str]) -> None:
    emulator = PanosEmulator(api_keys=(API_KEY,), legacy_outfile=True)
    for n in range(501):
        emulator.register_foreign(f"10.1.{n // 256}.{n % 256}", ["illumio.a"])
    rig = Rig(emulator, serve(emulator))
    with pytest.raises(PanosError, match=r"8\.0"):
        rig.client().registered_ips()


def test_the_client_never_sends_clear(firewall: Rig) -> None:
    client = firewall.client()
    client.register({"10.0.0.1": tags("illumio.a")})
    client.unregister({"10.0.0.1": tags("illumio.a")})
    client.registered_ips()
    assert firewall.emulator.clear_sent is False


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture
def tls_firewall(https_server: tuple[Switchboard, str]) -> Rig:
    switchboard, url = https_server
    emulator = PanosEmulator(api_keys=(API_KEY,))
    switchboard.app = emulator
    return Rig(emulator, url)


def test_untrusted_certificate_is_a_clear_non_retryable_error(tls_firewall: Rig) -> None:
    client = tls_firewall.client()
    with pytest.raises(PanosError, match=r"TLS verification of PANOS_URL.*ca_bundle") as caught:
        client.registered_ips()
    assert (caught.value.retryable, client.api_calls) == (False, 1)


def test_ca_bundle_from_the_secret_is_trusted(tls_firewall: Rig, certificate_authority: trustme.CA) -> None:
    pem = certificate_authority.cert_pem.bytes().decode()
    client = tls_firewall.client(PanosCredentials(api_key=API_KEY, ca_bundle=pem))
    assert client.registered_ips() == {}


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_can_be_turned_off(tls_firewall: Rig) -> None:
    assert tls_firewall.client(verify_tls=False).registered_ips() == {}


# -- secrets never leak ----------------------------------------------------------------------------


def test_credentials_repr_hides_key_password_and_ca_bundle() -> None:
    text = repr(PanosCredentials(api_key=API_KEY, username=USER, password=PASSWORD, ca_bundle="PEM-DATA"))
    assert API_KEY not in text
    assert PASSWORD not in text
    assert "PEM-DATA" not in text


def test_client_repr_hides_credentials(firewall: Rig) -> None:
    text = repr(firewall.client(PanosCredentials(api_key=API_KEY, username=USER, password=PASSWORD)))
    assert API_KEY not in text
    assert PASSWORD not in text


def test_auth_error_text_carries_no_key(firewall: Rig) -> None:
    firewall.emulator.revoke_keys()
    with pytest.raises(PanosAuthError) as caught:
        firewall.client().registered_ips()
    assert API_KEY not in str(caught.value)


class EchoingDevice:
    """A misbehaving device that quotes the request's key and body back in its error text."""

    def handle(self, request: Request) -> Response:
        echoed = f"{request.headers.get('x-pan-key', '')} {request.body.decode()}"
        body = ET.Element("response", {"status": "error", "code": "17"})
        ET.SubElement(ET.SubElement(body, "msg"), "line").text = echoed
        return Response(200, ET.tostring(body))


def test_key_and_password_echoed_by_a_device_are_masked_in_errors(serve: Callable[[App], str]) -> None:
    client = PanosClient(
        serve(EchoingDevice()), PanosCredentials(api_key=API_KEY, password=PASSWORD), retry=FAST
    )
    with pytest.raises(PanosError) as caught:
        client.registered_ips()
    assert API_KEY not in str(caught.value)
    assert "***" in str(caught.value)


# -- credentials from the secret -------------------------------------------------------------------


def test_secret_with_an_api_key() -> None:
    credentials = PanosCredentials.from_secret({"api_key": API_KEY, "ca_bundle": "PEM"}, "panos/prod")
    assert (credentials.api_key, credentials.ca_bundle, credentials.username) == (API_KEY, "PEM", None)


def test_secret_with_username_and_password() -> None:
    credentials = PanosCredentials.from_secret({"username": USER, "password": PASSWORD}, "panos/prod")
    assert (credentials.api_key, credentials.username, credentials.password) == (None, USER, PASSWORD)


def test_secret_without_credentials_names_the_secret_and_fields() -> None:
    with pytest.raises(SecretError, match=r"panos/prod.*api_key.*username.*password"):
        PanosCredentials.from_secret({"ca_bundle": "PEM"}, "panos/prod")


def test_secret_with_username_only_names_the_missing_password() -> None:
    with pytest.raises(SecretError, match="'password' is missing"):
        PanosCredentials.from_secret({"username": USER}, "panos/prod")


def test_secret_with_password_only_names_the_missing_username_not_the_value() -> None:
    with pytest.raises(SecretError, match="'username' is missing") as caught:
        PanosCredentials.from_secret({"password": PASSWORD}, "panos/prod")
    assert PASSWORD not in str(caught.value)


def test_secret_field_of_the_wrong_type_is_named_without_its_value() -> None:
    with pytest.raises(SecretError, match="'api_key' must be a non-empty string") as caught:
        PanosCredentials.from_secret({"api_key": 12345678}, "panos/prod")
    assert "12345678" not in str(caught.value)


def test_client_refuses_credentials_with_nothing_to_authenticate() -> None:
    with pytest.raises(ValueError, match="api_key"):
        PanosClient("https://fw.example.com", PanosCredentials(username=USER))
