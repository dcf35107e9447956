"""Logger and metrics (SPEC §6). Metrics are derived from the run result, never from the engine's internals."""

import logging

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from dagsync.result import RunResult

SERVICE = "dagsync"
NAMESPACE = "DagSync"

logger = Logger(service=SERVICE)
# botocore logs whole request and response bodies at DEBUG, Secrets Manager values included; it
# stays at INFO whatever level the root logger is given (AWS_LAMBDA_LOG_LEVEL=DEBUG, say).
logging.getLogger("botocore").setLevel(logging.INFO)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def publish_metrics(result: RunResult) -> None:
    """Run-level metrics on the shared Metrics (flushed by the handler) and one EMF blob per target."""
    failed = sum(target.status in {"failed", "partial"} for target in result.targets)
    if result.error is not None:
        failed += 1
    metrics.add_metric(name="Workloads", unit=MetricUnit.Count, value=result.workloads)
    metrics.add_metric(name="Pairs", unit=MetricUnit.Count, value=result.pairs)
    metrics.add_metric(name="Failed", unit=MetricUnit.Count, value=failed)
    metrics.add_metric(
        name="Blocked", unit=MetricUnit.Count, value=sum(t.status == "blocked" for t in result.targets)
    )
    metrics.add_metric(name="SuccessfulRuns", unit=MetricUnit.Count, value=int(not result.should_raise))
    for target in result.targets:
        per_target = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        per_target.add_dimension(name="Target", value=target.target)
        per_target.add_metric(name="PairsRegistered", unit=MetricUnit.Count, value=target.registered)
        per_target.add_metric(name="PairsUnregistered", unit=MetricUnit.Count, value=target.unregistered)
        per_target.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=target.api_calls)
        per_target.add_metric(name="DriftRepaired", unit=MetricUnit.Count, value=target.drift_repaired)
        per_target.add_metric(name="Blocked", unit=MetricUnit.Count, value=int(target.status == "blocked"))
        per_target.add_metric(
            name="Failed", unit=MetricUnit.Count, value=int(target.status in {"failed", "partial"})
        )
        per_target.flush_metrics()
