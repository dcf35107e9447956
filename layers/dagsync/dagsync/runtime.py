"""Composition root: secrets and clients built from Settings, shared by the handler and the CLI."""

import json
from collections.abc import Mapping

from aws_lambda_powertools.utilities import parameters

from dagsync.config import Settings, Target
from dagsync.engine import Device, SyncEngine
from dagsync.errors import SecretError
from dagsync.panos import PanosClient, PanosCredentials
from dagsync.pce import PceClient, PceCredentials
from dagsync.retry import RetryPolicy
from dagsync.snapshot import SnapshotStore

# Secrets are cached in memory this long (SPEC §2), so a warm function does not call
# Secrets Manager on every run, and a rotated secret is picked up within minutes.
SECRET_CACHE_SECONDS = 300
DEFAULT_RETRY = RetryPolicy()


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
    settings: Settings, *, run_id: str, lease_seconds: float, retry: RetryPolicy | None = None
) -> SyncEngine:
    retry = retry or DEFAULT_RETRY
    pce_credentials = PceCredentials.from_secret(read_secret(settings.pce_secret_id), settings.pce_secret_id)
    panos_credentials = PanosCredentials.from_secret(
        read_secret(settings.panos_secret_id), settings.panos_secret_id
    )
    inventory = PceClient(
        settings.pce_url,
        settings.pce_org_id,
        pce_credentials,
        verify_tls=settings.pce_verify_tls,
        retry=retry,
    )

    def device_for(target: Target) -> Device:
        return PanosClient(
            settings.panos_url,
            panos_credentials,
            verify_tls=settings.panos_verify_tls,
            vsys=target.vsys,
            target_serial=target.serial,
            retry=retry,
        )

    return SyncEngine(
        settings,
        inventory=inventory,
        store=SnapshotStore(settings.snapshot_table),
        device_for=device_for,
        run_id=run_id,
        lease_seconds=lease_seconds,
    )
