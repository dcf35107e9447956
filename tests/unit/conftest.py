"""Fixtures shared by unit tests: a moto DynamoDB table, and one PCE loopback server per module."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulators.local import TABLE, create_table
from emulators.pce import PceEmulator
from emulators.server import LoopbackServer
from tests.support.pce import CurrentApp


@pytest.fixture(scope="module")
def current() -> CurrentApp:
    return CurrentApp()


@pytest.fixture(scope="module")
def server(current: CurrentApp) -> Iterator[LoopbackServer]:
    with LoopbackServer(current) as running:
        yield running


@pytest.fixture
def pce(current: CurrentApp) -> PceEmulator:
    current.app = PceEmulator()
    return current.app


@pytest.fixture
def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's dummy credentials and a region, and no endpoint that would send calls elsewhere."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)


@pytest.fixture
def dynamodb(moto_credentials: None) -> Iterator[Any]:
    """An in-process moto DynamoDB client with the snapshot table created."""
    with mock_aws():
        client = boto3.client("dynamodb")
        create_table(client, TABLE)
        yield client
