"""The two ways users sync DAGs today, built honestly from our own clients and mapping.

Both read the same PCE inventory and map it with the same settings as DAG Sync, and push with the
same PanosClient in BATCH_SIZE batches; only the strategy differs:

* full push: keep no state, register every desired pair on every run. (It cannot remove pairs
  that are no longer desired, which is why tools of this kind lean on registration timeouts.)
* read-back diff: keep no state, page the device's whole registered-IP table on every run with
  `show object registered-ip`, diff our prefix's pairs against the desired ones, then register
  and unregister the difference, as the best existing CLI does.
"""

from dataclasses import dataclass

from dagsync.core.diff import subtract, with_prefix
from dagsync.core.mapping import map_workloads
from dagsync.core.models import TagMap, count_pairs
from dagsync.core.settings import Settings
from dagsync.panos.client import PanosClient
from dagsync.panos.messages import chunk_entries
from dagsync.pce.client import PceClient


@dataclass
class BaselineResult:
    workloads: int
    pairs: int
    registered: int = 0
    unregistered: int = 0
    device_table_ips: int = 0  # what a read-back saw on the device


def desired_pairs(settings: Settings, pce: PceClient) -> tuple[int, dict[str, frozenset[str]]]:
    mapping = map_workloads(
        pce.fetch_workloads(),
        prefix=settings.tag_prefix,
        label_keys=settings.label_keys,
        include_ipv6=settings.include_ipv6,
    )
    return mapping.workloads, mapping.desired


def _push(device: PanosClient, verb: str, entries: TagMap, batch_size: int) -> int:
    done = 0
    for batch in chunk_entries(entries, batch_size):
        outcome = device.register(batch) if verb == "register" else device.unregister(batch)
        done += count_pairs({ip: tags for ip, tags in batch.items() if ip not in outcome.failed})
    return done


def full_push(settings: Settings, pce: PceClient, device: PanosClient) -> BaselineResult:
    workloads, desired = desired_pairs(settings, pce)
    result = BaselineResult(workloads, count_pairs(desired))
    result.registered = _push(device, "register", desired, settings.batch_size)
    return result


def read_back_diff(settings: Settings, pce: PceClient, device: PanosClient) -> BaselineResult:
    workloads, desired = desired_pairs(settings, pce)
    result = BaselineResult(workloads, count_pairs(desired))
    table = device.registered_ips()
    result.device_table_ips = len(table)
    on_device = with_prefix({ip: entry.tags for ip, entry in table.items()}, settings.tag_prefix)
    result.registered = _push(device, "register", subtract(desired, on_device), settings.batch_size)
    result.unregistered = _push(device, "unregister", subtract(on_device, desired), settings.batch_size)
    return result
