"""Fixtures every kind of test uses."""

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

import hypothesis
import pytest

from dagsync.edges import observability

# Hypothesis profiles, chosen with HYPOTHESIS_PROFILE: `ci` (the default, what `make test` runs:
# fixed seeds, so a failure replays), `dev` (a quick pass while editing), `release` (a deep search).
hypothesis.settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile("dev", max_examples=20, deadline=None)
hypothesis.settings.register_profile("release", max_examples=2000, deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
