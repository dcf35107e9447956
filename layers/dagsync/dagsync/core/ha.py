"""High availability (docs/high-availability.md): which member of a PAN-OS pair may be written to. Pure.

A passive member accepts User-ID calls, answers success and never applies them (pan-os-python
pull request 622), so only a member whose own state says active is ever sent anything but the
HA state query; a member whose state cannot be read counts as not active.
"""

from collections.abc import Sequence
from dataclasses import dataclass

ACTIVE_STATES = frozenset({"active", "primary-active", "secondary-active"})
HA_DISABLED = "disabled"  # the member answers that HA is not enabled: a standalone device
UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class MemberState:
    """One management address and its local HA state as it answered this run."""

    address: str  # host:port, as the targets' names spell it
    state: str  # a PAN-OS local state, HA_DISABLED, or UNREADABLE
    error: str | None = None  # why the state could not be read

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES or self.state == HA_DISABLED

    def describe(self) -> str:
        if self.error is not None:
            return f"{self.address} state unreadable ({self.error})"
        if self.state == HA_DISABLED:
            return f"{self.address} HA not enabled"
        return f"{self.address} {self.state}"

    def to_dict(self) -> dict[str, str]:
        return {"address": self.address, "state": self.state}


def active_member(members: Sequence[MemberState]) -> MemberState | None:
    """The member every call goes to: the first, in PANOS_URL's order, whose state is active."""
    return next((member for member in members if member.active), None)


def no_active_member(members: Sequence[MemberState]) -> str:
    """The failure every target of the pair reports when no member is active."""
    states = "; ".join(member.describe() for member in members)
    return (
        f"no active PAN-OS member ({states}): a passive member accepts User-ID calls and never "
        "applies them, so nothing was sent and nothing committed; the next run asks again"
    )
