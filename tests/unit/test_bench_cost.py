"""The month's cost of a schedule, priced from measured runs (bench/cost.py)."""

import pytest

from bench.cost import MINUTES_PER_MONTH, Measured, Prices, Schedule, monthly
from bench.report import memory_size_mb

PRICES = Prices(
    lambda_gb_second=0.00001,
    lambda_per_million_requests=0.2,
    dynamodb_per_million_reads=0.1,
    dynamodb_per_million_writes=0.5,
    source="test",
)


def test_a_one_minute_month_holds_one_run_a_minute_plus_the_daily_reconciles() -> None:
    runs = Schedule(every_minutes=1, full_export_minutes=60, targeted_share=0.0, reconciles=30).runs()

    assert runs == {"quiet": MINUTES_PER_MONTH - 720, "targeted": 0, "export": 720 + 30}
    assert MINUTES_PER_MONTH == 43_200


def test_the_targeted_share_is_taken_from_the_runs_between_exports() -> None:
    runs = Schedule(every_minutes=1, full_export_minutes=60, targeted_share=0.1, reconciles=0).runs()

    assert runs["targeted"] == 4_248  # a tenth of 43,200 - 720
    assert runs["quiet"] + runs["targeted"] + runs["export"] == 43_200


def test_gb_seconds_are_runs_times_wall_time_times_memory_in_gigabytes() -> None:
    bill = monthly({"quiet": 1_000}, {"quiet": Measured(0.5, 1, 1)}, memory_mb=2048, prices=PRICES)

    (line,) = bill.lines
    assert line.gb_seconds == pytest.approx(1_000 * 0.5 * 2)
    assert bill.gb_seconds == pytest.approx(1_000)


def test_units_add_up_over_the_kinds_of_run() -> None:
    measured = {"quiet": Measured(0.5, 1, 1), "export": Measured(5.0, 27, 3)}

    bill = monthly({"quiet": 100, "export": 10}, measured, memory_mb=1024, prices=PRICES)

    assert bill.runs == 110
    assert bill.read_units == pytest.approx(100 * 1 + 10 * 27)
    assert bill.write_units == pytest.approx(100 * 1 + 10 * 3)


def test_dollars_are_gb_seconds_and_requests_for_lambda_and_units_for_dynamodb() -> None:
    bill = monthly({"export": 1_000_000}, {"export": Measured(1.0, 2, 4)}, memory_mb=1024, prices=PRICES)

    assert bill.lambda_usd == pytest.approx(1_000_000 * 0.00001 + 0.2)
    assert bill.dynamodb_usd == pytest.approx(2 * 0.1 + 4 * 0.5)
    assert bill.total_usd == pytest.approx(bill.lambda_usd + bill.dynamodb_usd)


def test_the_memory_size_priced_is_the_templates_default() -> None:
    assert memory_size_mb() == 1024
