"""Composition root: secrets and clients built from Settings, shared by the handler and the CLI."""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_lambda_powertools.utilities import parameters

from dagsync.config import Settings, Target
from dagsync.engine import Device, SyncEngine
from dagsync.errors import SecretError
from dagsync.pacing import Pacer
from dagsync.panos import PanosClient, PanosCredentials
from dagsync.pce import DEFAULT_REQUESTS_PER_MINUTE, PCE_RETRY, PceClient, PceCredentials
from dagsync.retry import Clock, Retrier, RetryPolicy, Sleep
from dagsync.snapshot import SnapshotStore

# Secrets are cached in memory this long (SPEC §2), so a warm function does not call
# Secrets Manager on every run, and a rotated secret is picked up within minutes.
SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True)
class ClientOptions:
    """How the clients of one run wait, retry and time out; given by whoever starts the run.

    The handler sets `deadline` (a value of `clock`) from the invocation's remaining time, so
    no retry waits past it; tests give a fake `sleep` and `clock`, so no wait takes real time.
    `timeout` bounds each PCE request (the PAN-OS client keeps its own for now).
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pce_retry: RetryPolicy = PCE_RETRY
    timeout: float = 30.0
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    deadline: float | None = None

    def retrier(self, policy: RetryPolicy) -> Retrier:
        """A retrier for one client, on this run's clock and deadline."""
        return Retrier(policy, sleep=self.sleep, clock=self.clock, deadline=self.deadline)

    def pacer(self, per_minute: int) -> Pacer:
        """The run's one PCE pacer, on this run's clock and deadline."""
        return Pacer(per_minute, clock=self.clock, sleep=self.sleep, deadline=self.deadline)


def read_secret(secret_id: str) -> Mapping[str, object]:
    """The secret's JSON object; errors name the secret, never its content."""
    try:
        raw = parameters.get_secret(secret_id, max_age=SECRET_CACHE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        # Powertools raises GetParameterError inside its handler: the SDK error is the context.
        cause = exc.__cause__ or exc.__context__ or exc
        raise SecretError(f"secret {secret_id} could not be read: {_aws_reason(cause)}") from None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    try:
        data = json.loads(text)
    except ValueError:
        raise SecretError(f"secret {secret_id} is not JSON; see the README for its shape") from None
    if not isinstance(data, dict):
        raise SecretError(f"secret {secret_id} must be a JSON object; see the README for its shape")
    return data


def _aws_reason(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".strip()
    return type(exc).__name__


def build_engine(
    settings: Settings,
    *,
    run_id: str,
    lease_seconds: float,
    options: ClientOptions | None = None,
    pce_max_requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE,
) -> SyncEngine:
    """The engine for one run: settings and secrets in, clients built from `options`."""
    options = options or ClientOptions()
    pce_credentials = PceCredentials.from_secret(read_secret(settings.pce_secret_id), settings.pce_secret_id)
    panos_credentials = PanosCredentials.from_secret(
        read_secret(settings.panos_secret_id), settings.panos_secret_id
    )
    inventory = PceClient(
        settings.pce_url,
        settings.pce_org_id,
        pce_credentials,
        verify_tls=settings.pce_verify_tls,
        retrier=options.retrier(options.pce_retry),
        pacer=options.pacer(pce_max_requests_per_minute),
        timeout=options.timeout,
    )

    def device_for(target: Target) -> Device:
        return PanosClient(
            settings.panos_url,
            panos_credentials,
            verify_tls=settings.panos_verify_tls,
            vsys=target.vsys,
            target_serial=target.serial,
            retry=options.retry,
            sleep=options.sleep,
        )

    return SyncEngine(
        settings,
        inventory=inventory,
        store=SnapshotStore(settings.snapshot_table),
        device_for=device_for,
        run_id=run_id,
        lease_seconds=lease_seconds,
    )
