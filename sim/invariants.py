"""What must hold after every run: a registry of named checks, and the convergence bookkeeping.

Each check reads what one run did (`RunRecord`: the device's request log, the tables before and
after, the captured log) and what the world holds, and returns its violations. Convergence is
tracked per (target, IP, tag): a change or a fault opens an entry with a deadline; the entry
closes when the device agrees with the estate; a pair that disagrees past its deadline, or with
no entry at all, is a violation.
"""

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from dagsync.core.canary import CANARY_IP
from dagsync.core.models import TagMap
from emulators.panos import LoggedRequest
from sim.world import PREFIX

Pair = tuple[str, str]  # (ip, tag)
Key = tuple[str, str, str]  # (target, ip, tag)
RUN_MINUTES = 1.0
# Minutes from a change becoming visible to the device holding it (docs/simulation.md#bounds).
TARGETED_BOUND_RUNS = 2
FULL_EXPORT_MINUTES = 60
EXPORT_BOUND_MINUTES = FULL_EXPORT_MINUTES + 2 * RUN_MINUTES
READ_BACK_SECONDS = 300.0  # the feed's read-back window (docs/change-feed.md#decision)
GUARD_RATIO = 0.25  # MAX_REMOVAL_RATIO's default
GUARD_MINIMUM = 20
DAY = 86_400.0


@dataclass
class Violation:
    check: str
    minute: int
    detail: str


@dataclass
class Entry:
    """A (target, IP, tag) the device may disagree on until `deadline` (simulated epoch seconds)."""

    change: int
    since: float
    deadline: float
    reported: bool = False


@dataclass
class Change:
    """One change to the estate, or one fault that disturbed a device, and what it moved."""

    id: int
    kind: str
    at: float
    open: int = 0
    converged: bool = False
    unavailable: bool = False  # a window of unavailability overlapped it


@dataclass
class RunRecord:
    """One run as the outside world saw it."""

    minute: int
    started: float
    ended: float
    requests: dict[str, list[LoggedRequest]]  # target -> device requests for it
    before: dict[str, set[Pair]]  # target -> our pairs on the device before the run
    after: dict[str, set[Pair]]
    after_foreign: dict[str, set[Pair]]  # target -> other tools' pairs after the run
    log: str
    secrets: tuple[str, ...]
    forced: bool = False


def ours(table: Mapping[str, frozenset[str]]) -> set[Pair]:
    """The pairs under our prefix, the canary's address left out."""
    return {
        (ip, tag) for ip, tags in table.items() if ip != CANARY_IP for tag in tags if tag.startswith(PREFIX)
    }


def foreign(table: Mapping[str, frozenset[str]]) -> set[Pair]:
    return {(ip, tag) for ip, tags in table.items() for tag in tags if not tag.startswith(PREFIX)}


def pairs_of(tag_map: TagMap) -> set[Pair]:
    return {(ip, tag) for ip, tags in tag_map.items() for tag in tags}


def touched_pairs(before: set[Pair], after: set[Pair]) -> set[Pair]:
    """Every pair, old or new, of each IP whose tags a change moved.

    A change that moves an address between workloads reaches the function as two workload
    updates, which the PCE may index minutes apart: until the second one is visible the device
    may hold neither workload's tags on that address, including the tags both share. So every
    tag of a changed IP may disagree until the change's bound, not only the tags that differ.
    """
    moved = before ^ after
    ips = {ip for ip, _ in moved}
    return moved | {pair for pair in before | after if pair[0] in ips}


class Convergence:
    """Open entries per (target, IP, tag), the changes they belong to, and the times measured."""

    def __init__(self, targets: Iterable[str]) -> None:
        self.targets = tuple(targets)
        self.entries: dict[Key, Entry] = {}
        self.changes: dict[int, Change] = {}
        self.latencies: dict[str, list[float]] = {}  # change kind -> change-to-device minutes
        self.latencies_unavailable: dict[str, list[float]] = {}
        self._next = 0

    def open(
        self,
        kind: str,
        at: float,
        moved: Iterable[Pair],
        deadline: float,
        *,
        targets: Iterable[str] | None = None,
    ) -> Change:
        """A change at `at` that moved `moved` on every target (or those given), due by `deadline`."""
        change = Change(self._next, kind, at)
        self._next += 1
        self.changes[change.id] = change
        for target in self.targets if targets is None else targets:
            for ip, tag in moved:
                key = (target, ip, tag)
                previous = self.entries.get(key)
                if previous is not None:
                    self._close(previous, None)  # superseded: the later change decides this pair
                self.entries[key] = Entry(change.id, at, deadline)
                change.open += 1
        if not change.open:
            del self.changes[change.id]
        return change

    def extend(
        self, until: float, *, targets: Iterable[str] | None = None, unavailable: bool = False
    ) -> None:
        """A fault: every open entry (of these targets) may now take until `until`."""
        chosen = set(self.targets if targets is None else targets)
        for (target, _, _), entry in self.entries.items():
            if target in chosen:
                entry.deadline = max(entry.deadline, until)
                if unavailable:
                    self.changes[entry.change].unavailable = True

    def observe(self, minute: int, now: float, target: str, disagree: set[Pair]) -> list[Violation]:
        """After a run: close what agrees, and report what disagrees late or unexplained."""
        violations = []
        for key in [key for key in self.entries if key[0] == target and (key[1], key[2]) not in disagree]:
            self._close(self.entries.pop(key), now)
        for ip, tag in sorted(disagree):
            entry = self.entries.get((target, ip, tag))
            if entry is None:
                entry = Entry(-1, now, math.inf, reported=True)
                self.entries[(target, ip, tag)] = entry
                violations.append(
                    Violation(
                        "every_pair_explained", minute, f"{target}: {ip} {tag} differs, no change explains it"
                    )
                )
            elif now > entry.deadline and not entry.reported:
                entry.reported = True
                late = (now - entry.since) / 60
                kind = self.changes[entry.change].kind if entry.change in self.changes else "?"
                violations.append(
                    Violation(
                        "converged_within_bound",
                        minute,
                        f"{target}: {ip} {tag} still differs {late:.1f} min after a {kind} "
                        f"(bound {(entry.deadline - entry.since) / 60:.1f} min)",
                    )
                )
        return violations

    def _close(self, entry: Entry, now: float | None) -> None:
        change = self.changes.get(entry.change)
        if change is None:
            return
        change.open -= 1
        if now is not None:
            change.converged = True
        if change.open == 0:
            del self.changes[change.id]
            if change.converged and now is not None:
                book = self.latencies_unavailable if change.unavailable else self.latencies
                book.setdefault(change.kind, []).append((now - change.at) / 60)


# -- the per-run checks ------------------------------------------------------------------------

Check = Callable[[RunRecord, "Expectations"], list[Violation]]


@dataclass
class Expectations:
    """What the world says the devices must keep: the foreign pairs, and the removal guard's history."""

    foreign: dict[str, set[Pair]] = field(default_factory=dict)  # target -> pairs another tool owns
    removals: dict[str, list[tuple[float, int, int]]] = field(default_factory=dict)  # (at, removed, held)


def no_foreign_tag_touched(run: RunRecord, expect: Expectations) -> list[Violation]:
    found = []
    for target, requests in run.requests.items():
        for request in requests:
            for verb, pairs in request.uid_pairs.items():
                touched = sorted(tag for _, tag in pairs if not tag.startswith(PREFIX))
                if touched:
                    found.append(
                        Violation("no_foreign_tag_touched", run.minute, f"{target}: {verb} of {touched[:3]}")
                    )
        if run.after_foreign[target] != expect.foreign.get(target, set()):
            found.append(
                Violation("no_foreign_tag_touched", run.minute, f"{target}: another tool's pairs changed")
            )
    return found


def no_clear(run: RunRecord, _: Expectations) -> list[Violation]:
    return [
        Violation("no_clear", run.minute, f"{target}: a uid message carried <clear>")
        for target, requests in run.requests.items()
        for request in requests
        if "clear" in request.uid
    ]


def no_register_and_unregister_in_one_message(run: RunRecord, _: Expectations) -> list[Violation]:
    found = []
    for target, requests in run.requests.items():
        for request in requests:
            both = request.uid_pairs.get("register", frozenset()) & request.uid_pairs.get(
                "unregister", frozenset()
            )
            if both:
                found.append(
                    Violation(
                        "no_register_and_unregister_in_one_message",
                        run.minute,
                        f"{target}: {sorted(both)[:3]}",
                    )
                )
    return found


def no_unregister_beyond_guard(run: RunRecord, expect: Expectations) -> list[Violation]:
    """Unregistered pairs within MAX_REMOVAL_RATIO of what the target held, in one run and in 24 hours.

    What it held is the larger of the device's pairs of ours before the run and the largest count
    of the last 24 hours; a forced run is let through, as the guard lets it.
    """
    found = []
    for target, requests in run.requests.items():
        removed = {pair for request in requests for pair in request.uid_pairs.get("unregister", frozenset())}
        held = len(run.before[target])
        history = expect.removals.setdefault(target, [])
        history[:] = [item for item in history if item[0] > run.started - DAY]
        history.append((run.started, len(removed), held))
        if run.forced or not removed:
            continue
        largest = max(item[2] for item in history)
        in_day = sum(item[1] for item in history)
        if held >= GUARD_MINIMUM and len(removed) > GUARD_RATIO * max(held, largest):
            found.append(
                Violation(
                    "no_unregister_beyond_guard", run.minute, f"{target}: {len(removed)} of {held} in one run"
                )
            )
        elif largest >= GUARD_MINIMUM and in_day > GUARD_RATIO * largest:
            found.append(
                Violation(
                    "no_unregister_beyond_guard",
                    run.minute,
                    f"{target}: {in_day} unregistered in 24 hours, at most {largest} held",
                )
            )
    return found


def no_secret_logged(run: RunRecord, _: Expectations) -> list[Violation]:
    return [
        Violation("no_secret_logged", run.minute, f"a log line holds a secret ({secret[:4]}…)")
        for secret in run.secrets
        if secret and secret in run.log
    ]


CHECKS: dict[str, Check] = {
    "no_foreign_tag_touched": no_foreign_tag_touched,
    "no_clear": no_clear,
    "no_register_and_unregister_in_one_message": no_register_and_unregister_in_one_message,
    "no_unregister_beyond_guard": no_unregister_beyond_guard,
    "no_secret_logged": no_secret_logged,
}
# Checked by Convergence and by the table scan rather than per request log; named here so the
# report lists every check.
STATE_CHECKS = ("every_pair_explained", "converged_within_bound", "table_items_bounded")


def table_item_bound(targets: int, ips: int) -> int:
    """Items the table may hold for an estate of `ips` addresses (docs/simulation.md#table-size).

    Per target and for the projection: a manifest (and the target's tags-in-use item, the
    projection's watermark), and at most three generations of shards, each generation the
    shard count the snapshot chooses (about 4,000 IPs a shard, a power of two): the committed
    one, one superseded and awaiting deletion, and one left by a killed run.
    """
    shards = 1
    while shards * 8_000 < ips:
        shards *= 2
    return (targets + 1) * (2 + 3 * shards)
