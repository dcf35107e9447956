"""Which invocation events start which kind of run."""

from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field

from dagsync.core.errors import EventError

Mode = Literal["sync", "reconcile"]
_SCHEDULE_SOURCES = {"aws.events", "aws.scheduler"}


@dataclass(frozen=True, slots=True)
class SyncRequest:
    mode: Mode = "sync"
    dry_run: bool = False
    force: bool = False
    trigger: Literal["schedule", "manual"] = "manual"


class ScheduledOptions(BaseModel):
    """What a schedule may ask for in its detail, e.g. the daily {"mode": "reconcile"}."""

    model_config = ConfigDict(extra="forbid", strict=True)

    dry_run: bool = Field(False, description="dry_run (true/false)")
    mode: Mode = Field("sync", description="mode ('sync' or 'reconcile')")


class ManualEvent(ScheduledOptions):
    """A console test event, `sam local invoke -e` file, CLI call or Scheduler payload."""

    # Only a person may let a run through the removal guard (docs/sync.md#removal-guard).
    force: bool = Field(False, description="force (true/false)")


def parse_event(event: Any) -> SyncRequest:
    """The request an event asks for; anything unexpected raises EventError before any I/O."""
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    if event.get("detail-type") == "Scheduled Event" and event.get("source") in _SCHEDULE_SOURCES:
        try:
            scheduled = parse(event=event, model=EventBridgeModel)
        except ValidationError as exc:
            raise EventError(f"malformed scheduled event: {_describe(exc)}") from None
        if isinstance(scheduled.detail, dict) and "force" in scheduled.detail:
            raise EventError(
                "force is accepted only on manual events, never on a scheduled one: "
                "a schedule cannot override the removal guard"
            )
        options = _options(scheduled.detail, ScheduledOptions, "a scheduled event's detail")
        return SyncRequest(mode=options.mode, dry_run=options.dry_run, trigger="schedule")
    manual = _options(event, ManualEvent, "a manual event")
    return SyncRequest(mode=manual.mode, dry_run=manual.dry_run, force=manual.force)


def _options[Options: ScheduledOptions](data: Any, model: type[Options], what: str) -> Options:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        accepted = [str(field.description) for field in model.model_fields.values()]
        raise EventError(
            f"{what} accepts only {', '.join(accepted[:-1])} and {accepted[-1]}: {_describe(exc)}"
        ) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "event"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)
