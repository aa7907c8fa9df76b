"""OpenAI organisation audit log (`GET /organization/audit_logs`).

The audit log records who changed an OpenAI organisation: API keys created or
updated, projects archived, members invited, logins. A list page
(`{"object": "list", "data": [...]}`) is unwrapped by the engine through
`envelope_paths`. The details of an event sit under a key named after its type
(`"api_key.created": {"id": "key_…", "data": {…}}`), read with the type as a key, guarded so a
hostile type value cannot act as a JSON path and fail the batch.

Mapping decisions (also in the README):
- actor_user: the acting user's email, else their id (session or user-owned key),
  else the service account id.
- actor_key: `actor.api_key.id`, the key's tracking id (`key_…`), not the secret.
- actor_type: the audit log's own actor type, `session` or `api_key`.
- resource: the `id` of the event's details object; `project.id` stays in `raw`. A SIEM
  export that renamed the details key with underscores (`api_key_created` for
  `api_key.created`, as field names with dots are awkward there) is read too.
- outcome: `failure` for `*.failed` event types (login.failed, logout.failed), else
  `success`.
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.sources.base import LogSource
from sentinel.sources.sqlshape import with_unmapped_nulls

# Each record is parsed once, by one json_transform naming the fields read (VARCHAR gives
# the same text as `->>`). Only the details object, whose key is data, is read by path.
_USER = {"user": {"email": "VARCHAR", "id": "VARCHAR"}}
_RECORD = {
    "id": "VARCHAR",
    "type": "VARCHAR",
    "effective_at": "JSON",
    "actor": {
        "type": "VARCHAR",
        "session": {**_USER, "ip_address": "VARCHAR", "user_agent": "VARCHAR"},
        "api_key": {**_USER, "id": "VARCHAR", "service_account": {"id": "VARCHAR"}},
    },
}

_STAGES = ["json_transform(record, '" + json.dumps(_RECORD, separators=(",", ":")) + "') AS _o"]

_SELECT = """
    _o.id AS event_id,
    sentinel_ts(_o.effective_at) AS ts,
    source_offset,
    'audit' AS kind,
    _o.type AS action,
    CASE WHEN ends_with(_o.type, '.failed') THEN 'failure'
         ELSE 'success' END AS outcome,
    COALESCE(_o.actor.session.user.email, _o.actor.api_key.user.email,
             _o.actor.session.user.id, _o.actor.api_key.user.id,
             _o.actor.api_key.service_account.id) AS actor_user,
    _o.actor.api_key.id AS actor_key,
    _o.actor.type AS actor_type,
    _o.actor.session.ip_address AS client_ip,
    _o.actor.session.user_agent AS user_agent,
    'openai' AS vendor,
    -- the type is data, used as a key: only plain event names, so it cannot act as a path
    CASE WHEN regexp_full_match(_o.type, '[A-Za-z0-9_][A-Za-z0-9_.-]*')
         THEN COALESCE(json_extract_string(json_extract(record, _o.type), '$.id'),
                       json_extract_string(json_extract(record, replace(_o.type, '.', '_')),
                                           '$.id'))
    END AS resource,
    NULL AS _error
"""


class OpenAIAuditSource(LogSource):
    """OpenAI organisation audit log events (JSON lines or list pages)."""

    name = "openai_audit"
    logsource = ("openai", "audit")
    description = "OpenAI organisation audit log (/organization/audit_logs)"
    envelope_paths = ("$.data",)
    select_sql = with_unmapped_nulls(_SELECT)
    stage_sql = _STAGES

    def recognise(self, record: dict[str, Any]) -> bool:
        return (
            {"id", "type", "effective_at", "actor"} <= record.keys()
            and isinstance(record.get("actor"), dict)
            and isinstance(record.get("type"), str)
        )
