"""The simulation's checks on hand-made runs (docs/simulation.md#checks): each catches its fault."""

from emulators.panos import LoggedRequest
from sim.invariants import (
    Convergence,
    Expectations,
    RunRecord,
    no_clear,
    no_register_and_unregister_in_one_message,
    no_secret_logged,
    no_unregister_beyond_guard,
    touched_pairs,
)

TARGET = "panorama/007951000000011"


def _request(**uid_pairs: frozenset[tuple[str, str]]) -> LoggedRequest:
    return LoggedRequest(
        method="POST",
        params={},
        key_carrier="header",
        key_carriers=("header",),
        type="user-id",
        target="007951000000011",
        vsys=None,
        body_bytes=0,
        uid={verb: len(pairs) for verb, pairs in uid_pairs.items()},
        uid_pairs=dict(uid_pairs),
    )


def _run(*requests: LoggedRequest, held: int = 0, log: str = "", forced: bool = False) -> RunRecord:
    before = {(f"10.0.0.{n}", "illumio.app.A") for n in range(held)}
    return RunRecord(
        minute=5,
        started=300.0,
        ended=310.0,
        requests={TARGET: list(requests)},
        before={TARGET: before},
        after={TARGET: before},
        after_foreign={TARGET: set()},
        log=log,
        secrets=("s3cret-device-password",),
        forced=forced,
    )


def test_a_clear_in_any_message_is_a_violation() -> None:
    request = _request()
    request.uid["clear"] = 1
    assert [v.check for v in no_clear(_run(request), Expectations())] == ["no_clear"]


def test_one_pair_registered_and_unregistered_in_one_message_is_a_violation() -> None:
    pair = frozenset({("10.0.0.1", "illumio.app.A")})
    run = _run(_request(register=pair, unregister=pair))
    assert len(no_register_and_unregister_in_one_message(run, Expectations())) == 1


def test_unregistering_more_than_the_guard_allows_in_one_run_is_a_violation() -> None:
    removed = frozenset((f"10.0.0.{n}", "illumio.app.A") for n in range(30))
    assert no_unregister_beyond_guard(_run(_request(unregister=removed), held=100), Expectations())


def test_a_forced_run_may_unregister_past_the_guard() -> None:
    removed = frozenset((f"10.0.0.{n}", "illumio.app.A") for n in range(30))
    run = _run(_request(unregister=removed), held=100, forced=True)
    assert no_unregister_beyond_guard(run, Expectations()) == []


def test_a_secret_in_the_log_is_a_violation() -> None:
    assert no_secret_logged(_run(log="key=s3cret-device-password"), Expectations())


def test_a_pair_that_differs_with_no_change_to_explain_it_is_a_violation() -> None:
    convergence = Convergence([TARGET])
    found = convergence.observe(1, 60.0, TARGET, {("10.0.0.1", "illumio.app.A")})
    assert [v.check for v in found] == ["every_pair_explained"]


def test_a_pair_that_differs_past_its_change_bound_is_a_violation_once() -> None:
    convergence = Convergence([TARGET])
    pair = ("10.0.0.1", "illumio.app.A")
    convergence.open("relabel", 0.0, {pair}, deadline=180.0)
    assert convergence.observe(1, 120.0, TARGET, {pair}) == []
    assert [v.check for v in convergence.observe(4, 240.0, TARGET, {pair})] == ["converged_within_bound"]
    assert convergence.observe(5, 300.0, TARGET, {pair}) == []


def test_a_change_converges_when_the_device_agrees_and_its_time_is_measured() -> None:
    convergence = Convergence([TARGET])
    convergence.open("relabel", 0.0, {("10.0.0.1", "illumio.app.A")}, deadline=180.0)
    convergence.observe(2, 120.0, TARGET, set())
    assert convergence.latencies == {"relabel": [2.0]}


def test_a_moved_address_may_disagree_on_every_tag_it_had_or_has() -> None:
    before = {("10.0.0.1", "illumio.app.A"), ("10.0.0.1", "illumio.loc.DC1"), ("10.0.0.2", "illumio.app.B")}
    after = {("10.0.0.1", "illumio.app.C"), ("10.0.0.1", "illumio.loc.DC1"), ("10.0.0.2", "illumio.app.B")}
    assert touched_pairs(before, after) == {
        ("10.0.0.1", "illumio.app.A"),
        ("10.0.0.1", "illumio.app.C"),
        ("10.0.0.1", "illumio.loc.DC1"),
    }
