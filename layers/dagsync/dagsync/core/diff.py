"""What to register and unregister. Pure functions; the removal guard is in guard.py."""

from collections.abc import Iterable
from dataclasses import dataclass

from dagsync.core.models import TagMap, count_pairs, iter_pairs


@dataclass(frozen=True)
class Plan:
    register: dict[str, frozenset[str]]
    unregister: dict[str, frozenset[str]]

    @property
    def register_count(self) -> int:
        return count_pairs(self.register)

    @property
    def unregister_count(self) -> int:
        return count_pairs(self.unregister)

    @property
    def empty(self) -> bool:
        return not self.register and not self.unregister

    def as_lists(self) -> dict[str, list[list[str]]]:
        """The dry-run plan of docs/results.md#summary: sorted `[ip, tag]` lists."""
        return {
            "register": [[ip, tag] for ip, tag in iter_pairs(self.register)],
            "unregister": [[ip, tag] for ip, tag in iter_pairs(self.unregister)],
        }


def subtract(left: TagMap, right: TagMap) -> dict[str, frozenset[str]]:
    """Pairs in `left` and not in `right`, per IP."""
    result: dict[str, frozenset[str]] = {}
    for ip, tags in left.items():
        other = right.get(ip)
        if other is None:
            if tags:
                result[ip] = frozenset(tags)
        elif not tags <= other:
            result[ip] = tags - other
    return result


def intersect(left: TagMap, right: TagMap) -> dict[str, frozenset[str]]:
    """Pairs in both maps, per IP."""
    return subtract(left, subtract(left, right))


def union(left: TagMap, right: TagMap) -> dict[str, frozenset[str]]:
    result = dict(left)
    for ip, tags in right.items():
        result[ip] = result.get(ip, frozenset()) | tags
    return result


def restricted(tag_map: TagMap, ips: Iterable[str]) -> dict[str, frozenset[str]]:
    """The pairs of the given IPs only: a targeted update plans on the IPs it recomputed."""
    return {ip: tags for ip in ips if (tags := tag_map.get(ip))}


def with_prefix(tag_map: TagMap, prefix: str) -> dict[str, frozenset[str]]:
    """Only the tags this tool owns: the ownership boundary of docs/sync.md#ownership."""
    result: dict[str, frozenset[str]] = {}
    # Tag sets repeat across IPs (a snapshot shares equal sets), so each distinct one is filtered once.
    filtered: dict[frozenset[str], frozenset[str]] = {}
    for ip, tags in tag_map.items():
        ours = filtered.get(tags)
        if ours is None:
            ours = filtered[tags] = frozenset(tag for tag in tags if tag.startswith(prefix))
        if ours:
            result[ip] = ours
    return result


def plan_changes(desired: TagMap, confirmed: TagMap, uncertain: TagMap) -> Plan:
    """Register what is desired and not confirmed; unregister what may be on the device and is not desired.

    Uncertain pairs (a push whose outcome is unknown) are retried in whichever direction
    the desired state asks for, so a lost response never leaves a stale or missing pair.
    """
    return Plan(
        register=subtract(desired, confirmed),
        unregister=subtract(union(confirmed, uncertain), desired),
    )
