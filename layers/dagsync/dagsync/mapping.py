"""SPEC §3: workloads to IP-tag pairs. Pure functions, no I/O."""

import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from dagsync.models import Workload

MAX_TAG_LENGTH = 127
MAX_TAGS_PER_IP = 32
_CUT_LENGTH = 118
_WHITESPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"'": "_", '"': "_"})
# What is left after whitespace is collapsed that XML 1.0 (or UTF-8, for lone surrogates) cannot
# carry: a tag holding one could never be sent, so such characters become `_` like quotes.
_UNSENDABLE = re.compile("[\x00-\x08\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


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
    return _UNSENDABLE.sub("_", _WHITESPACE.sub(" ", text.translate(_QUOTES))).strip()


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
    text = address.strip()
    settled, result = _settled_by_c_parser(text, include_ipv6=include_ipv6)
    if settled:
        return result
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
        return None
    if ip.version == 6 and not include_ipv6:
        return None
    return ip.compressed


def _settled_by_c_parser(text: str, *, include_ipv6: bool) -> tuple[bool, str | None]:
    """`(True, normalise_ip's answer)` for the common cases, read with inet_pton instead of
    ipaddress; `(False, None)` leaves the address to ipaddress.

    Settled here: a canonical dotted quad (ipaddress would give back the same text), anything
    with a colon while IPv6 is excluded, and IPv6 link-local addresses (fe80::/10).
    """
    if ":" in text:
        return not include_ipv6 or _is_ipv6_link_local(text), None
    packed = _pton(socket.AF_INET, text)
    if packed is None or socket.inet_ntop(socket.AF_INET, packed) != text:
        return False, None
    first = packed[0]
    dropped = first == 127 or 224 <= first < 240 or packed[:2] == b"\xa9\xfe" or packed == bytes(4)
    return True, None if dropped else text


def _pton(family: int, text: str) -> bytes | None:
    try:
        return socket.inet_pton(family, text)
    except (OSError, ValueError):
        return None


def _is_ipv6_link_local(text: str) -> bool:
    """fe80::/10, read by the C parser; anything it cannot read goes the slow way."""
    packed = _pton(socket.AF_INET6, text)
    return packed is not None and packed[0] == 0xFE and packed[1] & 0xC0 == 0x80


class _Labeller:
    """Turns labels into tags once per distinct label and reports labels that collide."""

    def __init__(self, prefix: str, label_keys: frozenset[str] | None, warnings: Warnings) -> None:
        self._prefix = prefix
        self._label_keys = label_keys
        self._warnings = warnings
        self._tags: dict[tuple[str, str], str | None] = {}
        self._sources: dict[str, tuple[str, str]] = {}

    def tags(self, labels: Iterable[tuple[str, str]]) -> frozenset[str]:
        tags = []
        for label in labels:
            if self._label_keys is not None and label[0] not in self._label_keys:
                continue
            if label not in self._tags:
                self._tags[label] = self._new_tag(*label)
            tag = self._tags[label]
            if tag is not None:
                tags.append(tag)
        return frozenset(tags)

    def _new_tag(self, key: str, value: str) -> str | None:
        tag = make_tag(self._prefix, key, value)
        if tag is not None:
            earlier = self._sources.setdefault(tag, (key, value))
            if earlier != (key, value):
                self._warnings.add(
                    f"labels {earlier[0]}={earlier[1]!r} and {key}={value!r} both map to tag {tag!r}"
                )
        return tag


def _cap_tags(ip: str, tags: frozenset[str], warnings: Warnings) -> frozenset[str]:
    if len(tags) <= MAX_TAGS_PER_IP:
        return tags
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
    grouped: dict[str, frozenset[str]] = {}
    count = 0
    for workload in workloads:
        count += 1
        tags = labeller.tags(workload.labels)
        if not tags:
            continue
        for address in workload.addresses:
            ip = normalise_ip(address, include_ipv6=include_ipv6)
            if ip is None:
                continue
            if ip in reserved_ips:
                warnings.add(f"workload {workload.href} uses reserved address {ip}; it is not tagged")
                continue
            # Most IPs belong to one workload: its tag set is shared, not copied, until a union.
            held = grouped.get(ip)
            grouped[ip] = tags if held is None else held | tags
    desired = {ip: _cap_tags(ip, ip_tags, warnings) for ip, ip_tags in grouped.items()}
    return MappingResult(desired=desired, workloads=count, warnings=warnings.as_list())
