"""The plan and the removal guard (docs/sync.md#plan, docs/sync.md#removal-guard)."""

from dagsync.core.diff import plan_changes, restricted, with_prefix
from dagsync.core.guard import removal_blocked

A, B = "illumio.app.A", "illumio.app.B"


def test_register_is_desired_minus_confirmed():
    plan = plan_changes({"10.0.0.1": frozenset({A, B})}, {"10.0.0.1": frozenset({A})}, {})
    assert plan.register == {"10.0.0.1": frozenset({B})}
    assert plan.unregister == {}


def test_unregister_is_previous_minus_desired():
    plan = plan_changes(
        {"10.0.0.1": frozenset({A})}, {"10.0.0.1": frozenset({A, B}), "10.0.0.2": frozenset({A})}, {}
    )
    assert plan.unregister == {"10.0.0.1": frozenset({B}), "10.0.0.2": frozenset({A})}
    assert plan.register == {}


def test_equal_states_give_an_empty_plan():
    state = {"10.0.0.1": frozenset({A})}
    assert plan_changes(state, state, {}).empty


def test_uncertain_pair_still_desired_is_registered_again():
    plan = plan_changes({"10.0.0.1": frozenset({A})}, {}, {"10.0.0.1": frozenset({A})})
    assert plan.register == {"10.0.0.1": frozenset({A})}
    assert plan.unregister == {}


def test_uncertain_pair_no_longer_desired_is_unregistered():
    plan = plan_changes({}, {}, {"10.0.0.1": frozenset({A})})
    assert plan.unregister == {"10.0.0.1": frozenset({A})}


def test_plan_lists_are_sorted_ip_tag_pairs():
    plan = plan_changes({"10.0.0.2": frozenset({B, A}), "10.0.0.1": frozenset({A})}, {}, {})
    assert plan.as_lists()["register"] == [["10.0.0.1", A], ["10.0.0.2", A], ["10.0.0.2", B]]


def test_guard_trips_above_ratio_with_enough_previous_pairs():
    previous = {f"10.0.0.{i}": frozenset({A}) for i in range(40)}
    plan = plan_changes({}, previous, {})
    assert removal_blocked(plan, 40, 0.25)


def test_guard_allows_removals_at_the_ratio():
    previous = {f"10.0.0.{i}": frozenset({A}) for i in range(40)}
    desired = {f"10.0.0.{i}": frozenset({A}) for i in range(30)}
    assert not removal_blocked(plan_changes(desired, previous, {}), 40, 0.25)


def test_guard_ignores_small_previous_states():
    previous = {f"10.0.0.{i}": frozenset({A}) for i in range(19)}
    assert not removal_blocked(plan_changes({}, previous, {}), 19, 0.25)


def test_with_prefix_keeps_only_our_tags():
    assert with_prefix(
        {"10.0.0.1": frozenset({A, "other.tag"}), "10.0.0.2": frozenset({"x"})}, "illumio."
    ) == {"10.0.0.1": frozenset({A})}


def test_restricted_keeps_only_the_given_ips():
    tag_map = {"10.0.0.1": frozenset({A}), "10.0.0.2": frozenset({B}), "10.0.0.3": frozenset()}
    assert restricted(tag_map, ["10.0.0.2", "10.0.0.3", "10.0.0.9"]) == {"10.0.0.2": frozenset({B})}
