"""SPEC §6: the summary a run returns and logs."""

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "blocked", "conflict", "partial", "failed"]
# Worst first: the run's status is the worst of its targets'.
_SEVERITY: tuple[Status, ...] = ("failed", "partial", "blocked", "conflict", "ok")


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

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "target": self.target,
            "status": self.status,
            "registered": self.registered,
            "unregistered": self.unregistered,
            "api_calls": self.api_calls,
            "drift_repaired": self.drift_repaired,
        }
        if self.reconciled:
            data["reconciled"] = True
        if self.error is not None:
            data["error"] = self.error
        if self.plan is not None:
            data["plan"] = self.plan
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

    @property
    def status(self) -> Status:
        if self.error is not None:
            return "failed"
        statuses = {target.status for target in self.targets}
        return next((status for status in _SEVERITY if status in statuses), "ok")

    @property
    def should_raise(self) -> bool:
        """Failed or partial runs raise so Lambda retries and the Errors alarm sees them."""
        return self.status in {"failed", "partial"}

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "workloads": self.workloads,
            "pairs": self.pairs,
            "targets": [target.to_dict() for target in self.targets],
            "warnings": self.warnings,
            "duration_ms": self.duration_ms,
        }
        if self.error is not None:
            data["error"] = self.error
        return data
