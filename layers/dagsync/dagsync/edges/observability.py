"""Logger and metrics (docs/results.md#metrics).

Metrics are derived from the run result, never from the engine's internals.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from dagsync import SERVICE
from dagsync.core.invocation import SyncRequest
from dagsync.core.result import RunResult, TargetResult

NAMESPACE = "DagSync"

logger = Logger(service=SERVICE)
# botocore logs whole request and response bodies at DEBUG, Secrets Manager values included; it
# stays at INFO whatever level the root logger is given (AWS_LAMBDA_LOG_LEVEL=DEBUG, say).
logging.getLogger("botocore").setLevel(logging.INFO)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@contextmanager
def run_log_keys(request: SyncRequest) -> Iterator[None]:
    """Every log line of the run says what started it, in which mode, and whether it was forced."""
    keys: dict[str, object] = {"trigger": request.trigger, "mode": request.mode}
    if request.force:
        keys["forced"] = True
    logger.append_keys(**keys)
    try:
        yield
    finally:
        logger.remove_keys(list(keys))


def publish_metrics(result: RunResult) -> None:
    """Run-level metrics on the shared Metrics (flushed by the handler) and one EMF blob per target.

    Run-level counts repeat the per-target ones without the Target dimension, so alarms need no
    search over targets; `LastSyncAgeSeconds` there is the stalest target's.
    """
    failed = sum(_failed(target) for target in result.targets) + int(result.error is not None)
    ages = [t.last_sync_age_seconds for t in result.targets if t.last_sync_age_seconds is not None]
    count = MetricUnit.Count
    metrics.add_metric(name="Workloads", unit=count, value=result.workloads)
    metrics.add_metric(name="Pairs", unit=count, value=result.pairs)
    metrics.add_metric(name="SharedIpConflicts", unit=count, value=result.shared_ip_conflicts)
    metrics.add_metric(name="Failed", unit=count, value=failed)
    metrics.add_metric(name="Blocked", unit=count, value=_with_status(result, "blocked"))
    metrics.add_metric(name="Incomplete", unit=count, value=_with_status(result, "incomplete"))
    metrics.add_metric(name="Conflict", unit=count, value=len(result.stuck_targets))
    metrics.add_metric(
        name="DeviceTableFull", unit=count, value=sum(target.table_full > 0 for target in result.targets)
    )
    metrics.add_metric(name="SuccessfulRuns", unit=count, value=int(not result.should_raise))
    if ages:
        metrics.add_metric(name="LastSyncAgeSeconds", unit=MetricUnit.Seconds, value=max(ages))
    if result.event_to_device_seconds is not None:
        metrics.add_metric(
            name="EventToDeviceSeconds", unit=MetricUnit.Seconds, value=result.event_to_device_seconds
        )
    for target in result.targets:
        _publish_target(target, stuck=target.stuck(result.stuck_after_seconds))


def _publish_target(target: TargetResult, *, stuck: bool) -> None:
    """One EMF blob with the Target dimension. `Conflict` counts only stuck leases: a conflict with a
    run still in progress is the normal, quiet outcome of overlapping schedules."""
    blob = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    blob.add_dimension(name="Target", value=target.target)
    counts = {
        "PairsRegistered": target.registered,
        "PairsUnregistered": target.unregistered,
        "ApiCalls": target.api_calls,
        "DriftRepaired": target.drift_repaired,
        "Blocked": int(target.status == "blocked"),
        "Failed": int(_failed(target)),
        "Conflict": int(stuck),
        "Incomplete": int(target.status == "incomplete"),
        "DeviceTableFull": int(target.table_full > 0),
    }
    for name, value in counts.items():
        blob.add_metric(name=name, unit=MetricUnit.Count, value=value)
    if target.last_sync_age_seconds is not None:
        blob.add_metric(
            name="LastSyncAgeSeconds", unit=MetricUnit.Seconds, value=target.last_sync_age_seconds
        )
    blob.flush_metrics()


def _failed(target: TargetResult) -> bool:
    return target.status in {"failed", "partial"}


def _with_status(result: RunResult, status: str) -> int:
    return sum(target.status == status for target in result.targets)
