"""Server-side DynamoDB metering: requests and capacity units, computed from item sizes.

moto answers `ReturnConsumedCapacity` with fixed dummy numbers, so the benchmark wraps the moto
server in a WSGI middleware that sees every DynamoDB request and applies DynamoDB's own rules
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):

* item size: attribute names (UTF-8) plus values; strings in UTF-8 bytes, binary in bytes,
  numbers 1 byte per two significant digits plus 1, booleans and null 1 byte, lists and maps
  3 bytes plus 1 byte per element plus the elements (and, for maps, their names);
* reads: 4 KB units per item (GetItem, and each item of BatchGetItem), the summed size of the
  items matched for Query; strongly consistent reads cost 1 unit per 4 KB, eventually consistent
  half that; a read of an item that does not exist still costs one unit;
* writes: 1 KB units of the larger of the item before and after (PutItem, UpdateItem, each
  request of BatchWriteItem); a delete costs the size of the deleted item; every write costs at
  least 1 unit, a failed conditional write included.

On-demand tables bill the same numbers as read and write request units. The sizes before a
write are read from moto's backend, so replacements and deletes are charged exactly.
"""

import base64
import io
import json
import math
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

Json = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Json, StartResponse], Iterable[bytes]]
ItemLookup = Callable[[str, Json], Json | None]  # (table, key) -> item in wire format, or None

READ_UNIT = 4096
WRITE_UNIT = 1024
READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})


def number_size(text: str) -> int:
    """Bytes DynamoDB bills for a number: one per two significant digits, plus one."""
    try:
        digits = Decimal(text).normalize().as_tuple().digits
    except InvalidOperation:
        digits = tuple(int(ch) for ch in text if ch.isdigit())
    significant = len(digits) if any(digits) else 1
    return (significant + 1) // 2 + 1


def _binary_size(value: str | bytes) -> int:
    return len(value) if isinstance(value, bytes) else len(base64.b64decode(value))


def value_size(value: Mapping[str, Any]) -> int:  # noqa: PLR0911 - one return per attribute type
    """The billed size of one AttributeValue in wire format ({"S": ...}, {"L": [...]}, ...)."""
    ((kind, content),) = value.items()
    match kind:
        case "S":
            return len(content.encode())
        case "N":
            return number_size(content)
        case "B":
            return _binary_size(content)
        case "BOOL" | "NULL":
            return 1
        case "SS":
            return sum(len(member.encode()) for member in content)
        case "NS":
            return sum(number_size(member) for member in content)
        case "BS":
            return sum(_binary_size(member) for member in content)
        case "L":
            return 3 + sum(value_size(member) + 1 for member in content)
        case "M":
            return 3 + sum(len(name.encode()) + value_size(member) + 1 for name, member in content.items())
    raise ValueError(f"unknown attribute type {kind!r}")


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def read_units(size: int, *, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def write_units(*sizes: int) -> float:
    return float(max(1, math.ceil(max(sizes, default=0) / WRITE_UNIT)))


@dataclass
class Usage:
    """What the metered DynamoDB saw since the last reset."""

    requests: Counter[str] = field(default_factory=Counter)
    read_units: float = 0.0
    write_units: float = 0.0
    bytes_in: int = 0  # request bodies
    bytes_out: int = 0  # response bodies
    items_put: int = 0  # PutRequests of BatchWriteItem (the snapshot's shard items)
    items_deleted: int = 0  # DeleteRequests of BatchWriteItem

    def as_dict(self) -> Json:
        reads = sum(n for op, n in self.requests.items() if op in READ_OPERATIONS)
        writes = sum(n for op, n in self.requests.items() if op in WRITE_OPERATIONS)
        return {
            "requests": sum(self.requests.values()),
            "read_requests": reads,
            "write_requests": writes,
            "by_operation": dict(sorted(self.requests.items())),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "items_put": self.items_put,
            "items_deleted": self.items_deleted,
        }


class DynamoMeter:
    """WSGI middleware for the moto server: passes every request through and meters DynamoDB's."""

    def __init__(self, app: WsgiApp, lookup: ItemLookup, key_names: Callable[[str], tuple[str, ...]]) -> None:
        self._app = app
        self._lookup = lookup
        self._key_names = key_names
        self._lock = threading.Lock()
        self.usage = Usage()

    def reset(self) -> Usage:
        with self._lock:
            usage, self.usage = self.usage, Usage()
            return usage

    def __call__(self, environ: Json, start_response: StartResponse) -> Iterable[bytes]:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if not target.startswith("DynamoDB_"):
            return self._app(environ, start_response)
        operation = target.rsplit(".", 1)[-1]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        request: Json = json.loads(raw) if raw else {}
        captured: list[Any] = []

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            captured.extend((status, headers))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        # One request at a time, so the sizes read before and after belong to this request only.
        with self._lock:
            before = self._sizes(self._written_keys(operation, request))
            body = b"".join(self._app(environ, capture))
            after = self._sizes(self._written_keys(operation, request))
            status = int(str(captured[0]).split()[0]) if captured else 500
            response: Json = json.loads(body) if body.startswith(b"{") else {}
            self.usage.requests[operation] += 1
            self.usage.bytes_in += len(raw)
            self.usage.bytes_out += len(body)
            self._charge(operation, request, response, status=status, before=before, after=after)
        return [body]

    # -- capacity rules ---------------------------------------------------------------------------

    def _charge(
        self,
        operation: str,
        request: Json,
        response: Json,
        *,
        status: int,
        before: Mapping[tuple[str, str], int],
        after: Mapping[tuple[str, str], int],
    ) -> None:
        failed_condition = status != 200 and "ConditionalCheckFailed" in str(response.get("__type", ""))
        if status != 200 and not failed_condition:
            return
        if operation == "GetItem":
            size = item_size(response["Item"]) if "Item" in response else 0
            self.usage.read_units += read_units(size, consistent=bool(request.get("ConsistentRead")))
        elif operation == "BatchGetItem":
            self._charge_batch_get(request, response)
        elif operation in ("Query", "Scan"):
            table = request["TableName"]
            sizes = [self._full_size(table, item) for item in response.get("Items", [])]
            self.usage.read_units += read_units(sum(sizes), consistent=bool(request.get("ConsistentRead")))
        elif operation in WRITE_OPERATIONS:
            unprocessed = response.get("UnprocessedItems") or {}
            if unprocessed:
                raise RuntimeError("the meter does not handle UnprocessedItems; moto never sends them")
            for key in self._written_keys(operation, request):
                self.usage.write_units += write_units(before.get(key, 0), after.get(key, 0))
            if operation == "BatchWriteItem" and status == 200:
                for writes in request.get("RequestItems", {}).values():
                    puts = sum(1 for write in writes if "PutRequest" in write)
                    self.usage.items_put += puts
                    self.usage.items_deleted += len(writes) - puts

    def _charge_batch_get(self, request: Json, response: Json) -> None:
        found = response.get("Responses", {})
        unprocessed = response.get("UnprocessedKeys", {})
        for table, spec in request.get("RequestItems", {}).items():
            consistent = bool(spec.get("ConsistentRead"))
            items = found.get(table, [])
            for item in items:
                self.usage.read_units += read_units(item_size(item), consistent=consistent)
            asked = len(spec.get("Keys", [])) - len(unprocessed.get(table, {}).get("Keys", []))
            self.usage.read_units += read_units(0, consistent=consistent) * max(0, asked - len(items))

    def _written_keys(self, operation: str, request: Json) -> list[tuple[str, str]]:
        if operation not in WRITE_OPERATIONS:
            return []
        if operation == "BatchWriteItem":
            keys = []
            for table, writes in request.get("RequestItems", {}).items():
                for write in writes:
                    if "PutRequest" in write:
                        keys.append((table, self._key_text(table, write["PutRequest"]["Item"])))
                    else:
                        keys.append((table, self._key_text(table, write["DeleteRequest"]["Key"])))
            return keys
        table = request["TableName"]
        return [(table, self._key_text(table, request["Item"] if operation == "PutItem" else request["Key"]))]

    def _key_text(self, table: str, item: Mapping[str, Any]) -> str:
        return json.dumps({name: item[name] for name in self._key_names(table)}, sort_keys=True)

    def _sizes(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        sizes = {}
        for table, key_text in keys:
            item = self._lookup(table, json.loads(key_text))
            sizes[(table, key_text)] = 0 if item is None else item_size(item)
        return sizes

    def _full_size(self, table: str, projected: Mapping[str, Any]) -> int:
        """Query and Scan bill the whole item even when a projection returns only part of it."""
        key = {name: projected[name] for name in self._key_names(table)}
        item = self._lookup(table, key)
        return item_size(projected if item is None else item)
