"""A PAN-OS device (firewall, or Panorama with child firewalls) for LoopbackServer.

It follows docs/protocols.md (the PAN-OS sections): one `/api/` route taking GET and POST, query and
form/multipart parameters merged, the key from `X-PAN-KEY`, `key=` or Basic auth, `type=keygen`,
`type=user-id` (register, unregister, clear) with per-entry results, `type=op`
`show object registered-ip` / `show object dynamic-address-group`, and `type=config`
`action=show|get` over the address groups of docs/protocols.md#pan-os-address-groups. Everything the real device leaves
open (message texts, codes for unknown serials, table-full answers) is marked [unverified] where
it is chosen.

It is as slow and as limited as a real device when asked to be: every uid-message entry costs
device time (`IngestCost`, from the measurement of docs/protocols.md#pan-os-device-speed, scaled by `time_scale`), the
work of one device is serialised on its management plane (a Panorama relays `target=` requests
to each firewall's own plane), requests in flight are counted for the management address, and
more than `concurrency_limit` of them are refused.

Listing order: `show object registered-ip` returns entries in device order, the order in which
each IP entered the table (an IP that lost its last tag and came back is at the end), and each
entry's tags in the order they were registered. The real order is not documented (reference
§4.3) [unverified]; insertion order is what a table without an index keeps, and it is not
sorted, so a client cannot rely on it. It is stable while the table does not change, which is
what exact paging needs.
"""

from emulators.panos.dag_filter import compile_filter
from emulators.panos.ha import HaPair
from emulators.panos.server import PanosEmulator
from emulators.panos.state import DagMembership, Device, IngestCost, IpRecord, LoggedRequest
from emulators.panos.wire import (
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    HA_ACTIVE_STATES,
    INVALID_CREDENTIAL,
    INVALID_IP,
    LOCAL_DEVICE,
    MAX_CONCURRENT_API_CALLS,
    MAX_FILTER_LENGTH,
    MAX_REQUEST_BYTES,
    MAX_TAG_LENGTH,
    MAX_TAGS_PER_IP,
    MAX_TIMEOUT,
    NOT_XML,
    PAGE_LIMIT,
    AbsentConfig,
    DuplicateMode,
    KeyCarrier,
    Kind,
)

__all__ = [
    "BILLION_LAUGHS",
    "EXTERNAL_ENTITY",
    "HA_ACTIVE_STATES",
    "INVALID_CREDENTIAL",
    "INVALID_IP",
    "LOCAL_DEVICE",
    "MAX_CONCURRENT_API_CALLS",
    "MAX_FILTER_LENGTH",
    "MAX_REQUEST_BYTES",
    "MAX_TAGS_PER_IP",
    "MAX_TAG_LENGTH",
    "MAX_TIMEOUT",
    "NOT_XML",
    "PAGE_LIMIT",
    "AbsentConfig",
    "DagMembership",
    "Device",
    "DuplicateMode",
    "HaPair",
    "IngestCost",
    "IpRecord",
    "KeyCarrier",
    "Kind",
    "LoggedRequest",
    "PanosEmulator",
    "compile_filter",
]
