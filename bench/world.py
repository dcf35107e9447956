"""The world a benchmark case runs against, in its own process.

One process holds the PCE emulator (serving a synthetic estate), one PAN-OS emulator per tool
being compared (so each starts from its own device table), and a moto server for DynamoDB and
Secrets Manager behind the capacity meter. The function under test runs in other processes and
reaches all of them over loopback HTTP, as a Lambda reaches the PCE, the device and AWS, so the
function's memory and CPU are measured without the emulators' (which hold the whole estate).

The parent drives the world through a pipe: `World.start(...)`, then `env()`, `reset()`,
`usage()`, `churn(...)` and `stop()`. `churn` changes the estate behind the PCE's back (it writes
no events, like a feed that missed them: only a full export sees it); the change feed's cases
change it through the PCE emulator, which writes the events a real PCE would, timestamped by the
wall clock and visible at once (`event_index_delay` 0): `export_due()`, `user_session()`,
`link_local_churn(...)`, `relabel_one(...)` and `change_workloads(...)`.
"""

import gc
import logging
import multiprocessing
import multiprocessing.connection
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
from werkzeug.serving import BaseWSGIServer, make_server

from bench.meter import DynamoMeter, ItemLookup, Json
from dagsync.core.canary import CANARY_IP
from dagsync.store.codec import shards_of
from dagsync.store.manifest import MANIFEST_KEY
from dagsync.store.projection import PROJECTION_PK, WATERMARK_KEY
from emulators.churn import churn
from emulators.estate import LABEL_VALUES, Estate, generate_estate
from emulators.local import FUNCTION_ENVIRONMENT, PANOS_API_KEY, REGION, TABLE, provision
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer, Request, Response

ACCOUNT = "123456789012"
# One emulated firewall per tool; "dagsync-state" is DAG Sync with state and label group tags on.
DEVICES = ("dagsync", "full-push", "read-back", "dagsync-state")
FULL_EXPORT_MINUTES = 60  # the function's default (docs/change-feed.md#decision), set explicitly
QUARANTINE = ("env", "Quarantine")


@dataclass(frozen=True)
class WorldSpec:
    size: int
    seed: int
    batch_size: int


class _MeteredPce:
    """The PCE emulator behind a counter of the bytes it answers with (its own log has no sizes)."""

    def __init__(self, pce: PceEmulator) -> None:
        self.pce = pce
        self.bytes_sent = 0
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Response:
        response = self.pce.handle(request)
        if not isinstance(response.body, bytes):
            response.body = b"".join(response.body)
        with self._lock:
            self.bytes_sent += len(response.body)
        return response

    def reset(self) -> None:
        with self._lock:
            self.bytes_sent = 0


def _pce_request_kind(path: str) -> str:
    """events, workload (one, by id), jobs, datafiles, or the collection an export job is made for."""
    parts = path.split("/")[5:]  # /api/v2/orgs/{org}/<rest>
    if parts[:1] == ["workloads"] and len(parts) == 2:
        return "workload"
    return parts[0] if parts else path


class _Host:
    """Lives in the world process: the emulators, the servers and the meter."""

    def __init__(self, spec: WorldSpec) -> None:
        self.estate = generate_estate(spec.size, spec.seed)
        self.pce = PceEmulator()
        self.pce.load_estate(self.estate)
        self.pce.retry_after = 0
        self.pce.running_polls = 0
        self.pce.max_jobs = 1  # each datafile of a 100k estate is ~140 MB; keep only the latest
        self.pce.event_index_delay = 0.0  # events visible at once: the feed's cases need not wait
        self.pce.label_groups = label_groups(self.estate)  # read only with LABEL_GROUP_TAGS=true
        self.metered_pce = _MeteredPce(self.pce)
        self.rng = random.Random(spec.seed + 3)  # the feed's changes: their own stream
        self.devices = {name: PanosEmulator("firewall", api_keys=(PANOS_API_KEY,)) for name in DEVICES}
        self.servers = [LoopbackServer(self.metered_pce).start()]
        self.device_urls: dict[str, str] = {}
        for name, device in self.devices.items():
            server = LoopbackServer(device).start()
            self.servers.append(server)
            self.device_urls[name] = server.url
        self._tables: dict[str, dict[str, frozenset[str]]] = {}
        self.meter, self._aws, self._lookup = _start_moto()
        host, port = self._aws.server_address[:2]
        self.aws_url = f"http://{host!s}:{port}"
        self._provision()
        gc.freeze()  # the estate never needs collecting; full collections over it would slow every request

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=REGION,
            endpoint_url=self.aws_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        )

    def _provision(self) -> None:
        provision(self._client("dynamodb"), self._client("secretsmanager"), self.pce)
        self.meter.reset()

    def env(self, batch_size: int) -> dict[str, str]:
        """The function's environment (as template.yaml and LocalDeployment set it), less PANOS_URL."""
        return {
            **FUNCTION_ENVIRONMENT,
            "AWS_ENDPOINT_URL": self.aws_url,
            "PCE_URL": self.servers[0].url,
            "PCE_ORG_ID": str(self.pce.org_id),
            "BATCH_SIZE": str(batch_size),
            "FULL_EXPORT_MINUTES": str(FULL_EXPORT_MINUTES),
        }

    def reset(self) -> None:
        self.pce.clear_log()
        self.metered_pce.reset()
        for device in self.devices.values():
            device.clear_log()
        self._tables = {name: device.table() for name, device in self.devices.items()}
        self.meter.reset()
        gc.freeze()

    def usage(self) -> Json:
        """What every server saw since the last reset."""
        devices = {name: self._device_usage(name, device) for name, device in self.devices.items()}
        return {
            "pce": {
                "requests": len(self.pce.requests),
                "bytes_sent": self.metered_pce.bytes_sent,
                "by_kind": dict(Counter(_pce_request_kind(entry.path) for entry in self.pce.requests)),
            },
            "devices": devices,
            "dynamodb": self.meter.reset().as_dict(),
        }

    def _device_usage(self, name: str, device: PanosEmulator) -> Json:
        requests = device.requests
        before, after = self._tables.get(name, {}), device.table()
        # Ground truth from the device, the canary left out: which IPs gained or lost a tag.
        gained = {ip for ip, tags in after.items() if tags - before.get(ip, frozenset())} - {CANARY_IP}
        lost = {ip for ip, tags in before.items() if tags - after.get(ip, frozenset())} - {CANARY_IP}
        changed = _pair_changes(before, after, gained | lost)
        sent = {verb: _sent_pairs(requests, verb) for verb in ("register", "unregister")}
        return {
            "ips_gaining_tags": len(gained),
            "ips_losing_tags": len(lost),
            "pairs_gained": len(changed["register"]),
            "pairs_lost": len(changed["unregister"]),
            "pairs_registered": sent["register"][0],
            "pairs_unregistered": sent["unregister"][0],
            # Every pair sent changed the device, and every change was sent, once.
            "sent_exactly_the_changes": all(
                count == len(pairs) and pairs == changed[verb] for verb, (count, pairs) in sent.items()
            ),
            "snapshot": self._snapshot_layout(self.device_urls[name], gained | lost),
            "calls": len(requests),
            "bytes_sent": sum(entry.body_bytes for entry in requests),
            "register_calls": sum(1 for entry in requests if "register" in entry.uid),
            "unregister_calls": sum(1 for entry in requests if "unregister" in entry.uid),
            "register_entries": sum(entry.uid.get("register", 0) for entry in requests),
            "unregister_entries": sum(entry.uid.get("unregister", 0) for entry in requests),
            "show_calls": sum(1 for entry in requests if entry.type == "op"),
            "table_ips": len(after),
        }

    def _snapshot_layout(self, device_url: str, changed: set[str]) -> Json | None:
        """The committed snapshot's shard count, and how many shards the changed IPs fall in."""
        key = {"pk": {"S": urlsplit(device_url).netloc}, "sk": {"S": MANIFEST_KEY}}
        manifest = self._lookup(TABLE, key)
        if manifest is None:
            return None
        count = int(manifest["shard_count"]["N"])
        touched = shards_of(changed, count)
        return {"shards": count, "shards_touched": len(touched), "ips": int(manifest["ips"]["N"])}

    def churn(self, percent: float, seed: int) -> Json:
        report = churn(self.estate, percent, seed)
        return {
            "relabeled": len(report.relabeled),
            "moved": len(report.moved),
            "deleted": len(report.deleted),
            "added": len(report.added),
            "workloads": len(self.estate.workloads),
        }

    # -- the change feed's cases: every change through the PCE emulator, which writes its event --

    def export_due(self) -> bool:
        """Make the next feed run's full export due, as FULL_EXPORT_MINUTES after the last one
        would: move the watermark's export time back. False when there is no watermark yet."""
        key = {"pk": {"S": PROJECTION_PK}, "sk": {"S": WATERMARK_KEY}}
        watermark = self._lookup(TABLE, key)
        if watermark is None or "exported_at" not in watermark:
            return False
        exported = datetime.fromisoformat(watermark["exported_at"]["S"])
        earlier = exported - timedelta(minutes=FULL_EXPORT_MINUTES + 1)
        self._client("dynamodb").update_item(
            TableName=TABLE,
            Key=key,
            UpdateExpression="SET exported_at = :at",
            ExpressionAttributeValues={":at": {"S": earlier.isoformat()}},
        )
        return True

    def user_session(self) -> Json:
        """Noise the feed ignores by type: a user signs in and out (four events)."""
        return {"what": "a user signs in and out", "events": len(self.pce.emit_user_session())}

    def link_local_churn(self) -> Json:
        """Noise the feed fetches and finds unchanged: one workload's `fe80::` address changes."""
        (href,) = self._pick(1)
        self.pce.emit_link_local_churn(href)
        return {"what": "one workload's fe80:: address changes", "events": 1, "workload": href}

    def relabel_one(self) -> Json:
        """One workload relabelled into Quarantine (`workload.update`)."""
        (href,) = self._pick(1)
        self.pce.relabel(href, *QUARANTINE)
        return {"what": "one workload relabelled env=Quarantine", "events": 1, "workload": href}

    def change_workloads(self, count: int) -> Json:
        """`count` distinct workloads changed: an equal share each relabelled, moved, deleted and
        added (the emulator's churn), the remainder relabelled; one event per change."""
        share = count // 4
        before = len(self.pce.events)
        report = self.pce.churn(100 * share / len(self.pce.workloads), self.rng.randrange(1 << 30))
        taken = {*report.relabeled, *report.moved, *report.added}
        extra = [href for href in self._pick(count) if href not in taken][: count - report.total]
        for href in extra:
            key = self.rng.choice(("role", "app"))
            current = {label.get("key"): label.get("value") for label in self.pce.workload(href)["labels"]}
            self.pce.relabel(
                href, key, self.rng.choice([v for v in LABEL_VALUES[key] if v != current.get(key)])
            )
        relabeled = len(report.relabeled) + len(extra)
        return {
            "what": f"{relabeled} relabelled, {len(report.moved)} moved to a new IP, {len(report.deleted)} "
            f"deleted, {len(report.added)} added",
            "events": len(self.pce.events) - before,
        }

    def _pick(self, count: int) -> list[str]:
        """`count` distinct workloads whose change moves pairs (see `_changeable`)."""
        return self.rng.sample([w["href"] for w in self.pce.workloads if _changeable(w)], count)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self._aws.shutdown()


def label_groups(estate: Estate) -> dict[str, Json]:
    """Provisioned label groups over the estate's labels, nested three deep as policy nests them:
    the app labels in groups of eight, those in two business units, both under one group; and one
    group of production-like environments."""
    org = estate.org_id
    groups: dict[str, Json] = {}

    def add(name: str, labels: list[str], subs: list[str]) -> str:
        href = f"/orgs/{org}/sec_policy/active/label_groups/{len(groups) + 1}"
        groups[href] = {
            "href": href,
            "key": "app",
            "name": name,
            "labels": [{"href": label} for label in labels],
            "sub_groups": [{"href": sub} for sub in subs],
        }
        return href

    apps = sorted(href for href, label in estate.labels.items() if label["key"] == "app")
    chunks = [
        add(f"Apps {n + 1}", apps[start : start + 8], []) for n, start in enumerate(range(0, len(apps), 8))
    ]
    units = [add(f"Business unit {n + 1}", [], chunks[n::2]) for n in range(2)]
    add("All business units", [], units)
    production = ("Production", "PCI", "DR")
    add(
        "Production-like",
        [
            href
            for href, label in estate.labels.items()
            if label["key"] == "env" and label["value"] in production
        ],
        [],
    )
    return groups


def _changeable(workload: Json) -> bool:
    """Labelled, not yet in Quarantine, with an IPv4 address: relabelling it changes pairs."""
    labels = {label.get("key"): label.get("value") for label in workload.get("labels") or ()}
    addresses = (str(interface.get("address", "")) for interface in workload.get("interfaces") or ())
    return bool(labels) and labels.get(QUARANTINE[0]) != QUARANTINE[1] and any("." in a for a in addresses)


def _pair_changes(
    before: dict[str, frozenset[str]], after: dict[str, frozenset[str]], ips: set[str]
) -> dict[str, set[tuple[str, str]]]:
    """The (ip, tag) pairs the device gained ("register") and lost ("unregister") on these IPs."""
    empty: frozenset[str] = frozenset()
    return {
        "register": {(ip, tag) for ip in ips for tag in after.get(ip, empty) - before.get(ip, empty)},
        "unregister": {(ip, tag) for ip in ips for tag in before.get(ip, empty) - after.get(ip, empty)},
    }


def _sent_pairs(requests: list[Any], verb: str) -> tuple[int, set[tuple[str, str]]]:
    """How many (ip, tag) pairs the uid-messages carried for `verb`, and which, canary left out."""
    count, pairs = 0, set()
    for entry in requests:
        sent = {pair for pair in entry.uid_pairs.get(verb, ()) if pair[0] != CANARY_IP}
        count += len(sent)
        pairs |= sent
    return count, pairs


def _start_moto() -> tuple[DynamoMeter, BaseWSGIServer, ItemLookup]:
    from moto.backends import get_backend  # noqa: PLC0415 - moto's server pieces load slowly
    from moto.moto_server.werkzeug_app import (  # noqa: PLC0415
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    def backend() -> Any:
        return get_backend("dynamodb")[ACCOUNT][REGION]

    def lookup(table: str, key: Json) -> Json | None:
        item = backend().get_item(table, key)
        return None if item is None else dict(item.to_json()["Attributes"])

    def key_names(table: str) -> tuple[str, ...]:
        found = backend().get_table(table)
        return tuple(name for name in (found.hash_key_attr, found.range_key_attr) if name)

    meter = DynamoMeter(DomainDispatcherApplication(create_backend_app), lookup, key_names)
    server = make_server("127.0.0.1", 0, meter, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="moto", daemon=True).start()
    return meter, server, lookup


def _serve(conn: multiprocessing.connection.Connection, spec: WorldSpec) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per DynamoDB call
    host = _Host(spec)
    commands: dict[str, Callable[..., Any]] = {
        "env": lambda: {**host.env(spec.batch_size), "devices": host.device_urls},
        "reset": host.reset,
        "usage": host.usage,
        "churn": host.churn,
        "export_due": host.export_due,
        "user_session": host.user_session,
        "link_local_churn": host.link_local_churn,
        "relabel_one": host.relabel_one,
        "change_workloads": host.change_workloads,
    }
    conn.send(("ready", None))
    while True:
        command, args = conn.recv()
        if command == "stop":
            host.stop()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", commands[command](*args)))
        except Exception as exc:  # reported to the parent, which raises it
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class World:
    """The parent's handle on a world process."""

    def __init__(self, spec: WorldSpec) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, spec), name="bench-world", daemon=True)

    @classmethod
    def start(cls, spec: WorldSpec) -> "World":
        world = cls(spec)
        world._process.start()
        status, detail = world._conn.recv()
        if status != "ready":
            raise RuntimeError(f"the benchmark world did not start: {detail}")
        return world

    def _call(self, command: str, *args: Any) -> Any:
        self._conn.send((command, args))
        status, result = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"world command {command} failed: {result}")
        return result

    def env(self) -> tuple[dict[str, str], dict[str, str]]:
        """The function environment and the URL of each tool's device."""
        env = dict(self._call("env"))
        devices = env.pop("devices")
        return env, devices

    def reset(self) -> None:
        self._call("reset")

    def usage(self) -> Json:
        result: Json = self._call("usage")
        return result

    def churn(self, percent: float, seed: int) -> Json:
        result: Json = self._call("churn", percent, seed)
        return result

    def change(self, command: str, *args: Any) -> Any:
        """One of the feed's world commands (export_due, user_session, link_local_churn,
        relabel_one, change_workloads), run in the world process."""
        return self._call(command, *args)

    def stop(self) -> None:
        if self._process.is_alive():
            self._call("stop")
        self._process.join(timeout=30)
