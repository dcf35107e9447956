"""FanOut=StepFunctions: the template's state machine, executed by moto, invoking the real handler.

moto executes a state machine's `lambda:invoke` tasks through its own Lambda service, which runs a
function's code in a Docker container (`LambdaFunction._invoke_lambda`). There is no Docker here,
so `InProcessLambda` takes the container's place and nothing else: moto still receives the Invoke
call, finds the function, and turns a raised error into a function error; the runtime imports the
function's handler, sets the function's environment, and calls it with a context whose remaining
time runs down from the function's timeout, as Lambda's runtime would.
"""

import importlib
import io
import json
import os
import threading
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.awslambda.models import LambdaFunction
from moto.core.config import DefaultConfig

from dagsync.core.result import RunResult
from emulators.local import REGION, FakeContext, LocalDeployment
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from tests.infra.deployment import Deployment
from tests.integration.conftest import large_estate
from tests.support.clock import FakeClock

ACCOUNT = "123456789012"
FUNCTION = "dagsync"
EXECUTION_TIMEOUT_SECONDS = 120.0
SCHEDULED_EVENT = {
    "version": "0",
    "id": "execution-1",
    "detail-type": "Scheduled Event",
    "source": "aws.scheduler",
    "account": ACCOUNT,
    "time": "2026-11-26T12:00:00Z",
    "region": REGION,
    "resources": [f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/dagsync-sync"],
    "detail": {},
}
# The summary field the state machine loops on (docs/fan-out.md#step-functions).
REPORTS_UNFINISHED = "unfinished" in RunResult(mode="sync", dry_run=False).to_dict()


@dataclass
class CountdownContext(FakeContext):
    """A Lambda context whose remaining time runs down on `clock` from the function's timeout."""

    clock: Callable[[], float] = field(default_factory=FakeClock)
    deadline: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock()) * 1000))


class InProcessLambda:
    """Stands in for moto's Docker container: runs the function's handler in this process."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.events: list[Any] = []

    def __call__(self, function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        self.events.append(event)
        module_name, handler_name = str(function.handler).rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), handler_name)
        context = CountdownContext(
            function_name=function.function_name,
            memory_limit_in_mb=int(function.memory_size),
            invoked_function_arn=function.function_arn,
            clock=self.clock,
            deadline=self.clock() + float(function.timeout),
        )
        with _environment(function.environment_vars):
            try:
                result = handler(event, context)
            except Exception as exc:  # the runtime reports any error as the function's error
                return json.dumps({"errorMessage": str(exc), "errorType": type(exc).__name__}), True, ""
        return json.dumps(result), False, ""


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _definition(max_invocations: int, function_arn: str) -> str:
    """The template's state machine definition, substituted as CloudFormation would."""
    template = Deployment(FanOut="StepFunctions").properties("FanOutStateMachine")
    text: str = template["DefinitionString"]["Fn::Sub"][0]
    return (
        text.replace("${AWS::Partition}", "aws")
        .replace("${FunctionArn}", function_arn)
        .replace("${MaxInvocations}", str(max_invocations))
    )


class FanOut:
    """The function and the template's state machine, deployed in moto against the emulators."""

    def __init__(
        self, local: LocalDeployment, runtime: InProcessLambda, *, timeout: int, max_invocations: int
    ):
        self.local = local
        self.runtime = runtime
        self.executions = 0
        iam = local.client("iam")
        role = iam.create_role(RoleName="dagsync", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function = local.client("lambda").create_function(
            FunctionName=FUNCTION,
            Runtime="python3.13",
            Role=role,
            Handler="app.lambda_handler",
            Code={"ZipFile": _zip({"app.py": "# served in process\n"})},
            Timeout=timeout,
            Environment={"Variables": local.env},
        )
        self.state_machine = local.client("stepfunctions").create_state_machine(
            name="dagsync-fan-out",
            definition=_definition(max_invocations, function["FunctionArn"]),
            roleArn=role,
        )["stateMachineArn"]

    def execute(self, event: dict[str, Any]) -> dict[str, Any]:
        """Start one execution, as the schedule does, and wait for it to end."""
        stepfunctions = self.local.client("stepfunctions")
        before = set(threading.enumerate())
        self.executions += 1
        execution = stepfunctions.start_execution(
            stateMachineArn=self.state_machine, name=f"execution-{self.executions}", input=json.dumps(event)
        )
        for worker in set(threading.enumerate()) - before:
            worker.join(EXECUTION_TIMEOUT_SECONDS)
        described: dict[str, Any] = stepfunctions.describe_execution(executionArn=execution["executionArn"])
        return described


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def device_clock(panos: PanosEmulator) -> Callable[[], float]:
    """Time that passes only on the device: one second per request it answers."""
    return lambda: float(len(panos.requests))


@pytest.fixture
def fan_out(
    monkeypatch: pytest.MonkeyPatch,
    pce: PceEmulator,
    panos: PanosEmulator,
    device_clock: Callable[[], float],
    request: pytest.FixtureRequest,
) -> Iterator[FanOut]:
    """Deployed with `@pytest.mark.fan_out(timeout=..., max_invocations=..., settings={...})`."""
    marker = request.node.get_closest_marker("fan_out")
    options: dict[str, Any] = {"timeout": 900, "max_invocations": 16, "settings": {}}
    options.update(marker.kwargs if marker else {})
    runtime = InProcessLambda(device_clock)
    monkeypatch.setattr(
        LambdaFunction, "_invoke_lambda", lambda function, event=None: runtime(function, event)
    )
    aws_config: DefaultConfig = {"stepfunctions": {"execute_state_machine": True}}
    with LocalDeployment(pce=pce, panos=panos, settings=options["settings"], aws_config=aws_config) as local:
        yield FanOut(local, runtime, timeout=options["timeout"], max_invocations=options["max_invocations"])


def test_execution_invokes_the_real_handler_with_the_schedules_event(fan_out: FanOut) -> None:
    fan_out.execute(SCHEDULED_EVENT)
    assert fan_out.runtime.events == [SCHEDULED_EVENT]


def test_finished_run_ends_the_execution_succeeded_with_the_summary(
    fan_out: FanOut, panos: PanosEmulator
) -> None:
    execution = fan_out.execute(SCHEDULED_EVENT)
    summary = json.loads(execution["output"])
    assert (execution["status"], summary["status"], summary["pairs"]) == ("SUCCEEDED", "ok", 17)
    assert len(panos.table()) == 6  # five workload IPs (fe80:: dropped) and the canary


def test_finished_run_is_invoked_once(fan_out: FanOut) -> None:
    fan_out.execute(SCHEDULED_EVENT)
    assert len(fan_out.runtime.events) == 1


def test_failed_target_ends_the_execution_failed(fan_out: FanOut, panos: PanosEmulator) -> None:
    panos.fail_next(1000, status=403)
    execution = fan_out.execute(SCHEDULED_EVENT)
    assert (execution["status"], execution.get("error")) == ("FAILED", "RunFailed")


def test_failed_run_is_not_invoked_again(fan_out: FanOut, panos: PanosEmulator) -> None:
    panos.fail_next(1000, status=403)
    fan_out.execute(SCHEDULED_EVENT)
    assert len(fan_out.runtime.events) == 1


def test_blocked_run_ends_the_execution_succeeded(fan_out: FanOut, pce: PceEmulator) -> None:
    pce.set_workloads(large_estate(40))
    fan_out.execute(SCHEDULED_EVENT)
    pce.set_workloads(large_estate(10))
    execution = fan_out.execute(SCHEDULED_EVENT)
    summary = json.loads(execution["output"])
    assert (execution["status"], summary["status"]) == ("SUCCEEDED", "blocked")


# Sixty workloads in batches of five are twelve device requests, and the device's clock gives an
# invocation six: about five batches each, so three invocations end the first sync.
LONG_FIRST_SYNC = {"timeout": 6, "settings": {"BATCH_SIZE": "5"}}


@pytest.mark.fan_out(**LONG_FIRST_SYNC)
def test_execution_runs_again_at_once_until_no_target_is_unfinished(
    fan_out: FanOut, pce: PceEmulator, panos: PanosEmulator
) -> None:
    pce.set_workloads(large_estate(60))
    execution = fan_out.execute(SCHEDULED_EVENT)
    summary = json.loads(execution["output"])
    assert (execution["status"], summary["status"], summary["unfinished"]) == ("SUCCEEDED", "ok", 0)
    assert len(fan_out.runtime.events) > 1
    assert len(panos.table()) == 61  # sixty workloads and the canary


@pytest.mark.fan_out(**LONG_FIRST_SYNC, max_invocations=2)
def test_execution_ends_after_the_bound_with_targets_still_unfinished(
    fan_out: FanOut, pce: PceEmulator
) -> None:
    pce.set_workloads(large_estate(60))
    execution = fan_out.execute(SCHEDULED_EVENT)
    summary = json.loads(execution["output"])
    outcome = (execution["status"], summary["unfinished"], len(fan_out.runtime.events))
    assert outcome == ("SUCCEEDED", 1, 2)
