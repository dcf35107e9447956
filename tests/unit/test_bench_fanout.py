"""The fan-out section of bench/results.md, from rows the bench measured."""

from bench.fanout import RUNS, FanOutRow, FanOutSpec, report


def row(serials: int, concurrency: int, seconds: float) -> FanOutRow:
    return FanOutRow(
        serials,
        concurrency,
        dict.fromkeys(RUNS, seconds),
        dict.fromkeys(RUNS, 0.0),
        dict.fromkeys(RUNS, "ok"),
        {RUNS[0]: "export", RUNS[1]: "none", RUNS[2]: "events", RUNS[3]: "export"},
    )


def test_the_ratio_of_each_run_is_sequential_over_parallel_wall_time() -> None:
    spec = FanOutSpec(serials=(50,))

    lines = report(spec, [row(50, 1, 16.0), row(50, 5, 4.0)], elapsed_s=60)

    assert "| 50 | 4.00x | 4.00x | 4.00x | 4.00x |" in lines


def test_the_section_states_the_device_costs_and_how_each_run_read_the_inventory() -> None:
    spec = FanOutSpec(serials=(1,), time_scale=0.01, response_s=0.3)

    text = "\n".join(report(spec, [row(1, 1, 1.0), row(1, 5, 1.0)], elapsed_s=60))

    assert "times 0.01" in text and "after 300 ms" in text
    assert "steady state: none" in text and "1% churn: events" in text
