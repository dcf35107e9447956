"""The summary a run returns and logs (docs/results.md#summary)."""

from dataclasses import dataclass, field
from typing import Any, Literal

from dagsync.core.ha import MemberState

Status = Literal["ok", "blocked", "conflict", "incomplete", "partial", "failed"]
Source = Literal["export", "events", "none"]
# Worst first: the run's status is the worst of its targets' (docs/results.md#statuses).
_SEVERITY: tuple[Status, ...] = ("failed", "partial", "blocked", "incomplete", "conflict", "ok")
# What makes a run raise, so Lambda retries and the Errors alarm see it; `incomplete` is progress.
_RAISING: frozenset[Status] = frozenset({"failed", "partial"})
# Optional keys of a summary appear only when they say something: the summary of an ordinary run is
# as short as the documented example (docs/results.md#summary).


@dataclass
class DagChange:
    """What one dynamic address group gains and loses under a plan (docs/dag-awareness.md#membership-plans)."""

    dag: str
    filter: str
    joins: list[str] = field(default_factory=list)
    leaves: list[str] = field(default_factory=list)
    # False when the filter could not be evaluated: joins and leaves are then unknown, not empty.
    evaluable: bool = True
    hostnames: dict[str, str] = field(default_factory=dict)  # ip -> workload hostname, where known

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "dag": self.dag,
            "filter": self.filter,
            "joins": self.joins,
            "leaves": self.leaves,
            "evaluable": self.evaluable,
        }
        if self.hostnames:
            data["hostnames"] = self.hostnames
        return data


@dataclass
class TargetResult:
    target: str
    status: Status = "ok"
    registered: int = 0
    unregistered: int = 0
    api_calls: int = 0
    drift_repaired: int = 0
    reconciled: bool = False
    error: str | None = None
    plan: dict[str, list[list[str]]] | None = None
    remaining: int = 0  # pairs still to send when the run's time ran out
    dag_changes: list[DagChange] | None = None
    last_sync_age_seconds: float | None = None  # since the target last ended `ok`; 0 when it just did
    conflict_seconds: float | None = None  # how long another run's lease has been held
    table_full: int = 0  # entries refused because the device's registered-IP table is full
    warnings: list[str] = field(default_factory=list)  # this target's own; the run's list gathers them

    def stuck(self, after_seconds: float | None) -> bool:
        """A conflict that outlasted any run of ours: a lease nobody will release."""
        return (
            self.status == "conflict"
            and after_seconds is not None
            and self.conflict_seconds is not None
            and self.conflict_seconds > after_seconds
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "status": self.status,
            "registered": self.registered,
            "unregistered": self.unregistered,
            "api_calls": self.api_calls,
            "drift_repaired": self.drift_repaired,
        }
        optional: dict[str, Any] = {
            "reconciled": True if self.reconciled else None,
            "remaining": self.remaining if self.remaining or self.status == "incomplete" else None,
            "error": self.error,
            "plan": self.plan,
            "dag_changes": None if self.dag_changes is None else [c.to_dict() for c in self.dag_changes],
            "last_sync_age_seconds": None if self.status == "ok" else self.last_sync_age_seconds,
            "conflict_seconds": self.conflict_seconds if self.status == "conflict" else None,
            "table_full": self.table_full or None,
        }
        data.update((key, value) for key, value in optional.items() if value is not None)
        return data


@dataclass
class RunResult:
    mode: str
    dry_run: bool
    workloads: int = 0
    pairs: int = 0
    targets: list[TargetResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    duration_ms: int = 0
    error: str | None = None
    source: Source | None = None  # how the inventory was read (docs/change-feed.md#decision)
    events_seen: int | None = None
    workloads_fetched: int | None = None
    forced: bool = False
    shared_ip_conflicts: int = 0
    event_to_device_seconds: float | None = None  # oldest applied event to the device's confirmation
    # A target in `conflict` for longer than this is stuck (twice the function timeout); None: never.
    stuck_after_seconds: float | None = None
    # The management address written to and each address's HA state (docs/high-availability.md).
    device_address: str | None = None
    members: list[MemberState] = field(default_factory=list)

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "failed"
        statuses = {target.status for target in self.targets}
        return next((status for status in _SEVERITY if status in statuses), "ok")

    @property
    def unfinished(self) -> int:
        """Targets the run's time ran out on: the Step Functions fan-out invokes again while any are
        left (docs/fan-out.md#step-functions)."""
        return sum(target.status == "incomplete" for target in self.targets)

    @property
    def stuck_targets(self) -> list[TargetResult]:
        return [target for target in self.targets if target.stuck(self.stuck_after_seconds)]

    @property
    def failures(self) -> list[str]:
        """Why the run must raise after logging its summary; empty when it must not."""
        if self.error is not None:
            return [self.error]
        reasons = [f"{t.target}: {t.status}: {t.error}" for t in self.targets if t.status in _RAISING]
        reasons += [
            f"{t.target}: another run's lease has been held for {t.conflict_seconds:.0f} s, "
            f"more than {self.stuck_after_seconds:.0f} s: it is stuck"
            for t in self.stuck_targets
        ]
        return reasons

    @property
    def should_raise(self) -> bool:
        """Failed or partial targets, and stuck leases, raise so Lambda retries and alarms see them."""
        return bool(self.failures)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "workloads": self.workloads,
            "pairs": self.pairs,
            "targets": [target.to_dict() for target in self.targets],
            "unfinished": self.unfinished,
            "warnings": self.warnings,
            "duration_ms": self.duration_ms,
        }
        optional: dict[str, Any] = {
            "error": self.error,
            "source": self.source,
            "events_seen": self.events_seen,
            "workloads_fetched": self.workloads_fetched,
            "forced": True if self.forced else None,
            "shared_ip_conflicts": self.shared_ip_conflicts or None,
            "event_to_device_seconds": self.event_to_device_seconds,
            "device_address": self.device_address,
            "members": [member.to_dict() for member in self.members] or None,
        }
        data.update((key, value) for key, value in optional.items() if value is not None)
        return data
