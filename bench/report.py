"""bench/results.md: the machine, the command, the table per estate size, and the targets."""

import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cost import Bill, Measured, Schedule, monthly
from bench.profile import RATE
from bench.runner import Case, Options, SizeResult
from bench.world import FULL_EXPORT_MINUTES

TARGET_SIZE = 100_000
RSS_LIMIT_MB = 512
STEADY_FLOOR_RATIO = 1.5
FULL_PUSH_FACTOR = 100
READ_BACK_FACTOR = 50
QUIET_WALL_SHARE = 0.1  # of the full export steady state's wall time
ONE_RELABEL_WALL_SHARE = 0.2
TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
FANOUT_HEADING = "## Fan-out"  # bench/fanout.py writes that section; a run without it keeps it

ROWS = (
    "floor",
    "dagsync/first",
    "dagsync/steady",
    "dagsync/churn",
    "dagsync/small",
    "full-push/first",
    "full-push/steady",
    "full-push/churn",
    "read-back/first",
    "read-back/steady",
    "read-back/churn",
    "feed/first",
    "feed/export",
    "feed/quiet",
    "feed/noise",
    "feed/one",
    "feed/fifty",
)

METHOD = """\
## How it is measured

- **Same code as Lambda.** Every DAG Sync row is one call of `app.lambda_handler` (the function's
  real entry point, via `emulators.local.FakeContext`): config from the environment, secrets from
  Secrets Manager, PCE async job + streamed datafile, mapping, snapshot load/commit in DynamoDB,
  PAN-OS XML API calls. Nothing of ours is mocked.
- **One fresh process per run.** Each row is a cold start in its own child process
  (`python -m bench case ...`), so *peak RSS* is that run's `ru_maxrss` (interpreter, boto3,
  Powertools and the other imports included; the import baseline alone is shown below).
- **Emulators in a separate process.** The PCE emulator (which holds the whole estate and
  serialises a ~140 MB datafile at 100,000 workloads), one PAN-OS emulator per tool and a moto
  server (DynamoDB and Secrets Manager, reached via `AWS_ENDPOINT_URL`) run in one "world"
  process, so the function's RSS excludes them and the function talks HTTP to all three, as in
  Lambda. They still share this machine's 2 cores with the function: wall times include the
  servers' work (e.g. the PCE emulator's datafile serialisation, the device's table handling).
- **Counts are taken at the servers**, not from our clients: device calls and form-body bytes
  from the PAN-OS emulator's request log; PCE requests from the PCE emulator's log; DynamoDB
  requests at the moto server.
- **DynamoDB capacity units are estimated**, because moto returns fixed dummy values: a WSGI
  meter in front of moto applies DynamoDB's sizing rules to every item read or written (4 KB read
  units, strongly consistent; 1 KB write units of the larger of the old and new item, which it
  reads from moto's backend; minimum 1 per item). On-demand billing charges the same numbers as
  read/write request units.
- **Baselines are real implementations** with our own `PceClient`, `map_workloads`, `PanosClient`
  and `chunk_entries`, each against its own emulated firewall: *full push* registers every
  desired pair every run in `BATCH_SIZE` batches (no state; it cannot remove stale pairs);
  *read-back diff* pages the device's whole registered-IP table (`show object registered-ip`,
  500 per call), diffs our prefix's pairs and pushes both directions.
- **Floor** = `PceClient.fetch_workloads()` alone (async job, poll, download and streaming parse
  of the datafile) in a fresh process against the same emulator.
- Wall times of the floor and the steady state are medians of the repeated runs, which alternate
  (floor, steady state, floor, ...) so that both see the same conditions; peak RSS is the maximum
  over them.
- **CHANGE_FEED is set on every run.** The rows above the change feed's are `CHANGE_FEED=off`
  (a full export every run, as before the feed), so they compare with earlier results. The
  feed's rows are `CHANGE_FEED=events` (the default) against the same world and device, after
  them: a first run with no watermark (a full export that writes the projection); then, alternated,
  the **full export steady state** (the same run made due as `FULL_EXPORT_MINUTES`=60 would make
  it: the world moves the watermark's export time back 61 minutes, so the run reads the watermark
  and the projection's manifest and writes the watermark, as the hourly export does) and the
  **no relevant event** run (a user's sign-in and sign-out before it: four events the feed
  ignores by type); then one `fe80::` address change, one workload relabelled into Quarantine,
  and 50 changed workloads (relabels, IP moves, deletes and adds).
- **Feed changes are made through the PCE emulator** in the world process (`relabel`,
  `churn`, `emit_user_session`, `emit_link_local_churn`), which writes the event a real PCE
  would, timestamped by the wall clock, with no indexing delay (`event_index_delay` 0), so a run
  started right after a change sees its event. The churn rows above change the estate without
  events; they run with the feed off, before the feed's first export.
- **Sent exactly the changed pairs**: the (IP, tag) pairs the device's table gained and lost over
  the run (ground truth, the canary left out), against the pairs the run's uid-messages carried,
  each counted once per message.
- **PCE bytes** are the response bodies the PCE emulator sent.
- The baselines' wall times are dominated by the emulated device's work (for read-back diff, the
  emulator sorts the whole table for every page of 500), so they say little about a real device;
  their device calls and bytes are the comparable numbers. DAG Sync's times include the same
  emulators (the PCE job alone is ~1 s of the floor at 100,000 workloads: the emulator serialises
  the datafile when the job is created).
"""


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    goal: str
    met: bool


def _machine() -> list[str]:
    model = "unknown"
    memory = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    return [
        f"- CPU: {model}, nproc = {os.cpu_count()}",
        f"- memory: {memory}",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), {platform.platform()}",
    ]


def _device(case: Case) -> dict[str, Any]:
    return case.device()


def _dynamo(case: Case) -> dict[str, Any]:
    return dict(case.last["usage"]["dynamodb"])


def _row(case: Case) -> str:
    device = _device(case)
    dynamo = _dynamo(case)
    wall = f"{case.wall_s:.2f}" + (f" (median of {len(case.runs)})" if len(case.runs) > 1 else "")
    pce = case.last["usage"]["pce"]
    return (
        f"| {case.label} | {case.change_feed} | {wall} | {case.rss_peak_mb:.0f} | {device['calls']:,} "
        f"| {device['bytes_sent']:,} | {pce['requests']} | {pce.get('bytes_sent', 0):,} "
        f"| {dynamo['read_requests']:.0f} / {dynamo['write_requests']:.0f} "
        f"| {dynamo['read_units']:g} | {dynamo['write_units']:g} |"
    )


def _targets(result: SizeResult, batch_size: int) -> list[Target]:
    cases = result.cases
    floor, steady, churn = cases["floor"], cases["dagsync/steady"], cases["dagsync/churn"]
    steady_device = _device(steady)
    targets = [
        Target(
            "steady state: device calls = the canary only",
            f"{steady_device['calls']} call ({steady_device['show_calls']} `show registered-ip`)",
            "1",
            all(run["usage"]["devices"]["dagsync"]["calls"] == 1 for run in steady.runs)
            and steady_device["show_calls"] == 1,
        ),
        Target(
            "steady state: DynamoDB writes",
            f"{max(run['usage']['dynamodb']['write_requests'] for run in steady.runs)} write requests, "
            f"{max(run['usage']['dynamodb']['write_units'] for run in steady.runs):g} WCU",
            "0",
            all(run["usage"]["dynamodb"]["write_requests"] == 0 for run in steady.runs),
        ),
    ]
    ratio = steady.wall_s / floor.wall_s
    targets.append(
        Target(
            "steady-state wall time / PCE download+parse floor",
            f"{steady.wall_s:.2f} s / {floor.wall_s:.2f} s = {ratio:.2f}x",
            f"<= {STEADY_FLOOR_RATIO}x",
            ratio <= STEADY_FLOOR_RATIO,
        )
    )
    dagsync_runs = [
        run for key in ("dagsync/first", "dagsync/steady", "dagsync/churn") for run in cases[key].runs
    ]
    peak = max(run["rss_peak_mb"] for run in dagsync_runs)
    targets.append(
        Target("peak RSS of any DAG Sync run", f"{peak:.0f} MB", f"< {RSS_LIMIT_MB} MB", peak < RSS_LIMIT_MB)
    )
    churn_device = _device(churn)
    for direction, changed_key in (("register", "ips_gaining_tags"), ("unregister", "ips_losing_tags")):
        changed = churn_device[changed_key]
        ideal = math.ceil(changed / batch_size)
        calls = churn_device[f"{direction}_calls"]
        targets.append(
            Target(
                f"churn: {direction} calls vs ceil(changed IPs / BATCH_SIZE)",
                f"{calls} calls for {changed:,} IPs (ideal {ideal})",
                "within 1",
                abs(calls - ideal) <= 1,
            )
        )
    for key in ("dagsync/churn", "dagsync/small"):
        if key in cases:
            targets.append(_shard_target(cases[key]))
    push = _device(cases["full-push/steady"])
    back = _device(cases["read-back/steady"])
    calls_factor = push["calls"] / max(1, steady_device["calls"])
    bytes_factor = push["bytes_sent"] / max(1, steady_device["bytes_sent"])
    targets.append(
        Target(
            "steady state vs full push: fewer device calls / bytes",
            f"{calls_factor:,.0f}x calls, {bytes_factor:,.0f}x bytes",
            f">= {FULL_PUSH_FACTOR}x both",
            calls_factor >= FULL_PUSH_FACTOR and bytes_factor >= FULL_PUSH_FACTOR,
        )
    )
    back_factor = back["calls"] / max(1, steady_device["calls"])
    targets.append(
        Target(
            "steady state vs read-back diff: fewer device calls",
            f"{back_factor:,.0f}x calls ({back['calls']} vs {steady_device['calls']})",
            f">= {READ_BACK_FACTOR}x",
            back_factor >= READ_BACK_FACTOR,
        )
    )
    return targets


def _shard_target(case: Case) -> Target:
    """Snapshot writes against the shards the change falls in: each generation written (the
    write-ahead checkpoint and the commit) may rewrite only the shards holding a changed IP."""
    layout = _device(case).get("snapshot") or {}
    dynamo = _dynamo(case)
    written = int(dynamo["items_put"])
    swaps = int(dynamo["by_operation"].get("PutItem", 0))
    touched = int(layout.get("shards_touched", 0))
    return Target(
        f"{case.label}: snapshot shard items written vs shards touched",
        f"{written} written in {swaps} manifest swaps; {touched} of {layout.get('shards', 0)} shards "
        "hold a changed IP",
        "written <= touched x swaps",
        written <= touched * swaps,
    )


def _load_range(result: SizeResult) -> str:
    loads = [run.get("load_before", 0.0) for case in result.cases.values() for run in case.runs]
    return f"{min(loads):.1f} to {max(loads):.1f}" if loads else "n/a"


def _size_section(result: SizeResult, options: Options) -> list[str]:
    cases = result.cases
    first = cases["dagsync/first"].last
    lines = [
        f"## {result.size:,} workloads",
        "",
        f"Estate: {first['workloads']:,} workloads, {first['pairs']:,} IP-tag pairs "
        f"on {_device(cases['dagsync/first'])['ips_gaining_tags']:,} IPs. "
        f"Churn step ({options.churn_percent:g}%): {result.churn['relabeled']:,} relabeled, "
        f"{result.churn['moved']:,} moved, {result.churn['deleted']:,} deleted, "
        f"{result.churn['added']:,} added. Section run time {result.elapsed_s:.0f} s.",
        "",
        f"1-minute load average before each run: {_load_range(result)} (2 cores; other work on the machine "
        "shows up here and in the wall times).",
        "",
        "| run | CHANGE_FEED | wall s | peak RSS MB | device calls | bytes to device | PCE requests "
        "| PCE bytes | DynamoDB requests (read / write) | RCU (est.) | WCU (est.) |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    lines += [_row(cases[key]) for key in ROWS if key in cases]
    churn = cases["dagsync/churn"]
    device = _device(churn)
    layout = device.get("snapshot") or {}
    lines += [
        "",
        f"Import baseline (RSS before the run starts): {cases['dagsync/steady'].last['rss_start_mb']:.0f} MB. "
        f"Churn on the device: {device['ips_gaining_tags']:,} IPs gained and {device['ips_losing_tags']:,} "
        f"lost tags; DAG Sync sent {device['register_calls']} register and {device['unregister_calls']} "
        f"unregister calls ({device['register_entries']:,} / {device['unregister_entries']:,} IP entries) "
        f"and wrote {_dynamo(churn)['items_put']:.0f} shard items in "
        f"{_dynamo(churn)['by_operation'].get('PutItem', 0)} snapshot generations (the write-ahead "
        f"checkpoint and the commit); {layout.get('shards_touched', 0)} of the {layout.get('shards', 0)} "
        "shards hold a changed IP.",
        "",
        *_targets_table("the scale issue", result.size, _targets(result, options.batch_size)),
    ]
    return [*lines, "", *_feed_section(result), *_profile_section(result)]


def _targets_table(issue: str, size: int, targets: list[Target]) -> list[str]:
    """The targets an issue set, measured at `size`: met or not, one row each."""
    scope = (
        ":"
        if size == TARGET_SIZE
        else f" (set for {TARGET_SIZE:,} workloads; at this size for reference only):"
    )
    return [
        f"Targets of {issue}{scope}",
        "",
        "| target | measured | goal | met |",
        "|---|---|---|---|",
        *(f"| {t.name} | {t.measured} | {t.goal} | {'yes' if t.met else '**no**'} |" for t in targets),
    ]


def _feed_targets(cases: dict[str, Case]) -> list[Target]:
    export, quiet, one = cases["feed/export"], cases["feed/quiet"], cases["feed/one"]
    quiet_requests = sorted({run["usage"]["pce"]["requests"] for run in quiet.runs})
    targets = [
        Target(
            "no relevant event: PCE requests",
            f"{', '.join(map(str, quiet_requests))} ({_pce_kinds(quiet)})",
            "1",
            quiet_requests == [1],
        ),
        _wall_target("no relevant event", quiet, export, QUIET_WALL_SHARE),
        _wall_target("one relabel", one, export, ONE_RELABEL_WALL_SHARE),
    ]
    for key in ("feed/one", "feed/fifty"):
        if key in cases:
            targets.append(_exact_target(cases[key]))
    jobs = [case.label for key, case in cases.items() if key in FEED_RUNS and _pce_count(case, "jobs")]
    targets.append(
        Target(
            "change-feed runs (after the first): no export job",
            "export jobs in " + ", ".join(jobs) if jobs else "none made",
            "0",
            not jobs,
        )
    )
    return targets


FEED_RUNS = ("feed/quiet", "feed/noise", "feed/one", "feed/fifty")


def _pce_count(case: Case, kind: str) -> int:
    return sum(int(run["usage"]["pce"]["by_kind"].get(kind, 0)) for run in case.runs)


def _pce_kinds(case: Case) -> str:
    kinds = case.last["usage"]["pce"]["by_kind"]
    return ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"


def _wall_target(name: str, case: Case, export: Case, share: float) -> Target:
    ratio = case.wall_s / export.wall_s
    return Target(
        f"{name}: wall time / full export steady",
        f"{case.wall_s:.2f} s / {export.wall_s:.2f} s = {ratio:.2f}",
        f"<= {share:g}",
        ratio <= share,
    )


def _exact_target(case: Case) -> Target:
    """What the device's table gained and lost (ground truth) against the pairs that were sent."""
    device = _device(case)
    return Target(
        f"{case.label}: sends exactly the changed pairs",
        f"sent {device['pairs_registered']:,} / {device['pairs_unregistered']:,} pairs (register / "
        f"unregister); the device gained {device['pairs_gained']:,} and lost {device['pairs_lost']:,}",
        "sent = changed, each once",
        bool(device["sent_exactly_the_changes"]),
    )


def _feed_section(result: SizeResult) -> list[str]:
    cases = result.cases
    if not all(key in cases for key in ("feed/export", "feed/quiet", "feed/one")):
        return []
    lines = [
        "Change feed (`CHANGE_FEED=events`; what each run found and fetched, from its summary):",
        "",
        "| run | what changed before it | source | events seen | workloads fetched | PCE requests "
        "| event to device s | DynamoDB requests by operation |",
        "|---|---|---|--:|--:|---|--:|---|",
    ]
    for key in ("feed/first", "feed/export", *FEED_RUNS):
        if key in cases:
            lines.append(_feed_row(cases[key]))
    lines += [
        "",
        *_targets_table("the change-feed issue", result.size, _feed_targets(cases)),
    ]
    return [*lines, "", *_cost_section(result), ""]


def _feed_row(case: Case) -> str:
    run = case.last
    change = run.get("change")
    if isinstance(change, dict):
        what = f"{change['what']} ({change['events']} events)"
    else:
        what = f"the last export moved back {FULL_EXPORT_MINUTES + 1} minutes" if change else "nothing"
    operations = ", ".join(f"{op} {n}" for op, n in run["usage"]["dynamodb"]["by_operation"].items())
    delay = run.get("event_to_device_seconds")
    return (
        f"| {case.label} | {what} | {run.get('source')} | {_dash(run.get('events_seen'))} "
        f"| {_dash(run.get('workloads_fetched'))} | {_pce_kinds(case)} "
        f"| {_dash(None if delay is None else f'{delay:.1f}')} | {operations or 'none'} |"
    )


def _dash(value: object) -> str:
    return "-" if value is None else f"{value}"


def memory_size_mb(template: Path = TEMPLATE) -> int:
    """The function's MemorySize default, from template.yaml's parameter."""
    lines = template.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "MemorySize:")
    default = next(line for line in lines[start:] if line.strip().startswith("Default:"))
    return int(default.split(":", 1)[1])


def bill(cases: dict[str, Case], schedule: Schedule, memory_mb: int) -> Bill:
    """The month of `schedule` priced from this size's feed runs: quiet, one relabel, full export."""
    measured = {
        kind: Measured(
            cases[key].wall_s, _dynamo(cases[key])["read_units"], _dynamo(cases[key])["write_units"]
        )
        for kind, key in (("quiet", "feed/quiet"), ("targeted", "feed/one"), ("export", "feed/export"))
    }
    return monthly(schedule.runs(), measured, memory_mb)


def _cost_section(result: SizeResult) -> list[str]:
    schedule = Schedule()
    memory = memory_size_mb()
    month = bill(result.cases, schedule, memory)
    names = {
        "quiet": "no relevant event",
        "targeted": "targeted update (one relabel)",
        "export": f"full export (every {schedule.full_export_minutes} min, and the daily reconcile)",
    }
    lines = [
        f"A month of a {schedule.every_minutes}-minute schedule at this size, priced from the runs above "
        f"(MemorySize {memory} MB from template.yaml; wall time here as billed duration; "
        f"{schedule.targeted_share:.0%} of the feed runs assumed to carry a change; prices: "
        f"{month.prices.source}):",
        "",
        "| run | runs a month | wall s | GB-seconds | read units | write units |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    lines += [
        f"| {names[line.kind]} | {line.runs:,} | {line.wall_s:.2f} | {line.gb_seconds:,.0f} "
        f"| {line.read_units:,.0f} | {line.write_units:,.0f} |"
        for line in month.lines
    ]
    lines += [
        f"| total | {month.runs:,} | | {month.gb_seconds:,.0f} | {month.read_units:,.0f} "
        f"| {month.write_units:,.0f} |",
        "",
        f"Lambda ${month.lambda_usd:.2f} ({month.gb_seconds:,.0f} GB-s x ${month.prices.lambda_gb_second} + "
        f"{month.runs:,} requests x ${month.prices.lambda_per_million_requests}/million), DynamoDB "
        f"${month.dynamodb_usd:.2f} ({month.read_units:,.0f} RRU x ${month.prices.dynamodb_per_million_reads}"
        f"/million + {month.write_units:,.0f} WRU x ${month.prices.dynamodb_per_million_writes}/million): "
        f"${month.total_usd:.2f} a month.",
    ]
    return lines


def _profile_section(result: SizeResult) -> list[str]:
    if not result.profiles:
        return []
    lines = [
        f"Where the time goes at {result.size:,} workloads: one extra run of each under py-spy "
        f"({RATE} samples/s, waits included; not rows of the table above). Inclusive seconds of our "
        "functions, from the raw profiles in `bench/out/*.folded`:",
        "",
    ]
    titles = (
        ("floor", "floor: `PceClient.fetch_workloads`"),
        ("dagsync/steady", "steady state"),
        ("feed/one", "feed: one relabel (a targeted update)"),
    )
    for key, title in titles:
        shares = result.profiles.get(key, [])
        if not shares:
            continue
        lines += [f"| {title} | s | % |", "|---|--:|--:|"]
        lines += [
            f"| `{share.function}` | {share.seconds:.2f} | {share.percent:.0f} |" for share in shares[:16]
        ]
        lines.append("")
    return lines


def write_report(
    path: Path, results: list[SizeResult], options: Options, command: str, elapsed_s: float
) -> None:
    lines = [
        "# DAG Sync scale benchmark",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- command: `{command}` (`make bench` runs `python -m bench`), total {elapsed_s:.0f} s",
        f"- settings: BATCH_SIZE={options.batch_size}, LABEL_KEYS default, seed {options.seed}, "
        f"{options.repeat} runs of the floor and of the steady state, and of the feed's full export and "
        "no-change run",
        *_machine(),
        "",
    ]
    for result in results:
        lines += _size_section(result, options)
    lines.append(METHOD)
    path.write_text("\n".join(lines) + _kept_fanout(path))


def _kept_fanout(path: Path) -> str:
    """The fan-out section of the report being replaced (a run without `--fanout` keeps it)."""
    text = path.read_text() if path.exists() else ""
    start = text.find("\n" + FANOUT_HEADING)
    if start < 0:
        return ""
    end = text.find("\n## ", start + 1)
    return "\n" + text[start : end if end >= 0 else len(text)].strip("\n") + "\n"
