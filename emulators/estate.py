"""Seeded synthetic PCE estates: workload JSON shaped like a real PCE 25.x answer, plus churn.

The shapes follow the real samples (PCE 25.2 workload search, illumio-py and XSOAR fixtures):
inline labels `{href, key, value}` with custom keys, managed and unmanaged workloads, link-local
and ULA/global IPv6, HA pairs sharing an address, workloads without interfaces or labels, and a
workload-level `public_ip` that must never become a tag.

Objects that never change (label objects, network references, agent configs) are shared between
workloads to keep 100k+ estates small; churn replaces them rather than mutating them.

`Oddities` (all off by default) adds the address shapes real PCEs hold that a careful client must
survive: NAT pseudo-interfaces (`eth0.public`, a /32 shared by differently labelled workloads,
as in a 21.x capture), Docker bridges (`docker0` 172.17.0.1/16 on every container host, as in the
PCE 25 sample), zoned IPv6, text that is no address at all, IPv4-mapped IPv6, and the boolean
`loopback` flag (the only form seen in captures) set on a routable address.
Why each matters: docs/mapping.md#shared-addresses and docs/mapping.md#excluded-addresses.
"""

import ipaddress
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

LABEL_VALUES: dict[str, tuple[str, ...]] = {
    "role": (
        "Web", "Database", "Apiserver", "Worker", "Master", "Cache", "Queue", "Batch", "PC",
        "Firewall", "LoadBalancer", "DomainController", "FTP", "Jump Host",
    ),
    "app": (
        *(f"App{n:02d}" for n in range(1, 41)),
        "CoreServices", "DemoApp", "Payments", "HR Portal", "Bob's Tools", 'The "Big" Ledger',
    ),
    "env": ("Production", "Staging", "Development", "Test", "DR", "PCI", "Quarantine"),
    "loc": ("TP", "DC1", "DC2", "New   York", "aws eu-west-1", "azure westeurope"),
    "os": ("Ubuntu", "RockyLinux", "WinServer", "WinPC", "OEMOS", "Debian"),
    "Quarantine": ("Mild", "Severe"),
}  # fmt: skip
BUILTIN_KEYS = ("role", "app", "env", "loc")

_IPV4_BASE = 10 << 24  # 10.0.0.0/8: unique addresses for well over 250,000 workloads
_IPV4_SIZE = 1 << 24
_ULA_BASE = int(ipaddress.IPv6Address("fd00:10::"))
_GLOBAL_BASE = int(ipaddress.IPv6Address("2001:db8:10::"))
_LINK_LOCAL_BASE = int(ipaddress.IPv6Address("fe80::"))
_NAT_POOL = tuple(f"203.0.113.{n}" for n in range(10, 18))
_TIMESTAMPS = tuple(
    f"2026-0{1 + n % 7}-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:17.{n:06d}Z" for n in range(64)
)
_VEN_TYPES = ("server", "server", "server", "endpoint", "containerized")
_VEN_VERSIONS = ("23.4.11-8", "25.2.40-4047", "22.5.30-9918")
_ENFORCEMENT = ("visibility_only", "selective", "full", "idle")
_PRIMARY_NAMES = ("eth0", "ens192", "Ethernet0")
_SHARED_NAMES = frozenset({"vip0", "eth0.public", "docker0"})  # addresses several workloads carry
_NAT_BASE = int(ipaddress.IPv4Address("198.51.100.0"))  # NAT addresses, apart from the public_ip pool
DOCKER_BRIDGE = "172.17.0.1"
_MALFORMED = (
    "n/a",
    "10.0.0.256",
    "192.168.7",
    "fe80::zz1",
    ":".join(["2001", "db8", *["abcd"] * 250]),  # 1,259 characters of plausible-looking text
)


@dataclass(frozen=True)
class Oddities:
    """How many workloads get each odd address shape; every count is 0 (off) by default.

    Oddities are drawn from their own random stream of the seed, after the ordinary estate, so an
    estate without them is the same estate as always.
    """

    nat_addresses: int = 0  # NAT addresses, each an `eth0.public` /32 (and the public_ip) of ...
    nat_sharers: int = 3  # ... this many workloads with different labels
    docker_hosts: int = 0  # workloads carrying `docker0` 172.17.0.1/16
    zoned_ipv6: int = 0  # `fe80::…%eth0` and `2001:db8:…%x`, alternately
    malformed_addresses: int = 0  # garbage text and an over-long string, in turn (see _MALFORMED)
    ipv4_mapped_ipv6: int = 0  # `::ffff:10.x.y.z`
    routable_loopbacks: int = 0  # `loopback: true` on a unique 10/8 address


@dataclass
class Estate:
    """A PCE org's workloads (raw JSON dicts) and label table; mutable, and deterministic per seed.

    `oddities` names what Oddities added: kind (an Oddities field) -> [(workload href, address)].
    """

    org_id: int
    workloads: list[Json]
    labels: dict[str, Json]  # href -> {"href", "key", "value"}
    next_ipv4: int = 1
    next_ipv6: int = 1
    next_label_id: int = 1
    next_index: int = 0
    oddities: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    _label_index: dict[tuple[str, str], Json] = field(default_factory=dict, repr=False)

    def label(self, key: str, value: str) -> Json:
        """The label object for key/value, created (with a new href) if the table lacks it."""
        found = self._label_index.get((key, value))
        if found is not None and self.labels.get(found["href"]) is found:
            return found
        for candidate in self.labels.values():
            if candidate["key"] == key and candidate["value"] == value:
                self._label_index[(key, value)] = candidate
                return candidate
        href = f"/orgs/{self.org_id}/labels/{self.next_label_id}"
        self.next_label_id += 1
        created: Json = {"href": href, "key": key, "value": value}
        self.labels[href] = created
        self._label_index[(key, value)] = created
        return created

    def find(self, href: str) -> Json | None:
        for workload in self.workloads:
            if workload["href"] == href:
                return workload
        return None

    def allocate_ipv4(self) -> str:
        if self.next_ipv4 >= _IPV4_SIZE - 1:
            raise RuntimeError("the synthetic estate ran out of 10.0.0.0/8 addresses")
        value = _IPV4_BASE + self.next_ipv4
        self.next_ipv4 += 1
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"

    def allocate_ipv6(self, *, ula: bool) -> str:
        value = self.next_ipv6
        self.next_ipv6 += 1
        return str(ipaddress.IPv6Address((_ULA_BASE if ula else _GLOBAL_BASE) + value))


def set_label(estate: Estate, workload: Json, key: str, value: str) -> None:
    """Give a workload the label key=value, replacing its label of that key (one per key, as on a PCE)."""
    label = estate.label(key, value)
    labels = [existing for existing in workload.get("labels") or () if existing.get("key") != key]
    labels.append(label)
    workload["labels"] = labels


def generate_estate(
    n_workloads: int,
    seed: int = 1,
    *,
    org_id: int = 1,
    unmanaged_ratio: float = 1 / 3,
    ha_pairs: int | None = None,
    oddities: Oddities = Oddities(),
) -> Estate:
    """An estate of n workloads; the same arguments always give the same estate.

    `ha_pairs` (default n // 500, at least 1 when n >= 2) pairs of workloads share one VIP.
    `oddities` adds odd addresses (none by default), recorded in `Estate.oddities`.
    """
    estate = Estate(org_id=org_id, workloads=[], labels={})
    for key, values in LABEL_VALUES.items():
        for value in values:
            estate.label(key, value)
    factory = _Factory(estate, random.Random(seed), unmanaged_ratio)
    estate.workloads.extend(factory.workload() for _ in range(n_workloads))
    pairs = ha_pairs if ha_pairs is not None else (max(1, n_workloads // 500) if n_workloads >= 2 else 0)
    if pairs:
        chosen = factory.rng.sample(range(n_workloads), min(2 * pairs, n_workloads - n_workloads % 2))
        for first, second in zip(chosen[0::2], chosen[1::2], strict=True):
            vip = factory.interface("vip0", estate.allocate_ipv4(), managed=True)
            for index in (first, second):
                interfaces = estate.workloads[index].get("interfaces")
                estate.workloads[index]["interfaces"] = [*(interfaces or ()), vip]
    _Oddifier(estate, random.Random(f"oddities-{seed}"), factory).add(oddities)
    return estate


def add_nat_and_bridge(
    workloads: list[Json], *, nat_address: str = "198.51.100.10", bridge_address: str = DOCKER_BRIDGE
) -> tuple[list[str], list[str]]:
    """One NAT pseudo-interface and one Docker bridge, each on two differently labelled workloads.

    For small hand-built estates (the demo): the NAT address goes to the first two workloads whose
    labels differ (as `eth0.public` /32 and as their public_ip), the bridge to the next two.
    Returns the hrefs behind the NAT and the hrefs carrying the bridge.
    """
    behind_nat = _differently_labelled_pair(workloads, taken=set())
    bridged = _differently_labelled_pair(workloads, taken=set(behind_nat))
    for href in behind_nat:
        workload = _by_href(workloads, href)
        workload["interfaces"] = [*(workload.get("interfaces") or ()), nat_interface(nat_address)]
        workload["public_ip"] = nat_address
    for href in bridged:
        workload = _by_href(workloads, href)
        workload["interfaces"] = [*(workload.get("interfaces") or ()), bridge_interface(bridge_address)]
    return behind_nat, bridged


def nat_interface(address: str, network: Json | None = None) -> Json:
    """A NAT address entered as a manual pseudo-interface, as in a captured PCE 21.x answer."""
    return {
        "name": "eth0.public",
        "address": address,
        "cidr_block": 32,
        "network": network,
        "network_detection_mode": "manual",
        "loopback": False,
    }


def bridge_interface(address: str = DOCKER_BRIDGE, network: Json | None = None) -> Json:
    """A Docker host's bridge, as the PCE 25 sample shows it (`docker0`, /16, reported by the VEN)."""
    return {
        "name": "docker0",
        "address": address,
        "cidr_block": 16,
        "default_gateway_address": None,
        "link_state": "up",
        "loopback": False,
        "network": network,
        "network_detection_mode": "single_private_brn",
        "public_ip": None,
    }


def _label_set(workload: Json) -> frozenset[tuple[str, str]]:
    return frozenset((label.get("key"), label.get("value")) for label in workload.get("labels") or ())


def _differently_labelled_pair(workloads: list[Json], taken: set[str]) -> list[str]:
    free = [workload for workload in workloads if workload["href"] not in taken and workload.get("labels")]
    for first in free:
        for second in free:
            if _label_set(first) != _label_set(second):
                return [first["href"], second["href"]]
    raise ValueError("the estate has no two more differently labelled workloads")


def _by_href(workloads: list[Json], href: str) -> Json:
    return next(workload for workload in workloads if workload["href"] == href)


class _Oddifier:
    """Adds the odd addresses of an Oddities to chosen workloads, each choice from one random stream."""

    def __init__(self, estate: Estate, rng: random.Random, factory: "_Factory") -> None:
        self.estate = estate
        self.rng = rng
        self.factory = factory

    def add(self, oddities: Oddities) -> None:
        if oddities.nat_addresses:
            self._nat(oddities.nat_addresses, oddities.nat_sharers)
        adders = (  # kind, how many, the interface for the n-th, only VEN-managed workloads
            ("docker_hosts", oddities.docker_hosts, self._docker_bridge, True),
            ("zoned_ipv6", oddities.zoned_ipv6, self._zoned, False),
            ("malformed_addresses", oddities.malformed_addresses, self._malformed, False),
            ("ipv4_mapped_ipv6", oddities.ipv4_mapped_ipv6, self._mapped, False),
            ("routable_loopbacks", oddities.routable_loopbacks, self._routable_loopback, False),
        )
        for kind, count, make, managed_only in adders:
            for n, workload in enumerate(self._choose(count, managed_only=managed_only) if count else ()):
                self._attach(kind, workload, make(n))

    def _choose(self, count: int, *, managed_only: bool) -> list[Json]:
        """Distinct labelled workloads with an interface (so each keeps an ordinary address too)."""
        eligible = [
            workload
            for workload in self.estate.workloads
            if workload.get("labels")
            and workload.get("interfaces")
            and (workload["managed"] or not managed_only)
        ]
        return self.rng.sample(eligible, min(count, len(eligible)))

    def _attach(self, kind: str, workload: Json, interface: Json) -> None:
        workload["interfaces"] = [*workload["interfaces"], interface]
        self.estate.oddities.setdefault(kind, []).append((workload["href"], interface["address"]))

    def _nat(self, addresses: int, sharers: int) -> None:
        """Each NAT address on `sharers` workloads whose label sets all differ."""
        labelled = [workload for workload in self.estate.workloads if workload.get("labels")]
        order = self.rng.sample(labelled, len(labelled))
        for n in range(min(addresses, 254)):
            address = str(ipaddress.IPv4Address(_NAT_BASE + 1 + n))
            chosen: list[Json] = []
            while order and len(chosen) < sharers:
                candidate = order.pop()
                if all(_label_set(candidate) != _label_set(other) for other in chosen):
                    chosen.append(candidate)
            for workload in chosen:
                workload.setdefault("interfaces", [])
                self._attach("nat_addresses", workload, nat_interface(address, self.factory.networks[1]))
                workload["public_ip"] = address

    def _docker_bridge(self, n: int) -> Json:
        return bridge_interface(DOCKER_BRIDGE, self.factory.networks[0])

    def _zoned(self, n: int) -> Json:
        if n % 2 == 0:
            address = f"{ipaddress.IPv6Address(_LINK_LOCAL_BASE + self.rng.getrandbits(64))}%eth0"
        else:
            address = f"{self.estate.allocate_ipv6(ula=False)}%x"
        return self.factory.interface("eth0", address, managed=True, cidr=64)

    def _malformed(self, n: int) -> Json:
        return self.factory.interface("eth1", _MALFORMED[n % len(_MALFORMED)], managed=False)

    def _mapped(self, n: int) -> Json:
        return self.factory.interface("eth0", f"::ffff:{self.estate.allocate_ipv4()}", managed=True, cidr=96)

    def _routable_loopback(self, n: int) -> Json:
        interface = self.factory.interface("lo", self.estate.allocate_ipv4(), managed=True, cidr=32)
        interface["loopback"] = True
        return interface


class _Factory:
    """Builds workload dicts from one random stream, drawing addresses from the estate's counters."""

    def __init__(self, estate: Estate, rng: random.Random, unmanaged_ratio: float) -> None:
        self.estate = estate
        self.rng = rng
        self.unmanaged_ratio = unmanaged_ratio
        org = estate.org_id
        self.networks = (
            {"href": f"/orgs/{org}/networks/8d1e2b5a-36a4-4f3e-9a43-0c55b0d1c001", "name": "Corporate"},
            {"href": f"/orgs/{org}/networks/8d1e2b5a-36a4-4f3e-9a43-0c55b0d1c002", "name": "External"},
        )
        self.unmanaged_agent = {
            "config": {"log_traffic": False, "mode": "illuminated", "visibility_level": "flow_summary"}
        }
        self.labels = {
            key: [estate.label(key, value) for value in values] for key, values in LABEL_VALUES.items()
        }

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def interface(self, name: str, address: str, *, managed: bool, cidr: int | None = 16) -> Json:
        return {
            "name": name,
            "address": address,
            "cidr_block": cidr if managed else None,
            "default_gateway_address": None,
            "link_state": "up" if managed else None,
            "loopback": False,
            "network": self.networks[0],
            "network_detection_mode": "single_private_brn",
            "public_ip": None,
        }

    def _labels(self, managed: bool) -> list[Json]:
        rng = self.rng
        if rng.random() < 0.03:
            return []
        labels = [rng.choice(self.labels[key]) for key in BUILTIN_KEYS if rng.random() < 0.95]
        if managed and rng.random() < 0.6:
            labels.append(rng.choice(self.labels["os"]))
        if rng.random() < 0.01:
            labels.append(rng.choice(self.labels["Quarantine"]))
        return labels

    def _managed_interfaces(self) -> list[Json]:
        rng = self.rng
        estate = self.estate
        primary = rng.choice(_PRIMARY_NAMES)
        interfaces = [self.interface(primary, estate.allocate_ipv4(), managed=True)]
        interfaces[0]["default_gateway_address"] = "10.255.255.254"
        if rng.random() < 0.6:
            address = str(ipaddress.IPv6Address(_LINK_LOCAL_BASE + rng.getrandbits(64)))
            link_local = self.interface(primary, address, managed=True, cidr=64)
            link_local["network_detection_mode"] = "link_local"
            link_local["network"] = self.networks[1]
            interfaces.append(link_local)
        if rng.random() < 0.15:
            interfaces.append(self.interface("eth1", estate.allocate_ipv4(), managed=True, cidr=24))
        if rng.random() < 0.10:
            address = estate.allocate_ipv6(ula=rng.random() < 0.5)
            interfaces.append(self.interface(primary, address, managed=True, cidr=64))
        if rng.random() < 0.05:
            loopback = self.interface("lo", "127.0.0.1", managed=True, cidr=8)
            loopback["loopback"] = True
            interfaces.append(loopback)
        return interfaces

    def workload(self) -> Json:
        rng = self.rng
        estate = self.estate
        org = estate.org_id
        index = estate.next_index
        estate.next_index += 1
        workload_id = self._uuid()
        managed = rng.random() >= self.unmanaged_ratio
        stamp = rng.choice(_TIMESTAMPS)
        if managed:
            hostname = f"host-{index:06d}.example.internal"
            workload: Json = {
                "href": f"/orgs/{org}/workloads/{workload_id}",
                "name": hostname if rng.random() < 0.5 else None,
                "hostname": hostname,
                "description": "",
                "managed": True,
                "online": rng.random() < 0.97,
                "deleted": False,
                "enforcement_mode": rng.choice(_ENFORCEMENT),
                "visibility_level": "flow_summary",
                "public_ip": rng.choice(_NAT_POOL) if rng.random() < 0.7 else None,
                "interfaces": self._managed_interfaces(),
                "ignored_interface_names": [],
                "labels": self._labels(managed=True),
                "agent": {"href": f"/orgs/{org}/agents/{100000 + index}", "type": "Host"},
                "ven": {
                    "href": f"/orgs/{org}/vens/{workload_id}",
                    "hostname": hostname,
                    "name": None,
                    "status": "active",
                    "ven_type": rng.choice(_VEN_TYPES),
                    "version": rng.choice(_VEN_VERSIONS),
                },
                "created_at": stamp,
                "updated_at": stamp,
                "created_by": {"href": f"/orgs/{org}/agents/{100000 + index}"},
                "caps": ["write"],
            }
        else:
            draw = rng.random()
            workload = {
                "href": f"/orgs/{org}/workloads/{workload_id}",
                "name": f"unmanaged-{index:06d}",
                "hostname": "",
                "description": "",
                "managed": False,
                "online": True,
                "deleted": False,
                "enforcement_mode": "visibility_only",
                "visibility_level": "flow_summary",
                "public_ip": None,
                "ignored_interface_names": [],
                "labels": self._labels(managed=False),
                "agent": self.unmanaged_agent,
                "ven": None,
                "created_at": stamp,
                "updated_at": stamp,
                "created_by": {"href": "/users/1"},
                "caps": ["write"],
            }
            if draw < 0.005:
                pass  # no `interfaces` key at all, as in one XSOAR example
            elif draw < 0.035:
                workload["interfaces"] = []
            else:
                workload["interfaces"] = [self.interface("lan", estate.allocate_ipv4(), managed=False)]
        return workload

    def move_primary(self, workload: Json) -> None:
        """Give the workload a new primary IPv4 (a new interface if it had none)."""
        address = self.estate.allocate_ipv4()
        interfaces = [dict(interface) for interface in workload.get("interfaces") or ()]
        for interface in interfaces:
            if (
                interface.get("name") not in _SHARED_NAMES
                and not interface.get("loopback")
                and _is_ipv4(interface.get("address"))
            ):
                interface["address"] = address
                break
        else:
            interfaces.insert(0, self.interface("eth0", address, managed=bool(workload.get("managed"))))
        workload["interfaces"] = interfaces


def _is_ipv4(address: object) -> bool:
    try:
        return isinstance(address, str) and ipaddress.ip_address(address).version == 4
    except ValueError:
        return False
