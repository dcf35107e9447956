"""Which management address a run writes to (docs/high-availability.md#choosing-the-member).

Each address of PANOS_URL is asked its HA state once a run, all at once, before any target
starts; every other call of the run goes to the first active one. The state query is the only
call an address that is not active ever receives.
"""

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from dagsync.core.errors import PanosError
from dagsync.core.ha import UNREADABLE, MemberState
from dagsync.sync.ports import HaProbe


class Members:
    """The management addresses (host:port, in PANOS_URL's order) and their state probes."""

    def __init__(self, probes: Sequence[tuple[str, HaProbe]]) -> None:
        if not probes:
            raise ValueError("at least one management address is needed")
        self._probes = tuple(probes)

    def ask(self) -> list[MemberState]:
        """Each address's state as it answers now; one that cannot answer is UNREADABLE."""
        if len(self._probes) == 1:
            return [_ask(*self._probes[0])]
        with ThreadPoolExecutor(max_workers=len(self._probes), thread_name_prefix="ha-state") as pool:
            return list(pool.map(lambda probe: _ask(*probe), self._probes))


def _ask(address: str, probe: HaProbe) -> MemberState:
    try:
        return MemberState(address, probe.ha_state())
    except PanosError as exc:
        return MemberState(address, UNREADABLE, error=str(exc))
