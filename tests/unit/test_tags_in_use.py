"""The tags in use: which of our tags some DAG on the target names (docs/dag-awareness.md#tags-in-use)."""

from dataclasses import dataclass, field

import pytest

from dagsync.core.errors import PanosAuthError, PanosError, SnapshotError
from dagsync.sync.tags_in_use import (
    PERMISSION_HINT,
    TagsInUse,
    TagsInUseAnswer,
    TagsInUsePolicy,
    TagsInUseUnavailable,
    UnreadableFilter,
    definitions_digest,
    tags_named,
)
from tests.support.clock import FakeClock

PREFIX = "illumio."
TARGET = "panorama.example.com/007051000123456/vsys1"
PROD, WEB, QUARANTINE = "illumio.env.Production", "illumio.app.Web", "illumio.env.Quarantine"


@dataclass(frozen=True)
class Dag:
    name: str
    filter: str
    location: str = "shared"


@dataclass(frozen=True)
class Cached:
    tags: frozenset[str]
    digest: str
    read_at: float


class Device:
    """A device whose address groups are whatever the test defines, or a refusal."""

    def __init__(self, *dags: Dag) -> None:
        self.dags = list(dags)
        self.error: PanosError | None = None
        self.reads = 0

    def address_groups(self) -> list[Dag]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return list(self.dags)


@dataclass
class Cache:
    """The table's `tags-in-use` items, with every write kept."""

    items: dict[str, Cached] = field(default_factory=dict)
    writes: list[Cached] = field(default_factory=list)
    refuse_writes: bool = False

    def load_tags_in_use(self, target: str) -> Cached | None:
        return self.items.get(target)

    def save_tags_in_use(self, target: str, tags: frozenset[str], digest: str, read_at: float) -> None:
        if self.refuse_writes:
            raise SnapshotError("DynamoDB refused the write (ProvisionedThroughputExceededException)")
        self.items[target] = Cached(tags, digest, read_at)
        self.writes.append(self.items[target])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache() -> Cache:
    return Cache()


@pytest.fixture
def tags_in_use(cache: Cache) -> TagsInUse:
    return TagsInUse(cache, prefix=PREFIX)


def refused() -> PanosAuthError:
    return PanosAuthError(
        "read address groups (shared) failed: HTTP 403 (the admin role lacks XML API permission "
        "'Configuration (read)')",
        code="403",
    )


# -- which tags a filter names ---------------------------------------------------------------


def test_every_quoted_tag_of_a_filter_is_named():
    assert tags_named(f"'{PROD}' and '{WEB}'", PREFIX) == {PROD, WEB}


def test_tags_outside_our_prefix_are_not_ours_to_register():
    assert tags_named(f"'{PROD}' and 'aws.region.us-east-1'", PREFIX) == {PROD}


def test_a_quoted_tag_with_spaces_is_one_tag():
    assert tags_named("'illumio.app.Order Entry' or 'illumio.loc.New  York'", PREFIX) == {
        "illumio.app.Order Entry",
        "illumio.loc.New  York",
    }


def test_nested_parentheses_and_or_name_every_operand():
    text = f"(('{PROD}' or '{QUARANTINE}') and ('{WEB}' or ('illumio.app.Api')))"
    assert tags_named(text, PREFIX) == {PROD, QUARANTINE, WEB, "illumio.app.Api"}


def test_a_filter_that_cannot_be_evaluated_still_names_its_quoted_tags():
    # `not` may not be in the grammar: the DAG still needs both tags registered to mean anything.
    assert tags_named(f"'{PROD}' and not '{QUARANTINE}'", PREFIX) == {PROD, QUARANTINE}


def test_an_unquoted_word_with_our_prefix_counts_as_a_tag():
    assert tags_named(f"{PROD} and ({WEB})", PREFIX) == {PROD, WEB}


def test_a_double_quoted_tag_counts_as_a_tag():
    assert tags_named(f"\"illumio.app.Order Entry\" or '{WEB}'", PREFIX) == {"illumio.app.Order Entry", WEB}


def test_a_quote_that_never_closes_makes_the_filter_unreadable():
    with pytest.raises(UnreadableFilter, match="does not close"):
        tags_named(f"'{PROD}' and '{WEB}", PREFIX)


def test_the_digest_does_not_depend_on_the_order_definitions_come_in():
    first, second = Dag("web", f"'{WEB}'"), Dag("prod", f"'{PROD}'", "device-group:DG1")
    assert definitions_digest([first, second], PREFIX) == definitions_digest([second, first], PREFIX)


def test_the_digest_changes_with_a_filter():
    before = definitions_digest([Dag("web", f"'{WEB}'")], PREFIX)
    assert definitions_digest([Dag("web", f"'{WEB}' or '{PROD}'")], PREFIX) != before


# -- reading, caching and refreshing ---------------------------------------------------------


def synced(tags_in_use: TagsInUse, device: Device, now: float, *, reconcile: bool = False) -> TagsInUseAnswer:
    """A read followed by a sync of the whole estate that applied it, as target_sync does."""
    answer = tags_in_use.for_target(TARGET, device, reconcile=reconcile, now=now)
    if answer.changed:
        assert tags_in_use.record(TARGET, answer) is None
    return answer


def test_tags_named_by_any_dag_in_any_location_are_in_use(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"), Dag("web", f"'{WEB}'", "device-group:DG1"))
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert answer.tags == {PROD, WEB}
    assert answer.fresh
    assert answer.warning is None


def test_a_device_with_no_dag_naming_our_tags_has_none_in_use(tags_in_use, clock):
    answer = tags_in_use.for_target(TARGET, Device(Dag("aws", "'aws.tag'")), reconcile=False, now=clock())
    assert answer.tags == frozenset()
    assert answer.fresh


def test_a_first_read_is_a_change_from_no_set_synced(tags_in_use, clock):
    answer = tags_in_use.for_target(TARGET, Device(Dag("prod", f"'{PROD}'")), reconcile=False, now=clock())
    assert (answer.changed, answer.synced) == (True, None)
    assert answer.change() == "no set of tags in use has been synced to this target yet"


def test_a_new_set_is_not_cached_until_a_sync_applies_it(tags_in_use, cache, clock):
    tags_in_use.for_target(TARGET, Device(Dag("prod", f"'{PROD}'")), reconcile=False, now=clock())
    assert cache.writes == []


def test_a_recorded_set_is_cached_with_its_digest_and_the_time_it_was_read(tags_in_use, cache, clock):
    dags = (Dag("prod", f"'{PROD}'"),)
    answer = tags_in_use.for_target(TARGET, Device(*dags), reconcile=False, now=clock())
    clock.advance(30)  # the sync that applied it
    tags_in_use.record(TARGET, answer)
    assert cache.writes == [Cached(frozenset({PROD}), definitions_digest(dags, PREFIX), clock() - 30)]


def test_a_set_read_less_than_five_minutes_ago_is_used_without_reading(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    clock.advance(299)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert device.reads == 1
    assert answer.tags == {PROD}
    assert answer.fresh
    assert not answer.changed


def test_a_set_five_minutes_old_is_read_again(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    clock.advance(300)
    tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert device.reads == 2


def test_the_refresh_interval_is_the_policy_s(cache, clock):
    tags_in_use = TagsInUse(cache, prefix=PREFIX, policy=TagsInUsePolicy(refresh_seconds=60))
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    clock.advance(60)
    tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert device.reads == 2


def test_unchanged_definitions_read_again_only_refresh_the_read_time(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    for _ in range(10):  # a run a minute for ten minutes
        clock.advance(60)
        assert not tags_in_use.for_target(TARGET, device, reconcile=False, now=clock()).changed
    assert [write.read_at - cache.writes[0].read_at for write in cache.writes] == [0, 300, 600]
    assert {write.digest for write in cache.writes} == {cache.writes[0].digest}


def test_definitions_changed_without_changing_the_tags_are_recorded_at_once(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.dags = [Dag("production", f"'{PROD}'")]  # renamed: the same tag in use
    clock.advance(300)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert not answer.changed
    assert cache.writes[-1] == Cached(frozenset({PROD}), answer.digest, clock())


def test_a_reconcile_reads_even_a_fresh_set(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    clock.advance(10)
    tags_in_use.for_target(TARGET, device, reconcile=True, now=clock())
    assert device.reads == 2


def test_a_reconcile_that_finds_the_same_definitions_writes_nothing(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    clock.advance(10)
    tags_in_use.for_target(TARGET, device, reconcile=True, now=clock())
    assert len(cache.writes) == 1


def test_a_reconcile_that_finds_changed_definitions_leaves_them_to_the_sync(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.dags.append(Dag("web", f"'{WEB}'"))
    clock.advance(10)
    answer = tags_in_use.for_target(TARGET, device, reconcile=True, now=clock())
    assert (answer.tags, answer.synced) == ({PROD, WEB}, {PROD})
    assert len(cache.writes) == 1


def test_a_dag_added_on_the_device_brings_its_tags_in_at_the_next_read(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.dags.append(Dag("quarantine", f"'{QUARANTINE}'"))
    clock.advance(300)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert (answer.tags, answer.changed) == ({PROD, QUARANTINE}, True)
    assert answer.change() == "the DAGs on the device now name other tags (1 in use added, 0 removed)"


def test_a_dag_removed_from_the_device_takes_its_tags_out_at_the_next_read(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"), Dag("web", f"'{WEB}'"))
    synced(tags_in_use, device, clock())
    device.dags.pop()
    clock.advance(300)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert (answer.tags, answer.changed) == ({PROD}, True)
    assert answer.change() == "the DAGs on the device now name other tags (0 in use added, 1 removed)"


def test_a_change_not_applied_is_found_again_at_the_next_read(tags_in_use, clock):
    # A quiet feed run, a dry run, a blocked or failed sync: nothing recorded the new set.
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.dags.append(Dag("web", f"'{WEB}'"))
    clock.advance(300)
    tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    clock.advance(60)
    assert tags_in_use.for_target(TARGET, device, reconcile=False, now=clock()).changed


def test_the_answer_carries_the_definitions_only_when_it_read_them(tags_in_use, clock):
    dag = Dag("prod", f"'{PROD}'")
    device = Device(dag)
    assert synced(tags_in_use, device, clock()).definitions == (dag,)
    assert tags_in_use.for_target(TARGET, device, reconcile=False, now=clock()).definitions is None


def test_each_target_has_its_own_set(tags_in_use, cache, clock):
    for target, dag in (("fw1", Dag("prod", f"'{PROD}'")), ("fw2", Dag("web", f"'{WEB}'"))):
        tags_in_use.record(target, tags_in_use.for_target(target, Device(dag), reconcile=False, now=clock()))
    assert cache.items["fw1"].tags == {PROD}
    assert cache.items["fw2"].tags == {WEB}


def test_a_set_cut_under_another_prefix_is_read_again_and_counts_as_none_synced(cache, clock):
    cache.items[TARGET] = Cached(frozenset({"acme.env.Production"}), "digest", clock())
    device = Device(Dag("prod", f"'{PROD}'"))
    answer = TagsInUse(cache, prefix=PREFIX).for_target(TARGET, device, reconcile=False, now=clock())
    assert device.reads == 1
    assert (answer.tags, answer.synced) == ({PROD}, None)


def test_a_read_time_ahead_of_the_clock_is_not_trusted(tags_in_use, cache, clock):
    cache.items[TARGET] = Cached(frozenset({WEB}), "digest", clock() + 3600)
    device = Device(Dag("prod", f"'{PROD}'"))
    assert tags_in_use.for_target(TARGET, device, reconcile=False, now=clock()).tags == {PROD}


def test_a_record_that_fails_warns_and_the_next_run_reads_again(tags_in_use, cache, clock):
    cache.refuse_writes = True
    answer = tags_in_use.for_target(TARGET, Device(Dag("prod", f"'{PROD}'")), reconcile=False, now=clock())
    warning = tags_in_use.record(TARGET, answer)
    assert warning is not None
    assert "could not be cached" in warning


def test_a_refresh_that_cannot_be_cached_warns_and_the_set_read_is_used(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    cache.refuse_writes = True
    clock.advance(300)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert answer.tags == {PROD}
    assert answer.fresh
    assert answer.warning is not None
    assert "could not be cached" in answer.warning


# -- definitions that cannot be read ---------------------------------------------------------


def test_a_refused_read_keeps_the_last_set_and_warns_naming_the_permission(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.error = refused()
    clock.advance(600)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert answer.tags == {PROD}
    assert not answer.fresh
    assert not answer.changed
    assert answer.read_at == clock() - 600
    assert answer.warning is not None
    assert TARGET in answer.warning
    assert PERMISSION_HINT in answer.warning
    assert "10 minutes ago" in answer.warning


def test_a_refused_read_writes_nothing(tags_in_use, cache, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.error = refused()
    clock.advance(600)
    tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert len(cache.writes) == 1


def test_a_refused_read_on_a_reconcile_keeps_the_last_set(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.error = refused()
    answer = tags_in_use.for_target(TARGET, device, reconcile=True, now=clock())
    assert answer.tags == {PROD}
    assert not answer.fresh


def test_an_unreadable_filter_keeps_the_last_set_and_warns_naming_the_dag(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    synced(tags_in_use, device, clock())
    device.dags.append(Dag("broken", f"'{WEB}", "device-group:DG1"))
    clock.advance(300)
    answer = tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert answer.tags == {PROD}
    assert not answer.fresh
    assert answer.warning is not None
    assert "'broken' (device-group:DG1)" in answer.warning
    assert PERMISSION_HINT not in answer.warning


def test_a_refused_read_with_no_set_ever_read_fails_the_target_naming_the_permission(tags_in_use, clock):
    device = Device(Dag("prod", f"'{PROD}'"))
    device.error = refused()
    with pytest.raises(TagsInUseUnavailable) as failure:
        tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert str(failure.value).startswith(
        f"TAGS_IN_USE_ONLY is on but the DAG definitions of {TARGET} could not be read (read address groups"
    )
    assert str(failure.value).endswith(f"); {PERMISSION_HINT}")


def test_a_device_that_does_not_answer_with_no_set_ever_read_fails_without_blaming_permissions(
    tags_in_use, clock
):
    device = Device()
    device.error = PanosError("connection to PAN-OS at https://panorama.example.com failed (timed out)")
    with pytest.raises(TagsInUseUnavailable, match="timed out") as failure:
        tags_in_use.for_target(TARGET, device, reconcile=False, now=clock())
    assert PERMISSION_HINT not in str(failure.value)


def test_an_unreadable_filter_with_no_set_ever_read_fails_the_target(tags_in_use, clock):
    with pytest.raises(TagsInUseUnavailable, match="'broken'"):
        tags_in_use.for_target(TARGET, Device(Dag("broken", "'illumio.env")), reconcile=False, now=clock())
