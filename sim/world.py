"""The simulated world: what changes in the estate, how often, and what the mapping then asks for.

`WORLD` is the generator, as data: each `ChangeKind` is a kind of change an operator or a VEN
makes, its rate per hour per 1,000 workloads, and the convergence bound it is held to (the
targeted bound when its events name at most MAX_TARGETED_WORKLOADS workloads, the export bound
when only a full export shows it). `Estate.apply` makes one change through the PCE emulator's
own helpers, which write the events a real PCE would.
"""

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dagsync.core.canary import RESERVED_IPS
from dagsync.core.mapping import map_workloads
from dagsync.core.models import TagMap, Workload
from emulators.estate import LABEL_VALUES, Estate, generate_estate
from emulators.pce import PceEmulator

Json = dict[str, Any]
Bound = Literal["targeted", "export"]
PREFIX = "illumio."
LABEL_KEYS = frozenset({"role", "app", "env", "loc"})
QUARANTINE = "Quarantine"
# Address shapes real PCEs hold that must never become a tag or break a run (docs/mapping.md#excluded-addresses).
ODD_ADDRESSES = ("n/a", "10.0.0.256", "fe80::1%eth0", "::ffff:10.250.0.9", "127.0.0.1", "0.0.0.0")  # noqa: S104 - data, never bound


@dataclass(frozen=True)
class ChangeKind:
    """One kind of change to the estate: how often per hour per 1,000 workloads, and its bound."""

    name: str
    per_hour: float
    bound: Bound = "targeted"


@dataclass(frozen=True)
class WorldSpec:
    """The estate and the changes made to it; the defaults are the simulation's world."""

    workloads: int = 300
    # The estate drifts between these fractions of its starting size: adds stop above the top,
    # deletes below the bottom, so a month grows and shrinks it without running away.
    floor: float = 0.8
    ceiling: float = 1.2
    bulk_size: int = 55  # past MAX_TARGETED_WORKLOADS (50): a bulk change costs a full export
    changes: tuple[ChangeKind, ...] = (
        ChangeKind("relabel", 4.0),
        ChangeKind("quarantine", 1.5),
        ChangeKind("release", 1.5),
        ChangeKind("ip_move", 1.0),
        ChangeKind("readdress", 1.0),
        ChangeKind("add", 1.5),
        ChangeKind("delete", 1.3),
        ChangeKind("share_address", 0.5),
        ChangeKind("odd_address", 0.5),
        ChangeKind("link_local_noise", 4.0),
        ChangeKind("label_rename", 0.15, "export"),
        ChangeKind("label_delete", 0.15, "export"),
        ChangeKind("bulk_relabel", 0.05, "export"),
    )

    def rate_per_minute(self, kind: ChangeKind) -> float:
        return kind.per_hour * self.workloads / 1000 / 60


class World:
    """The estate behind the PCE emulator, changed only through the emulator's helpers."""

    def __init__(self, spec: WorldSpec, pce: PceEmulator, rng: random.Random, seed: int) -> None:
        self.spec = spec
        self.pce = pce
        self.rng = rng
        self.estate: Estate = generate_estate(spec.workloads, seed)
        pce.load_estate(self.estate)
        self._appliers: Mapping[str, Callable[[], str | None]] = {
            "relabel": self._relabel,
            "quarantine": self._quarantine,
            "release": self._release,
            "ip_move": self._ip_move,
            "readdress": self._readdress,
            "add": self._add,
            "delete": self._delete,
            "share_address": self._share_address,
            "odd_address": self._odd_address,
            "link_local_noise": self._link_local_noise,
            "label_rename": self._label_rename,
            "label_delete": self._label_delete,
            "bulk_relabel": self._bulk_relabel,
        }
        missing = {kind.name for kind in spec.changes} - set(self._appliers)
        if missing:
            raise ValueError(f"no way to make these changes: {sorted(missing)}")

    def apply(self, kind: ChangeKind) -> str | None:
        """Make one change of `kind`; a short description, or None when the estate offers none."""
        return self._appliers[kind.name]()

    def desired(self) -> TagMap:
        """The pairs docs/mapping.md asks for, from the emulator's own workload objects."""
        return map_workloads(
            (_as_workload(workload) for workload in self.pce.workloads),
            prefix=PREFIX,
            label_keys=LABEL_KEYS,
            include_ipv6=True,
            reserved_ips=RESERVED_IPS,
        ).desired

    # -- the changes --------------------------------------------------------------------------

    def _pick(self, where: Callable[[Json], bool] = lambda _: True) -> Json | None:
        candidates = [workload for workload in self.pce.workloads if where(workload)]
        return self.rng.choice(candidates) if candidates else None

    def _relabel(self) -> str | None:
        workload = self._pick()
        if workload is None:
            return None
        key = self.rng.choice(sorted(LABEL_KEYS - {"env"}))
        value = self.rng.choice(LABEL_VALUES[key])
        self.pce.relabel(workload["href"], key, value)
        return f"{workload['href']} {key}={value}"

    def _quarantine(self) -> str | None:
        workload = self._pick(lambda w: _label(w, "env") != QUARANTINE)
        if workload is None:
            return None
        self.pce.relabel(workload["href"], "env", QUARANTINE)
        return f"{workload['href']} env={QUARANTINE}"

    def _release(self) -> str | None:
        workload = self._pick(lambda w: _label(w, "env") == QUARANTINE)
        if workload is None:
            return None
        self.pce.relabel(workload["href"], "env", "Production")
        return f"{workload['href']} env=Production"

    def _ip_move(self) -> str | None:
        """An address leaves one workload and is given to another (a VIP or a reused DHCP lease)."""
        source = self._pick(lambda w: len(_addresses(w)) >= 2)
        if source is None:
            return None
        target = self._pick(lambda w: w["href"] != source["href"])
        if target is None:
            return None
        moved, *kept = _addresses(source)
        self.pce.set_addresses(source["href"], kept)
        self.pce.set_addresses(target["href"], [*_addresses(target), moved])
        return f"{moved} from {source['href']} to {target['href']}"

    def _readdress(self) -> str | None:
        workload = self._pick()
        if workload is None:
            return None
        fresh = self.estate.allocate_ipv4()
        self.pce.set_addresses(workload["href"], [fresh, *_addresses(workload)[1:]])
        return f"{workload['href']} now {fresh}"

    def _add(self) -> str | None:
        if len(self.pce.workloads) >= self.spec.workloads * self.spec.ceiling:
            return None
        model = self._pick()
        if model is None:
            return None
        index = self.estate.next_index
        self.estate.next_index += 1
        href = f"/orgs/{self.estate.org_id}/workloads/sim-{index:06d}"
        address = self.estate.allocate_ipv4()
        workload = {
            **model,
            "href": href,
            "hostname": f"sim-{index:06d}.example.internal",
            "name": None,
            "interfaces": [{"name": "eth0", "address": address, "cidr_block": 16, "loopback": False}],
        }
        workload.pop("ven", None)
        workload.pop("agent", None)
        workload["managed"] = False
        self.pce.upsert_workload(workload)
        return f"{href} at {address}"

    def _delete(self) -> str | None:
        if len(self.pce.workloads) <= self.spec.workloads * self.spec.floor:
            return None
        workload = self._pick()
        if workload is None:
            return None
        soft = self.rng.random() < 0.3
        self.pce.delete_workload(workload["href"], soft=soft)
        return f"{workload['href']}{' (soft)' if soft else ''}"

    def _share_address(self) -> str | None:
        """A second workload, labelled differently, carries another's address (an HA VIP)."""
        source = self._pick(lambda w: bool(_addresses(w)))
        target = self._pick(lambda w: source is not None and w["href"] != source["href"])
        if source is None or target is None:
            return None
        shared = _addresses(source)[0]
        self.pce.set_addresses(target["href"], [*_addresses(target), shared])
        return f"{shared} shared by {source['href']} and {target['href']}"

    def _odd_address(self) -> str | None:
        workload = self._pick()
        if workload is None:
            return None
        odd = self.rng.choice(ODD_ADDRESSES)
        self.pce.set_addresses(workload["href"], [*_addresses(workload), odd])
        return f"{workload['href']} gains {odd!r}"

    def _link_local_noise(self) -> str | None:
        workload = self._pick(lambda w: bool(w.get("ven")))
        if workload is None:
            return None
        self.pce.emit_link_local_churn(workload["href"])
        return str(workload["href"])

    def _label_rename(self) -> str | None:
        in_use = sorted(
            {
                label["href"]
                for w in self.pce.workloads
                for label in w.get("labels") or ()
                if label.get("key") in LABEL_KEYS
            }
        )
        if not in_use:
            return None
        href = self.rng.choice(in_use)
        label = self.pce.labels[href]
        value = f"{label['value'].split(' r')[0]} r{self.rng.randrange(1000)}"
        self.pce.rename_label(href, value)
        return f"{label['key']}={label['value']} renamed {value}"

    def _label_delete(self) -> str | None:
        """An unused label is deleted (a PCE refuses to delete one in use): a full export, no pair."""
        in_use = {label["href"] for w in self.pce.workloads for label in w.get("labels") or ()}
        unused = sorted(set(self.pce.labels) - in_use)
        if not unused:
            return None
        href = self.rng.choice(unused)
        del self.pce.labels[href]
        self.pce.emit_event("label.delete")
        return href

    def _bulk_relabel(self) -> str | None:
        count = min(self.spec.bulk_size, len(self.pce.workloads))
        chosen = self.rng.sample([w["href"] for w in self.pce.workloads], count)
        value = self.rng.choice(LABEL_VALUES["app"])
        self.pce.bulk_relabel(chosen, "app", value)
        return f"{count} workloads app={value}"


def _label(workload: Json, key: str) -> str | None:
    return next((label["value"] for label in workload.get("labels") or () if label.get("key") == key), None)


def _addresses(workload: Json) -> list[str]:
    return [i["address"] for i in workload.get("interfaces") or () if i.get("address")]


def _as_workload(workload: Json) -> Workload:
    return Workload(
        href=workload["href"],
        labels=tuple((label["key"], label["value"]) for label in workload.get("labels") or ()),
        addresses=tuple(
            i["address"]
            for i in workload.get("interfaces") or ()
            if i.get("address") and i.get("loopback") is not True
        ),
    )


def poisson(rng: random.Random, mean: float) -> int:
    """How many of something happen in one minute at `mean` per minute (Knuth's method: means are small)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
