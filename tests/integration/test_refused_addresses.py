"""An address the device answers `Invalid IP address` for (docs/sync.md#per-entry-results).

The device will refuse it however often it is sent, so the run reports a warning and keeps the
target `ok`: the pair is neither confirmed nor uncertain. A full export plans it again (the
desired state holds it and the snapshot does not); a quiet change-feed minute sends nothing.
"""

import json
from pathlib import Path
from typing import Any

import pytest

from emulators.panos import PanosEmulator
from tests.integration.conftest import ClientSetup
from tests.integration.test_sync import ours, sent_pairs
from tests.support.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[2] / "events"
SCHEDULED = json.loads((EVENTS / "scheduled.json").read_text())
REFUSED = "10.1.0.3"  # db1's IPv4 address
WARNING = f"the device refused address {REFUSED} as invalid; it is not tagged"


def warned(summary: dict[str, Any]) -> bool:
    """Whether the run's warnings (each prefixed with its target's name) report the refused address."""
    return any(warning.endswith(f": {WARNING}") for warning in summary.get("warnings", []))


@pytest.fixture(autouse=True)
def feed_clock(fast_retries: ClientSetup) -> FakeClock:
    """The wall clock of the feed's watermark, so a later run is a later minute."""
    wall = FakeClock()
    fast_retries.configure(wall_clock=wall)
    return wall


@pytest.fixture
def refusing(panos: PanosEmulator) -> PanosEmulator:
    panos.refuse_ips([REFUSED])
    return panos


def refused_sent(panos: PanosEmulator) -> set[tuple[str, str]]:
    return {pair for pair in sent_pairs(panos, "register") if pair[0] == REFUSED}


def test_an_invalid_ip_is_a_warning_and_the_target_stays_ok(deployment: Any, refusing: PanosEmulator) -> None:
    summary = deployment.invoke(SCHEDULED)
    (target,) = summary["targets"]
    assert (summary["status"], target["status"]) == ("ok", "ok")
    assert warned(summary)
    assert REFUSED not in ours(refusing.table())
    assert "10.1.0.4" in ours(refusing.table())


@pytest.mark.parametrize("settings", [{"CHANGE_FEED": "off"}], ids=["feed-off"])
def test_an_invalid_ip_is_sent_again_on_every_full_export(
    deployment: Any, refusing: PanosEmulator, feed_clock: FakeClock
) -> None:
    deployment.invoke(SCHEDULED)
    feed_clock.advance(60)
    refusing.clear_log()

    summary = deployment.invoke(SCHEDULED)

    assert (summary.get("source"), summary["status"]) == (None, "ok")  # the feed off: every run exports
    assert refused_sent(refusing) != set()
    assert warned(summary)


def test_a_quiet_change_feed_minute_does_not_send_an_invalid_ip_again(
    deployment: Any, refusing: PanosEmulator, feed_clock: FakeClock
) -> None:
    deployment.invoke(SCHEDULED)
    feed_clock.advance(60)
    refusing.clear_log()

    summary = deployment.invoke(SCHEDULED)

    assert (summary["source"], summary["status"]) == ("none", "ok")
    assert refused_sent(refusing) == set()
    assert not warned(summary)
