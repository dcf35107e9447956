"""`type=config`: reads of the running and candidate configuration."""

import copy
import xml.etree.ElementTree as ET  # building only; request XML is parsed with defusedxml

from emulators.panos.config_tree import _select_config
from emulators.panos.state import Device, PanosState
from emulators.panos.wire import _xml_error, _xml_success
from emulators.server import Response


class ConfigReads(PanosState):
    """`type=config`: reads of the running and candidate configuration."""

    def _config(self, device: Device, params: dict[str, str]) -> Response:
        """`action=show` reads the running configuration, `action=get` the candidate.

        See docs/protocols.md#pan-os-address-groups. An xpath naming several nodes
        (`.../device-group/entry/address-group`) answers each of them in turn inside `<result>`,
        without the device-group names; a reader that needs them asks for `.../device-group` instead. Whether `show` takes such an xpath on a real
        device is not captured [unverified].
        """
        action = params.get("action")
        if action not in {"show", "get"}:
            return _xml_error("400", f"config action {action!r} is not emulated")
        xpath = params.get("xpath") or "/config"
        with self._lock:
            nodes = _select_config(device.running if action == "show" else device.candidate, xpath)
            if nodes is None:
                return _xml_error("6", "Bad Xpath")
            if not nodes and self.absent_config == "object-not-present":
                return _xml_error("7", "Object not present")
            if action == "show":
                result = ET.Element("result")
            else:
                # `get` counts what it found and answers code 19, "Success" [unverified detail].
                result = ET.Element("result", {"total-count": str(len(nodes)), "count": str(len(nodes))})
            result.extend(copy.deepcopy(node) for node in nodes)
        return _xml_success(result, wrap=False, attrs={} if action == "show" else {"code": "19"})
