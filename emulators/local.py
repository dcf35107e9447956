"""A local deployment: moto (in process), both emulators, the table, the secrets and the environment.

The demo, the integration tests and the benchmarks all run the real handler in process
against it, the way `sam local invoke` would without Docker.
"""

import json
import os
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from moto import mock_aws
from moto.core.config import DefaultConfig

from app import ENVIRONMENT, lambda_handler
from emulators.panos import PanosEmulator
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer

REGION = "eu-west-1"
TABLE = "dagsync-snapshots"
PCE_SECRET = "dagsync/pce"  # noqa: S105 - a secret's name, not its value
PANOS_SECRET = "dagsync/panos"  # noqa: S105 - a secret's name, not its value
PANOS_API_KEY = "test-api-key"
# What the function's environment holds against the local stand-ins whatever their endpoints:
# the region and moto's dummy credentials, the service names, the secrets' ids and the table.
FUNCTION_ENVIRONMENT: Mapping[str, str] = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
    "POWERTOOLS_SERVICE_NAME": "dagsync",
    "POWERTOOLS_METRICS_NAMESPACE": "DagSync",
    "PCE_SECRET_ID": PCE_SECRET,
    "PANOS_SECRET_ID": PANOS_SECRET,
    "SNAPSHOT_TABLE": TABLE,
}


@dataclass
class FakeContext:
    """The parts of the Lambda context object the handler and Powertools read."""

    function_name: str = "dagsync-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:dagsync-local"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def create_table(client: Any, name: str = TABLE) -> None:
    """The table as template.yaml defines it: pk/sk strings, on demand."""
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def provision(dynamodb: Any, secretsmanager: Any, pce: PceEmulator) -> None:
    """The table and the two secrets, holding the emulators' credentials."""
    create_table(dynamodb)
    secretsmanager.create_secret(
        Name=PCE_SECRET, SecretString=json.dumps({"auth_username": pce.auth_username, "secret": pce.secret})
    )
    secretsmanager.create_secret(Name=PANOS_SECRET, SecretString=json.dumps({"api_key": PANOS_API_KEY}))


def cold_start() -> None:
    """Forget cached secrets, clients and generated API keys, as a new Lambda container would."""
    parameters_base.clear_caches()  # type: ignore[no-untyped-call]
    parameters_base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
    ENVIRONMENT.cold_start()


def restore_environment(saved: Mapping[str, str | None]) -> None:
    """Put the variables back as they were (None: unset) and forget what the function cached."""
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    cold_start()


class LocalDeployment:
    """Starts moto and the emulators on loopback and points the function's environment at them."""

    def __init__(
        self,
        *,
        pce: PceEmulator | None = None,
        panos: PanosEmulator | None = None,
        peer: PanosEmulator | None = None,
        settings: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        aws_config: DefaultConfig | None = None,
    ) -> None:
        """`ssl_context` serves both emulators over HTTPS with its certificate; `aws_config` is
        moto's (for example `{"stepfunctions": {"execute_state_machine": True}}`); `peer` is the
        second member of an HA pair with `panos`, served at its own address after it in PANOS_URL."""
        self.pce = pce or PceEmulator()
        self.panos = panos or PanosEmulator("panorama", api_keys=(PANOS_API_KEY,))
        self.peer = peer
        self._settings = dict(settings or {})
        self._ssl_context = ssl_context
        self._aws = mock_aws(config=aws_config)
        self._servers: list[LoopbackServer] = []
        self._saved_env: dict[str, str | None] = {}
        self.env: dict[str, str] = {}

    def __enter__(self) -> "LocalDeployment":
        pce_server = LoopbackServer(self.pce, ssl_context=self._ssl_context).start()
        panos_server = LoopbackServer(self.panos, ssl_context=self._ssl_context).start()
        self._servers = [pce_server, panos_server]
        panos_urls = [panos_server.url]
        if self.peer is not None:
            peer_server = LoopbackServer(self.peer, ssl_context=self._ssl_context).start()
            self._servers.append(peer_server)
            panos_urls.append(peer_server.url)
        self.env = {
            **FUNCTION_ENVIRONMENT,
            "PCE_URL": pce_server.url,
            "PCE_ORG_ID": str(self.pce.org_id),
            "PANOS_URL": ",".join(panos_urls),
            **self._settings,
        }
        for name, value in self.env.items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        cold_start()
        self._aws.start()
        self._provision()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()
        self._aws.stop()
        restore_environment(self._saved_env)

    def client(self, service: Any) -> Any:
        return boto3.client(service, region_name=REGION)

    def _provision(self) -> None:
        provision(self.client("dynamodb"), self.client("secretsmanager"), self.pce)

    def put_secret(self, secret_id: str, value: str) -> None:
        self.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=value)
        cold_start()

    def invoke(self, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run the real handler once; a failed or partial run raises, as it does in Lambda."""
        result: dict[str, Any] = lambda_handler(dict(event or {}), FakeContext())
        return result
