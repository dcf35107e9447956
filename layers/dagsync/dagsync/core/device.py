"""What a PAN-OS device reports, as plain values: its registered IPs, its DAGs, a uid-message's outcome.

The PAN-OS client builds them from the device's answers; the run reads them. They live here so
that both sides name one type (docs/architecture.md#layers).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Verb = Literal["register", "unregister"]


@dataclass(frozen=True, slots=True)
class RegisteredIp:
    """What the device reports for one registered IP.

    Timeouts are never readable (docs/protocols.md#pan-os-registered-ip).
    """

    tags: frozenset[str]
    persistent: bool = True
    from_agent: bool = False

    def merged(self, other: "RegisteredIp") -> "RegisteredIp":
        """One IP listed twice (a page shifted, or a duplicate row): the union of what both say."""
        return RegisteredIp(
            tags=self.tags | other.tags,
            persistent=self.persistent and other.persistent,
            from_agent=self.from_agent or other.from_agent,
        )


@dataclass(frozen=True, slots=True)
class DagDefinition:
    """One dynamic address group as the device defines it.

    `location` is where it is defined: "shared", "device-group:<name>" (or "device-group" when
    the answer does not say which), or "vsys:<name>".
    """

    name: str
    filter: str
    location: str


@dataclass(frozen=True)
class UidOutcome:
    """Result of one register/unregister message, per IP entry."""

    verb: Verb
    sent: int  # IP entries in the message
    failed: Mapping[str, str] = field(default_factory=dict)  # ip -> device message, or why not sent
    benign: int = 0  # per-entry messages "already exists" / "does not exist": counted as done
    unsent: int = 0  # entries failed without being sent: no message could carry them
    rejected: frozenset[str] = frozenset()  # failed IPs that no retry can fix (sent or not)
    table_full: frozenset[str] = frozenset()  # failed IPs the device had no room for

    @property
    def done(self) -> int:
        return self.sent + self.unsent - len(self.failed)
