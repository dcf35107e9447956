"""Drift (docs/sync.md#canary): whether the device still holds what the snapshot records, and the
reconcile that reads the device when it may not.

Each run checks the canary, one non-persistent registration of ours the device loses with
everything else on a reboot, a failover or a clear. When it is missing, on a first run and on a
requested reconcile, the device's own table of our prefix replaces the snapshot as what was there
before, for the plan and the removal guard alike.
"""

from typing import NamedTuple

from aws_lambda_powertools import Logger

from dagsync import SERVICE
from dagsync.core.canary import CANARY_IP, Canary, excluding_canary
from dagsync.core.diff import Plan, plan_changes, subtract, with_prefix
from dagsync.core.errors import DagSyncError, PanosError
from dagsync.core.invocation import SyncRequest
from dagsync.core.models import TagMap, count_pairs
from dagsync.sync.ports import Device, SnapshotView
from dagsync.sync.target_run import TargetRun

logger = Logger(service=SERVICE, child=True)


class Planned(NamedTuple):
    """A plan and what it was made against: the confirmed and uncertain pairs before it."""

    plan: Plan
    confirmed: TagMap
    uncertain: TagMap


class Drift:
    """The canary's check and arming, and the reconcile against the device, for one deployment."""

    def __init__(self, canary: Canary, prefix: str) -> None:
        self._canary = canary
        self._prefix = prefix

    def canary_armed(self, device: Device) -> bool:
        """One filtered `show` of the canary address."""
        on_canary_ip = {ip: entry.tags for ip, entry in device.registered_ips(ip=CANARY_IP).items()}
        return self._canary.check(on_canary_ip).armed

    def reason(self, request: SyncRequest, snapshot: SnapshotView, device: Device) -> str | None:
        """Why this run must read the device instead of trusting the snapshot; None: it need not."""
        if request.mode == "reconcile":
            return "reconcile requested"
        if snapshot.generation == 0:
            # No snapshot (a first run, a recreated table, a renamed target): the device may still
            # hold pairs of ours that no snapshot records, and only its own table can tell.
            return "no snapshot for this target yet: reading what the device holds under TAG_PREFIX"
        if not self.canary_armed(device):
            return "canary missing: the device lost registrations (reboot, failover or clear)"
        return None

    def against_device[S: SnapshotView](
        self, run: TargetRun[S], snapshot_plan: Plan, confirmed: TagMap, reason: str
    ) -> Planned:
        """The plan against what the device holds of our prefix, which replaces the snapshot as
        `previous`: after a reboot or a clear it holds nothing of ours, so there is nothing to
        unregister. `run.repair` is what this sends that the snapshot's plan would not."""
        on_device = self._our_pairs_on(run.device)
        drift = count_pairs(subtract(on_device, confirmed)) + count_pairs(subtract(confirmed, on_device))
        plan = plan_changes(run.desired, on_device, {})
        run.repair = Plan(
            register=subtract(plan.register, snapshot_plan.register),
            unregister=subtract(plan.unregister, snapshot_plan.unregister),
        )
        logger.warning(
            "reconciling against the device",
            extra={
                "target": run.name,
                "reason": reason,
                "drifted_pairs": drift,
                "pairs_to_repair": run.repair.register_count + run.repair.unregister_count,
            },
        )
        run.result.reconciled = True
        return Planned(plan, on_device, {})

    def arm[S: SnapshotView](self, run: TargetRun[S]) -> None:
        """Register the canary, once the commit matches the device. Best effort: without a canary
        the next run reconciles this target again, which is safe."""
        try:
            outcome = run.device.register(self._canary.arming(), persistent=False)
        except PanosError as exc:
            problem = str(exc)
        else:
            if CANARY_IP not in outcome.failed:
                return
            problem = outcome.failed[CANARY_IP]
        logger.warning(
            "drift canary not registered; the next run reconciles this target again",
            extra={"target": run.name, "error": problem},
        )

    def _our_pairs_on(self, device: Device) -> dict[str, frozenset[str]]:
        """Our prefix's pairs as the device holds them; tags of other tools are left out.

        A reconcile removes every pair of our prefix that is not desired, so another deployment's
        canary under our prefix stops it: those pairs are that deployment's (docs/sync.md#ownership).
        """
        table = {ip: entry.tags for ip, entry in device.registered_ips().items()}
        shared = self._canary.check(table).shared_prefix
        if shared is not None:
            raise DagSyncError(shared)
        return with_prefix(excluding_canary(table), self._prefix)
