"""docs/configuration.md#secrets: no secret value, API key or password in any log line, result or error, for runs that
succeed and runs that fail. Every log record of every logger is captured at DEBUG, along with
everything written to stdout and stderr (Powertools' JSON lines and the EMF metrics)."""

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app import RunFailed
from emulators.local import PANOS_SECRET, PCE_SECRET
from tests.faults.harness import outcome

PASSWORD = "pw-Xq7!rT2#secret"
PCE_SECRET_VALUE = "pce-secret-5b0c8e1f9a7d4c2e"


class Everything(logging.Handler):
    """Keeps each record whole: message, arguments, extras and any traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._formatter = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.getMessage()} {record.__dict__!r}"
        if record.exc_info:
            text += self._formatter.formatException(record.exc_info)
        self.lines.append(text)


@pytest.fixture
def records() -> Iterator[Everything]:
    handler = Everything()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the function's JSON log handler writes (stdout in Lambda, bound when it was built)."""
    buffer = io.StringIO()
    streams = [h for h in logging.getLogger("dagsync").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(buffer) for h in streams]
    yield buffer
    for h, stream in zip(streams, previous, strict=True):
        h.setStream(stream)


@pytest.fixture
def pce(pce):
    pce.secret = PCE_SECRET_VALUE
    return pce


def run_all_outcomes(deployment, pce, panos) -> list[object]:
    """A success, then failures at each stage that handles a secret, then a success again."""
    outcomes: list[object] = [outcome(deployment)]
    pce.relabel("/orgs/1/workloads/web1", "env", "Quarantine")
    pce.secret = "rotated-" + PCE_SECRET_VALUE  # the PCE now refuses the stored secret
    outcomes.append(outcome(deployment))
    pce.secret = PCE_SECRET_VALUE
    panos.revoke_keys_after(1)  # the generated key dies mid-run
    outcomes.append(outcome(deployment))
    outcomes.append(outcome(deployment))  # a new key is generated
    return outcomes


def test_no_secret_appears_in_logs_results_or_errors(deployment, pce, panos, records, json_lines, capfd):
    panos.add_user("dagsync", PASSWORD)
    deployment.put_secret(PANOS_SECRET, json.dumps({"username": "dagsync", "password": PASSWORD}))
    deployment.put_secret(
        PCE_SECRET, json.dumps({"auth_username": pce.auth_username, "secret": PCE_SECRET_VALUE})
    )
    records.lines.clear()
    capfd.readouterr()
    outcomes = run_all_outcomes(deployment, pce, panos)
    deployment.put_secret(PANOS_SECRET, f"password={PASSWORD}")  # not JSON, holding a password
    outcomes.append(outcome(deployment))
    printed = capfd.readouterr()
    statuses = [o["status"] if isinstance(o, dict) else type(o).__name__ for o in outcomes]
    assert statuses == ["ok", "RunFailed", "RunFailed", "ok", "RunFailed"]
    assert all(isinstance(o, dict | RunFailed) for o in outcomes)
    everything = "\n".join(
        [
            json_lines.getvalue(),
            printed.out,
            printed.err,
            *records.lines,
            *(json.dumps(o) if isinstance(o, dict) else repr(o) for o in outcomes),
        ]
    )
    assert everything.count('"message":"run summary"') == 5
    secrets = [PASSWORD, PCE_SECRET_VALUE, *panos.issued_keys()]
    assert len(secrets) == 4  # the password, the PCE secret and two generated keys
    assert [secret for secret in secrets if secret in everything] == []
