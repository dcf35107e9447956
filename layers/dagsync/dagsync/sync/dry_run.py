"""What a dry run reports for one target: the plan, and what each DAG would gain and lose
(docs/dag-awareness.md#membership-plans). Nothing is sent."""

from collections.abc import Sequence

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core.dag_filter import dag_changes
from dagsync.core.device import DagDefinition
from dagsync.core.diff import Plan, subtract, union
from dagsync.core.errors import PanosError
from dagsync.core.models import TagMap
from dagsync.core.result import DagChange
from dagsync.sync.ports import SnapshotView
from dagsync.sync.tags_in_use import TagsInUseAnswer
from dagsync.sync.target_run import TargetRun

logger = Logger(service=SERVICE, child=True)


def describe[S: SnapshotView](
    run: TargetRun[S],
    plan: Plan,
    before: TagMap,
    answer: TagsInUseAnswer | None,
    *,
    blocked: bool,
    prefix: str,
) -> None:
    """Fill the target's result with what the run would send and what each DAG would gain and lose."""
    run.result.plan = plan.as_lists()
    if not blocked:
        run.result.registered, run.result.unregistered = plan.register_count, plan.unregister_count
        if run.repair is not None:
            run.result.drift_repaired = run.repair.register_count + run.repair.unregister_count
    definitions: Sequence[DagDefinition] | None = None if answer is None else answer.definitions
    if definitions is None:
        definitions = _definitions(run)
    # A device that defines no DAG has no membership to report, and the plan shows none.
    if definitions:
        after = union(subtract(before, plan.unregister), plan.register)
        run.result.dag_changes = [
            DagChange(
                dag=change.dag,
                filter=change.filter,
                joins=list(change.joins),
                leaves=list(change.leaves),
                evaluable=change.problem is None,
                hostnames=dict(change.hostnames),
            )
            for change in dag_changes(definitions, before, after, run.hostnames, prefix=prefix)
        ]


def _definitions[S: SnapshotView](run: TargetRun[S]) -> Sequence[DagDefinition] | None:
    """The device's DAG definitions for a membership plan, or None when they cannot be read."""
    try:
        return run.device.address_groups()
    except PanosError as exc:
        logger.info(
            "DAG definitions not read; the plan has no membership changes",
            extra={"target": run.name, "error": str(exc)},
        )
        return None
