"""A seed's report: what happened, how long changes took to reach the devices, what was violated."""

import statistics
from pathlib import Path

from sim.simulation import SeedReport


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def render(report: SeedReport) -> str:
    lines = [
        f"seed {report.seed}: {report.runs} runs over {report.minutes} simulated minutes "
        f"({report.minutes / 1440:.1f} days) in {report.wall_seconds:.0f} s",
        f"  changes: {dict(sorted(report.changes.items()))}",
        f"  faults: {dict(sorted(report.faults.items()))}",
        f"  runs by status: {dict(sorted(report.statuses.items()))}; by source: {dict(sorted(report.sources.items()))}",
    ]
    rows: tuple[tuple[str, list[float]], ...] = (
        ("device calls", [float(v) for v in report.device_calls]),
        ("PCE requests", [float(v) for v in report.pce_requests]),
        ("DynamoDB requests", [float(v) for v in report.dynamodb_requests]),
        ("DynamoDB units", report.dynamodb_units),
    )
    for name, values in rows:
        if values:
            lines.append(
                f"  {name} per run: mean {statistics.fmean(values):.2f}, p99 {percentile(values, 0.99):.1f}, max {max(values):.1f}"
            )
    lines.append(f"  table items: at most {report.table_items_max} (bound {report.table_items_bound})")
    lines.append("  change-to-device minutes (p50 / p99 / max, count):")
    for label, book in (
        ("", report.latencies),
        (" [across an unavailability window]", report.latencies_unavailable),
    ):
        for kind, values in sorted(book.items()):
            lines.append(
                f"    {kind}{label}: {percentile(values, 0.5):.2f} / {percentile(values, 0.99):.2f} / {max(values):.2f} ({len(values)})"
            )
    lines.append(f"  violations: {len(report.violations)}")
    for violation in report.violations[:50]:
        lines.append(f"    minute {violation.minute}: {violation.check}: {violation.detail}")
        lines.append(f"      replay: python -m sim --seed {report.seed} --minutes {violation.minute + 1}")
    return "\n".join(lines)


def summary(report: SeedReport) -> dict[str, object]:
    """The report as JSON: counts, per-run means, change-to-device percentiles, violations."""

    def spread(values: list[float]) -> dict[str, float]:
        if not values:
            return {}
        return {
            "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99),
            "max": max(values),
            "count": len(values),
        }

    return {
        "seed": report.seed,
        "minutes": report.minutes,
        "runs": report.runs,
        "wall_seconds": round(report.wall_seconds, 1),
        "changes": report.changes,
        "faults": report.faults,
        "statuses": report.statuses,
        "sources": report.sources,
        "per_run": {
            "device_calls": spread([float(v) for v in report.device_calls]),
            "pce_requests": spread([float(v) for v in report.pce_requests]),
            "dynamodb_requests": spread([float(v) for v in report.dynamodb_requests]),
            "dynamodb_units": spread(report.dynamodb_units),
        },
        "change_to_device_minutes": {kind: spread(values) for kind, values in report.latencies.items()},
        "change_to_device_minutes_across_unavailability": {
            kind: spread(values) for kind, values in report.latencies_unavailable.items()
        },
        "table_items": {"max": report.table_items_max, "bound": report.table_items_bound},
        "violations": [
            {
                "minute": v.minute,
                "check": v.check,
                "detail": v.detail,
                "log": str(Path("sim/out") / f"seed-{report.seed}" / f"minute-{v.minute}.log"),
                "replay": f"python -m sim --seed {report.seed} --minutes {v.minute + 1}",
            }
            for v in report.violations
        ],
    }
