"""The drift canary (docs/sync.md#canary): its address, its tag, its check and its arming.

A non-persistent registration of a documentation address (RFC 5737 TEST-NET-1, never routed)
that a reboot, an HA failover or a table clear removes: while it is on the device, the device
still holds what the snapshot records. The mapping never tags this address (`RESERVED_IPS`), so
it cannot collide with a workload, and a reconcile leaves it out of the pairs it compares.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from dagsync.core.mapping import make_tag
from dagsync.core.models import TagMap

CANARY_IP = "192.0.2.1"
# Addresses the mapping never tags (docs/mapping.md#excluded-addresses): the canary's own.
RESERVED_IPS: frozenset[str] = frozenset({CANARY_IP})
_NAME = "canary"


@dataclass(frozen=True, slots=True)
class CanaryCheck:
    """What the device holds on the canary address, as far as this deployment is concerned."""

    armed: bool  # our canary is there: the device has not lost our registrations
    other_deployments: frozenset[str]  # canary tags of other deployments under our TAG_PREFIX
    prefix: str

    @property
    def shared_prefix(self) -> str | None:
        """Why a reconcile must not run, or None: another deployment's pairs carry our prefix.

        A reconcile removes every pair under TAG_PREFIX that this deployment does not want; with
        a second deployment on the same prefix those are that deployment's pairs
        (docs/sync.md#ownership). A snapshot-based sync only touches pairs it recorded itself.
        """
        if not self.other_deployments:
            return None
        tags = ", ".join(sorted(self.other_deployments))
        return (
            f"another deployment's canary ({tags}) is registered on {CANARY_IP} under "
            f"TAG_PREFIX {self.prefix!r}: two deployments sharing one prefix would remove each "
            "other's pairs, so this target is not reconciled. Give each deployment its own "
            f"TAG_PREFIX, or unregister that tag from {CANARY_IP} if its deployment is gone"
        )


@dataclass(frozen=True, slots=True)
class Canary:
    """The canary of one deployment: `TAG_PREFIX + "canary." + deployment_id`.

    The deployment identity (the stack name) lets two deployments on one device tell their
    canaries apart. Without one the tag is `TAG_PREFIX + "canary"`, as it was before canaries
    had an identity.
    """

    prefix: str
    deployment_id: str = ""

    @property
    def tag(self) -> str:
        if not self.deployment_id:
            return self.prefix + _NAME
        # Sanitised and cut like every other tag, so no deployment id can make it unsendable.
        tag = make_tag(self.prefix, _NAME, self.deployment_id)
        if tag is None:
            raise ValueError(f"deployment id {self.deployment_id!r} leaves nothing to name the canary by")
        return tag

    def arming(self) -> dict[str, frozenset[str]]:
        """The pair to register, non-persistent, once the snapshot matches the device."""
        return {CANARY_IP: frozenset({self.tag})}

    def check(self, registered: TagMap) -> CanaryCheck:
        """Read the device's answer for the canary address (ip -> tags, other addresses ignored)."""
        tags = registered.get(CANARY_IP, frozenset())
        ours = self.tag
        return CanaryCheck(
            armed=ours in tags,
            other_deployments=frozenset(tag for tag in tags if tag != ours and self._is_other_canary(tag)),
            prefix=self.prefix,
        )

    def _is_other_canary(self, tag: str) -> bool:
        # The bare `TAG_PREFIX + "canary"` is never another deployment's: without an identity it is
        # ours, and with one it is what this deployment wrote before canaries had an identity (it
        # stays until the next reboot). Taking it for a stranger would stop every upgraded target.
        return tag.startswith(self.prefix + _NAME + ".")


def excluding_canary[T](table: Mapping[str, T]) -> dict[str, T]:
    """The device's table without the canary address, which no plan or reconcile ever touches."""
    return {ip: entry for ip, entry in table.items() if ip != CANARY_IP}
