"""Lambda entry point: parse the event, load config, run the engine, map errors to results."""

import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from dagsync.config import load_settings
from dagsync.errors import DagSyncError
from dagsync.events import parse_event
from dagsync.observability import logger, metrics, publish_metrics
from dagsync.result import RunResult
from dagsync.runtime import build_engine

# Leases outlive the invocation by this much, so a killed run's lease expires soon after it.
LEASE_MARGIN_SECONDS = 30.0


class RunFailed(Exception):
    """Raised after the summary is logged, so Lambda retries and the Errors alarm see the run."""


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    correlation_id = event.get("id") if isinstance(event, dict) else None
    logger.set_correlation_id(correlation_id or context.aws_request_id)
    request = None
    try:
        request = parse_event(event)
        logger.append_keys(trigger=request.trigger, mode=request.mode)
        settings = load_settings(os.environ)
        for note in settings.insecure_settings():
            logger.warning(note)
        engine = build_engine(
            settings,
            run_id=context.aws_request_id,
            lease_seconds=context.get_remaining_time_in_millis() / 1000 + LEASE_MARGIN_SECONDS,
        )
        result = engine.run(request)
    except DagSyncError as exc:
        result = RunResult(
            mode=request.mode if request else "sync",
            dry_run=request.dry_run if request else False,
            error=str(exc),
        )
    summary = result.to_dict()
    publish_metrics(result)
    if result.should_raise:
        logger.error("run summary", extra={"summary": summary})
        raise RunFailed(_failure_message(result))
    logger.info("run summary", extra={"summary": summary})
    return summary


def _failure_message(result: RunResult) -> str:
    if result.error is not None:
        return result.error
    failing = [
        f"{t.target}: {t.status}: {t.error}" for t in result.targets if t.status in {"failed", "partial"}
    ]
    return f"run {result.status}; " + "; ".join(failing)
