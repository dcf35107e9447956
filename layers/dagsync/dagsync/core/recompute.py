"""A targeted update's pairs, recomputed from the stored projection (docs/snapshot.md#projection).

The projection is each workload's claim (its usable IPs and its tags) as of the last complete
inventory, kept up to date by every targeted update. A changed workload can change the pairs of
every IP it had or has, and on a shared IP those pairs depend on every other workload claiming
it; so those IPs are settled again from all their claims, by the mapping's own rules
(docs/mapping.md#shared-addresses), and the result equals a full map of the changed estate.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from dagsync.core.diff import subtract
from dagsync.core.mapping import Claim, Mapper, MappingRules
from dagsync.core.models import Workload

Claims = Mapping[str, Claim]  # workload href -> its claim; workloads without a usable IP left out


@dataclass(frozen=True)
class ProjectionUpdate:
    """The IP-level delta of a targeted update and the projection entries it changes."""

    ips: frozenset[str]  # every IP a changed workload had or has
    before: dict[str, frozenset[str]]  # their desired pairs under the stored projection
    after: dict[str, frozenset[str]]  # their desired pairs once the changes apply
    changed: dict[str, Claim | None]  # projection entries to write; None removes one
    warnings: list[str]  # odd addresses of the fetched workloads, conflicts among `ips`
    conflicts_before: int  # shared-IP conflicts among `ips`, before and after
    conflicts_after: int

    @property
    def register(self) -> dict[str, frozenset[str]]:
        return subtract(self.after, self.before)

    @property
    def unregister(self) -> dict[str, frozenset[str]]:
        return subtract(self.before, self.after)


def recompute(
    projection: Claims, fetched: Mapping[str, Workload | None], rules: MappingRules
) -> ProjectionUpdate:
    """Apply fetched workloads (href -> the workload, or None when it is gone) to the projection.

    The projection must have been made under the same `rules` (compare MappingRules.fingerprint):
    claims recorded under other rules would be settled as if they were these rules' claims.
    """
    mapper = Mapper(rules)
    changed: dict[str, Claim | None] = {}
    for href, workload in fetched.items():
        claim = mapper.claim(workload) if workload is not None else None
        fresh = claim if claim is not None and claim.ips else None
        if not _same(projection.get(href), fresh):
            changed[href] = fresh
    ips = frozenset(
        ip
        for href, claim in changed.items()
        for held in (projection.get(href), claim)
        if held
        for ip in held.ips
    )
    claims_before, claims_after = _claims_on(ips, projection, changed)
    settled_before = Mapper(rules)  # its warnings describe the old estate: not reported
    before = settled_before.pairs_of(claims_before)
    after = mapper.pairs_of(claims_after)
    return ProjectionUpdate(
        ips=ips,
        before=before,
        after=after,
        changed=changed,
        warnings=mapper.warnings(),
        conflicts_before=settled_before.shared_ip_conflicts,
        conflicts_after=mapper.shared_ip_conflicts,
    )


def addresses(fetched: Mapping[str, Workload | None], rules: MappingRules) -> frozenset[str]:
    """The usable IPs the fetched workloads claim now, as the mapping settles them."""
    mapper = Mapper(rules)
    claims = (mapper.claim(workload) for workload in fetched.values() if workload is not None)
    return frozenset(ip for claim in claims if claim is not None for ip in claim.ips)


def _claims_on(
    ips: frozenset[str], projection: Claims, changed: Mapping[str, Claim | None]
) -> tuple[dict[str, list[Claim]], dict[str, list[Claim]]]:
    """Every claim on each of `ips`, before and after the changes, in one pass over the projection."""
    before: dict[str, list[Claim]] = {ip: [] for ip in ips}
    after: dict[str, list[Claim]] = {ip: [] for ip in ips}
    for href, stored in projection.items():
        for ip in stored.ips:
            if ip in ips:
                before[ip].append(stored)
                if href not in changed:
                    after[ip].append(stored)
    for fresh in changed.values():
        if fresh is not None:
            for ip in fresh.ips:
                after[ip].append(fresh)
    return _claimed(before), _claimed(after)


def _claimed(claims: dict[str, list[Claim]]) -> dict[str, list[Claim]]:
    return {ip: on_ip for ip, on_ip in claims.items() if on_ip}


def _same(stored: Claim | None, fresh: Claim | None) -> bool:
    """One claim either way: the order of a workload's interfaces is no change."""
    if stored is None or fresh is None:
        return stored is fresh
    return stored.tags == fresh.tags and set(stored.ips) == set(fresh.ips)
