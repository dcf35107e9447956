"""Two PAN-OS emulators as an HA pair: one active, one passive, and a failover between them.

Each member is its own management address (its own LoopbackServer). A failover swaps their
states; `synced=True` gives the newly active member the old one's registered-IP tables (HA
synchronised them), `synced=False` leaves its own (empty when it never applied anything), the
case the canary exists for. A Panorama pair manages one set of firewalls: their tables are
the firewalls' own, the same whichever Panorama relays to them.
"""

from emulators.panos import PanosEmulator


class HaPair:
    def __init__(
        self,
        first: PanosEmulator,
        second: PanosEmulator,
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
    def active(self) -> PanosEmulator:
        return self.members[self._active_index]

    @property
    def passive(self) -> PanosEmulator:
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
