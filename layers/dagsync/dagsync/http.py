"""HTTP plumbing shared by the PCE and PAN-OS clients: TLS settings, sessions and Retry-After."""

import hashlib
import os
import tempfile
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds; it may be a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def tls_verify(verify: bool, ca_bundle_pem: str | None) -> bool | str:
    """The `verify` argument for requests: False, True (system CAs) or a CA bundle file.

    A PEM from a secret is written once per content to a private temp file, since
    requests only takes a path.
    """
    if not verify:
        return False
    if not ca_bundle_pem:
        return True
    digest = hashlib.sha256(ca_bundle_pem.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"dagsync-ca-{digest}.pem")
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=tempfile.gettempdir(), prefix="dagsync-ca-")
        with os.fdopen(fd, "w") as handle:
            handle.write(ca_bundle_pem)
        os.replace(tmp, path)
    return path


def new_session(verify: bool | str) -> requests.Session:
    """A session that ignores proxy and CA settings from the environment, so `verify` is exact."""
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    return session
