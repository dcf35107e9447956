"""docs/snapshot.md#lease: two invocations that overlap on one target (a slow run and the next schedule, or a
manual run) never both commit, and the device ends exact."""

import threading

from tests.faults.harness import Seams, assert_exact, desired_of, load_snapshot, outcome


def race(deployment, seams: Seams) -> list[object]:
    """Two invocations in threads, both holding back their lease request until both have read the
    snapshot: they plan from the same generation and then compete for it."""
    both_loaded = threading.Barrier(2, timeout=10)
    held: set[int] = set()

    def wait_for_the_other(label: str) -> None:
        if label == "dynamodb UpdateItem" and threading.get_ident() not in held:
            held.add(threading.get_ident())
            both_loaded.wait()

    seams.fail(wait_for_the_other)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(outcome(deployment))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    seams.heal()
    return results


def test_two_overlapping_runs_never_both_commit_and_the_device_ends_exact(
    deployment, pce, panos, seams: Seams, clock
):
    deployment.invoke({})
    generation = load_snapshot(deployment).generation
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    pce.set_addresses("/orgs/1/workloads/db1", ["10.1.0.33"])
    panos.clear_log()
    results = race(deployment, seams)
    targets = sorted((r["targets"][0] for r in results if isinstance(r, dict)), key=lambda t: t["status"])
    assert [t["status"] for t in targets] == ["conflict", "ok"]
    assert targets[0]["error"].startswith("another run")
    assert (targets[0]["registered"], targets[1]["registered"]) == (0, 4)
    assert len(panos.calls("user-id")) == 2  # one register and one unregister message: one run pushed
    assert load_snapshot(deployment).generation == generation + 2  # one write-ahead record, one commit
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)


def test_the_run_that_lost_the_race_leaves_nothing_for_the_next_run_to_repair(
    deployment, pce, panos, seams: Seams, clock
):
    deployment.invoke({})
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    race(deployment, seams)
    panos.clear_log()
    summary = deployment.invoke({})
    assert (summary["targets"][0]["registered"], summary["targets"][0]["unregistered"]) == (0, 0)
    assert panos.calls("user-id") == []
    assert_exact(deployment, panos, desired_of(pce), {}, now=clock.now)
