"""Churn: one step of an estate's change over time, for the benchmarks and the scale tests."""

import random
from dataclasses import dataclass, field

from emulators.estate import BUILTIN_KEYS, LABEL_VALUES, Estate, _Factory, set_label


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
