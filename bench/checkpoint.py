"""How long one progress commit takes (docs/sync.md#crash-rules): `python -m bench.checkpoint`.

A first sync's checkpoint rewrites every shard, the worst case ProgressPolicy is chosen against.
DynamoDB is moto in process, so the times are CPU-bound upper bounds for the client side.
"""

import sys
import time

import boto3
from moto import mock_aws

from dagsync.store.snapshot import SnapshotStore
from emulators.local import REGION, TABLE, create_table

TAGS = frozenset({"illumio.app.App1", "illumio.env.Production", "illumio.role.Web", "illumio.loc.AMS"})


def time_checkpoint(ips: int) -> tuple[float, float]:
    """Seconds for a write-ahead checkpoint of `ips` addresses, then for a progress checkpoint."""
    pairs = {f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}": TAGS for n in range(ips)}
    with mock_aws():
        create_table(boto3.client("dynamodb", region_name=REGION))
        store = SnapshotStore(TABLE, client=boto3.client("dynamodb", region_name=REGION))
        lease = store.acquire(store.load("bench"), "bench", 900)
        started = time.perf_counter()
        lease = store.checkpoint(lease, {}, pairs)
        write_ahead = time.perf_counter() - started
        started = time.perf_counter()
        store.checkpoint(lease, pairs, {})
        return write_ahead, time.perf_counter() - started


def main() -> int:
    for ips in (10_000, 100_000):
        write_ahead, progress = time_checkpoint(ips)
        print(
            f"{ips:>7,} IPs: write-ahead checkpoint {write_ahead:.2f} s, progress checkpoint {progress:.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
