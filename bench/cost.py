"""A month of scheduled runs priced from measured ones: Lambda GB-seconds and requests, DynamoDB
on-demand read and write request units.

Each kind of run (the quiet feed run, a targeted update, the periodic full export) is measured
once by the benchmark; a schedule says how many of each a month holds. Prices are list prices,
named data with the date and the page they were read from, so a reader can redo the sum.
"""

from collections.abc import Mapping
from dataclasses import dataclass

MINUTES_PER_MONTH = 30 * 24 * 60


@dataclass(frozen=True)
class Prices:
    """On-demand list prices in USD, us-east-1, free tiers left out."""

    lambda_gb_second: float = 0.0000133334  # arm64 (template.yaml), the first 7.5 billion GB-s a month
    lambda_per_million_requests: float = 0.20
    dynamodb_per_million_reads: float = 0.125  # read request units
    dynamodb_per_million_writes: float = 0.625  # write request units
    source: str = (
        "AWS list prices for us-east-1 (aws.amazon.com/lambda/pricing, aws.amazon.com/dynamodb/pricing/"
        "on-demand; DynamoDB on-demand as cut on 2024-11-01), as quoted in December 2026; free tiers left out"
    )


@dataclass(frozen=True)
class Measured:
    """One run as the benchmark measured it."""

    wall_s: float
    read_units: float
    write_units: float


@dataclass(frozen=True)
class Schedule:
    """How many runs of each kind a month holds (a 30-day month).

    Every `every_minutes` a scheduled run; one in each `full_export_minutes` is a full export
    (FULL_EXPORT_MINUTES), plus the daily reconcile, counted as a full export. Of the other runs,
    `targeted_share` carry a change (an assumption: how often the estate changes), the rest are
    quiet.
    """

    every_minutes: int = 1
    full_export_minutes: int = 60
    targeted_share: float = 0.1
    reconciles: int = 30

    def runs(self) -> dict[str, int]:
        scheduled = MINUTES_PER_MONTH // self.every_minutes
        exports = MINUTES_PER_MONTH // self.full_export_minutes
        targeted = round((scheduled - exports) * self.targeted_share)
        return {
            "quiet": scheduled - exports - targeted,
            "targeted": targeted,
            "export": exports + self.reconciles,
        }


@dataclass(frozen=True)
class Line:
    kind: str
    runs: int
    wall_s: float
    gb_seconds: float
    read_units: float
    write_units: float


@dataclass(frozen=True)
class Bill:
    lines: tuple[Line, ...]
    memory_mb: int
    prices: Prices

    @property
    def runs(self) -> int:
        return sum(line.runs for line in self.lines)

    @property
    def gb_seconds(self) -> float:
        return sum(line.gb_seconds for line in self.lines)

    @property
    def read_units(self) -> float:
        return sum(line.read_units for line in self.lines)

    @property
    def write_units(self) -> float:
        return sum(line.write_units for line in self.lines)

    @property
    def lambda_usd(self) -> float:
        return (
            self.gb_seconds * self.prices.lambda_gb_second
            + self.runs / 1e6 * self.prices.lambda_per_million_requests
        )

    @property
    def dynamodb_usd(self) -> float:
        return (
            self.read_units / 1e6 * self.prices.dynamodb_per_million_reads
            + self.write_units / 1e6 * self.prices.dynamodb_per_million_writes
        )

    @property
    def total_usd(self) -> float:
        return self.lambda_usd + self.dynamodb_usd


def monthly(
    runs: Mapping[str, int], measured: Mapping[str, Measured], memory_mb: int, prices: Prices | None = None
) -> Bill:
    """The month's bill: each kind's runs times its measured wall time at `memory_mb`, and units."""
    gigabytes = memory_mb / 1024
    lines = tuple(
        Line(
            kind,
            count,
            measured[kind].wall_s,
            count * measured[kind].wall_s * gigabytes,
            count * measured[kind].read_units,
            count * measured[kind].write_units,
        )
        for kind, count in runs.items()
    )
    return Bill(lines, memory_mb, prices or Prices())
