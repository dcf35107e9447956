"""Targeted recompute from the projection (docs/snapshot.md#projection): the same pairs as a
full map of the changed estate, computed from the changed workloads alone."""

import ipaddress
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from dagsync.core.mapping import Claim, Mapper, MappingResult, MappingRules
from dagsync.core.models import Workload
from dagsync.core.recompute import Claims, recompute


def updated(projection: Claims, changed: Mapping[str, Claim | None]) -> dict[str, Claim]:
    """The projection once `changed` is written to it."""
    kept = {href: claim for href, claim in projection.items() if href not in changed}
    return kept | {claim.href: claim for claim in changed.values() if claim is not None}


RULES = MappingRules(prefix="illumio.", label_keys=None)
SKIP = MappingRules(prefix="illumio.", label_keys=None, shared_ip_policy="skip")


def workload(name: str, addresses: tuple[str, ...], **labels: str) -> Workload:
    return Workload(f"/w/{name}", tuple(labels.items()), addresses)


def full_map(estate: list[Workload], rules: MappingRules = RULES) -> MappingResult:
    return Mapper(rules).map(estate)


WEB = workload("web", ("10.0.0.1",), app="Web", env="Prod")
DB = workload("db", ("10.0.0.2", "10.0.0.9"), app="Db", env="Prod")
DB_TWIN = workload("db2", ("10.0.0.3", "10.0.0.9"), app="Db", env="Prod")
ESTATE = [WEB, DB, DB_TWIN]


def test_a_relabel_changes_only_that_workloads_pairs():
    stored = full_map(ESTATE).projection
    update = recompute(stored, {WEB.href: workload("web", ("10.0.0.1",), app="Web", env="Quarantine")}, RULES)
    assert update.register == {"10.0.0.1": frozenset({"illumio.env.Quarantine"})}
    assert update.unregister == {"10.0.0.1": frozenset({"illumio.env.Prod"})}
    assert update.ips == frozenset({"10.0.0.1"})
    assert set(update.changed) == {WEB.href}


def test_an_ip_move_recomputes_the_old_and_the_new_address():
    stored = full_map(ESTATE).projection
    update = recompute(stored, {WEB.href: workload("web", ("10.0.0.7",), app="Web", env="Prod")}, RULES)
    assert update.ips == frozenset({"10.0.0.1", "10.0.0.7"})
    assert update.register == {"10.0.0.7": frozenset({"illumio.app.Web", "illumio.env.Prod"})}
    assert update.unregister == {"10.0.0.1": frozenset({"illumio.app.Web", "illumio.env.Prod"})}


def test_a_new_workload_is_added_to_the_projection():
    new = workload("api", ("10.0.0.4",), app="Api")
    update = recompute(full_map(ESTATE).projection, {new.href: new}, RULES)
    assert update.register == {"10.0.0.4": frozenset({"illumio.app.Api"})}
    assert update.changed == {new.href: (new.href, ("10.0.0.4",), frozenset({"illumio.app.Api"}))}


def test_a_deleted_workload_leaves_the_projection_and_its_pairs_go():
    update = recompute(full_map(ESTATE).projection, {WEB.href: None}, RULES)
    assert update.unregister == {"10.0.0.1": frozenset({"illumio.app.Web", "illumio.env.Prod"})}
    assert update.changed == {WEB.href: None}


def test_a_workload_gone_that_was_never_projected_changes_nothing():
    update = recompute(full_map(ESTATE).projection, {"/w/unknown": None}, RULES)
    assert (update.changed, update.ips, update.register, update.unregister) == ({}, frozenset(), {}, {})


def test_an_unchanged_workload_changes_nothing():
    update = recompute(full_map(ESTATE).projection, {DB.href: DB}, RULES)
    assert (update.changed, update.register, update.unregister) == ({}, {}, {})


def test_the_order_of_a_workloads_interfaces_is_no_change():
    reordered = workload("db", ("10.0.0.9", "10.0.0.2"), app="Db", env="Prod")
    assert recompute(full_map(ESTATE).projection, {DB.href: reordered}, RULES).changed == {}


def test_relabelling_one_workload_of_a_shared_ip_keeps_the_union_exact():
    stored = full_map(ESTATE).projection
    update = recompute(
        stored, {DB.href: workload("db", ("10.0.0.2", "10.0.0.9"), app="Db", env="Dev")}, RULES
    )
    assert update.after["10.0.0.9"] == frozenset({"illumio.app.Db", "illumio.env.Prod", "illumio.env.Dev"})
    assert update.register == {
        "10.0.0.2": frozenset({"illumio.env.Dev"}),
        "10.0.0.9": frozenset({"illumio.env.Dev"}),
    }
    assert update.unregister == {"10.0.0.2": frozenset({"illumio.env.Prod"})}
    assert (update.conflicts_before, update.conflicts_after) == (0, 1)
    assert any("10.0.0.9 is claimed by 2 workloads" in w for w in update.warnings)


def test_relabelling_one_workload_of_a_shared_ip_under_skip_removes_the_ip():
    stored = full_map(ESTATE, SKIP).projection
    update = recompute(stored, {DB.href: workload("db", ("10.0.0.2", "10.0.0.9"), app="Db", env="Dev")}, SKIP)
    assert "10.0.0.9" not in update.after
    assert update.unregister["10.0.0.9"] == frozenset({"illumio.app.Db", "illumio.env.Prod"})


def test_a_workload_leaving_a_shared_ip_ends_the_conflict():
    estate = [*ESTATE[:2], workload("db2", ("10.0.0.3", "10.0.0.9"), app="Other")]
    stored = full_map(estate).projection
    update = recompute(stored, {"/w/db2": workload("db2", ("10.0.0.3",), app="Other")}, RULES)
    assert update.after["10.0.0.9"] == frozenset({"illumio.app.Db", "illumio.env.Prod"})
    assert (update.conflicts_before, update.conflicts_after) == (1, 0)
    assert update.warnings == []


def test_a_fetched_workloads_odd_address_is_reported():
    update = recompute({}, {"/w/x": workload("x", ("2001:db8::1%x", "10.0.0.5"), app="X")}, RULES)
    assert update.register == {"10.0.0.5": frozenset({"illumio.app.X"})}
    assert ["/w/x" in w and "zone" in w for w in update.warnings] == [True]


def test_updated_projection_holds_the_changes():
    stored = full_map(ESTATE).projection
    new = workload("api", ("10.0.0.4",), app="Api")
    update = recompute(stored, {WEB.href: None, new.href: new}, RULES)
    assert updated(stored, update.changed) == full_map([DB, DB_TWIN, new]).projection


# -- a targeted recompute equals a full re-map of the changed estate -----------------------------

POOL = [f"10.0.0.{n}" for n in range(1, 9)] + ["fd00::1", "172.17.0.1", "fe80::1", "192.0.2.1", "bad%x"]
label_sets = st.dictionaries(
    st.sampled_from(["app", "env", "role"] + [f"k{n:02d}" for n in range(40)]),
    st.sampled_from(["A", "B"]),
    max_size=5,
)
wide_labels = st.just({f"k{n:02d}": "W" for n in range(40)})
shapes = st.tuples(
    st.lists(st.sampled_from(POOL), max_size=4), st.one_of(label_sets, label_sets, wide_labels)
)
names = st.sampled_from([f"n{n}" for n in range(10)])
estates = st.dictionaries(names, shapes, max_size=8)
changes = st.dictionaries(names, st.one_of(st.none(), shapes), max_size=4)
rule_sets = st.builds(
    MappingRules,
    prefix=st.just("illumio."),
    label_keys=st.sampled_from([None, frozenset({"app", "env"})]),
    include_ipv6=st.booleans(),
    exclude=st.sampled_from([(), (ipaddress.ip_network("172.17.0.0/16"),)]),
    shared_ip_policy=st.sampled_from(["union", "skip"]),
    reserved_ips=st.just(frozenset({"192.0.2.1"})),
)


def build(name: str, shape) -> Workload:
    addresses, labels = shape
    return workload(name, tuple(addresses), **labels)


def comparable(projection) -> dict:
    return {href: (frozenset(claim.ips), claim.tags) for href, claim in projection.items()}


@settings(max_examples=300, deadline=None)
@given(estates, changes, rule_sets)
def test_targeted_recompute_equals_a_full_map_of_the_changed_estate(estate, change, rules) -> None:
    before_estate = {name: build(name, shape) for name, shape in estate.items()}
    after_estate = dict(before_estate)
    fetched: dict[str, Workload | None] = {}
    for name, shape in change.items():
        fetched[f"/w/{name}"] = None if shape is None else build(name, shape)
        if shape is None:
            after_estate.pop(name, None)
        else:
            after_estate[name] = build(name, shape)
    full_before = full_map(list(before_estate.values()), rules)
    full_after = full_map(list(after_estate.values()), rules)

    update = recompute(full_before.projection, fetched, rules)

    assert comparable(updated(full_before.projection, update.changed)) == comparable(full_after.projection)
    for ip in set(full_before.desired) | set(full_after.desired) | update.ips:
        if ip in update.ips:
            assert update.before.get(ip) == full_before.desired.get(ip)
            assert update.after.get(ip) == full_after.desired.get(ip)
        else:
            assert full_before.desired.get(ip) == full_after.desired.get(ip)
    conflicts = full_before.shared_ip_conflicts - update.conflicts_before + update.conflicts_after
    assert conflicts == full_after.shared_ip_conflicts
