"""Infra fixtures: the template as written, and as deployed with every parameter at its default."""

from typing import Any

import pytest

from tests.infra.deployment import Deployment
from tests.infra.translate import load_template


@pytest.fixture(scope="module")
def default() -> Deployment:
    return Deployment()


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return load_template()
