"""Seeded synthetic PCE estates: workload JSON shaped like a real PCE 25.x answer, plus churn.

The shapes follow the real samples (PCE 25.2 workload search, illumio-py and XSOAR fixtures):
inline labels `{href, key, value}` with custom keys, managed and unmanaged workloads, link-local
and ULA/global IPv6, HA pairs sharing an address, workloads without interfaces or labels, and a
workload-level `public_ip` that must never become a tag.

Objects that never change (label objects, network references, agent configs) are shared between
workloads to keep 100k+ estates small; churn replaces them rather than mutating them.
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


@dataclass
class Estate:
    """A PCE org's workloads (raw JSON dicts) and label table; mutable, and deterministic per seed."""

    org_id: int
    workloads: list[Json]
    labels: dict[str, Json]  # href -> {"href", "key", "value"}
    next_ipv4: int = 1
    next_ipv6: int = 1
    next_label_id: int = 1
    next_index: int = 0
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


@dataclass
class ChurnReport:
    """What one churn step changed, by workload href."""

    relabeled: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # primary IPv4 replaced by a new address
    deleted: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.relabeled) + len(self.moved) + len(self.deleted) + len(self.added)


def generate_estate(
    n_workloads: int,
    seed: int = 1,
    *,
    org_id: int = 1,
    unmanaged_ratio: float = 1 / 3,
    ha_pairs: int | None = None,
) -> Estate:
    """An estate of n workloads; the same arguments always give the same estate.

    `ha_pairs` (default n // 500, at least 1 when n >= 2) pairs of workloads share one VIP.
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
    return estate


def churn(estate: Estate, percent: float, seed: int) -> ChurnReport:
    """Mutate the estate in place: relabel, move, delete and add `percent` % of it each.

    Each of the four kinds touches round(len(workloads) * percent / 100) distinct workloads
    (counted before the step, at most a third of them), so the estate keeps its size.
    """
    rng = random.Random(seed)
    size = len(estate.workloads)
    count = min(round(size * percent / 100), size // 3)
    report = ChurnReport()
    if count <= 0:
        return report
    chosen = rng.sample(range(size), 3 * count)
    factory = _Factory(estate, rng, 1 / 3)
    for index in chosen[:count]:
        workload = estate.workloads[index]
        key = rng.choice(BUILTIN_KEYS)
        current = {label.get("key"): label.get("value") for label in workload.get("labels") or ()}
        options = [value for value in LABEL_VALUES[key] if value != current.get(key)]
        set_label(estate, workload, key, rng.choice(options))
        report.relabeled.append(workload["href"])
    for index in chosen[count : 2 * count]:
        workload = estate.workloads[index]
        factory.move_primary(workload)
        report.moved.append(workload["href"])
    doomed = {estate.workloads[index]["href"] for index in chosen[2 * count :]}
    report.deleted.extend(estate.workloads[index]["href"] for index in chosen[2 * count :])
    estate.workloads[:] = [workload for workload in estate.workloads if workload["href"] not in doomed]
    for _ in range(count):
        workload = factory.workload()
        estate.workloads.append(workload)
        report.added.append(workload["href"])
    return report


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
                interface.get("name") != "vip0"
                and not interface.get("loopback")
                and "." in str(interface.get("address"))
            ):
                interface["address"] = address
                break
        else:
            interfaces.insert(0, self.interface("eth0", address, managed=bool(workload.get("managed"))))
        workload["interfaces"] = interfaces
