"""Composition root: secrets and clients built from Settings, shared by the handler and the CLI."""

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import boto3
from aws_lambda_powertools.utilities import parameters

from dagsync.core.clocks import Clock, RemainingTime, Sleep
from dagsync.core.errors import SecretError
from dagsync.core.settings import Settings, Target
from dagsync.edges.notify import BlockedNotifier
from dagsync.net.credentials import PanosCredentials, PceCredentials
from dagsync.net.pacing import Pacer
from dagsync.net.retry import Retrier, RetryPolicy
from dagsync.panos.client import InFlightLimit, KeyCache, PanosClient
from dagsync.pce.client import PCE_RETRY, PceClient, PceLimits
from dagsync.store.projection import ProjectionStore
from dagsync.store.snapshot import SnapshotStore
from dagsync.store.tags_cache import TagsInUseCache
from dagsync.sync.deadline import countdown, sooner
from dagsync.sync.engine import SyncEngine
from dagsync.sync.members import Members
from dagsync.sync.ports import Device
from dagsync.sync.tags_in_use import TagsInUse

# Secrets are cached in memory this long (docs/configuration.md#secrets), so a warm function does not call
# Secrets Manager on every run, and a rotated secret is picked up within minutes.
SECRET_CACHE_SECONDS = 300


@dataclass(frozen=True)
class ClientOptions:
    """How the clients of one run wait, retry and time out; given by whoever starts the run.

    The handler sets `deadline` (a value of `clock`) from the invocation's remaining time, so
    no retry waits past it; tests give a fake `sleep` and `clock`, so no wait takes real time.
    `timeout` bounds each request to the PCE and to PAN-OS.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pce_retry: RetryPolicy = PCE_RETRY
    pce_limits: PceLimits = field(default_factory=PceLimits)
    timeout: float = 30.0
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    deadline: float | None = None
    wall_clock: Clock = time.time  # epoch seconds: leases, the target history, the feed's watermark

    def wall_deadline(self) -> float | None:
        """The deadline in wall-clock epoch seconds, for what keeps time that way (DynamoDB leases)."""
        if self.deadline is None:
            return None
        return self.wall_clock() + (self.deadline - self.clock())

    def retrier(self, policy: RetryPolicy) -> Retrier:
        """A retrier for one client, on this run's clock and deadline."""
        return Retrier(policy, sleep=self.sleep, clock=self.clock, deadline=self.deadline)

    def pacer(self, per_minute: int) -> Pacer:
        """The run's one PCE pacer, on this run's clock and deadline."""
        return Pacer(per_minute, clock=self.clock, sleep=self.sleep, deadline=self.deadline)


class ExecutionEnvironment:
    """What one execution environment of the function keeps between invocations.

    The PAN-OS key cache lives as long as the environment: a key generated from a username and
    password is generated once per cold start, whatever the number of targets and invocations
    (docs/configuration.md#secrets). `options` are how its clients wait, retry and time out; the
    defaults are production's, and a local run or a test configures them here rather than
    building the engine another way.
    """

    def __init__(self, options: ClientOptions | None = None) -> None:
        self.options = options or ClientOptions()
        self.key_cache = KeyCache()

    def build_engine(
        self, settings: Settings, *, run_id: str, lease_seconds: float, remaining_seconds: RemainingTime
    ) -> SyncEngine:
        """The engine of one invocation, with this environment's options and key cache."""
        return build_engine(
            settings,
            run_id=run_id,
            lease_seconds=lease_seconds,
            options=self.options,
            key_cache=self.key_cache,
            remaining_seconds=remaining_seconds,
        )

    def cold_start(self) -> None:
        """Forget generated keys, as a new execution environment would."""
        self.key_cache.clear()


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
    settings: Settings,
    *,
    run_id: str,
    lease_seconds: float,
    options: ClientOptions | None = None,
    key_cache: KeyCache | None = None,
    remaining_seconds: float | RemainingTime | None = None,
) -> SyncEngine:
    """The engine for one run: settings and secrets in, clients built from `options`.

    `remaining_seconds` is the invocation's time: seconds from now, or a source read each time
    (the handler gives the Lambda context's countdown). The engine's budget follows it; the
    clients' waits are bounded by the deadline it gives now, on their own clock.
    `key_cache` outlives the run (the handler keeps one per process); every target's client
    shares it and one in-flight limit, since they all talk to one management address.
    """
    options = options or ClientOptions()
    remaining = _remaining_time(remaining_seconds, options.clock)
    if remaining is not None:
        # The run's deadline on the clients' own clock, so that no retry waits past it.
        deadline = options.clock() + remaining()
        if options.deadline is not None:
            deadline = min(deadline, options.deadline)
        options = replace(options, deadline=deadline)
    # The engine stops at whichever comes first: the invocation's end or the clients' deadline.
    clients_deadline = None if options.deadline is None else countdown(options.deadline, options.clock)
    key_cache = key_cache if key_cache is not None else KeyCache()
    in_flight = InFlightLimit(settings.panos_max_concurrency)
    pce_credentials = PceCredentials.from_secret(read_secret(settings.pce_secret_id), settings.pce_secret_id)
    panos_credentials = PanosCredentials.from_secret(
        read_secret(settings.panos_secret_id), settings.panos_secret_id
    )
    inventory = PceClient(
        settings.pce_url,
        settings.pce_org_id,
        pce_credentials,
        verify_tls=settings.pce_verify_tls,
        retrier=options.retrier(options.pce_retry),
        pacer=options.pacer(settings.pce_max_requests_per_minute),
        timeout=options.timeout,
        limits=options.pce_limits,
        label_groups=settings.label_group_tags,
    )

    urls = {urlsplit(url).netloc: url for url in settings.panos_urls}

    def client(address: str, target: Target | None) -> PanosClient:
        """A client of one management address; with no target, one that asks the device itself."""
        return PanosClient(
            urls[address],
            panos_credentials,
            key_cache=key_cache,
            in_flight=in_flight,
            verify_tls=settings.panos_verify_tls,
            vsys=None if target is None else target.vsys,
            target_serial=None if target is None else target.serial,
            batch_size=settings.batch_size,
            retry=options.retry,
            sleep=options.sleep,
            timeout=options.timeout,
            clock=options.clock,
            deadline=options.deadline,
        )

    def device_for(target: Target, address: str) -> Device:
        return client(address, target)

    store = SnapshotStore(
        settings.snapshot_table,
        clock=options.wall_clock,
        sleep=options.sleep,
        deadline=options.wall_deadline(),
        max_lease_seconds=settings.longest_lease_seconds,
    )
    tags_in_use = None
    if settings.tags_in_use_only:
        tags_in_use = TagsInUse(TagsInUseCache(store.table), prefix=settings.tag_prefix)
    return SyncEngine(
        settings,
        inventory=inventory,
        store=store,
        device_for=device_for,
        members=Members([(address, client(address, None)) for address in urls]),
        run_id=run_id,
        lease_seconds=lease_seconds,
        tags_in_use=tags_in_use,
        notifier=blocked_notifier(),
        # The change feed's state shares the snapshot table (docs/snapshot.md#projection).
        projections=ProjectionStore(store.table, max_lease_seconds=settings.longest_lease_seconds),
        wall_clock=options.wall_clock,
        clock=options.clock,
        remaining_time=sooner(remaining, clients_deadline),
    )


def _remaining_time(remaining: float | RemainingTime | None, clock: Clock) -> RemainingTime | None:
    """A source of the remaining time; a number of seconds counts down on `clock` from now."""
    if remaining is None or callable(remaining):
        return remaining
    return countdown(clock() + remaining, clock)


def blocked_notifier() -> BlockedNotifier | None:
    """The run's notifier to ALARM_TOPIC_ARN; none when it is unset, as for the CLI
    (docs/dag-awareness.md#blocked-notification)."""
    topic_arn = os.environ.get("ALARM_TOPIC_ARN")
    return BlockedNotifier(boto3.client("sns"), topic_arn) if topic_arn else None
