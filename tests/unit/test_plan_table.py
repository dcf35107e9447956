"""docs/dag-awareness.md#membership-plans: `python -m dagsync plan` as an operator reads it."""

from dagsync.__main__ import render_plan
from dagsync.core.result import DagChange, RunResult, TargetResult

QUARANTINE = DagChange(
    dag="quarantine",
    filter="'illumio.env.Quarantine'",
    joins=["10.1.0.1", "10.1.0.9"],
    hostnames={"10.1.0.1": "web1"},
)
DEVELOPMENT = DagChange(
    dag="development",
    filter="'illumio.env.Development' and 'illumio.role.Web'",
    leaves=["10.1.0.1"],
    hostnames={"10.1.0.1": "web1"},
)
LEGACY = DagChange(dag="legacy", filter="'illumio.app.Old' or (", evaluable=False)


def plan_of(*targets: TargetResult, **fields) -> list[str]:
    return render_plan(RunResult(mode="sync", dry_run=True, targets=list(targets), **fields)).splitlines()


def target(**fields) -> TargetResult:
    return TargetResult(target="panorama.example.com/007051000123456/vsys1", **fields)


def columns(line: str) -> list[str]:
    return [cell for cell in line.strip().split("  ") if cell.strip()]


def test_each_dag_is_a_row_with_its_filter_joins_and_leaves():
    lines = plan_of(target(dag_changes=[QUARANTINE, DEVELOPMENT]))
    assert lines[0] == "panorama.example.com/007051000123456/vsys1 (ok)"
    assert columns(lines[1]) == ["DAG", "FILTER", "JOINS", "LEAVES"]
    assert [c.strip() for c in columns(lines[2])] == [
        "quarantine",
        "'illumio.env.Quarantine'",
        "10.1.0.1 (web1)",
        "-",
    ]
    assert columns(lines[3]) == ["10.1.0.9"]
    assert [c.strip() for c in columns(lines[4])] == [
        "development",
        "'illumio.env.Development' and 'illumio.role.Web'",
        "-",
        "10.1.0.1 (web1)",
    ]


def test_columns_line_up_under_their_headings():
    lines = plan_of(target(dag_changes=[QUARANTINE, DEVELOPMENT]))
    joins_at = lines[1].index("JOINS")
    assert lines[2].index("10.1.0.1 (web1)") == joins_at
    assert lines[3].index("10.1.0.9") == joins_at
    assert lines[4].index("10.1.0.1 (web1)") == lines[1].index("LEAVES")


def test_an_ip_without_a_known_hostname_is_shown_alone():
    (row,) = [line for line in plan_of(target(dag_changes=[QUARANTINE])) if "10.1.0.9" in line]
    assert row.strip() == "10.1.0.9"


def test_a_filter_that_cannot_be_evaluated_is_listed_as_such():
    (row,) = [line for line in plan_of(target(dag_changes=[LEGACY])) if line.strip().startswith("legacy")]
    assert columns(row) == ["legacy", "'illumio.app.Old' or (", "cannot evaluate"]


def test_the_pair_counts_follow_the_table():
    plan = {"register": [["10.1.0.1", "illumio.env.Quarantine"]], "unregister": []}
    lines = plan_of(target(dag_changes=[QUARANTINE], plan=plan, registered=1))
    assert lines[-3] == "  pairs: 1 to register, 0 to unregister"


def test_a_blocked_target_shows_why_and_what_it_would_send():
    plan = {"register": [], "unregister": [["10.0.0.1", "illumio.env.Production"]] * 30}
    lines = plan_of(
        target(status="blocked", error="removal guard: 30 of 40 pairs", dag_changes=[], plan=plan)
    )
    assert lines[:4] == [
        "panorama.example.com/007051000123456/vsys1 (blocked)",
        "  removal guard: 30 of 40 pairs",
        "  no DAG gains or loses a member",
        "  pairs: 0 to register, 30 to unregister",
    ]


def test_a_target_whose_definitions_were_not_read_says_so():
    assert "  DAG definitions were not read for this target" in plan_of(target(), target(dag_changes=[]))


def test_the_last_line_sums_up_the_run():
    lines = plan_of(target(dag_changes=[]), workloads=5, pairs=17, warnings=["w1", "w2"])
    assert lines[-1] == "run ok: 5 workloads, 17 pairs, 2 warnings (see --json)"
