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
- resource: the `id` of the event's details object; `project.id` stays in `raw`.
- outcome: `failure` for `*.failed` event types (login.failed, logout.failed), else
  `success`.
"""

from __future__ import annotations

from typing import Any

from sentinel.sources.base import LogSource

_SELECT = """
    record ->> '$.id' AS event_id,
    sentinel_ts(json_extract(record, '$.effective_at')) AS ts,
    source_offset,
    'audit' AS kind,
    record ->> '$.type' AS action,
    CASE WHEN ends_with(record ->> '$.type', '.failed') THEN 'failure'
         ELSE 'success' END AS outcome,
    NULL AS status_code,
    COALESCE(record ->> '$.actor.session.user.email', record ->> '$.actor.api_key.user.email',
             record ->> '$.actor.session.user.id', record ->> '$.actor.api_key.user.id',
             record ->> '$.actor.api_key.service_account.id') AS actor_user,
    record ->> '$.actor.api_key.id' AS actor_key,
    NULL AS actor_team,
    record ->> '$.actor.type' AS actor_type,
    record ->> '$.actor.session.ip_address' AS client_ip,
    record ->> '$.actor.session.user_agent' AS user_agent,
    'openai' AS vendor,
    NULL AS model,
    NULL AS endpoint,
    NULL AS region,
    NULL AS prompt_text,
    NULL AS response_text,
    NULL AS prompt_tokens,
    NULL AS completion_tokens,
    NULL AS cost_usd,
    NULL AS latency_ms,
    -- the type is data, used as a key: only plain event names, so it cannot act as a path
    CASE WHEN regexp_full_match(record ->> '$.type', '[A-Za-z0-9_][A-Za-z0-9_.-]*')
         THEN json_extract_string(json_extract(record, record ->> '$.type'), '$.id')
    END AS resource,
    NULL AS _error
"""


class OpenAIAuditSource(LogSource):
    """OpenAI organisation audit log events (JSON lines or list pages)."""

    name = "openai_audit"
    description = "OpenAI organisation audit log (/organization/audit_logs)"
    envelope_paths = ("$.data",)

    def recognise(self, record: dict[str, Any]) -> bool:
        return (
            {"id", "type", "effective_at", "actor"} <= record.keys()
            and isinstance(record.get("actor"), dict)
            and isinstance(record.get("type"), str)
        )

    def select_list(self) -> str:
        return _SELECT
