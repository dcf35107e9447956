"""Typed configuration, read from the function's environment and validated once.

Each variable is one field of `Settings`: its type, its default and its rule side by side. The
variable's name is the field's name in upper case. See docs/configuration.md#variables.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, ValidationError
from pydantic_core import PydanticCustomError, core_schema

from dagsync.core.errors import ConfigError

DEFAULT_LABEL_KEYS = ("role", "app", "env", "loc")
# A lease outlives the run that took it by this much, so a killed run's lease expires soon after it.
LEASE_MARGIN_SECONDS = 30.0

SharedIpPolicy = Literal["union", "skip"]
ChangeFeed = Literal["events", "off"]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SERIAL = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VSYS = re.compile(r"vsys[0-9]{1,3}")
_LABEL_KEY = re.compile(r"[^\s,]{1,64}")
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")
# A stack name fits (letters, digits, hyphens, up to 128); nothing that a tag could not carry.
_DEPLOYMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
STATE_KINDS = ("enforcement", "managed", "online")  # STATE_TAGS' vocabulary (docs/mapping.md#state-tags)
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


@dataclass(frozen=True, slots=True)
class Env:
    """How one variable's text becomes its value.

    Blank text means the field's default (or, without one, that the variable is missing). A
    `verbatim` rule gets the text as given, blank and surrounding spaces included, to judge itself.
    """

    parse: Callable[[str], object]
    verbatim: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def _validate(self, raw: object) -> object:
        if not isinstance(raw, str):
            raise _invalid(f"must be text, got {type(raw).__name__}")
        return self.parse(raw if self.verbatim else raw.strip())


def _invalid(problem: str) -> PydanticCustomError:
    """An error whose message is exactly `problem`; load_settings puts the variable's name before it."""
    return PydanticCustomError("invalid_setting", "{problem}", {"problem": problem})


def _text(value: str) -> str:
    return value


def _url(value: str) -> str:
    # Checked before anything echoes the value: the user-info part of a URL may hold a password.
    if "@" in value:
        raise _invalid(
            "must not carry a username or password (user:password@host); credentials belong in the secret"
        )
    value = value.rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise _invalid(f"must be an https:// (or http://) URL with a host, got {value!r}")
    if parts.path or parts.query or parts.fragment:
        raise _invalid(f"must be scheme, host and port only, without a path, got {value!r}")
    try:
        _ = parts.port
    except ValueError:
        raise _invalid(f"has an invalid port: {value!r}") from None
    return value


def _management_urls(value: str) -> str:
    """PANOS_URL: one management address, or the two of an HA pair separated by a comma."""
    urls = [_url(part.strip()) for part in value.split(",")]
    if len(urls) > 2:
        raise _invalid(f"names at most two addresses (an HA pair), got {len(urls)}")
    if len(urls) == 2 and urlsplit(urls[0]).netloc.lower() == urlsplit(urls[1]).netloc.lower():
        raise _invalid("names the same address twice; an HA pair is two different addresses")
    return ",".join(urls)


def integer(minimum: int, maximum: int | None = None) -> Env:
    bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise _invalid(f"must be an integer, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _invalid(f"must be {bound}, got {value}")
        return value

    return Env(parse)


def one_of(options: Any) -> Env:
    """The values of a Literal type, spelled exactly."""
    allowed: tuple[str, ...] = get_args(options)

    def parse(raw: str) -> str:
        if raw not in allowed:
            raise _invalid(f"must be {' or '.join(allowed)}, got {raw!r}")
        return raw

    return Env(parse)


def matching(pattern: re.Pattern[str], problem: str) -> Env:
    def parse(raw: str) -> str:
        if not pattern.fullmatch(raw):
            raise _invalid(f"{problem}, got {raw!r}")
        return raw

    return Env(parse)


def _boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise _invalid(f"must be true or false, got {raw!r}")


def _ratio(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _invalid(f"must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise _invalid(f"must be between 0 and 1, got {raw!r}")
    return value


def _items(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",")]


def _serials(raw: str) -> tuple[str, ...]:
    serials = tuple(_items(raw))
    for serial in serials:
        if not _SERIAL.fullmatch(serial):
            raise _invalid(f"must be comma-separated firewall serials, got {serial!r}")
    if len(set(serials)) != len(serials):
        raise _invalid("lists a serial twice")
    return serials


def _label_keys(raw: str) -> frozenset[str] | None:
    if raw == "*":
        return None
    keys = _items(raw)
    for key in keys:
        if not _LABEL_KEY.fullmatch(key):
            raise _invalid(f"must be '*' or comma-separated label keys, got {key!r}")
    return frozenset(keys)


def _state_kinds(raw: str) -> frozenset[str]:
    kinds = _items(raw)
    for kind in kinds:
        if kind not in STATE_KINDS:
            raise _invalid(f"must be comma-separated states among {', '.join(STATE_KINDS)}, got {kind!r}")
    return frozenset(kinds)


def _cidrs(raw: str) -> tuple[IpNetwork, ...]:
    networks = []
    for text in _items(raw):
        try:
            interface = ipaddress.ip_interface(text)
        except ValueError:
            interface = None
        if interface is None or "%" in text:
            raise _invalid(f"must be comma-separated CIDRs such as 172.17.0.0/16, got {text!r}")
        if interface.ip != interface.network.network_address:
            # 10.1.2.3/8 most likely means 10.0.0.0/8, but what is never tagged is too important to guess.
            raise _invalid(f"has host bits set in {text!r}; did you mean {interface.network.compressed}?")
        networks.append(interface.network)
    return tuple(networks)


def _tag_prefix(value: str) -> str:
    if not value.strip():
        raise _invalid("must not be empty: it is the boundary of what this tool owns")
    if any(ch in value for ch in "'\"") or value != value.strip() or len(value) > 64:
        raise _invalid(f"must be at most 64 characters with no quotes or surrounding spaces, got {value!r}")
    return value


Text = Annotated[str, Env(_text)]
Url = Annotated[str, Env(_url)]
ManagementUrls = Annotated[str, Env(_management_urls)]
Flag = Annotated[bool, Env(_boolean)]


@dataclass(frozen=True, slots=True)
class Target:
    """One place where registrations live: the device at PANOS_URL, or a firewall behind Panorama."""

    name: str  # host[/serial][/vsys]; also the snapshot key
    serial: str | None
    vsys: str | None


class Settings(BaseModel):
    """Every variable of docs/configuration.md#variables; a new variable is one line here."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    pce_url: Url
    pce_org_id: Annotated[int, integer(1)]
    pce_secret_id: Text
    panos_url: ManagementUrls
    panos_secret_id: Text
    panos_vsys: Annotated[str | None, matching(_VSYS, "must look like vsys1")] = None
    panos_target_serials: Annotated[tuple[str, ...], Env(_serials)] = ()
    snapshot_table: Annotated[str, matching(_TABLE, "is not a valid DynamoDB table name")]
    tag_prefix: Annotated[str, Env(_tag_prefix, verbatim=True)] = "illumio."
    label_keys: Annotated[frozenset[str] | None, Env(_label_keys)] = frozenset(DEFAULT_LABEL_KEYS)
    include_ipv6: Flag = True
    max_removal_ratio: Annotated[float, Env(_ratio)] = 0.25
    batch_size: Annotated[int, integer(1, 1000)] = 500
    dry_run: Flag = False
    pce_verify_tls: Flag = True
    panos_verify_tls: Flag = True
    exclude_cidrs: Annotated[tuple[IpNetwork, ...], Env(_cidrs)] = ()
    shared_ip_policy: Annotated[SharedIpPolicy, one_of(SharedIpPolicy)] = "union"
    pce_max_requests_per_minute: Annotated[int, integer(1)] = 100
    change_feed: Annotated[ChangeFeed, one_of(ChangeFeed)] = "events"
    full_export_minutes: Annotated[int, integer(1)] = 60
    max_targeted_workloads: Annotated[int, integer(1)] = 50
    # PAN-OS asks for at most five concurrent API calls per management address (docs/protocols.md#pan-os-concurrency).
    panos_max_concurrency: Annotated[int, integer(1, 5)] = 5
    tags_in_use_only: Flag = False
    state_tags: Annotated[frozenset[str], Env(_state_kinds)] = frozenset()
    label_group_tags: Flag = False
    # The stack name: what tells this deployment's canary from another's on a shared device.
    deployment_id: Annotated[
        str, matching(_DEPLOYMENT_ID, "must be letters, digits, '.', '_' or '-' (at most 128)")
    ] = ""
    # The function's configured timeout; Lambda allows at most 900 seconds.
    function_timeout_seconds: Annotated[int, integer(1, 900)] = 900

    @property
    def panos_urls(self) -> tuple[str, ...]:
        """The management addresses of PANOS_URL: one device, or the two members of an HA pair."""
        return tuple(self.panos_url.split(","))

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target; its name is its snapshot key (docs/high-availability.md#snapshot-keys).

        One address: host[/serial][/vsys], as always. An HA pair: serial[/vsys] behind Panorama,
        and both hosts[/vsys] for a firewall pair, so that a failover keeps every key.
        """
        hosts = [urlsplit(url).netloc for url in self.panos_urls]
        serials: tuple[str | None, ...] = self.panos_target_serials or (None,)
        targets = []
        for serial in serials:
            parts: tuple[str | None, ...]
            if len(hosts) == 1:
                parts = (hosts[0], serial, self.panos_vsys)
            elif serial is not None:
                parts = (serial, self.panos_vsys)
            else:
                parts = (",".join(hosts), self.panos_vsys)
            targets.append(
                Target(name="/".join(part for part in parts if part), serial=serial, vsys=self.panos_vsys)
            )
        return tuple(targets)

    @property
    def longest_lease_seconds(self) -> float:
        """No run of ours holds a lease longer: one that ends further away is not ours (docs/snapshot.md#lease)."""
        return self.function_timeout_seconds + LEASE_MARGIN_SECONDS

    @property
    def stuck_conflict_seconds(self) -> float:
        """A target kept in `conflict` longer than this is held by a stuck lease, not a running run."""
        return 2.0 * self.function_timeout_seconds

    def lease_seconds(self, run_seconds: float | None) -> float:
        """The lease for a run that may last `run_seconds` (None: no deadline), never the longest plus."""
        longest = float(self.function_timeout_seconds)
        return min(longest if run_seconds is None else run_seconds, longest) + LEASE_MARGIN_SECONDS

    def insecure_settings(self) -> list[str]:
        """What an operator should hear about on every run: plain HTTP and disabled TLS checks."""
        notes = []
        for name, url, verify in (
            ("PCE_URL", self.pce_url, self.pce_verify_tls),
            *(("PANOS_URL", url, self.panos_verify_tls) for url in self.panos_urls),
        ):
            if url.startswith("http://"):
                notes.append(f"{name} uses plain http://; traffic and credentials are not encrypted")
            elif not verify:
                notes.append(f"TLS certificate verification is off for {name}")
        return list(dict.fromkeys(notes))


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from environment variables; the first bad variable raises ConfigError."""
    values: dict[str, str] = {}
    for name, field in Settings.model_fields.items():
        raw = environ.get(name.upper())
        rule = next(meta for meta in field.metadata if isinstance(meta, Env))
        if raw is not None and (raw.strip() or rule.verbatim):
            values[name] = raw
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        # Errors come in field order: the first is the first bad variable as the docs list them.
        error = exc.errors()[0]
        variable = str(error["loc"][0]).upper()
        if error["type"] == "missing":
            raise ConfigError(f"{variable} is required and is not set") from None
        raise ConfigError(f"{variable} {error['msg']}") from None
