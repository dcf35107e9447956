"""Tags from what a workload is in, beyond its labels: its state and its label groups. Pure.

State tags (`STATE_TAGS`, docs/mapping.md#state-tags) come from a fixed vocabulary; a value
outside it gives no tag. Label group tags (`LABEL_GROUP_TAGS`, docs/mapping.md#label-groups)
name every group holding one of the workload's labels, nested groups resolved; a cycle is
reported and its closing link cut.
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from dagsync.core.models import LabelGroup

STATE_VALUES: Mapping[str, frozenset[str]] = {
    "enforcement": frozenset({"idle", "visibility_only", "selective", "full"}),
    "managed": frozenset({"yes", "no"}),
    "online": frozenset({"yes", "no"}),
}
LABEL_GROUP_KEY = "lg"  # illumio.lg.<group name>

MakeTag = Callable[[str, str, str], str | None]
ExtraKey = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]  # (state, label group names)


class ExtraTagger(dict[ExtraKey, frozenset[str]]):
    """(state, label groups) -> their tags under the rules, each combination worked out once."""

    def __init__(
        self, prefix: str, state_kinds: frozenset[str], label_groups: bool, make_tag: MakeTag
    ) -> None:
        super().__init__()
        self._prefix = prefix
        self._state_kinds = state_kinds
        self._label_groups = label_groups
        self._make_tag = make_tag
        self.active = bool(state_kinds) or label_groups

    def __missing__(self, key: ExtraKey) -> frozenset[str]:
        state, groups = key
        pairs = [
            (kind, value)
            for kind, value in state
            if kind in self._state_kinds and value in STATE_VALUES.get(kind, ())
        ]
        if self._label_groups:
            pairs.extend((LABEL_GROUP_KEY, name) for name in groups)
        tags = frozenset(filter(None, (self._make_tag(self._prefix, kind, value) for kind, value in pairs)))
        self[key] = tags
        return tags


def cut_rank(
    prefix: str, state_kinds: frozenset[str], label_groups: bool
) -> Callable[[str], tuple[int, str]]:
    """The order in which an IP's tags are kept under the 32-tag limit (docs/mapping.md#tag-limit):
    state tags first (at most three, and what trust rules check), then label tags, then label
    group tags, each in sorted order."""
    state_prefixes = tuple(f"{prefix}{kind}." for kind in sorted(state_kinds))
    group_prefix = f"{prefix}{LABEL_GROUP_KEY}."

    def rank(tag: str) -> tuple[int, str]:
        if state_prefixes and tag.startswith(state_prefixes):
            return (0, tag)
        if label_groups and tag.startswith(group_prefix):
            return (2, tag)
        return (1, tag)

    return rank


@dataclass(frozen=True)
class GroupIndex:
    """Label href -> the names of every label group holding it, directly or through sub-groups."""

    groups_of: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def names(self, label_hrefs: Iterable[str]) -> tuple[str, ...]:
        groups_of = self.groups_of
        found = [names for href in label_hrefs if (names := groups_of.get(href))]
        if len(found) <= 1:
            return found[0] if found else ()  # most workloads: one grouped label or none
        return tuple(sorted(set().union(*found)))


def resolve_label_groups(groups: Sequence[LabelGroup]) -> GroupIndex:
    """Each group's labels with those of its sub-groups, to any depth.

    A sub-group already on the path from the group being resolved closes a cycle: that link is
    cut (the groups keep what they hold without it) and each cycle reported once. A sub-group the list does
    not hold is reported and skipped.
    """
    by_href = {group.href: group for group in groups}
    warnings: list[str] = []
    reported: set[tuple[str, str]] = set()
    cycles: set[frozenset[str]] = set()
    members: dict[str, set[str]] = {}

    def walk(group: LabelGroup, path: list[str], labels: set[str]) -> None:
        labels.update(group.label_hrefs)
        for sub_href in group.sub_group_hrefs:
            sub = by_href.get(sub_href)
            link = (group.href, sub_href)
            if sub is None:
                if link not in reported:
                    reported.add(link)
                    warnings.append(
                        f"label group {group.name!r} names sub-group {sub_href}, which is not listed"
                    )
            elif sub_href in path:
                loop = path[path.index(sub_href) :]
                if frozenset(loop) not in cycles:
                    cycles.add(frozenset(loop))
                    names = " -> ".join(by_href[href].name for href in [*loop, sub_href])
                    warnings.append(f"label groups form a cycle ({names}); it is cut where it closes")
            else:
                walk(sub, [*path, sub_href], labels)

    for group in groups:
        labels: set[str] = set()
        walk(group, [group.href], labels)
        for label in labels:
            members.setdefault(label, set()).add(group.name)
    return GroupIndex({label: tuple(sorted(names)) for label, names in members.items()}, warnings)
