"""Probes of the snapshot table for tests: a recording client proxy, estates, manifests and garbage."""

import random
from collections.abc import Callable
from typing import Any

from emulators.local import TABLE

TARGET = "panorama.example.com/007051000123456/vsys1"


Hook = Callable[[str, dict[str, Any]], None]


class Proxy:
    """Forwards to a real client, recording each call; hooks run before or after a call."""

    def __init__(self, client: Any, *, before: Hook | None = None, after: Hook | None = None) -> None:
        self.client = client
        self.before = before
        self.after = after
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.client, name)

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if self.before:
                self.before(name, kwargs)
            response = method(**kwargs)
            if self.after:
                self.after(name, kwargs)
            return response

        return call

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def put_requests(self) -> int:
        return sum(
            1
            for name, kwargs in self.calls
            if name == "batch_write_item"
            for request in kwargs["RequestItems"][TABLE]
            if "PutRequest" in request
        )


def estate(count: int, *, seed: int = 1, first: int = 0) -> dict[str, frozenset[str]]:
    """IPs with four tags each, drawn from label combinations the way a real estate repeats them."""
    rnd = random.Random(seed)
    combos = [
        frozenset(
            {
                f"illumio.app.app-{app}",
                f"illumio.env.{rnd.choice(['Production', 'Staging', 'Development'])}",
                f"illumio.loc.dc{rnd.randrange(12)}",
                f"illumio.role.role-{role}",
            }
        )
        for app in range(300)
        for role in range(rnd.randint(2, 6))
    ]
    return {
        f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}": rnd.choice(combos)
        for i in range(first, first + count)
    }


def scan(client: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": TABLE}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def manifest(client: Any, target: str = TARGET) -> dict[str, Any]:
    item: dict[str, Any] = client.get_item(
        TableName=TABLE, Key={"pk": {"S": target}, "sk": {"S": "manifest"}}, ConsistentRead=True
    )["Item"]
    return item


def shard_keys(item: dict[str, Any]) -> list[str]:
    return [entry["M"]["key"]["S"] for entry in item.get("shards", {"L": []})["L"]]


def unreferenced_items(client: Any) -> set[tuple[str, str]]:
    """Shard items no manifest points at, plus manifests still listing garbage or abandoned runs."""
    items = scan(client)
    referenced = {
        (item["pk"]["S"], key) for item in items if item["sk"]["S"] == "manifest" for key in shard_keys(item)
    }
    leftovers = {(item["pk"]["S"], item["sk"]["S"]) for item in items if item["sk"]["S"] != "manifest"}
    pending = {
        (item["pk"]["S"], attribute)
        for item in items
        if item["sk"]["S"] == "manifest"
        for attribute in ("garbage", "abandoned")
        if attribute in item
    }
    return (leftovers - referenced) | pending
