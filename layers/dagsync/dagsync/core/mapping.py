"""Workloads to IP-tag pairs (docs/mapping.md). Pure functions, no I/O.

Two steps, each reusable on its own so a targeted update recomputes with exactly the rules of a
full map (see projection.py): each workload *claims* its usable IPs with its tags, then each IP's
pairs are *settled* from every claim on it (docs/mapping.md#shared-addresses).
"""

import hashlib
import ipaddress
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from dagsync.core.models import Workload
from dagsync.core.workload_tags import ExtraTagger, cut_rank

MAX_TAG_LENGTH = 127
MAX_TAGS_PER_IP = 32
MAX_LISTED_CONFLICTS = 20
_CUT_LENGTH = 118
_WHITESPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"'": "_", '"': "_"})
# What is left after whitespace is collapsed that XML 1.0 (or UTF-8, for lone surrogates) cannot
# carry: a tag holding one could never be sent, so such characters become `_` like quotes.
_UNSENDABLE = re.compile("[\x00-\x08\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

SharedIpPolicy = Literal["union", "skip"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class MappingRules:
    """Everything that decides an estate's pairs, as named data (docs/configuration.md#variables)."""

    prefix: str
    label_keys: frozenset[str] | None  # None selects every key (`LABEL_KEYS=*`)
    include_ipv6: bool = True
    exclude: tuple[IpNetwork, ...] = ()  # EXCLUDE_CIDRS
    shared_ip_policy: SharedIpPolicy = "union"
    reserved_ips: frozenset[str] = frozenset()  # the tool's own addresses (the canary's)
    state_tags: frozenset[str] = frozenset()  # STATE_TAGS
    label_group_tags: bool = False  # LABEL_GROUP_TAGS

    def fingerprint(self) -> str:
        """A short digest of the rules: pairs recorded under other rules are not these rules' pairs."""
        keys = "*" if self.label_keys is None else ",".join(sorted(self.label_keys))
        text = "\n".join(
            (
                self.prefix,
                keys,
                str(self.include_ipv6),
                ",".join(sorted(str(network) for network in self.exclude)),
                self.shared_ip_policy,
                ",".join(sorted(self.reserved_ips)),
            )
        )
        # Only when set, so the rules' fingerprint from before these settings existed still holds.
        if self.state_tags or self.label_group_tags:
            text += f"\nstate={','.join(sorted(self.state_tags))}\nlabel_groups={self.label_group_tags}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class Claim(NamedTuple):
    """One workload's usable IPs and its tags: what it asks of every IP it has."""

    href: str
    ips: tuple[str, ...]
    tags: frozenset[str]


@dataclass(frozen=True, slots=True)
class OddAddress:
    """Address text that is not a plain IP address: dropped, with a warning naming the workload."""

    reason: str


# One instance per reason, so reading an address allocates nothing.
_NOT_AN_IP = OddAddress("not an IP address")
_TOO_LONG = OddAddress("longer than any IP address")
_ZONED = OddAddress("an IPv6 address with a zone")
# The firewall sees the IPv4 packet, so the mapped form would match nothing; and taking it for the
# IPv4 address would give this workload an IPv4 identity the PCE does not report for it, possibly
# another workload's (it would then join that workload's DAGs). Neither is safe to assume.
_IPV4_MAPPED = OddAddress("an IPv4-mapped IPv6 address, which is not taken for its IPv4 address")
_PTON, _NTOP, _V4, _V6 = socket.inet_pton, socket.inet_ntop, socket.AF_INET, socket.AF_INET6
# First octets of IPv4 ranges that are dropped quietly: 0/8 (0.0.0.0 only), loopback 127/8,
# link-local 169.254/16 and multicast 224/4.
_SPECIAL_FIRST_OCTETS = frozenset({0, 127, 169, *range(224, 240)})
_UNSPECIFIED_V4 = bytes(4)
_LONGEST_IP = len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
_ZERO_PREFIX = bytes(10)  # ::/80 holds ::, ::1, IPv4-mapped and IPv4-compatible addresses


def _networks(exclude: Iterable[IpNetwork], version: int) -> tuple[tuple[int, int], ...]:
    return tuple((int(net.network_address), int(net.netmask)) for net in exclude if net.version == version)


def _inside(value: int, networks: tuple[tuple[int, int], ...]) -> bool:
    return any(value & mask == base for base, mask in networks)


class AddressReader:
    """Reads `interfaces[].address` text: the compressed IP to tag, None for an address dropped
    quietly (loopback, link-local, unspecified, multicast, IPv6 when excluded, EXCLUDE_CIDRS), or
    an OddAddress (docs/mapping.md#addresses).

    Most addresses are settled by the C parser (inet_pton/inet_ntop); the rest go to ipaddress.
    """

    def __init__(self, *, include_ipv6: bool, exclude: Iterable[IpNetwork] = ()) -> None:
        networks = tuple(exclude)
        self._include_ipv6 = include_ipv6
        self._exclude_v4 = _networks(networks, 4)
        self._exclude_v6 = _networks(networks, 6)
        # Any other first octet settles an IPv4 address at one set lookup.
        self._first_octets_to_check = _SPECIAL_FIRST_OCTETS | {
            octet
            for net in networks
            if isinstance(net, ipaddress.IPv4Network)
            for octet in range(net.network_address.packed[0], net.broadcast_address.packed[0] + 1)
        }

    def read(self, text: str) -> str | OddAddress | None:
        if ":" in text:
            return self._read_ipv6(text)
        try:
            packed = _PTON(_V4, text)
        except (OSError, ValueError):
            return self._read_slowly(text)
        if _NTOP(_V4, packed) != text:
            return self._read_slowly(text)
        if packed[0] in self._first_octets_to_check and not self._taggable_v4(packed):
            return None
        return text

    def _taggable_v4(self, packed: bytes) -> bool:
        first = packed[0]
        if first == 127 or 224 <= first < 240 or packed == _UNSPECIFIED_V4 or packed[:2] == b"\xa9\xfe":
            return False
        return not _inside(int.from_bytes(packed), self._exclude_v4)

    def _read_ipv6(self, text: str) -> str | OddAddress | None:
        try:
            packed = _PTON(_V6, text)
        except (OSError, ValueError):
            return self._read_slowly(text)
        if packed[0] == 0xFF or (packed[0] == 0xFE and packed[1] & 0xC0 == 0x80):
            return None  # multicast, link-local
        if packed[:10] == _ZERO_PREFIX:
            return self._read_slowly(text)
        if not self._include_ipv6:
            return None
        if self._exclude_v6 and _inside(int.from_bytes(packed), self._exclude_v6):
            return None
        # Outside ::/80, inet_ntop writes RFC 5952 text, which is what ipaddress writes.
        return _NTOP(_V6, packed)

    def _read_slowly(self, address: str) -> str | OddAddress | None:
        ip = _parse(address.strip())
        if isinstance(ip, OddAddress):
            return ip
        return ip.compressed if self._taggable(ip) else None

    def _taggable(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
            return False
        if ip.version == 6:
            return self._include_ipv6 and not _inside(int(ip), self._exclude_v6)
        return not _inside(int(ip), self._exclude_v4)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | OddAddress:
    """The address in `text`, or why it is not a plain IP address."""
    if len(text) > _LONGEST_IP:
        return _TOO_LONG
    if "%" in text:
        # ipaddress accepts a zone (`fe80::1%eth0`) and keeps it in the text, which no device takes.
        return _ZONED if ":" in text else _NOT_AN_IP
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return _NOT_AN_IP
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _IPV4_MAPPED
    return ip


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
    shared_ip_conflicts: int = 0  # IPs claimed by workloads whose tags differ
    # Each workload's claim, by href; workloads without a usable IP are left out.
    projection: dict[str, Claim] = field(default_factory=dict)

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


def _shown(text: str, limit: int = 64) -> str:
    """Address text as a warning may quote it: escaped, and cut when long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


class _Labeller(dict[tuple[str, str], str | None]):
    """Label -> tag (None for a label whose key is not selected), each worked out once, reporting
    labels that collide. A dict, so a workload's tags are read at C speed."""

    def __init__(self, prefix: str, label_keys: frozenset[str] | None, warnings: Warnings) -> None:
        super().__init__()
        self._prefix = prefix
        self._label_keys = label_keys
        self._warnings = warnings
        self._sources: dict[str, tuple[str, str]] = {}

    def tags(self, labels: Iterable[tuple[str, str]]) -> frozenset[str]:
        return frozenset(filter(None, map(self.__getitem__, labels)))

    def __missing__(self, label: tuple[str, str]) -> str | None:
        key, value = label
        tag = None
        if self._label_keys is None or key in self._label_keys:
            tag = make_tag(self._prefix, key, value)
        if tag is not None:
            earlier = self._sources.setdefault(tag, label)
            if earlier != label:
                self._warnings.add(
                    f"labels {earlier[0]}={earlier[1]!r} and {key}={value!r} both map to tag {tag!r}"
                )
        self[label] = tag
        return tag


class Mapper:
    """Applies one set of rules: claims workloads, settles IPs, and keeps the warnings."""

    def __init__(self, rules: MappingRules) -> None:
        self.rules = rules
        self.shared_ip_conflicts = 0
        self._warnings = Warnings()
        self._conflicts: list[str] = []
        self._labeller = _Labeller(rules.prefix, rules.label_keys, self._warnings)
        self._read = AddressReader(include_ipv6=rules.include_ipv6, exclude=rules.exclude).read
        self._reserved_ips = rules.reserved_ips
        self._extra = ExtraTagger(rules.prefix, rules.state_tags, rules.label_group_tags, make_tag)
        self._rank = cut_rank(rules.prefix, rules.state_tags, rules.label_group_tags)

    def claim(self, workload: Workload) -> Claim:
        """The workload's usable IPs, each once, and its tags (docs/mapping.md#addresses)."""
        tags = self._labeller.tags(workload.labels)
        if self._extra.active and (extra := self._extra[(workload.state, workload.label_groups)]):
            tags = tags | extra  # state and label group tags count as selected tags
        ips: list[str] = []
        for address in workload.addresses:
            ip = self._read(address)
            if type(ip) is str:
                if ip in self._reserved_ips:
                    self._warnings.add(
                        f"workload {_named(workload)} uses reserved address {ip}; it is not tagged"
                    )
                elif ip not in ips:
                    ips.append(ip)
            elif isinstance(ip, OddAddress):
                self._warnings.add(
                    f"workload {_named(workload)} has address {_shown(address)}, {ip.reason}; it is not tagged"
                )
        # _make is tuple.__new__: measurably cheaper than the keyword-handling constructor at 100k.
        return Claim._make((workload.href, tuple(ips), tags))

    def settle(self, ip: str, claims: Sequence[Claim]) -> frozenset[str]:
        """The tags of an IP that several workloads claim (docs/mapping.md#shared-addresses).

        Identical claims (an HA pair labelled alike) are no conflict. Otherwise the IP carries
        the union of their tags, or with `skip` none of them, and the conflict is reported.
        """
        first = claims[0].tags
        if all(claim.tags == first for claim in claims[1:]):
            return self.capped(ip, first)
        self.shared_ip_conflicts += 1
        skip = self.rules.shared_ip_policy == "skip"
        if len(self._conflicts) < MAX_LISTED_CONFLICTS:
            names = ", ".join(claim.href for claim in claims[:3])
            more = f" and {len(claims) - 3} more" if len(claims) > 3 else ""
            outcome = "it carries none of their tags" if skip else "it carries the union of their tags"
            self._conflicts.append(
                f"{ip} is claimed by {len(claims)} workloads whose tags differ ({names}{more}); {outcome}"
            )
        return frozenset() if skip else self.capped(ip, frozenset().union(*(c.tags for c in claims)))

    def pairs_of(self, claims: Mapping[str, Sequence[Claim]]) -> dict[str, frozenset[str]]:
        """The desired pairs of the given IPs from all their claims, as a full map settles them."""
        desired: dict[str, frozenset[str]] = {}
        for ip, on_ip in claims.items():
            tags = self.settle(ip, on_ip) if len(on_ip) > 1 else self.capped(ip, on_ip[0].tags)
            if tags:
                desired[ip] = tags
        return desired

    def capped(self, ip: str, tags: frozenset[str]) -> frozenset[str]:
        """PAN-OS's 32 tags per IP (docs/mapping.md#tag-limit): ours are cut in the documented order."""
        if len(tags) <= MAX_TAGS_PER_IP:
            return tags
        self._warnings.add(
            f"{ip} would carry {len(tags)} tags; PAN-OS allows {MAX_TAGS_PER_IP}, "
            f"so {len(tags) - MAX_TAGS_PER_IP} were cut"
        )
        return frozenset(sorted(tags, key=self._rank)[:MAX_TAGS_PER_IP])

    def warnings(self) -> list[str]:
        """The capped general warnings, then at most 20 conflicts and their total."""
        messages = self._warnings.as_list() + self._conflicts
        if self.shared_ip_conflicts:
            policy = self.rules.shared_ip_policy
            messages.append(
                f"{self.shared_ip_conflicts} IPs are claimed by workloads whose tags differ "
                f"(SHARED_IP_POLICY={policy}; {len(self._conflicts)} listed)"
            )
        return messages

    def map(self, workloads: Iterable[Workload]) -> MappingResult:
        """Desired pairs of a whole estate: every claim, then every IP settled."""
        projection: dict[str, Claim] = {}
        owner: dict[str, Claim] = {}  # ip -> its first claim; most IPs have only that one
        shared: dict[str, list[Claim]] = {}  # ip -> every claim, for IPs claimed more than once
        count = 0
        wide = False  # some workload has more tags than an IP may carry
        for workload in workloads:
            count += 1
            claim = self.claim(workload)
            href, ips, tags = claim
            if not ips:
                continue
            projection[href] = claim
            wide = wide or len(tags) > MAX_TAGS_PER_IP
            for ip in ips:
                held = owner.setdefault(ip, claim)
                if held is not claim:
                    shared.setdefault(ip, [held]).append(claim)
        desired = {ip: tags for ip, (_, _, tags) in owner.items() if tags}
        for ip, claims in shared.items():
            settled = self.settle(ip, claims)
            if settled:
                desired[ip] = settled
            else:
                desired.pop(ip, None)
        if wide:
            desired = {ip: self.capped(ip, tags) for ip, tags in desired.items()}
        return MappingResult(
            desired=desired,
            workloads=count,
            warnings=self.warnings(),
            shared_ip_conflicts=self.shared_ip_conflicts,
            projection=projection,
        )


def _named(workload: Workload) -> str:
    return f"{workload.href} ({workload.hostname})" if workload.hostname else workload.href


def map_workloads(
    workloads: Iterable[Workload],
    *,
    prefix: str,
    label_keys: frozenset[str] | None,
    include_ipv6: bool,
    exclude: tuple[IpNetwork, ...] = (),
    shared_ip_policy: SharedIpPolicy = "union",
    reserved_ips: frozenset[str] = frozenset(),
    state_tags: frozenset[str] = frozenset(),
    label_group_tags: bool = False,
) -> MappingResult:
    """Desired pairs: each selected label of each workload on each usable IP (docs/mapping.md).

    `reserved_ips` are never tagged (canary.RESERVED_IPS: the drift canary's address).
    """
    rules = MappingRules(
        prefix=prefix,
        label_keys=label_keys,
        include_ipv6=include_ipv6,
        exclude=exclude,
        shared_ip_policy=shared_ip_policy,
        reserved_ips=reserved_ips,
        state_tags=state_tags,
        label_group_tags=label_group_tags,
    )
    return Mapper(rules).map(workloads)


def hostnames_by_ip(workloads: Iterable[Workload], projection: Mapping[str, Claim]) -> dict[str, str]:
    """The hostnames behind each IP, where the PCE knows them, for membership plans."""
    names: dict[str, list[str]] = {}
    for workload in workloads:
        claim = projection.get(workload.href)
        if claim is not None and workload.hostname:
            for ip in claim.ips:
                names.setdefault(ip, []).append(workload.hostname)
    return {ip: ", ".join(sorted(set(found))) for ip, found in names.items()}
