"""The PAN-OS emulator is as slow and as limited as a real device: ingest time, one management
plane per device, requests in flight, and what it received.

Device time goes through an injected sleep (a Gate or the fake clock), so nothing sleeps for real.
"""

import pytest
import requests

from emulators.panos import IngestCost, PanosEmulator
from tests.support.clock import FakeClock
from tests.support.panos import (
    KEY,
    SHOW_ALL,
    Gate,
    in_threads,
    join,
    listed_ips,
    parse,
    serve,
    uid_message,
)

FW1, FW2 = "007951000000011", "007951000000012"


def ips(count: int, *, subnet: int = 0) -> dict[str, list[str]]:
    return {f"10.{subnet}.{n // 256}.{n % 256}": ["illumio.a"] for n in range(count)}


def register_cmd(entries: dict[str, list[str]]) -> dict[str, str]:
    return {"type": "user-id", "cmd": uid_message("register", entries)}


# -- device time -----------------------------------------------------------------------------------


def test_ingest_is_free_unless_a_time_scale_is_set() -> None:
    gate = Gate(hold=False)
    with serve(PanosEmulator(api_keys=(KEY,), sleep=gate)) as api:
        api.register(ips(100))
    assert gate.asked == []


def test_registrations_cost_the_measured_293_a_second_times_the_scale() -> None:
    gate = Gate(hold=False)
    with serve(PanosEmulator(api_keys=(KEY,), time_scale=0.01, sleep=gate)) as api:
        api.register(ips(1000))
    assert gate.asked == [pytest.approx(3.41 * 0.01)]


def test_unregistrations_cost_the_measured_2274_a_second_times_the_scale() -> None:
    gate = Gate(hold=False)
    emulator = PanosEmulator(api_keys=(KEY,), time_scale=0.01, sleep=gate)
    for ip in ips(1000):
        emulator.register_foreign(ip, ["illumio.a"])
    with serve(emulator) as api:
        api.unregister(ips(1000))
    assert gate.asked == [pytest.approx(0.44 * 0.01)]


def test_a_message_with_both_verbs_costs_both() -> None:
    gate = Gate(hold=False)
    emulator = PanosEmulator(
        api_keys=(KEY,), ingest_cost=IngestCost(register=2.0, unregister=1.0), time_scale=1.0, sleep=gate
    )
    emulator.register_foreign("10.9.0.1", ["illumio.a"])
    cmd = (
        "<uid-message><type>update</type><payload>"
        '<register><entry ip="10.0.0.1"><tag><member>illumio.a</member></tag></entry>'
        '<entry ip="10.0.0.2"><tag><member>illumio.a</member></tag></entry></register>'
        '<unregister><entry ip="10.9.0.1"><tag><member>illumio.a</member></tag></entry></unregister>'
        "</payload></uid-message>"
    )
    with serve(emulator) as api:
        api.post({"type": "user-id", "cmd": cmd})
    assert gate.asked == [5.0]


def test_device_time_moves_a_fake_clock_and_shows_in_the_log() -> None:
    clock = FakeClock()
    emulator = PanosEmulator(api_keys=(KEY,), time_scale=1.0, sleep=clock.advance, now=clock)
    with serve(emulator) as api:
        api.register(ips(1000))
    logged = emulator.calls("user-id")[0]
    assert logged.finished - logged.started == pytest.approx(3.41)


def test_a_slow_firewall_behind_panorama_is_charged_n_times_the_cost() -> None:
    gate = Gate(hold=False)
    emulator = PanosEmulator("panorama", api_keys=(KEY,), firewalls=(FW1, FW2), time_scale=1.0, sleep=gate)
    emulator.set_slowness(10, serial=FW1)
    with serve(emulator) as api:
        api.register(ips(100), target=FW1)
        api.register(ips(100), target=FW2)
    assert gate.asked == [pytest.approx(3.41), pytest.approx(0.341)]


def test_slowness_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        PanosEmulator().set_slowness(0)


# -- one management plane per device ---------------------------------------------------------------


def test_one_device_does_one_request_at_a_time() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), time_scale=1.0, sleep=gate)
    with serve(emulator) as api:
        threads = in_threads(
            lambda: api.post_alone(register_cmd(ips(10, subnet=1))),
            lambda: api.post_alone(register_cmd(ips(10, subnet=2))),
        )
        assert gate.wait_for_waits(1)
        assert emulator.wait_for_in_flight(2)
        waiting = len(gate.asked), len(emulator.table())
        gate.open()
        join(threads)
    assert waiting == (1, 10)
    assert len(emulator.table()) == 20


def test_firewalls_behind_one_panorama_ingest_at_the_same_time() -> None:
    gate = Gate()
    emulator = PanosEmulator("panorama", api_keys=(KEY,), firewalls=(FW1, FW2), time_scale=1.0, sleep=gate)
    with serve(emulator) as api:
        threads = in_threads(
            lambda: api.post_alone({**register_cmd(ips(10)), "target": FW1}),
            lambda: api.post_alone({**register_cmd(ips(10)), "target": FW2}),
        )
        both_inside = gate.wait_for_waits(2)
        gate.open()
        join(threads)
    assert both_inside


def test_a_read_waits_behind_ingest_on_the_same_device() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), time_scale=1.0, sleep=gate)
    listings: list[list[str]] = []
    with serve(emulator) as api:
        threads = in_threads(lambda: api.post_alone(register_cmd(ips(3))))
        assert gate.wait_for_waits(1)
        threads += in_threads(
            lambda: listings.append(listed_ips(parse(api.post_alone({"type": "op", "cmd": SHOW_ALL}))))
        )
        assert emulator.wait_for_in_flight(2)
        answered_early = list(listings)
        gate.open()
        join(threads)
    assert (answered_early, [len(listing) for listing in listings]) == ([], [3])


# -- requests in flight ----------------------------------------------------------------------------


def test_requests_in_flight_are_counted_now_and_at_their_peak() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), delay=1.0, sleep=gate)
    with serve(emulator) as api:
        threads = in_threads(*(lambda: api.post_alone({"type": "op", "cmd": SHOW_ALL}) for _ in range(3)))
        assert emulator.wait_for_in_flight(3)
        during = emulator.in_flight
        gate.open()
        join(threads)
    assert (during, emulator.in_flight, emulator.max_concurrency) == (3, 0, 3)


def test_requests_through_panorama_count_against_its_one_address() -> None:
    gate = Gate()
    emulator = PanosEmulator("panorama", api_keys=(KEY,), firewalls=(FW1, FW2), time_scale=1.0, sleep=gate)
    with serve(emulator) as api:
        threads = in_threads(
            lambda: api.post_alone({**register_cmd(ips(10)), "target": FW1}),
            lambda: api.post_alone({**register_cmd(ips(10)), "target": FW2}),
            lambda: api.post_alone(register_cmd(ips(10))),
        )
        assert gate.wait_for_waits(3)
        during = emulator.in_flight
        gate.open()
        join(threads)
    assert during == 3


def test_clearing_the_log_restarts_the_peak() -> None:
    emulator = PanosEmulator(api_keys=(KEY,))
    with serve(emulator) as api:
        api.post({"type": "op", "cmd": SHOW_ALL})
    emulator.clear_log()
    assert (emulator.max_concurrency, emulator.requests) == (0, [])


def test_more_requests_in_flight_than_the_limit_get_a_plain_http_503() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), delay=1.0, sleep=gate, concurrency_limit=5)
    with serve(emulator) as api:
        threads = in_threads(*(lambda: api.post_alone({"type": "op", "cmd": SHOW_ALL}) for _ in range(5)))
        assert emulator.wait_for_in_flight(5)
        sixth = api.post_alone({"type": "op", "cmd": SHOW_ALL})
        gate.open()
        join(threads)
    assert (sixth.status_code, sixth.headers["Content-Type"]) == (503, "text/html")
    assert not sixth.content.startswith(b"<response")


def test_a_request_refused_over_the_limit_is_logged_and_not_applied() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), delay=1.0, sleep=gate, concurrency_limit=1)
    with serve(emulator) as api:
        threads = in_threads(lambda: api.post_alone({"type": "op", "cmd": SHOW_ALL}))
        assert emulator.wait_for_in_flight(1)
        api.post_alone(register_cmd({"10.0.0.1": ["illumio.a"]}))
        gate.open()
        join(threads)
    refused = emulator.calls("user-id")
    assert ([(r.status, r.fault) for r in refused], emulator.table()) == ([(503, "over-limit")], {})


def test_requests_within_the_limit_all_succeed() -> None:
    gate = Gate()
    emulator = PanosEmulator(api_keys=(KEY,), delay=1.0, sleep=gate, concurrency_limit=5)
    statuses: list[int] = []
    with serve(emulator) as api:
        threads = in_threads(
            *(
                lambda: statuses.append(api.post_alone({"type": "op", "cmd": SHOW_ALL}).status_code)
                for _ in range(5)
            )
        )
        assert emulator.wait_for_in_flight(5)
        gate.open()
        join(threads)
    assert statuses == [200] * 5


# -- what the device received ----------------------------------------------------------------------


def test_entries_received_counts_each_ip_per_verb() -> None:
    emulator = PanosEmulator(api_keys=(KEY,))
    with serve(emulator) as api:
        api.register({"10.0.0.1": ["illumio.a"], "10.0.0.2": ["illumio.a"]})
        api.register({"10.0.0.1": ["illumio.b"]})
        api.unregister({"10.0.0.2": ["illumio.a"]})
    assert (emulator.entries_received("register"), emulator.entries_received("unregister")) == (
        {"10.0.0.1": 2, "10.0.0.2": 1},
        {"10.0.0.2": 1},
    )


def test_entries_received_are_counted_per_firewall_behind_panorama() -> None:
    emulator = PanosEmulator("panorama", api_keys=(KEY,), firewalls=(FW1, FW2))
    with serve(emulator) as api:
        api.register({"10.0.0.1": ["illumio.a"]}, target=FW1)
        api.register({"10.0.0.1": ["illumio.a"]}, target=FW2)
        api.register({"10.0.0.1": ["illumio.a"]})
    counts = [emulator.entries_received("register", serial=serial) for serial in (FW1, FW2, emulator.serial)]
    assert counts == [{"10.0.0.1": 1}] * 3
    assert emulator.entries_received("register") == {"10.0.0.1": 3}


def test_entries_refused_before_the_device_read_them_are_not_received() -> None:
    emulator = PanosEmulator(api_keys=(KEY,))
    emulator.fail_next(type="user-id")
    with serve(emulator) as api:
        api.register({"10.0.0.1": ["illumio.a"]})
        api.post(register_cmd({"10.0.0.1": ["illumio.a"]}), key="wrong")
    assert emulator.entries_received("register") == {}


def test_entries_applied_before_a_lost_answer_are_received() -> None:
    emulator = PanosEmulator(api_keys=(KEY,))
    emulator.reset_next(after_apply=True)
    with serve(emulator) as api:
        with pytest.raises(requests.ConnectionError):
            api.user_id("register", {"10.0.0.1": ["illumio.a"]})
        api.register({"10.0.0.1": ["illumio.a"]})
    assert emulator.entries_received("register") == {"10.0.0.1": 2}
