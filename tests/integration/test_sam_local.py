"""`make local`: env.local.json runs the function, as `sam local invoke` would, against the stand-ins.

There is no Docker here, so the handler runs in a fresh Python process with exactly the
environment of env.local.json (the container's host name rewritten to loopback) plus what the
printed `sam local invoke` line exports in the shell, and nothing else.
"""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.sam_local import (
    CONTAINER_HOST,
    EVENTS,
    FUNCTION,
    ROOT,
    SHELL_ENVIRONMENT,
    LocalServices,
    invoke_lines,
    write_env_file,
)
from tests.infra.deployment import Deployment

# What a Lambda container puts on the path: the function's code and the layer's package.
LAMBDA_PATH = [ROOT / "functions" / "dag_sync", ROOT / "layers" / "dagsync"]
INVOKE = """
import json, sys, uuid
from app import lambda_handler

class Context:
    function_name = "dagsync-local"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:dagsync-local"
    aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return 900_000

print(json.dumps(lambda_handler(json.load(open(sys.argv[1])), Context())))
"""


@pytest.fixture(scope="module")
def services() -> Iterator[LocalServices]:
    with LocalServices() as running:
        yield running


@pytest.fixture(scope="module")
def env_file(services: LocalServices, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("local") / "env.local.json"
    write_env_file(path, services.function_environment(CONTAINER_HOST))
    return path


def _file_environment(env_file: Path) -> dict[str, str]:
    variables: dict[str, str] = json.loads(env_file.read_text(encoding="utf-8"))[FUNCTION]
    return variables


def invoke(env_file: Path, event_file: Path) -> subprocess.CompletedProcess[str]:
    """The handler in a new process with env.local.json's variables, its host name on loopback."""
    text = env_file.read_text(encoding="utf-8").replace(CONTAINER_HOST, "127.0.0.1")
    environment = {
        **json.loads(text)[FUNCTION],
        **SHELL_ENVIRONMENT,
        "PYTHONPATH": ":".join(str(path) for path in LAMBDA_PATH),
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", INVOKE, str(event_file)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-2000:]
    summary: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return summary


def test_env_file_names_every_variable_the_template_gives_the_function(env_file: Path) -> None:
    template_variables = Deployment().function["Environment"]["Variables"]
    assert set(_file_environment(env_file)) == set(template_variables)


def test_env_file_reaches_every_endpoint_through_the_containers_host_name(env_file: Path) -> None:
    variables = _file_environment(env_file)
    endpoints = [variables[name] for name in ("PCE_URL", "PANOS_URL", "AWS_ENDPOINT_URL")]
    assert [url for url in endpoints if not url.startswith(f"http://{CONTAINER_HOST}:")] == []


def test_scheduled_event_syncs_the_demo_estate_to_the_device(services: LocalServices, env_file: Path) -> None:
    summary = _summary(invoke(env_file, EVENTS / "scheduled.json"))
    (target,) = summary["targets"]
    assert (summary["status"], target["status"]) == ("ok", "ok")
    assert target["registered"] == summary["pairs"] > 0
    assert len(services.panos.table()) > 1  # the estate's IPs and the canary


def test_dry_run_event_changes_nothing(services: LocalServices, env_file: Path) -> None:
    before = services.panos.table()
    summary = _summary(invoke(env_file, EVENTS / "manual-dry-run.json"))
    assert (summary["dry_run"], services.panos.table()) == (True, before)


def test_a_line_is_printed_for_each_ready_event(env_file: Path) -> None:
    lines = invoke_lines(env_file, network_host=False)
    assert [line.split(" -e ")[1].split()[0] for line in lines] == [
        f"events/{event.name}" for event in sorted(EVENTS.glob("*.json"))
    ]
    assert all(f"sam local invoke {FUNCTION} " in line and f"--env-vars {env_file}" in line for line in lines)
