"""High availability: a member's state, the passive drop it implies, and two emulators as a pair.

Each member is its own management address (its own LoopbackServer). A failover swaps their
states; `synced=True` gives the newly active member the old one's registered-IP tables (HA
synchronised them), `synced=False` leaves its own (empty when it never applied anything), the
case the canary exists for. A Panorama pair manages one set of firewalls: their tables are
the firewalls' own, the same whichever Panorama relays to them.
"""

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING

from emulators.panos.state import PanosState
from emulators.panos.wire import _parse

if TYPE_CHECKING:
    from emulators.panos.server import PanosEmulator


def _is_ha_query(params: Mapping[str, str]) -> bool:
    command = _parse(params.get("cmd") or "") if params.get("type") == "op" else None
    return command is not None and command.find("high-availability/state") is not None


class HighAvailability(PanosState):
    """High availability: a member's state, the passive drop it implies, and two emulators as a pair."""

    def set_ha_state(self, state: str | None, *, peer: str | None = None) -> None:
        """This member's local HA state (None: HA not enabled) and, in a pair, its peer's."""
        with self._lock:
            self.ha_state, self.ha_peer_state = state, peer

    def share_firewalls(self, other: "PanosEmulator") -> None:
        """Manage `other`'s firewalls (the same objects), as the second Panorama of a pair does."""
        with self._lock:
            self._children = other._children

    def copy_tables_from(self, other: "PanosEmulator") -> None:
        """`other`'s registered-IP tables in place of this device's own, as an HA sync leaves them;
        firewalls it shares with `other` are left as they are."""
        with self._lock, other._lock:
            pairs = [(self._device, other._device)]
            if self._children is not other._children:
                pairs += [(self._children[s], d) for s, d in other._children.items() if s in self._children]
            for mine, theirs in pairs:
                mine.tables = copy.deepcopy(theirs.tables)


class HaPair:
    def __init__(
        self,
        first: "PanosEmulator",
        second: "PanosEmulator",
        *,
        active: str = "active",
        passive: str = "passive",
        first_active: bool = True,
    ) -> None:
        if first.kind == "panorama" and second.kind == "panorama":
            second.share_firewalls(first)  # both Panoramas manage the same firewalls
        self.members = (first, second)
        self._states = (active, passive)
        self._active_index = 0 if first_active else 1
        self._apply()

    @property
    def active(self) -> "PanosEmulator":
        return self.members[self._active_index]

    @property
    def passive(self) -> "PanosEmulator":
        return self.members[1 - self._active_index]

    def fail_over(self, *, synced: bool) -> None:
        """The passive member takes over; with `synced`, holding what the active one held."""
        old, new = self.active, self.passive
        if synced:
            new.copy_tables_from(old)
        self._active_index = 1 - self._active_index
        self._apply()

    def _apply(self) -> None:
        active, passive = self._states
        self.active.set_ha_state(active, peer=passive)
        self.passive.set_ha_state(passive, peer=active)
