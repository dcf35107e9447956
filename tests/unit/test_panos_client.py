"""PanosClient against the PAN-OS emulator over loopback HTTP."""

import contextlib
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import trustme

from dagsync.core.device import DagDefinition, RegisteredIp
from dagsync.core.errors import PanosAuthError, PanosError
from dagsync.net.credentials import PanosCredentials
from dagsync.net.retry import RetryPolicy
from dagsync.panos.client import InFlightLimit, KeyCache, PanosClient
from emulators.panos import PanosEmulator
from emulators.server import App, LoopbackServer, Request, Response
from tests.support.clock import FakeClock

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
    keys: KeyCache = field(default_factory=KeyCache)  # one process's generated keys

    def client(self, credentials: PanosCredentials | None = None, **kwargs: Any) -> PanosClient:
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeout", 30.0)  # loopback; a loaded CI machine can stall for seconds
        kwargs.setdefault("key_cache", self.keys)
        kwargs.setdefault("sleep", self.sleeps.append)
        return PanosClient(self.url, credentials or PanosCredentials(api_key=API_KEY), **kwargs)


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
    assert "max registered-ip for the platform reached" in outcome.failed["10.0.0.3"]
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


# -- batches -------------------------------------------------------------------------------------


def test_batches_hold_at_most_the_batch_size_in_ip_order(firewall: Rig) -> None:
    entries = {f"10.0.0.{n}": tags("illumio.a") for n in range(1, 8)}
    batches = list(firewall.client(batch_size=3).batches(entries))
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [ip for batch in batches for ip in batch] == sorted(entries)


def test_batch_size_must_be_positive(firewall: Rig) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        firewall.client(batch_size=0)


# -- entries that fail alone ------------------------------------------------------------------------


def test_entries_the_client_cannot_build_fail_alone_and_are_never_sent(firewall: Rig) -> None:
    odd = {
        "2001:db8::1%x": tags("illumio.a"),
        "10.0.0.1" * 40: tags("illumio.a"),
        "not an address": tags("illumio.a"),
        "10.0.0.3": tags("illumio.a\x00"),
    }
    outcome = firewall.client().register({**odd, "10.0.0.2": tags("illumio.a")})
    assert set(outcome.failed) == set(odd)
    assert all("not sent" in reason for reason in outcome.failed.values())
    assert (outcome.sent, outcome.unsent, outcome.done) == (1, 4, 1)
    assert [logged.uid_ips for logged in firewall.emulator.calls("user-id")] == [{"register": ("10.0.0.2",)}]
    assert firewall.emulator.table() == {"10.0.0.2": tags("illumio.a")}


def test_a_batch_of_unbuildable_entries_sends_no_request(firewall: Rig) -> None:
    client = firewall.client()
    outcome = client.unregister({"fe80::1%eth0": tags("illumio.a")})
    assert (list(outcome.failed), outcome.done, client.api_calls) == (["fe80::1%eth0"], 0, 0)


def test_an_ipv4_mapped_ipv6_address_is_sent_as_given(firewall: Rig) -> None:
    outcome = firewall.client().register({"::ffff:10.0.0.1": tags("illumio.a")})
    assert (dict(outcome.failed), firewall.emulator.calls("user-id")[0].uid_ips) == (
        {},
        {"register": ("::ffff:10.0.0.1",)},
    )


class InvalidIpDevice:
    """A device that refuses one address per entry with the message PAN-OS gives a bad IP."""

    def __init__(self, refused_ip: str) -> None:
        self.refused_ip = refused_ip

    def handle(self, request: Request) -> Response:
        cmd = parse_qs(request.body.decode())["cmd"][0]
        if self.refused_ip not in cmd:
            return Response(200, b'<response status="success"><result/></response>')
        entry = ET.Element("entry", {"ip": self.refused_ip, "message": "Invalid IP address"})
        root = ET.Element("response", {"status": "error"})
        payload = ET.SubElement(ET.SubElement(ET.SubElement(root, "msg"), "line"), "uid-response")
        ET.SubElement(ET.SubElement(payload, "payload"), "register").append(entry)
        return Response(200, ET.tostring(root))


def test_an_address_the_device_calls_invalid_fails_that_ip_alone(serve: Callable[[App], str]) -> None:
    client = PanosClient(serve(InvalidIpDevice("10.0.0.9")), PanosCredentials(api_key=API_KEY), retry=FAST)
    outcome = client.register({"10.0.0.1": tags("illumio.a"), "10.0.0.9": tags("illumio.a")})
    assert (dict(outcome.failed), outcome.done) == ({"10.0.0.9": "Invalid IP address"}, 1)


def test_batches_keep_unbuildable_entries_for_register_to_refuse(firewall: Rig) -> None:
    entries = {"10.0.0.1": tags("illumio.a"), "2001:db8::1%x": tags("illumio.a")}
    assert [sorted(batch) for batch in firewall.client().batches(entries)] == [sorted(entries)]


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


# -- threads and the in-flight limit --------------------------------------------------------------


def test_twenty_clients_on_twenty_threads_never_exceed_the_in_flight_limit(
    serve: Callable[[App], str],
) -> None:
    serials = [f"0079510000002{n:02d}" for n in range(20)]
    emulator = PanosEmulator("panorama", api_keys=(API_KEY,), firewalls=serials, delay=0.02)
    rig = Rig(emulator, serve(emulator))
    limit = InFlightLimit(3)

    def sync(serial: str) -> int:
        client = rig.client(target_serial=serial, in_flight=limit)
        for n in range(3):
            client.register({f"10.0.{n}.1": tags("illumio.a")})
        return client.api_calls

    with ThreadPoolExecutor(max_workers=len(serials)) as pool:
        calls = list(pool.map(sync, serials))
    assert calls == [3] * 20
    assert emulator.max_concurrency == 3
    assert all(
        emulator.table(serial=serial) == {f"10.0.{n}.1": tags("illumio.a") for n in range(3)}
        for serial in serials
    )


def test_one_address_shares_its_slots_however_the_url_spells_it() -> None:
    limit = InFlightLimit(1)
    with limit.slot("https://Panorama.example.com/"):
        assert not _slot_free_within(limit, "https://panorama.example.com:443", seconds=0.2)


def test_different_addresses_do_not_share_slots() -> None:
    limit = InFlightLimit(1)
    with limit.slot("https://fw1.example.com"):
        assert _slot_free_within(limit, "https://fw2.example.com", seconds=5)


def _slot_free_within(limit: InFlightLimit, address: str, *, seconds: float) -> bool:
    """Whether another thread gets a slot on `address` within `seconds`."""
    got = threading.Event()
    release = threading.Event()

    def take() -> None:
        with limit.slot(address):
            got.set()
            release.wait(10)

    worker = threading.Thread(target=take, daemon=True)
    worker.start()
    free = got.wait(seconds)
    release.set()
    return free


def test_the_in_flight_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimit(0)


def test_a_client_shared_by_threads_counts_every_call(firewall: Rig) -> None:
    client = firewall.client()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: client.registered_ips(ip=f"10.0.0.{n}"), range(40)))
    assert client.api_calls == 40
    assert client.bytes_sent == sum(logged.body_bytes for logged in firewall.emulator.requests)


# -- authentication --------------------------------------------------------------------------------


def test_keygen_happens_once_for_two_clients_of_one_device(panorama: Rig) -> None:
    password_client(panorama, target_serial=FIREWALL_A).register({"10.0.0.1": tags("illumio.a")})
    password_client(panorama, target_serial=FIREWALL_B).register({"10.0.0.1": tags("illumio.a")})
    assert panorama.keys.keygens == 1
    assert panorama.emulator.keygen_count == 1


def test_clients_with_separate_key_caches_each_generate_a_key(panorama: Rig) -> None:
    password_client(panorama, key_cache=KeyCache()).registered_ips()
    password_client(panorama, key_cache=KeyCache()).registered_ips()
    assert panorama.emulator.keygen_count == 2


def test_threads_sharing_a_key_cache_generate_one_key(panorama: Rig) -> None:
    serials = [FIREWALL_A, FIREWALL_B] * 4
    with ThreadPoolExecutor(max_workers=len(serials)) as pool:
        list(
            pool.map(lambda serial: password_client(panorama, target_serial=serial).registered_ips(), serials)
        )
    assert (panorama.keys.keygens, panorama.emulator.keygen_count) == (1, 1)


def test_clearing_the_key_cache_forgets_keys_and_the_count(firewall: Rig) -> None:
    password_client(firewall).registered_ips()
    firewall.keys.clear()
    assert firewall.keys.keygens == 0
    password_client(firewall).registered_ips()
    assert firewall.emulator.keygen_count == 2


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
    assert firewall.keys.keygens == 1
    assert password_client(firewall).registered_ips() == {}
    assert firewall.keys.keygens == 2


def test_a_403_is_not_retried_and_does_not_keygen_in_a_loop(firewall: Rig) -> None:
    client = password_client(firewall)
    client.registered_ips()
    firewall.emulator.revoke_keys_after(0)
    with pytest.raises(PanosAuthError):
        client.register({"10.0.0.1": tags("illumio.a")})
    assert len(firewall.emulator.calls("user-id")) == 1
    assert firewall.keys.keygens == 1
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


# -- status="unauth" --------------------------------------------------------------------------------

UNAUTH = {
    "16": b'<response status="unauth" code="16"><msg><line>Unauthorized request</line></msg></response>',
    "22": b'<response status="unauth" code="22"><msg><line>Session timed out</line></msg></response>',
}


@dataclass
class UnauthGate:
    """The emulator behind a gate that answers one `status="unauth"` form for chosen requests:
    those of `type` (any when None) carrying one of the first `keys` distinct keys (any when None)."""

    emulator: PanosEmulator
    code: str
    type: str | None = None
    keys: int | None = None
    seen: list[str] = field(default_factory=list)
    answered: int = 0

    def handle(self, request: Request) -> Response:
        key = request.headers.get("x-pan-key")
        kind = parse_qs(request.body.decode()).get("type", [""])[0]
        if key and key not in self.seen:
            self.seen.append(key)
        gated = self.keys is None or (key in self.seen[: self.keys])
        if key and gated and self.type in (None, kind):
            self.answered += 1
            return Response(200, UNAUTH[self.code])
        return self.emulator.handle(request)


@pytest.fixture
def rotating_firewall(serve: Callable[[App], str]) -> Rig:
    """A firewall whose keygen hands out a new key each time, as with a key lifetime set."""
    emulator = PanosEmulator(api_keys=(API_KEY,), users={USER: PASSWORD}, keygen_rotates=True)
    return Rig(emulator, serve(emulator))


def gate(rig: Rig, serve: Callable[[App], str], code: str, **options: Any) -> UnauthGate:
    gated = UnauthGate(rig.emulator, code, **options)
    rig.url = serve(gated)
    return gated


@pytest.mark.parametrize(
    ("kind", "permission"), [("user-id", "User-ID Agent"), ("op", "Operational Requests")]
)
def test_unauth_code_16_names_the_permission_to_check(
    firewall: Rig, serve: Callable[[App], str], kind: str, permission: str
) -> None:
    gate(firewall, serve, "16", type=kind)
    client = firewall.client()
    with pytest.raises(PanosAuthError, match=f"grant it the XML API permission '{permission}'") as caught:
        client.register({"10.0.0.1": tags("illumio.a")}) if kind == "user-id" else client.registered_ips()
    assert (caught.value.code, caught.value.retryable, client.api_calls) == ("16", False, 1)


def test_unauth_code_16_drops_a_generated_key_without_generating_another(
    rotating_firewall: Rig, serve: Callable[[App], str]
) -> None:
    gate(rotating_firewall, serve, "16", type="user-id")
    client = password_client(rotating_firewall)
    with pytest.raises(PanosAuthError, match="User-ID Agent"):
        client.register({"10.0.0.1": tags("illumio.a")})
    assert rotating_firewall.keys.keygens == 1
    password_client(rotating_firewall).registered_ips()
    assert rotating_firewall.keys.keygens == 2  # the refused key was dropped


def test_unauth_code_22_with_a_generated_key_generates_a_new_one_and_succeeds(
    rotating_firewall: Rig, serve: Callable[[App], str]
) -> None:
    gated = gate(rotating_firewall, serve, "22", keys=1)
    client = password_client(rotating_firewall)
    assert client.register({"10.0.0.1": tags("illumio.a")}).done == 1
    assert (rotating_firewall.keys.keygens, gated.answered, len(gated.seen)) == (2, 1, 2)
    assert rotating_firewall.emulator.table() == {"10.0.0.1": tags("illumio.a")}


def test_unauth_code_22_generates_a_new_key_only_once(
    rotating_firewall: Rig, serve: Callable[[App], str]
) -> None:
    gated = gate(rotating_firewall, serve, "22")
    client = password_client(rotating_firewall)
    with pytest.raises(PanosAuthError, match="a freshly generated API key was refused too"):
        client.registered_ips()
    with pytest.raises(PanosAuthError):
        client.registered_ips()
    assert rotating_firewall.keys.keygens == 3  # one, one renewal, then the next request's key
    assert gated.answered == 3
    assert rotating_firewall.sleeps == []


def test_unauth_code_22_with_a_configured_key_points_at_the_secret(
    firewall: Rig, serve: Callable[[App], str]
) -> None:
    gate(firewall, serve, "22")
    client = firewall.client()
    with pytest.raises(PanosAuthError, match="configured API key has expired") as caught:
        client.registered_ips()
    assert (caught.value.retryable, client.api_calls, firewall.keys.keygens) == (False, 1, 0)


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


def test_retries_stop_before_a_wait_that_would_end_past_the_deadline(firewall: Rig) -> None:
    firewall.emulator.fail_next(5, status=503)
    clock = FakeClock(100.0)
    policy = RetryPolicy(attempts=5, base_delay=1.0, jitter=lambda: 1.0)
    client = firewall.client(retry=policy, sleep=clock.advance, clock=clock, deadline=102.5)
    with pytest.raises(PanosError, match="the run's time is nearly out") as caught:
        client.registered_ips()
    assert caught.value.retryable is True
    assert client.api_calls == 2  # waits of 1 s, then 2 s would end at 103 s, past the deadline


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


def test_a_password_echoed_in_any_encoding_is_masked(serve: Callable[[App], str], firewall: Rig) -> None:
    echoing = serve(EchoingDevice())
    client = PanosClient(
        echoing, PanosCredentials(username=USER, password=PASSWORD), retry=FAST, key_cache=KeyCache()
    )
    with pytest.raises(PanosError) as caught:
        client.registered_ips()  # the keygen body, password URL-encoded, comes back in the error
    assert "s3cr3t" not in str(caught.value)
    assert "***" in str(caught.value)


# -- redirects, oversized and unexpected answers --------------------------------------------------


@dataclass
class Elsewhere:
    """Another host: it must never see a request, let alone a key or a password."""

    requests: list[Request] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        self.requests.append(request)
        return Response(200, b'<response status="success"><result><key>stolen</key></result></response>')


@dataclass
class Redirecting:
    status: int
    location: str

    def handle(self, request: Request) -> Response:
        return Response(self.status, b"", headers={"Location": self.location})


@pytest.fixture
def elsewhere() -> Iterator[tuple[Elsewhere, str]]:
    app = Elsewhere()
    with LoopbackServer(app) as server:
        yield app, f"{server.url}/api/"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_is_an_error_naming_the_location(
    serve: Callable[[App], str], elsewhere: tuple[Elsewhere, str], status: int
) -> None:
    other, location = elsewhere
    client = PanosClient(serve(Redirecting(status, location)), PanosCredentials(api_key=API_KEY), retry=FAST)
    with pytest.raises(PanosError, match=f"HTTP {status} redirecting to {location}") as caught:
        client.register({"10.0.0.1": tags("illumio.a")})
    assert (caught.value.retryable, client.api_calls, other.requests) == (False, 1, [])


def test_a_redirected_keygen_never_posts_the_password_elsewhere(
    serve: Callable[[App], str], elsewhere: tuple[Elsewhere, str]
) -> None:
    other, location = elsewhere
    client = PanosClient(
        serve(Redirecting(307, location)), PanosCredentials(username=USER, password=PASSWORD), retry=FAST
    )
    with pytest.raises(PanosError, match="redirects are never followed"):
        client.registered_ips()
    assert other.requests == []


def test_an_answer_over_the_size_limit_is_refused_and_not_retried(firewall: Rig) -> None:
    for n in range(200):
        firewall.emulator.register_foreign(f"10.1.0.{n}", ["illumio.a"])
    client = firewall.client(max_response_bytes=4096)
    with pytest.raises(PanosError, match="over the 4096-byte limit") as caught:
        client.registered_ips()
    assert (caught.value.retryable, client.api_calls) == (False, 1)


class EndlessAnswer(BaseHTTPRequestHandler):
    """Answers without a Content-Length and keeps sending, as a runaway or hostile peer would."""

    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(b"<response status='success'><result>")
            for _ in range(4096):
                self.wfile.write(b"<entry>" + b"x" * 1024 + b"</entry>")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_an_answer_without_a_length_is_read_only_up_to_the_limit() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EndlessAnswer)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        client = PanosClient(url, PanosCredentials(api_key=API_KEY), retry=FAST, max_response_bytes=65536)
        with pytest.raises(PanosError, match=r"abandoned after \d+ bytes: it is larger than 64 KiB"):
            client.registered_ips()
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("error", [RecursionError, requests.exceptions.TooManyRedirects, KeyError])
def test_an_unexpected_failure_below_the_client_is_a_panos_error(
    firewall: Rig, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise error("deep inside")

    monkeypatch.setattr(requests.Session, "post", fail)
    with pytest.raises(PanosError, match=f"PAN-OS at {firewall.url} failed") as caught:
        firewall.client().registered_ips()
    assert caught.value.retryable is False


# -- dynamic address group definitions --------------------------------------------------------------

SHARED = "/config/shared/address-group"
DEVICE_GROUPS = "/config/devices/entry[@name='localhost.localdomain']/device-group/entry/address-group"
VSYS2 = "/config/devices/entry[@name='localhost.localdomain']/vsys/entry[@name='vsys2']/address-group"


def dynamic(name: str, expression: str, loc: str | None = None) -> str:
    where = f" loc='{loc}'" if loc else ""
    return f"<entry name='{name}'{where}><dynamic><filter>{expression}</filter></dynamic></entry>"


@dataclass
class ConfigDevice:
    """Answers `type=config&action=show` by xpath, code 7 for an xpath it holds nothing at."""

    groups: dict[str, str]
    refuse: bytes | None = None
    refuse_status: int = 200
    seen: list[dict[str, str]] = field(default_factory=list)

    def handle(self, request: Request) -> Response:
        params = {name: values[0] for name, values in parse_qs(request.body.decode()).items()}
        self.seen.append(params)
        if self.refuse is not None:
            return Response(self.refuse_status, self.refuse)
        if params.get("type") != "config" or params.get("action") != "show":
            return Response(200, b'<response status="error" code="17"><msg>unexpected</msg></response>')
        held = self.groups.get(params["xpath"])
        if held is None:
            return Response(200, b'<response status="error" code="7"><msg>No such node</msg></response>')
        body = f'<response status="success"><result><address-group>{held}</address-group></result></response>'
        return Response(200, body.encode())


def config_client(serve: Callable[[App], str], device: ConfigDevice, **options: Any) -> PanosClient:
    return PanosClient(serve(device), PanosCredentials(api_key=API_KEY), retry=FAST, **options)


def test_panorama_groups_are_read_from_shared_and_every_device_group(serve: Callable[[App], str]) -> None:
    device = ConfigDevice(
        {
            SHARED: dynamic("quarantine", "'illumio.env.Quarantine'"),
            DEVICE_GROUPS: dynamic("web", "'illumio.role.Web'", loc="dg-east"),
        }
    )
    client = config_client(serve, device, target_serial=FIREWALL_A, vsys="vsys1")
    assert client.address_groups() == [
        DagDefinition("quarantine", "'illumio.env.Quarantine'", "shared"),
        DagDefinition("web", "'illumio.role.Web'", "device-group:dg-east"),
    ]
    assert [params["xpath"] for params in device.seen] == [SHARED, DEVICE_GROUPS]


def test_definitions_are_read_from_panorama_itself_in_the_running_configuration(
    serve: Callable[[App], str],
) -> None:
    device = ConfigDevice({SHARED: ""})
    config_client(serve, device, target_serial=FIREWALL_A, vsys="vsys1").address_groups()
    assert all(params["action"] == "show" for params in device.seen)
    assert all("target" not in params and "vsys" not in params for params in device.seen)


def test_firewall_groups_are_read_from_shared_and_the_vsys(serve: Callable[[App], str]) -> None:
    device = ConfigDevice({SHARED: "", VSYS2: dynamic("db", "'illumio.role.Db' or 'illumio.role.Cache'")})
    groups = config_client(serve, device, vsys="vsys2").address_groups()
    assert groups == [DagDefinition("db", "'illumio.role.Db' or 'illumio.role.Cache'", "vsys:vsys2")]
    assert [params["xpath"] for params in device.seen] == [SHARED, DEVICE_GROUPS, VSYS2]


def test_a_location_with_nothing_defined_is_no_groups(serve: Callable[[App], str]) -> None:
    assert config_client(serve, ConfigDevice({})).address_groups() == []


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            403,
            b"<response status = 'error' code = '403'><result><msg>Invalid Credential</msg></result></response>",
        ),
        (200, UNAUTH["16"]),
    ],
    ids=["http-403", "unauth-16"],
)
def test_a_refused_configuration_read_names_the_permission_to_check(
    serve: Callable[[App], str], status: int, body: bytes
) -> None:
    device = ConfigDevice({}, refuse=body, refuse_status=status)
    with pytest.raises(PanosAuthError, match=r"XML API permission 'Configuration \(read\)'"):
        config_client(serve, device).address_groups()
    assert len(device.seen) == 1


def test_an_error_reading_shared_groups_is_not_taken_for_no_groups(serve: Callable[[App], str]) -> None:
    device = ConfigDevice({}, refuse=b'<response status="error" code="6"><msg>Bad Xpath</msg></response>')
    with pytest.raises(PanosError, match="code 6"):
        config_client(serve, device).address_groups()
