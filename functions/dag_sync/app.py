"""Lambda entry point: parse the event, load config, run the engine, map errors to results."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dagsync.core.clocks import RemainingTime
from dagsync.core.errors import DagSyncError
from dagsync.core.invocation import SyncRequest, parse_event
from dagsync.core.result import RunResult
from dagsync.core.settings import load_settings
from dagsync.edges.observability import logger, metrics, publish_metrics, run_log_keys
from dagsync.edges.runtime import ExecutionEnvironment

# Built once per execution environment and kept while it is warm: the PAN-OS key cache (one keygen
# per cold start) and the options the clients are built with (docs/architecture.md#one-run).
ENVIRONMENT = ExecutionEnvironment()


class RunFailed(Exception):
    """Raised after the summary is logged, so Lambda retries and the Errors alarm see the run."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    correlation_id = event.get("id") if isinstance(event, dict) else None
    logger.set_correlation_id(correlation_id or context.aws_request_id)
    try:
        request = parse_event(event)
    except DagSyncError as exc:
        return _report(RunResult(mode="sync", dry_run=False, error=str(exc)))
    with run_log_keys(request):
        return _report(_run(request, context))


def _run(request: SyncRequest, context: LambdaContext) -> RunResult:
    # The invocation's own countdown, read whenever the run asks (docs/fan-out.md#deadlines).
    remaining_seconds = _countdown(context)
    try:
        settings = load_settings(os.environ)
        for note in settings.insecure_settings():
            logger.warning(note)
        engine = ENVIRONMENT.build_engine(
            settings,
            run_id=context.aws_request_id,
            lease_seconds=settings.lease_seconds(remaining_seconds()),
            remaining_seconds=remaining_seconds,
        )
        return engine.run(request)
    except DagSyncError as exc:
        error = str(exc)
    except Exception as exc:
        # Whatever a client did not expect still ends in a summary and metrics, not a bare traceback.
        logger.exception("run failed unexpectedly")
        error = f"unexpected {type(exc).__name__}; the function's log has the traceback"
    return RunResult(mode=request.mode, dry_run=request.dry_run, forced=request.force, error=error)


def _countdown(context: LambdaContext) -> RemainingTime:
    return lambda: context.get_remaining_time_in_millis() / 1000


def _report(result: RunResult) -> dict[str, Any]:
    """Log the summary and publish its metrics; raise afterwards when the run must be seen failing."""
    summary = result.to_dict()
    publish_metrics(result)
    failures = result.failures
    if failures:
        logger.error("run summary", extra={"summary": summary})
        raise RunFailed(result.error or f"run {result.status}; " + "; ".join(failures))
    logger.info("run summary", extra={"summary": summary})
    return summary
