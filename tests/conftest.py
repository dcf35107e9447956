"""Fixtures every kind of test uses."""

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dagsync.edges import observability


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every structured log line the function writes (its own logger and its children), parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(observability.logger.registered_formatter)
    service_logger = logging.getLogger(observability.SERVICE)
    service_logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    service_logger.removeHandler(handler)
