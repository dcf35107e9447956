"""An Illumio PCE emulator (REST API v2 subset) for emulators.server.LoopbackServer.

Faithful to the PCE facts of docs/protocols.md where they matter to DAG Sync, and never kinder
than a real PCE where those facts leave a behaviour open:

* HTTP Basic auth with the API key's auth_username and secret (401 otherwise); every path is
  under /api/v2; an org other than the emulated one answers 403.
* GET /api/v2/orgs/{org}/workloads and /labels: synchronously at most 500 objects, silently
  truncated, with X-Total-Count; with `Prefer: respond-async` a 202 with
  `Location: /orgs/{org}/jobs/{uuid}` and Retry-After.
* GET /api/v2/orgs/{org}/jobs/{uuid}: "running" for `running_polls` polls, then "done" with
  result.href `/orgs/{org}/datafiles/{uuid}`; DELETE removes the job.
* GET /api/v2/orgs/{org}/datafiles/{uuid}: the complete JSON array, serialised once when the
  job was created (a snapshot of the estate at that moment, as on a real PCE).
* GET /api/v2/orgs/{org}/workloads/{id}: one workload; 404 once it is deleted (a soft-deleted
  one answers with `deleted: true`).
* GET /api/v2/orgs/{org}/sec_policy/active/label_groups (provisioned) and .../draft/label_groups
  (edits): like any collection, synchronously at most 500 with X-Total-Count, or as an async job.
* GET /api/v2/orgs/{org}/events: the audit events (docs/protocols.md#pce-events), newest first, filtered by
  `timestamp[gte]`, `timestamp[lte]` (RFC 3339), `event_type`, `severity`, `status` (`nil` for
  null) and `max_results` (default 100, cut to 10,000). Event hrefs are usually
  `/orgs/{org}/events/{uuid}` but some are `/system_events/{uuid}`, as in captures.

Error bodies are `[{"token": "…_error", "message": "…"}]`, the real PCE's shape (tokens such as
`not_found_error`, `too_many_requests_error`). Time comes from `clock` (epoch seconds, default
the wall clock): event timestamps, indexing delay, retention and the rate limit all read it, so
tests move time without sleeping.

State tests can change between runs: `workloads` (list of workload dicts), `labels` (href ->
label dict), `label_mode` ("inline" or "href": workloads then carry `[{href}]` only, like a PCE
older than 22.3). The constructor and load_estate set the estate as it already was; every other
helper changes it and writes the events a real PCE would:

* set_workloads (one create, update or delete event per workload that differs), upsert_workload
  (`workload.create`, `workload.undelete` or an update), delete_workload (`workload.delete`,
  `workload.soft_delete`), relabel (`workload.update`), bulk_relabel (one
  `workloads.bulk_update` naming every workload), set_addresses (`workload_interfaces.update`
  from the VEN of a managed workload, `workload.update` for an unmanaged one), add_label
  (`label.create`), rename_label (`label.update`), update_label_dimension
  (`label_dimension.update`) and churn (estate.churn, with its events).
* State: set_enforcement_mode (`workload.update`), go_offline (one
  `system_task.agent_offline_check` naming each workload with `changes.online`; the PCE has no
  `workload.offline`), come_online (`workload.online`, the workload named only in
  `notifications[].info.workload`), agent_event (`agent.suspend`, `agent.goodbye` or
  `agent.deactivate`; the last two leave the workload unmanaged).
* Label groups: set_label_group and delete_label_group edit the draft (`label_group.create`,
  `.update`, `.delete`); provision makes the draft active (`sec_policy.create`). Setting
  `label_groups` (the active version) directly writes no events.
* Noise and the unexpected: emit_user_session (sign-in, login, logout, session end),
  emit_link_local_churn (an interface event whose only change is an `fe80::` address) and
  emit_event (any type, unknown ones included, optionally naming a workload).

Changing `workloads` or an estate directly writes no events, like a feed that missed them.
`events` lists every event written, oldest first.

Behaviour and fault injection (plain attributes; counters decrement as requests consume them):

* `reset_next`: drop the connection of the next N requests.
* `rate_limit_next`: answer the next N requests 429 `too_many_requests_error`. Like the real PCE
  as far as anyone has seen, without Retry-After; set `rate_limit_retry_after` to add one.
* `requests_per_minute`: when set, a rolling minute of at most this many requests (per API key,
  docs/protocols.md#pce-rate-limits); beyond it, the same 429. Every authenticated request
  counts, the events API's included and the rejected ones too (whether a real PCE counts
  rejected requests is undocumented: the hard case).
* `fail_next`: answer the next N requests `fail_status` (default 503).
* `fault_path`: when set, only requests whose path contains it consume the three faults above
  (`"/events"` makes them faults of the events API alone).
* `event_index_delay`: seconds after its timestamp an event first shows on the events API
  (docs/protocols.md#pce-events: events are indexed with some delay).
* `event_retention`: seconds of history the events API keeps; older events are dropped for good.
* `job_outcome`: "done" (default), "failed" or "cancelled" after `running_polls`, or
  "running" to stay running forever. Captured when a job is created. A failed or cancelled job
  carries `result.message` (`job_message`, or a message naming the outcome).
* `retry_after` / `poll_retry_after`: Retry-After seconds on the 202 / on job polls (None: absent).
* `location_style`: "relative" (`/orgs/...`), "api" (`/api/v2/orgs/...`) or "absolute".
* `ignore_prefer`: answer async requests synchronously (200, at most 500 objects).
* `datafile_truncate_at`: send only this many datafile body bytes, then reset the connection.
* `datafile_body`: serve these bytes instead of every datafile (b"not json", b'{"a":1}', ...).
* `compress_datafiles`: gzip datafiles for clients that accept it.
* `max_jobs`: how many jobs (and their datafiles) are kept; older ones answer 404. 0 makes
  every job vanish right after it is accepted.

Defaults keep a run short but realistic: Retry-After 1 on the 202, one "running" poll, no rate
limit, events visible at once and kept for ever. Tests that use real time can set
`retry_after = 0` and `running_polls = 0`.

Records: `requests` (LoggedRequest: method, path, query, headers without Authorization,
status), `jobs_created`, `datafiles_served`, `events`, and count(path_fragment).
"""

from emulators.pce.server import PceEmulator
from emulators.pce.state import JobOutcome, LabelMode, LocationStyle, LoggedRequest
from emulators.pce.wire import SYNC_LIMIT

__all__ = ["SYNC_LIMIT", "JobOutcome", "LabelMode", "LocationStyle", "LoggedRequest", "PceEmulator"]
