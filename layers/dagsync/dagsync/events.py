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
            parse(event=event, model=EventBridgeModel)
        except ValidationError as exc:
            raise EventError(f"malformed scheduled event: {_describe(exc)}") from None
        return SyncRequest(trigger="schedule")
    try:
        manual = ManualEvent.model_validate(event)
    except ValidationError as exc:
        raise EventError(
            "a manual event accepts only dry_run (true/false), mode ('sync' or 'reconcile') "
            f"and force (true/false): {_describe(exc)}"
        ) from None
    return SyncRequest(mode=manual.mode, dry_run=manual.dry_run, force=manual.force)


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
