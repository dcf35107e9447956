"""The removal guard (docs/sync.md#removal-guard): one run, and rolling 24 hours. Pure.

A plan that would unregister more than MAX_REMOVAL_RATIO of what a target holds is held back:
in one run against the pairs last recorded, or over the last 24 hours against the most the
target held in that time, so that a fifth removed per run is stopped as surely as one mass
removal. A target holding fewer than GUARD_MINIMUM_PREVIOUS pairs is not guarded.
"""

from collections.abc import Mapping
from typing import Literal, NamedTuple

from dagsync.core.diff import Plan
from dagsync.core.history import TargetHistory

GUARD_MINIMUM_PREVIOUS = 20

# Which removal guard held.
GuardRule = Literal["one run", "24 hours"]
RULE_MEANING: Mapping[GuardRule, str] = {
    "one run": "this run alone would unregister more than MAX_REMOVAL_RATIO of the pairs last recorded",
    "24 hours": (
        "the pairs removed in the last 24 hours, this run's included, would exceed MAX_REMOVAL_RATIO "
        "of the largest pair count held in that time"
    ),
}


class Verdict(NamedTuple):
    """The rule that holds a plan back, and its tally in words for the operator."""

    rule: GuardRule
    tally: str


def removal_blocked(plan: Plan, previous_pairs: int, max_removal_ratio: float) -> bool:
    """The one-run rule: too many removals against a large enough previous state."""
    if previous_pairs < GUARD_MINIMUM_PREVIOUS:
        return False
    return plan.unregister_count > max_removal_ratio * previous_pairs


def verdict(
    plan: Plan, previous_pairs: int, history: TargetHistory, *, now: float, max_removal_ratio: float
) -> Verdict | None:
    """Which rule holds `plan` back, or None when it may go through; `now` is the history's clock."""
    if removal_blocked(plan, previous_pairs, max_removal_ratio):
        return Verdict("one run", f"{plan.unregister_count} of {previous_pairs} pairs would be unregistered")
    if not plan.unregister_count:
        return None
    removed = history.removed_within(now) + plan.unregister_count
    largest = history.largest_held_within(now, previous_pairs)
    if largest < GUARD_MINIMUM_PREVIOUS or removed <= max_removal_ratio * largest:
        return None
    return Verdict(
        "24 hours",
        f"{removed} pairs would be unregistered within 24 hours ({plan.unregister_count} by this run), "
        f"of at most {largest} pairs held in that time",
    )
