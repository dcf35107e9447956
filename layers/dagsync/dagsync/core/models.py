"""Plain data shared across layers: workloads, PCE events, pairs and tag maps."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

# One IP and the set of our tags on it. The whole tool reasons per IP because PAN-OS
# registers, unregisters and reports per-entry results per IP.
TagMap = Mapping[str, frozenset[str]]
Pair = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Workload:
    """The projection of a PCE workload that the mapping needs, labels already resolved."""

    href: str
    labels: tuple[tuple[str, str], ...]  # (key, value)
    addresses: tuple[str, ...]  # interfaces[].address as given, loopback interfaces removed
    hostname: str = ""  # for the operator: warnings and membership plans name it where known
    # (state, value) pairs the PCE reports with certainty, e.g. ("enforcement", "full"),
    # ("managed", "no"), ("online", "yes") (docs/mapping.md#state-tags)
    state: tuple[tuple[str, str], ...] = ()
    label_groups: tuple[str, ...] = ()  # names of the label groups holding one of its labels


@dataclass(frozen=True, slots=True)
class LabelGroup:
    """A provisioned label group: its labels and sub-groups by href (docs/mapping.md#label-groups)."""

    href: str
    name: str
    label_hrefs: tuple[str, ...]
    sub_group_hrefs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PceEvent:
    """One PCE event, reduced to what the change feed decides on (docs/change-feed.md#decision).

    `status` and `severity` are None when the PCE sends none. `workload_hrefs` and `label_hrefs`
    are the workloads and labels its resource changes name, org-relative
    (`/orgs/N/workloads/ID`), each once, in the order the event names them.
    """

    href: str
    event_type: str
    timestamp: datetime  # timezone-aware
    status: str | None
    severity: str | None
    workload_hrefs: tuple[str, ...]
    label_hrefs: tuple[str, ...]


def count_pairs(tag_map: TagMap) -> int:
    return sum(len(tags) for tags in tag_map.values())


def iter_pairs(tag_map: TagMap) -> Iterator[Pair]:
    """Pairs in a stable order (by IP, then tag), for plans, audit lines and tests."""
    for ip in sorted(tag_map):
        for tag in sorted(tag_map[ip]):
            yield ip, tag
