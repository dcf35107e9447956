"""Error types shared by the clients and the engine.

Every message is written for an operator and never carries a secret value.
"""


class DagSyncError(Exception):
    """Base class for every error the tool raises on purpose."""


class ConfigError(DagSyncError):
    """A configuration variable is missing or invalid."""


class EventError(DagSyncError):
    """The invocation event is not one the handler accepts."""


class SecretError(DagSyncError):
    """A secret is missing, unreadable or lacks a required field."""


class PceError(DagSyncError):
    """The PCE inventory could not be read completely."""


class PanosError(DagSyncError):
    """A PAN-OS request failed as a whole (transport, HTTP or top-level XML error)."""

    def __init__(self, message: str, *, code: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


class PanosAuthError(PanosError):
    """The device refused the key or the credentials (HTTP 403, code 403, status "unauth"), or the
    admin role lacks a permission (code 16). Never retried as it stands.

    `key_expired` marks the answers a new key may cure (status "unauth" with code 22 or none): a
    generated key is then replaced once; a configured key cannot be.
    """

    def __init__(self, message: str, *, code: str | None = None, key_expired: bool = False) -> None:
        super().__init__(message, code=code)
        self.key_expired = key_expired


class SnapshotError(DagSyncError):
    """The snapshot table could not be read or written."""


class SnapshotConflict(SnapshotError):
    """Another run changed the snapshot (or holds its lease) since this run read it."""


class LeaseHeld(SnapshotConflict):
    """Another run's live lease was honoured; says whose, and how long it has been held.

    `held_for` is None for a lease written before leases recorded when they were taken.
    """

    def __init__(self, message: str, *, run_id: str, expires_at: float, held_for: float | None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.expires_at = expires_at
        self.held_for = held_for
