"""Runs the real handler against the emulators, changing the estate in between.

Prints each run's summary and the membership of a few Dynamic Address Groups, as an
operator would see them on Panorama; first, what TAGS_IN_USE_ONLY would cut for these DAGs, and
before run 2, the membership plan of a dry run. With STATE_TAGS, a DAG holds the fully enforced
payments hosts, and a workload whose VEN goes offline moves into the "offline" DAG through the
change feed. Panorama is an HA pair: every run asks both members their state and writes only to
the active one, and the last run follows a failover to the other member.
"""

import json
import os
from pathlib import Path
from typing import Any

# The function's own JSON logs and EMF metrics would bury the demo's output.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

from dagsync.__main__ import render_plan
from dagsync.core.result import DagChange, RunResult, TargetResult
from dagsync.sync.tags_in_use import tags_named
from emulators.local import LocalDeployment
from emulators.panos import HaPair, PanosEmulator
from emulators.pce import PceEmulator

EVENTS = Path(__file__).resolve().parents[1] / "events"
DAGS = {
    "ordering-dev": "'illumio.env.Development' and 'illumio.app.Ordering'",
    "ordering-prod": "'illumio.env.Production' and 'illumio.app.Ordering'",
    "payments": "'illumio.app.Payments'",
    "quarantine": "'illumio.env.Quarantine'",
    "payments-trusted": "'illumio.app.Payments' and 'illumio.enforcement.full'",
    "offline": "'illumio.online.no'",
}


def workload(name: str, labels: dict[str, str], addresses: list[str], mode: str = "full") -> dict[str, Any]:
    return {
        "href": f"/orgs/1/workloads/{name}",
        "hostname": name,
        "managed": True,
        "deleted": False,
        "enforcement_mode": mode,
        "online": True,
        "agent": {"href": f"/orgs/1/agents/{name}", "type": "Host"},
        "ven": {"href": f"/orgs/1/vens/{name}", "hostname": name, "status": "active"},
        "labels": [{"href": f"/orgs/1/labels/{k}-{v}", "key": k, "value": v} for k, v in labels.items()],
        "interfaces": [{"name": f"eth{i}", "address": a} for i, a in enumerate(addresses)],
    }


ESTATE = [
    workload(
        "ordering-web-1", {"role": "Web", "app": "Ordering", "env": "Development"}, ["10.10.1.11", "fe80::11"]
    ),
    workload("ordering-web-2", {"role": "Web", "app": "Ordering", "env": "Production"}, ["10.20.1.12"]),
    workload("ordering-db", {"role": "Database", "app": "Ordering", "env": "Production"}, ["10.20.1.13"]),
    workload("payments-api-1", {"role": "API", "app": "Payments", "env": "Production"}, ["10.20.2.21"]),
    workload(
        "payments-api-2", {"role": "API", "app": "Payments", "env": "Production"}, ["10.20.2.22"], "selective"
    ),
    workload("payments-vip-a", {"role": "LB", "app": "Payments", "env": "Production"}, ["10.20.2.100"]),
    workload("payments-vip-b", {"role": "LB", "app": "Payments", "env": "Production"}, ["10.20.2.100"]),
]
# As real PCEs report them: a NAT address as a pseudo-interface on two workloads behind it, and a
# docker0 bridge on two container hosts that run 2 leaves alone. Both are conflicts run 1 warns about.
for name, interface in (
    ("ordering-web-2", {"name": "eth0.public", "address": "198.51.100.10", "cidr_block": 32}),
    ("payments-vip-a", {"name": "eth0.public", "address": "198.51.100.10", "cidr_block": 32}),
    ("payments-vip-b", {"name": "docker0", "address": "172.17.0.1", "cidr_block": 16}),
    ("ordering-web-2", {"name": "docker0", "address": "172.17.0.1", "cidr_block": 16}),
):
    next(w for w in ESTATE if w["hostname"] == name)["interfaces"].append(interface)


def show(title: str, summary: dict[str, Any], panos: PanosEmulator) -> None:
    print(f"\n=== {title} ===")
    target = summary["targets"][0]
    states = ", ".join(f"{member['address']} {member['state']}" for member in summary.get("members", []))
    print(f"written through {summary.get('device_address')} (HA: {states})")
    print(
        f"status {summary['status']}: {summary['workloads']} workloads, {summary['pairs']} pairs desired; "
        f"registered {target['registered']}, unregistered {target['unregistered']}, "
        f"{target['api_calls']} PAN-OS API calls, {summary['duration_ms']} ms"
    )
    if "source" in summary:
        print(
            f"inventory read: {summary['source']}"
            f" ({summary.get('events_seen', 0)} events seen, {summary.get('workloads_fetched', 'all')} workloads fetched)"
        )
    for warning in summary["warnings"]:
        print(f"warning: {warning}")
    print("DAG membership on Panorama:")
    for name, dag_filter in DAGS.items():
        members = ", ".join(panos.dag_members(dag_filter)) or "(empty)"
        print(f"  {name:<16} {dag_filter:<55} {members}")


def show_tags_in_use_cut(deployment: LocalDeployment) -> None:
    """What TAGS_IN_USE_ONLY would save here: a dry run under it beside the estate's own count."""
    previous = os.environ.get("TAGS_IN_USE_ONLY")
    os.environ["TAGS_IN_USE_ONLY"] = "true"  # the function reads its settings on every invocation
    try:
        plan = deployment.invoke({"dry_run": True})
    finally:
        os.environ.pop("TAGS_IN_USE_ONLY")
        if previous is not None:
            os.environ["TAGS_IN_USE_ONLY"] = previous
    in_use = sorted(set().union(*(tags_named(dag_filter, "illumio.") for dag_filter in DAGS.values())))
    cut, every = len(plan["targets"][0]["plan"]["register"]), plan["pairs"]
    print("\n=== dry run with TAGS_IN_USE_ONLY=true: only the tags some DAG names (nothing sent) ===")
    print(f"tags the {len(DAGS)} DAGs name: {', '.join(in_use)}")
    print(f"pairs registered: {cut} with TAGS_IN_USE_ONLY=true, {every} without ({every - cut} saved)")
    print(f"run 1 below runs without it and registers all {every}")


def main() -> None:
    pce = PceEmulator(workloads=ESTATE)
    pce.retry_after, pce.running_polls = 0, 0
    panos = PanosEmulator("panorama", serial="007951000000901", api_keys=("test-api-key",))
    peer = PanosEmulator("panorama", serial="007951000000902", api_keys=("test-api-key",))
    pair = HaPair(panos, peer)
    for member in (panos, peer):
        for name, dag_filter in DAGS.items():
            member.define_dag(name, dag_filter)
    scheduled = json.loads((EVENTS / "scheduled.json").read_text())
    # A seven-workload estate turns over more than a quarter of its pairs in one afternoon; a real
    # estate would not, and the rolling 24-hour removal guard would rightly stop it
    # (docs/sync.md#removal-guard).
    settings = {"MAX_REMOVAL_RATIO": "0.5", "STATE_TAGS": "enforcement,online"}
    with LocalDeployment(pce=pce, panos=panos, peer=peer, settings=settings) as deployment:
        print(f"PCE emulator     {deployment.env['PCE_URL']}")
        print(f"PAN-OS emulator  {deployment.env['PANOS_URL']} (a Panorama HA pair)")
        print("AWS              moto (DynamoDB table and two secrets)")
        show_tags_in_use_cut(deployment)
        show("run 1: first sync (events/scheduled.json)", deployment.invoke(scheduled), panos)

        print("\nChanging the estate on the PCE:")
        print("  ordering-web-1 relabelled env Development -> Quarantine")
        pce.relabel("/orgs/1/workloads/ordering-web-1", "env", "Quarantine")
        print("  ordering-db moved from 10.20.1.13 to 10.20.1.14")
        pce.set_addresses("/orgs/1/workloads/ordering-db", ["10.20.1.14"])
        print("  payments-api-2 deleted")
        pce.delete_workload("/orgs/1/workloads/payments-api-2")
        print("  ordering-web-3 added in Production at 10.20.1.15")
        pce.upsert_workload(
            workload(
                "ordering-web-3", {"role": "Web", "app": "Ordering", "env": "Production"}, ["10.20.1.15"]
            )
        )
        plan = deployment.invoke({"dry_run": True})
        print("\n=== dry run: the membership plan before run 2 (nothing sent) ===")
        print(render_plan(_as_result(plan)))
        panos.clear_log()
        show("run 2: the difference only", deployment.invoke(scheduled), panos)
        for entry in panos.calls("user-id"):
            for verb, pairs in entry.uid_pairs.items():
                for ip, tag in sorted(pairs):
                    print(f"  sent {verb:<10} {ip:<12} {tag}")

        panos.clear_log()
        show("run 3: nothing changed", deployment.invoke(scheduled), panos)
        print(
            f"  device calls this run: {len(panos.requests)} to the active member (the HA state query and the"
            f" canary check), {len(peer.requests)} to the passive one (the HA state query)"
        )

        print("\nOn the PCE: payments-api-1 relabelled env Production -> Quarantine")
        pce.relabel("/orgs/1/workloads/payments-api-1", "env", "Quarantine")
        pce.clear_log()
        show("run 4: one relabel through the change feed", deployment.invoke(scheduled), panos)
        print(f"  PCE requests this run: {[entry.path for entry in pce.requests]}")

        print("\nOn the PCE: the offline check marks payments-api-1's VEN offline")
        pce.go_offline("/orgs/1/workloads/payments-api-1")
        pce.clear_log()
        jobs = pce.jobs_created
        show(
            "run 5: a VEN offline through the change feed (STATE_TAGS=enforcement,online)",
            deployment.invoke(scheduled),
            panos,
        )
        print(f"  PCE requests this run: {[entry.path for entry in pce.requests]}")
        print(f"  export jobs this run: {pce.jobs_created - jobs}")
        show_failover(deployment, pair, scheduled)
    print("\nAll emulators stopped.")


def show_failover(deployment: LocalDeployment, pair: HaPair, scheduled: dict[str, Any]) -> None:
    """The next run after a failover writes through the other member, with no configuration changed."""
    print("\nOn Panorama: a failover; the second member is active now, its table synced")
    pair.fail_over(synced=True)
    for member in pair.members:
        member.clear_log()
    show("run 6: the failover followed, no configuration changed", deployment.invoke(scheduled), pair.active)
    print(
        f"  requests to the now passive member: {len(pair.passive.requests)} (the HA state query only); "
        f"to the active one: {len(pair.active.requests)}"
    )


def _as_result(summary: dict[str, Any]) -> RunResult:
    """The dry run's summary as the CLI's plan table reads it."""
    result = RunResult(
        mode=summary["mode"], dry_run=True, workloads=summary["workloads"], pairs=summary["pairs"]
    )
    for target in summary["targets"]:
        changes = [
            DagChange(
                dag=change["dag"],
                filter=change["filter"],
                joins=change.get("joins", []),
                leaves=change.get("leaves", []),
                evaluable=change.get("evaluable", True),
                hostnames=change.get("hostnames", {}),
            )
            for change in target.get("dag_changes", [])
        ]
        result.targets.append(
            TargetResult(
                target=target["target"],
                registered=target["registered"],
                unregistered=target["unregistered"],
                dag_changes=changes,
            )
        )
    return result


if __name__ == "__main__":
    main()
