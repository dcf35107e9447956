"""The HA state query and its answer (docs/protocols.md#pan-os-high-availability).

`<show><high-availability><state/></show>` answers, on Panorama, with the local state at
`result/local-info/state`; on a firewall at `result/group/local-info/state`; and with
`result/enabled` = `no` when HA is not configured. Both places are read, whatever the device.
"""

import xml.etree.ElementTree as ET  # building only; answers are parsed with defusedxml upstream

from dagsync.core.errors import PanosError
from dagsync.core.ha import HA_DISABLED
from dagsync.panos.responses import ParsedResponse

_STATE_PATHS = ("local-info/state", "group/local-info/state")


def build_ha_state_query() -> str:
    show = ET.Element("show")
    ET.SubElement(ET.SubElement(show, "high-availability"), "state")
    return ET.tostring(show, encoding="unicode", short_empty_elements=True)


def parse_ha_state(parsed: ParsedResponse) -> str:
    """The member's local state (lower case), or HA_DISABLED; an answer with neither is an error."""
    result = parsed.result
    if result is None:
        raise PanosError("PAN-OS HA state answer has no <result>")
    for path in _STATE_PATHS:
        state = (result.findtext(path) or "").strip().lower()
        if state:
            return state
    if (result.findtext("enabled") or "").strip().lower() == "no":
        return HA_DISABLED
    raise PanosError("PAN-OS HA state answer names no local state and does not say HA is disabled")
