"""SPEC §5: which invocation events start which kind of run."""

from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict

from dagsync.errors import EventError

Mode = Literal["sync", "reconcile"]
_SCHEDULE_SOURCES = {"aws.events", "aws.scheduler"}


@dataclass(frozen=True, slots=True)
class SyncRequest:
    mode: Mode = "sync"
    dry_run: bool = False
    force: bool = False
    trigger: Literal["schedule", "manual"] = "manual"


class ManualEvent(BaseModel):
    """A console test event, `sam local invoke -e` file, CLI call or Scheduler payload."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = False
    mode: Mode = "sync"
    force: bool = False


def parse_event(event: Any) -> SyncRequest:
    """The request an event asks for; anything unexpected raises EventError before any I/O."""
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    if event.get("detail-type") == "Scheduled Event" and event.get("source") in _SCHEDULE_SOURCES:
        try:
            scheduled = parse(event=event, model=EventBridgeModel)
        except ValidationError as exc:
            raise EventError(f"malformed scheduled event: {_describe(exc)}") from None
        # A schedule may ask for more than a sync in its detail, e.g. the daily {"mode": "reconcile"}.
        options = _options(scheduled.detail, "a scheduled event's detail")
        return SyncRequest(
            mode=options.mode, dry_run=options.dry_run, force=options.force, trigger="schedule"
        )
    options = _options(event, "a manual event")
    return SyncRequest(mode=options.mode, dry_run=options.dry_run, force=options.force)


def _options(data: Any, what: str) -> ManualEvent:
    try:
        return ManualEvent.model_validate(data)
    except ValidationError as exc:
        raise EventError(
            f"{what} accepts only dry_run (true/false), mode ('sync' or 'reconcile') "
            f"and force (true/false): {_describe(exc)}"
        ) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
