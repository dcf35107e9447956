"""The workload hostnames a reading carries, which name the members of a dry run's membership
plan (docs/dag-awareness.md#membership-plans), and only there."""

from datetime import datetime

import pytest

from dagsync.core.invocation import SyncRequest
from dagsync.core.mapping import MappingRules
from dagsync.core.models import PceEvent, Workload
from dagsync.core.settings import load_settings
from dagsync.sync.feed import Feed
from tests.support.settings import REQUIRED_ENVIRONMENT

ENVIRONMENT = {**REQUIRED_ENVIRONMENT, "CHANGE_FEED": "off"}
ESTATE = [
    Workload("/orgs/1/workloads/web1", (("env", "Production"),), ("10.1.0.1",), hostname="web1"),
    Workload("/orgs/1/workloads/vip-a", (("env", "Production"),), ("10.9.0.1",), hostname="vip-a"),
    Workload("/orgs/1/workloads/vip-b", (("env", "Production"),), ("10.9.0.1",), hostname="vip-b"),
    Workload("/orgs/1/workloads/nameless", (("env", "Production"),), ("10.1.0.9",)),
]


class Inventory:
    def fetch_workloads(self) -> list[Workload]:
        return list(ESTATE)

    def fetch_workload(self, href: str) -> Workload | None:
        return next((workload for workload in ESTATE if workload.href == href), None)

    def fetch_events(
        self, since: datetime, *, until: datetime | None = None, max_results: int
    ) -> list[PceEvent]:
        return []

    def warnings(self) -> list[str]:
        return []


def feed(**environment: str) -> Feed:
    settings = load_settings({**ENVIRONMENT, **environment})
    rules = MappingRules(prefix=settings.tag_prefix, label_keys=settings.label_keys)
    return Feed(settings, rules, inventory=Inventory(), projections=None, run_id="run", lease_seconds=60)


def test_a_dry_run_reads_every_workload_s_hostname_on_its_ips():
    reading = feed().read(SyncRequest(dry_run=True))
    assert reading.hostnames == {"10.1.0.1": "web1", "10.9.0.1": "vip-a, vip-b"}


def test_a_deployment_in_dry_run_reads_them_on_every_run():
    assert feed(DRY_RUN="true").read(SyncRequest()).hostnames["10.1.0.1"] == "web1"


@pytest.mark.parametrize("mode", ["sync", "reconcile"])
def test_a_run_that_sends_spends_nothing_on_hostnames(mode):
    assert feed().read(SyncRequest(mode=mode)).hostnames == {}
