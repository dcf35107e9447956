"""What a page of PCE events calls for (docs/change-feed.md#decision). Pure, no I/O.

Events are a hint, the full export the source of truth, so every doubt ends in a full export:
an event type not known to be harmless is a change, a label event changes the tag of every
workload carrying the label, and a page that may not be the last hides events.
"""

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Literal

from dagsync.core.models import PceEvent

# Event types that cannot change a workload's labels, its addresses or its existence
# (docs/change-feed.md#ignored-event-types). Type names as the PCE writes them (the Illumio
# "Events Lifecycle for Resources" and vendor event-type lists). Only types known to be harmless
# belong here: leaving one out costs a full export, listing a wrong one would miss a change
# until the next full export. `event_settings.update` is left out on purpose: raising the
# recorded severity silently empties the feed.
HARMLESS_EVENT_TYPES: frozenset[str] = frozenset(
    {
        # sessions and users
        "user.login",
        "user.logout",
        "user.sign_in",
        "user.sign_out",
        "user.authenticate",
        "user.login_session_terminated",
        "user.pce_session_terminated",
        "user.create",
        "user.delete",
        "user.update",
        "user.invite",
        "user.accept_invitation",
        "user.reset_password",
        "user.update_password",
        "user.use_expired_password",
        "user_local_profile.create",
        "user_local_profile.delete",
        "user_local_profile.reinvite",
        "user_local_profile.update_password",
        "logout_from_jwt",
        "request.authentication_failed",
        "request.authorization_failed",
        "request.internal_server_error",
        "request.service_unavailable",
        "request.unknown_server_error",
        # API keys, access and authentication settings
        "api_key.create",
        "api_key.delete",
        "api_key.update",
        "authentication_settings.update",
        "password_policy.create",
        "password_policy.delete",
        "password_policy.update",
        "permission.create",
        "permission.delete",
        "permission.update",
        "auth_security_principal.create",
        "auth_security_principal.delete",
        "auth_security_principal.update",
        "security_principal.create",
        "security_principal.delete",
        "security_principal.update",
        "security_principals.bulk_create",
        "saml_config.create",
        "saml_config.delete",
        "saml_config.update",
        "ldap_config.create",
        "ldap_config.delete",
        "ldap_config.update",
        "ldap_config.verify_connection",
        "access_restriction.create",
        "access_restriction.delete",
        "access_restriction.update",
        "trusted_proxy_ips.update",
        # security policy: rule sets, rules, services, IP lists, label groups, boundaries
        "rule_set.create",
        "rule_set.delete",
        "rule_set.update",
        "rule_sets.delete",
        "sec_rule.create",
        "sec_rule.delete",
        "sec_rule.update",
        "sec_policy.create",
        "sec_policy.restore",
        "sec_policy_pending.delete",
        "enforcement_boundary.create",
        "enforcement_boundary.delete",
        "enforcement_boundary.update",
        "ip_list.create",
        "ip_list.delete",
        "ip_list.update",
        "ip_lists.delete",
        "service.create",
        "service.delete",
        "service.update",
        "services.delete",
        "label_group.create",
        "label_group.delete",
        "label_group.update",
        # a new label or label type is on no workload until a workload event assigns it
        "label.create",
        "label_dimension.create",
        # VEN housekeeping that leaves labels and interfaces alone
        "agent.refresh_policy",
        "agent.refresh_token",
        "agent.request_upgrade",
        "agent.upload_support_report",
        "agent_support_report_request.create",
        "agent_support_report_request.delete",
        "workload.recalc_rules",
        "workload.upgrade",
        "workload.online",
        "workloads.apply_policy",
        "workloads.set_flow_reporting_frequency",
        "ven_software.upgrade",
        "ven_software_release.create",
        "ven_software_release.delete",
        "ven_software_release.deploy",
        "ven_software_release.update",
        "ven_software_releases.set_default_version",
        # PCE housekeeping and outputs
        "syslog_destination.create",
        "syslog_destination.delete",
        "syslog_destination.update",
        "support_report_request.create",
        "support_report_request.delete",
        "system_task.agent_missed_heartbeats_check",
        "system_task.agent_offline_check",
        "system_task.prune_old_log_events",
        "database.temp_table_autocleanup_started",
        "database.temp_table_autocleanup_completed",
        "job.delete",
    }
)

# Events that change the tag of every workload carrying a label, without naming the workloads
# (a rename touches no workload's `updated_at`): only a full export can tell what they changed.
LABEL_EVENT_TYPES: frozenset[str] = frozenset(
    {"label.update", "label.delete", "labels.delete", "label_dimension.update", "label_dimension.delete"}
)

# Events that change a workload's state (docs/change-feed.md#state-events): harmless unless
# STATE_TAGS turns state into tags; then each fetches the workloads it names.
STATE_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "workload.online",
        "system_task.agent_offline_check",
    }
)
# Label group edits (draft) and provisioning (which makes them active): harmless unless
# LABEL_GROUP_TAGS is on; then, like a label rename, they call for a full export.
LABEL_GROUP_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "label_group.create",
        "label_group.update",
        "label_group.delete",
        "sec_policy.create",
        "sec_policy.restore",
    }
)

FeedAction = Literal["nothing", "targeted", "full"]


@dataclass(frozen=True, slots=True)
class EventTypes:
    """Which event types are harmless and which call for a full export, under the settings."""

    harmless: frozenset[str] = HARMLESS_EVENT_TYPES
    whole_estate: frozenset[str] = LABEL_EVENT_TYPES

    @classmethod
    def under(cls, *, state_tags: bool, label_group_tags: bool) -> "EventTypes":
        harmless, whole = HARMLESS_EVENT_TYPES, LABEL_EVENT_TYPES
        if state_tags:
            harmless = harmless - STATE_EVENT_TYPES
        if label_group_tags:
            harmless, whole = harmless - LABEL_GROUP_EVENT_TYPES, whole | LABEL_GROUP_EVENT_TYPES
        return cls(harmless, whole)


DEFAULT_EVENT_TYPES = EventTypes()


@dataclass(frozen=True, slots=True)
class FeedDecision:
    """What this run does, and why (docs/change-feed.md#decision)."""

    action: FeedAction
    workload_hrefs: tuple[str, ...] = ()  # sorted; what a targeted update fetches
    reason: str = ""  # why a full export
    # The events that call for the action; their timestamps feed EventToDeviceSeconds.
    relevant: tuple[PceEvent, ...] = ()
    unseen: tuple[str, ...] = ()  # hrefs of every event not applied before: applied once this run ends


def classify(
    events: Sequence[PceEvent],
    *,
    applied: Container[str],
    max_results: int,
    max_targeted: int,
    types: EventTypes = DEFAULT_EVENT_TYPES,
) -> FeedDecision:
    """Decide from one page of events, `applied` being the hrefs a run already acted on."""
    fresh = [event for event in events if event.href not in applied]
    unseen = tuple(event.href for event in fresh)
    relevant = tuple(
        event for event in fresh if event.status == "success" and event.event_type not in types.harmless
    )
    if len(events) >= max_results:
        reason = f"the events page is full ({len(events)} events): it may not be the last"
        return FeedDecision("full", reason=reason, relevant=relevant, unseen=unseen)
    doubt = _needs_full_export(relevant, types.whole_estate)
    if doubt is not None:
        return FeedDecision("full", reason=doubt, relevant=relevant, unseen=unseen)
    workloads = sorted({href for event in relevant for href in event.workload_hrefs})
    if len(workloads) > max_targeted:
        reason = f"{len(workloads)} workloads changed, more than MAX_TARGETED_WORKLOADS={max_targeted}"
        return FeedDecision("full", reason=reason, relevant=relevant, unseen=unseen)
    if not workloads:
        return FeedDecision("nothing", unseen=unseen)
    return FeedDecision("targeted", workload_hrefs=tuple(workloads), relevant=relevant, unseen=unseen)


def _needs_full_export(relevant: Sequence[PceEvent], whole_estate: frozenset[str]) -> str | None:
    """Relevant events are successful ones of a type not known to be harmless; unknown types count."""
    for event in relevant:
        if event.event_type in whole_estate:
            labels = ", ".join(event.label_hrefs) or "a label or label group"
            return f"{event.event_type} on {labels} changes the tags of every workload carrying it"
        if not event.workload_hrefs:
            return f"{event.event_type} names no workload ({event.href})"
    return None
