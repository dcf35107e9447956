"""SPEC §3: workloads to IP-tag pairs. Pure functions, no I/O."""

import hashlib
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from dagsync.models import Workload

MAX_TAG_LENGTH = 127
MAX_TAGS_PER_IP = 32
_CUT_LENGTH = 118
_WHITESPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"'": "_", '"': "_"})


@dataclass
class Warnings:
    """Operator-facing warnings, capped so a bad estate cannot flood the result."""

    limit: int = 50
    messages: list[str] = field(default_factory=list)
    dropped: int = 0

    def add(self, message: str) -> None:
        if len(self.messages) < self.limit:
            self.messages.append(message)
        else:
            self.dropped += 1

    def as_list(self) -> list[str]:
        if self.dropped:
            return [*self.messages, f"... and {self.dropped} more warnings"]
        return list(self.messages)


@dataclass(frozen=True)
class MappingResult:
    desired: dict[str, frozenset[str]]  # ip -> our tags
    workloads: int
    warnings: list[str]

    @property
    def pairs(self) -> int:
        return sum(len(tags) for tags in self.desired.values())


def _clean(text: str) -> str:
    return _WHITESPACE.sub(" ", text.translate(_QUOTES)).strip()


def make_tag(prefix: str, key: str, value: str) -> str | None:
    """`prefix + key + "." + value`, sanitised and cut to PAN-OS's 127 characters; None if empty."""
    clean_key, clean_value = _clean(key), _clean(value)
    if not clean_key or not clean_value:
        return None
    tag = f"{prefix}{clean_key}.{clean_value}"
    if len(tag) > MAX_TAG_LENGTH:
        digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
        tag = f"{tag[:_CUT_LENGTH]}~{digest}"
    return tag


def normalise_ip(address: str, *, include_ipv6: bool) -> str | None:
    """The compressed form of a taggable host address, or None when SPEC §3 drops it."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    if ip.version == 6 and not include_ipv6:
        return None
    return ip.compressed


class _Labeller:
    """Turns labels into tags once per distinct label and reports labels that collide."""

    def __init__(self, prefix: str, label_keys: frozenset[str] | None, warnings: Warnings) -> None:
        self._prefix = prefix
        self._label_keys = label_keys
        self._warnings = warnings
        self._tags: dict[tuple[str, str], str | None] = {}
        self._sources: dict[str, tuple[str, str]] = {}

    def tags(self, labels: Iterable[tuple[str, str]]) -> set[str]:
        tags = set()
        for label in labels:
            if self._label_keys is not None and label[0] not in self._label_keys:
                continue
            if label not in self._tags:
                self._tags[label] = self._new_tag(*label)
            tag = self._tags[label]
            if tag is not None:
                tags.add(tag)
        return tags

    def _new_tag(self, key: str, value: str) -> str | None:
        tag = make_tag(self._prefix, key, value)
        if tag is not None:
            earlier = self._sources.setdefault(tag, (key, value))
            if earlier != (key, value):
                self._warnings.add(
                    f"labels {earlier[0]}={earlier[1]!r} and {key}={value!r} both map to tag {tag!r}"
                )
        return tag


def _cap_tags(ip: str, tags: set[str], warnings: Warnings) -> frozenset[str]:
    if len(tags) <= MAX_TAGS_PER_IP:
        return frozenset(tags)
    warnings.add(
        f"{ip} would carry {len(tags)} tags; PAN-OS allows {MAX_TAGS_PER_IP}, "
        f"so {len(tags) - MAX_TAGS_PER_IP} were cut"
    )
    return frozenset(sorted(tags)[:MAX_TAGS_PER_IP])


def map_workloads(
    workloads: Iterable[Workload],
    *,
    prefix: str,
    label_keys: frozenset[str] | None,
    include_ipv6: bool,
    reserved_ips: frozenset[str] = frozenset(),
) -> MappingResult:
    """Desired pairs: each selected label of each workload on each usable IP, unioned per IP.

    `reserved_ips` are never tagged (the drift canary's address lives there).
    """
    warnings = Warnings()
    labeller = _Labeller(prefix, label_keys, warnings)
    ip_cache: dict[str, str | None] = {}
    grouped: dict[str, set[str]] = {}
    count = 0
    for workload in workloads:
        count += 1
        tags = labeller.tags(workload.labels)
        if not tags:
            continue
        for address in workload.addresses:
            if address not in ip_cache:
                ip_cache[address] = normalise_ip(address, include_ipv6=include_ipv6)
            ip = ip_cache[address]
            if ip is None:
                continue
            if ip in reserved_ips:
                warnings.add(f"workload {workload.href} uses reserved address {ip}; it is not tagged")
                continue
            grouped.setdefault(ip, set()).update(tags)
    desired = {ip: _cap_tags(ip, ip_tags, warnings) for ip, ip_tags in grouped.items()}
    return MappingResult(desired=desired, workloads=count, warnings=warnings.as_list())
