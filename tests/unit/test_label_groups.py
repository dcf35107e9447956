"""Label groups as tags (docs/mapping.md#label-groups): read once, nested groups resolved, cycles cut."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dagsync.core.errors import PceError
from dagsync.core.models import LabelGroup
from dagsync.core.workload_tags import resolve_label_groups
from dagsync.net.credentials import PceCredentials
from dagsync.net.retry import Retrier
from dagsync.pce.client import PCE_RETRY, PceClient
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from tests.support.clock import FakeClock
from tests.support.pce import ORG, workload

MakeClient = Callable[..., PceClient]


def group(name: str, labels: tuple[str, ...] = (), subs: tuple[str, ...] = ()) -> LabelGroup:
    return LabelGroup(
        f"/orgs/1/sec_policy/active/label_groups/{name}",
        name,
        labels,
        tuple(f"/orgs/1/sec_policy/active/label_groups/{sub}" for sub in subs),
    )


def test_a_label_in_a_group_nested_three_deep_belongs_to_every_group_above_it() -> None:
    index = resolve_label_groups(
        [
            group("Top", subs=("Middle",)),
            group("Middle", subs=("Bottom",)),
            group("Bottom", ("/orgs/1/labels/7",)),
        ]
    )
    assert index.names(["/orgs/1/labels/7"]) == ("Bottom", "Middle", "Top")
    assert index.warnings == []


def test_a_cycle_of_groups_is_reported_once_and_cut() -> None:
    index = resolve_label_groups(
        [group("A", ("/orgs/1/labels/1",), subs=("B",)), group("B", ("/orgs/1/labels/2",), subs=("A",))]
    )
    assert index.names(["/orgs/1/labels/1"]) == ("A", "B")
    assert index.names(["/orgs/1/labels/2"]) == ("A", "B")
    assert [warning for warning in index.warnings if "cycle" in warning] == [
        "label groups form a cycle (A -> B -> A); it is cut where it closes"
    ]


def test_a_sub_group_the_list_does_not_hold_is_reported_and_skipped() -> None:
    index = resolve_label_groups([group("A", ("/orgs/1/labels/1",), subs=("Gone",))])
    assert index.names(["/orgs/1/labels/1"]) == ("A",)
    assert "not listed" in index.warnings[0]


@pytest.fixture
def make_client(server: LoopbackServer, pce: PceEmulator) -> Iterator[MakeClient]:
    clients: list[PceClient] = []
    clock = FakeClock(0.0)
    pce.retry_after = 0
    pce.running_polls = 0

    def make(**options: Any) -> PceClient:
        retrier = Retrier(PCE_RETRY, sleep=clock.sleep, clock=clock.monotonic)
        credentials = PceCredentials(auth_username=pce.auth_username, secret=pce.secret)
        clients.append(PceClient(server.url, ORG, credentials, retrier=retrier, timeout=5.0, **options))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def provisioned(pce: PceEmulator) -> None:
    """Payments holds the app label; Critical holds Payments; the draft is provisioned."""
    payments = pce.add_label("app", "Payments")
    pce.set_label_group("Payments Apps", labels=[payments["href"]])
    inner = next(iter(pce.draft_label_groups))
    pce.set_label_group("Critical", sub_groups=[inner])
    pce.provision()


def test_every_workload_read_carries_the_groups_holding_its_labels(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": "Payments"})])
    provisioned(pce)
    [read] = make_client(label_groups=True).fetch_workloads()
    assert read.label_groups == ("Critical", "Payments Apps")


def test_groups_holding_href_only_labels_match_workloads_with_href_only_labels(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": "Payments"})])
    provisioned(pce)
    pce.set_label_mode("href")
    [read] = make_client(label_groups=True).fetch_workloads()
    assert (read.labels, read.label_groups) == ((("app", "Payments"),), ("Critical", "Payments Apps"))


def test_draft_edits_are_not_read_until_provisioned(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": "Payments"})])
    pce.set_label_group("Payments Apps", labels=[pce.add_label("app", "Payments")["href"]])
    [read] = make_client(label_groups=True).fetch_workloads()
    assert read.label_groups == ()


def test_the_groups_are_read_once_per_client_in_one_request(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": "Payments"})])
    provisioned(pce)
    client = make_client(label_groups=True)
    client.fetch_workloads()
    client.fetch_workload("/orgs/1/workloads/w1")
    assert pce.count("/label_groups") == 1


def test_more_groups_than_one_answer_holds_are_read_through_the_async_job(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    label = pce.add_label("app", "Payments")["href"]
    pce.label_groups = {
        f"/orgs/1/sec_policy/active/label_groups/{n}": {
            "href": f"/orgs/1/sec_policy/active/label_groups/{n}",
            "name": f"G{n:03d}",
            "labels": [{"href": label}],
            "sub_groups": [],
        }
        for n in range(600)
    }
    assert len(make_client().fetch_label_groups().names([label])) == 600


def test_without_label_group_tags_no_group_is_read(pce: PceEmulator, make_client: MakeClient) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1", labels={"app": "Payments"})])
    make_client().fetch_workloads()
    assert pce.count("/label_groups") == 0


def test_an_unreadable_group_list_stops_the_read_before_the_workloads(
    pce: PceEmulator, make_client: MakeClient
) -> None:
    pce.set_workloads([workload(pce, "w1", "10.0.0.1")])
    pce.fault_path = "/label_groups"
    pce.fail_next = 1
    pce.fail_status = 403
    with pytest.raises(PceError):
        make_client(label_groups=True).fetch_workloads()
    assert pce.count("/workloads") == 0
