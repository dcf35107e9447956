"""Typed configuration, read from the function's environment and validated once."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from dagsync.errors import ConfigError

DEFAULT_LABEL_KEYS = ("role", "app", "env", "loc")
_SERIAL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_VSYS = re.compile(r"^vsys[0-9]{1,3}$")
_LABEL_KEY = re.compile(r"^[^\s,]{1,64}$")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True, slots=True)
class Target:
    """One place where registrations live: the device at PANOS_URL, or a firewall behind Panorama."""

    name: str  # host[/serial][/vsys]; also the snapshot key
    serial: str | None
    vsys: str | None


@dataclass(frozen=True, slots=True)
class Settings:
    pce_url: str
    pce_org_id: int
    pce_secret_id: str
    panos_url: str
    panos_secret_id: str
    panos_vsys: str | None
    panos_target_serials: tuple[str, ...]
    snapshot_table: str
    tag_prefix: str
    label_keys: frozenset[str] | None  # None means every key (`*`)
    include_ipv6: bool
    max_removal_ratio: float
    batch_size: int
    dry_run: bool
    pce_verify_tls: bool
    panos_verify_tls: bool

    @property
    def targets(self) -> tuple[Target, ...]:
        host = urlsplit(self.panos_url).netloc
        serials: tuple[str | None, ...] = self.panos_target_serials or (None,)
        return tuple(
            Target(
                name="/".join(part for part in (host, serial, self.panos_vsys) if part),
                serial=serial,
                vsys=self.panos_vsys,
            )
            for serial in serials
        )

    def insecure_settings(self) -> list[str]:
        """What an operator should hear about on every run: plain HTTP and disabled TLS checks."""
        notes = []
        for name, url, verify in (
            ("PCE_URL", self.pce_url, self.pce_verify_tls),
            ("PANOS_URL", self.panos_url, self.panos_verify_tls),
        ):
            if url.startswith("http://"):
                notes.append(f"{name} uses plain http://; traffic and credentials are not encrypted")
            elif not verify:
                notes.append(f"TLS certificate verification is off for {name}")
        return notes


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from environment variables; the first bad variable raises ConfigError."""
    reader = _Reader(environ)
    settings = Settings(
        pce_url=reader.url("PCE_URL"),
        pce_org_id=reader.integer("PCE_ORG_ID", minimum=1),
        pce_secret_id=reader.required("PCE_SECRET_ID"),
        panos_url=reader.url("PANOS_URL"),
        panos_secret_id=reader.required("PANOS_SECRET_ID"),
        panos_vsys=reader.vsys("PANOS_VSYS"),
        panos_target_serials=reader.serials("PANOS_TARGET_SERIALS"),
        snapshot_table=reader.table("SNAPSHOT_TABLE"),
        tag_prefix=reader.tag_prefix("TAG_PREFIX"),
        label_keys=reader.label_keys("LABEL_KEYS"),
        include_ipv6=reader.boolean("INCLUDE_IPV6", default=True),
        max_removal_ratio=reader.ratio("MAX_REMOVAL_RATIO", default=0.25),
        batch_size=reader.integer("BATCH_SIZE", default=500, minimum=1, maximum=1000),
        dry_run=reader.boolean("DRY_RUN", default=False),
        pce_verify_tls=reader.boolean("PCE_VERIFY_TLS", default=True),
        panos_verify_tls=reader.boolean("PANOS_VERIFY_TLS", default=True),
    )
    return settings


class _Reader:
    """Reads one variable at a time and names it in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def _raw(self, name: str) -> str:
        return self._environ.get(name, "").strip()

    def required(self, name: str) -> str:
        value = self._raw(name)
        if not value:
            raise ConfigError(f"{name} is required and is not set")
        return value

    def url(self, name: str) -> str:
        value = self.required(name).rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in {"https", "http"} or not parts.hostname:
            raise ConfigError(f"{name} must be an https:// (or http://) URL with a host, got {value!r}")
        if parts.path or parts.query or parts.fragment:
            raise ConfigError(f"{name} must be scheme, host and port only, without a path, got {value!r}")
        try:
            _ = parts.port
        except ValueError as exc:
            raise ConfigError(f"{name} has an invalid port: {value!r}") from exc
        return value

    def integer(
        self, name: str, *, default: int | None = None, minimum: int, maximum: int | None = None
    ) -> int:
        raw = self._raw(name)
        if not raw:
            if default is None:
                raise ConfigError(f"{name} is required and is not set")
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            raise ConfigError(f"{name} must be {bound}, got {value}")
        return value

    def boolean(self, name: str, *, default: bool) -> bool:
        raw = self._raw(name).lower()
        if not raw:
            return default
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        raise ConfigError(f"{name} must be true or false, got {raw!r}")

    def ratio(self, name: str, *, default: float) -> float:
        raw = self._raw(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}") from exc
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be between 0 and 1, got {raw!r}")
        return value

    def vsys(self, name: str) -> str | None:
        raw = self._raw(name)
        if not raw:
            return None
        if not _VSYS.match(raw):
            raise ConfigError(f"{name} must look like vsys1, got {raw!r}")
        return raw

    def serials(self, name: str) -> tuple[str, ...]:
        raw = self._raw(name)
        if not raw:
            return ()
        serials = tuple(part.strip() for part in raw.split(","))
        for serial in serials:
            if not _SERIAL.match(serial):
                raise ConfigError(f"{name} must be comma-separated firewall serials, got {serial!r}")
        if len(set(serials)) != len(serials):
            raise ConfigError(f"{name} lists a serial twice")
        return serials

    def table(self, name: str) -> str:
        value = self.required(name)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", value):
            raise ConfigError(f"{name} is not a valid DynamoDB table name: {value!r}")
        return value

    def tag_prefix(self, name: str) -> str:
        value = self._environ.get(name, "illumio.")
        if not value.strip():
            raise ConfigError(f"{name} must not be empty: it is the boundary of what this tool owns")
        if any(ch in value for ch in "'\"") or value != value.strip() or len(value) > 64:
            raise ConfigError(
                f"{name} must be at most 64 characters with no quotes or surrounding spaces, got {value!r}"
            )
        return value

    def label_keys(self, name: str) -> frozenset[str] | None:
        raw = self._raw(name)
        if not raw:
            return frozenset(DEFAULT_LABEL_KEYS)
        if raw == "*":
            return None
        keys = [part.strip() for part in raw.split(",")]
        for key in keys:
            if not _LABEL_KEY.match(key):
                raise ConfigError(f"{name} must be '*' or comma-separated label keys, got {key!r}")
        return frozenset(keys)
