"""What the table records for the run, as plain values: the feed's projection and watermark, the
tags in use last read for a target.

The store reads and writes them (docs/snapshot.md#items); the run reads them. They live here so
that both sides name one type (docs/architecture.md#layers).
"""

from dataclasses import dataclass, field
from datetime import datetime

# One workload as the projection keeps it: its addresses (as mapped) and its tags.
type ProjectionEntry = tuple[tuple[str, ...], frozenset[str]]
# The hrefs of the workloads claiming one address, sorted.
type Claimants = tuple[str, ...]


@dataclass(frozen=True)
class Projection:
    """The projection as committed; generation 0 means none was ever committed.

    `entries` is every workload, or, read `around` some workloads, those and every workload
    sharing an address with them; `workloads` counts the whole projection either way.
    """

    generation: int
    entries: dict[str, ProjectionEntry] = field(repr=False)
    workloads: int = 0


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the change feed stands.

    `last_event_at` is the timestamp of the newest event applied; `applied` the hrefs of the
    events applied inside the read-back window, so an event read again is recognised;
    `exported_at` when the last complete export was taken; `rules` the mapping rules the
    projection was recorded under (MappingRules.fingerprint). `projection_generation` is the
    projection this watermark goes with, and `revision` counts writes of the watermark, for
    optimistic concurrency: a write names the revision it read.
    """

    last_event_at: datetime | None = None
    applied: frozenset[str] = frozenset()
    exported_at: datetime | None = None
    projection_generation: int = 0
    revision: int = 0
    rules: str | None = None  # the fingerprint of the mapping rules the projection was made under
    # The estate as last counted (workloads, desired pairs), which a run that reads no inventory reports.
    workloads: int = 0
    pairs: int = 0

    def describes(self, projection: Projection) -> bool:
        """Whether this watermark was written with `projection` (else: export in full)."""
        return self.revision > 0 and self.projection_generation == projection.generation


@dataclass(frozen=True, slots=True)
class CachedTags:
    """The tags DAG filters on a target name, as read at `read_at` (wall-clock epoch seconds),
    with the digest of the definitions they were read from (docs/dag-awareness.md#tags-in-use)."""

    tags: frozenset[str]
    digest: str
    read_at: float
