"""Illumio PCE client: the complete workload inventory, one workload, a page of events, and the
provisioned label groups when the mapping needs them.

The inventory comes through the async collection job (`jobs`); every request goes through the
paced, retried transport (`transport`). Nothing partial ever comes back: the engine computes
deletions from this list, so any defect fails the whole read (docs/sync.md#reading-the-inventory).
"""

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import quote, urlencode

from dagsync.core.errors import PceError
from dagsync.core.models import PceEvent, Workload
from dagsync.core.workload_tags import GroupIndex, resolve_label_groups
from dagsync.net.credentials import PceCredentials
from dagsync.net.pacing import Pacer
from dagsync.net.retry import Retrier, RetryPolicy
from dagsync.pce import jobs
from dagsync.pce.parse import (
    LabelRef,
    LabelTable,
    WorkloadProjector,
    kind,
    parse_events,
    parse_label,
    parse_label_group,
    resolve_labels,
    rfc3339,
    workload_href,
)
from dagsync.pce.transport import BODY_EXCERPT, PceLimits, PceTransport

__all__ = ["DEFAULT_REQUESTS_PER_MINUTE", "PCE_RETRY", "PceClient", "PceLimits"]

log = logging.getLogger(__name__)

# The PCE counts its rate limit per minute, so a 429 is no case for a 2-second backoff: it waits
# the PCE's Retry-After (up to 60 s), or 10-15 s without one, and is tried again for as long as
# the run's time allows. See docs/sync.md#retries and docs/protocols.md#pce-rate-limits.
PCE_RETRY = RetryPolicy(max_retry_after=60.0, rate_limited_wait=(10.0, 15.0), rate_limited_attempts=None)
DEFAULT_REQUESTS_PER_MINUTE = 100  # PCE_MAX_REQUESTS_PER_MINUTE, docs/sync.md#pacing
_MAX_EVENTS = 10_000  # the most one events GET returns (docs/protocols.md#pce-events)
_SYNC_CEILING = 500  # a synchronous collection GET stops silently here (docs/protocols.md#pce-label-groups)
LABEL_GROUPS = "sec_policy/active/label_groups"  # the provisioned version; `draft` holds edits

type _Pending = list[tuple[int, tuple[LabelRef, ...]]]  # workloads whose labels are hrefs still to resolve


class PceClient:
    """Reads the workloads of one org. Counters feed the run summary and the benchmarks.

    `retrier` carries the run's retry policy, clock, sleep and deadline: every wait of the
    client (retries, pacing and job polls) goes through them, so a fake clock makes a test
    instant. `pacer` is the run's one PCE pacer, passed to every request before it is sent.
    With `label_groups`, every workload read carries the label groups holding its labels.
    """

    def __init__(
        self,
        base_url: str,
        org_id: int,
        credentials: PceCredentials,
        *,
        verify_tls: bool = True,
        retrier: Retrier | None = None,
        pacer: Pacer | None = None,
        timeout: float = 30.0,
        limits: PceLimits | None = None,
        label_groups: bool = False,
    ) -> None:
        retrier = retrier or Retrier(PCE_RETRY)
        pacer = pacer or Pacer(
            DEFAULT_REQUESTS_PER_MINUTE, clock=retrier.clock, sleep=retrier.sleep, deadline=retrier.deadline
        )
        self._http = PceTransport(
            base_url,
            org_id,
            credentials,
            verify_tls=verify_tls,
            retrier=retrier,
            pacer=pacer,
            timeout=timeout,
            limits=limits or PceLimits(),
        )
        self._org = org_id
        self._label_table: LabelTable | None = None
        self._wants_groups = label_groups
        self._group_index: GroupIndex | None = None

    @property
    def requests_made(self) -> int:
        return self._http.requests_made

    @property
    def bytes_received(self) -> int:
        return self._http.bytes_received

    def close(self) -> None:
        self._http.close()

    def fetch_workloads(self) -> list[Workload]:
        """Every non-deleted workload, labels resolved; raises PceError unless the read is complete."""
        projector = self._projector()  # label groups first: an unreadable list stops the run here
        datafile = jobs.run_job(self._http, "workloads")
        workloads, pending = jobs.download(self._http, datafile, "workloads", _workload_parser(projector))
        if pending:
            table = self._labels()
            for index, refs in pending:
                workloads[index] = resolve_labels(workloads[index], refs, table)
        log.info(
            "read %d workloads from the PCE (%d requests, %d bytes)",
            len(workloads),
            self.requests_made,
            self.bytes_received,
        )
        return workloads

    def fetch_workload(self, href: str) -> Workload | None:
        """One workload by href (any form the PCE writes), or None when it is gone (404 or deleted).

        Parsed and labelled exactly as the inventory's workloads are.
        """
        wanted = workload_href(href)
        if wanted is None or not wanted.startswith(f"/orgs/{self._org}/"):
            raise PceError(f"{self._http.scrub(href)[:BODY_EXCERPT]} is not a workload of org {self._org}")
        what = f"workload {wanted}"
        answer = self._http.get(f"{self._http.api}{quote(wanted)}", what=what, answers=frozenset({404}))
        if answer.status == 404:
            return None
        item = self._http.json(answer, what)
        projected = self._http.parsed(
            f"the PCE's answer for {what}", lambda: self._projector().project(item, what)
        )
        if projected is None:
            return None
        workload, refs = projected
        if workload_href(workload.href) != wanted:
            raise PceError(f"the PCE answered for {what} with another workload")
        return resolve_labels(workload, refs, self._labels()) if refs else workload

    def fetch_events(
        self, since: datetime, *, until: datetime | None = None, max_results: int
    ) -> list[PceEvent]:
        """The events from `since` (to `until`), newest first as the PCE sends them.

        One request for at most `max_results` events (the PCE accepts up to 10,000): a page that
        full may not be the last, and the caller decides what that means
        (docs/change-feed.md#decision). Raises PceError unless the page is read whole.
        """
        if not 1 <= max_results <= _MAX_EVENTS:
            raise ValueError(f"max_results must be between 1 and {_MAX_EVENTS}, got {max_results}")
        query = {"timestamp[gte]": rfc3339(since), "max_results": str(max_results)}
        if until is not None:
            query["timestamp[lte]"] = rfc3339(until)
        answer = self._http.get(
            f"{self._http.api}/orgs/{self._org}/events?{urlencode(query)}", what="the events"
        )
        return self._http.parsed(
            "the PCE's events answer", lambda: parse_events(self._http.json(answer, "the events"))
        )

    def fetch_label_table(self) -> LabelTable:
        """Label href -> (key, value) for every label; older PCEs give workloads only label hrefs."""
        datafile = jobs.run_job(self._http, "labels")
        return jobs.download(self._http, datafile, "labels", _parse_labels)

    def fetch_label_groups(self) -> GroupIndex:
        """The provisioned label groups, nested ones resolved: one GET, or an async job when that
        GET holds 500 groups (it may have stopped there). Raises PceError unless read whole."""
        what = "the label groups"
        answer = self._http.get(
            f"{self._http.api}/orgs/{self._org}/{LABEL_GROUPS}?max_results={_SYNC_CEILING}", what=what
        )
        items = self._http.json(answer, what)
        if isinstance(items, list) and len(items) >= _SYNC_CEILING:
            datafile = jobs.run_job(self._http, LABEL_GROUPS)
            items = jobs.download(self._http, datafile, "label_groups", list)
        if not isinstance(items, list):
            raise PceError(f"the PCE's answer for {what} is {kind(items)}, not an array")
        groups = self._http.parsed(
            f"the PCE's answer for {what}",
            lambda: [parse_label_group(item, f"element {position}") for position, item in enumerate(items)],
        )
        index = resolve_label_groups(groups)
        for warning in index.warnings:
            log.warning("%s", warning)
        return index

    def warnings(self) -> list[str]:
        """What the reads so far found worth telling the operator: label group cycles."""
        return list(self._group_index.warnings) if self._group_index is not None else []

    def _projector(self) -> WorkloadProjector:
        """A projector for one read, with the label groups (read once per client) when wanted."""
        if self._wants_groups and self._group_index is None:
            self._group_index = self.fetch_label_groups()
        return WorkloadProjector(self._group_index)

    def _labels(self) -> LabelTable:
        """The label table, read once per client (one client serves one run)."""
        if self._label_table is None:
            self._label_table = self.fetch_label_table()
        return self._label_table


def _workload_parser(
    projector: WorkloadProjector,
) -> Callable[[Iterator[object]], tuple[list[Workload], _Pending]]:
    def parse(items: Iterator[object]) -> tuple[list[Workload], _Pending]:
        """Project each workload as it streams by; href-only labels are returned to resolve later."""
        workloads: list[Workload] = []
        pending: _Pending = []
        for position, item in enumerate(items):
            projected = projector.project(item, f"element {position}")
            if projected is None:
                continue
            workload, refs = projected
            if refs:
                pending.append((len(workloads), refs))
            workloads.append(workload)
        return workloads, pending

    return parse


def _parse_labels(items: Iterator[object]) -> LabelTable:
    return dict(parse_label(item, f"element {position}") for position, item in enumerate(items))
