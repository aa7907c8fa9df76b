"""Anthropic organisation activity: the Compliance API Activity Feed (`/v1/compliance/activities`).

The Activity Feed is Anthropic's audit log for a Claude Enterprise or Claude Console
organisation: sign-ins, API and admin keys, SSO and IP restrictions, roles, spend limits,
MCP servers, artifacts, chats, files and projects. A response page is
`{"data": [...], "has_more": …, "first_id": …, "last_id": …}` (unwrapped through
`envelope_paths`); each activity is

    {"id": "activity_01…", "created_at": "2026-04-10T08:09:10Z", "type": "api_key_created",
     "organization_id": "org_01…", "organization_uuid": "…",
     "actor": {"type": "user_actor", "email_address": "…", "user_id": "user_01…",
               "ip_address": "192.0.2.34", "user_agent": "Mozilla/5.0…"},
     …type-specific fields, e.g. "api_key_id", "scopes", "claude_artifact_id"…}

Shape as documented at platform.claude.com/docs/en/api/compliance/activities (the
activity list and its actor union) and docs/en/manage-claude/compliance-activity-feed.
Actors: `user_actor` (email_address, user_id, ip_address, user_agent), `api_actor`
(api_key_id, ip_address, user_agent), `admin_api_key_actor` (admin_api_key_id, …),
`service_account_actor` (service_account_id, …), `unauthenticated_user_actor`
(unauthenticated_email_address, ip_address, …), `anthropic_actor` (email_address),
`system_actor` (service), `scim_directory_sync_actor` (directory_id, …),
`federated_identity_actor` / `federated_actor` (subject, ip_address, …).

Mapping decisions (also in the README):
- action: the activity `type`, verbatim (`org_ip_restriction_deleted`, `sso_login_failed`).
- outcome: `failure` for types ending in `_failed` or `_denied` (sso_login_failed,
  claude_chat_access_failed, inference_hooks_request_denied), else `success`.
- status_code: the activity's own `status_code` when it carries one, else NULL.
- actor_user: the actor's email (or the address an unauthenticated sign-in gave), else
  its user, service account, federated subject, directory or service name.
- actor_key: the acting API key's or admin API key's *id* (`apikey_…`), never a secret.
- actor_type: the actor's `type`; client_ip / user_agent: the actor's.
- resource: the first type-specific id present, most specific first (the key, service
  account, MCP server, artifact, chat, project, file, user, role, workspace, …), else
  the organisation id: what the activity acted on.
- A record without an activity `type` is quarantined ("activity without a type").
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.sources.base import LogSource
from sentinel.sources.sqlshape import with_unmapped_nulls

# Type-specific top-level fields naming the object an activity acted on, most specific
# first; `organization_id` (every organisation-level setting) comes last.
RESOURCE_KEYS = (
    "admin_api_key_id",
    "api_key_id",
    "service_account_id",
    "service_key_id",
    "mcp_server_id",
    "claude_published_artifact_id",
    "claude_artifact_id",
    "claude_chat_id",
    "claude_project_document_id",
    "claude_file_id",
    "claude_project_id",
    "deleted_user_id",
    "user_id",
    "principal_id",
    "role_id",
    "group_id",
    "invite_id",
    "directory_id",
    "workspace_id",
    "domain",
    "organization_id",
)

_ACTOR_FIELDS = (
    "type", "email_address", "unauthenticated_email_address", "user_id", "api_key_id",
    "admin_api_key_id", "service_account_id", "subject", "directory_id", "service",
    "ip_address", "user_agent",
)  # fmt: skip

# Each record is parsed once, by one json_transform naming exactly the fields read.
_RECORD: dict[str, object] = {
    "id": "VARCHAR",
    "type": "VARCHAR",
    "created_at": "JSON",
    "status_code": "VARCHAR",
    "actor": dict.fromkeys(_ACTOR_FIELDS, "VARCHAR"),
    **dict.fromkeys(RESOURCE_KEYS, "VARCHAR"),
}

_STAGES = ["json_transform(record, '" + json.dumps(_RECORD, separators=(",", ":")) + "') AS _a"]

_RESOURCE = ",\n             ".join(f'NULLIF(_a."{key}", \'\')' for key in RESOURCE_KEYS)

_SELECT = f"""
    _a.id AS event_id,
    sentinel_ts(_a.created_at) AS ts,
    source_offset,
    'audit' AS kind,
    _a.type AS action,
    CASE WHEN _a.type IS NULL THEN NULL
         WHEN regexp_matches(_a.type, '_(failed|denied)$') THEN 'failure'
         ELSE 'success' END AS outcome,
    TRY_CAST(_a.status_code AS INTEGER) AS status_code,
    COALESCE(_a.actor.email_address, _a.actor.unauthenticated_email_address,
             _a.actor.user_id, _a.actor.service_account_id, _a.actor.subject,
             _a.actor.directory_id, _a.actor.service) AS actor_user,
    COALESCE(_a.actor.api_key_id, _a.actor.admin_api_key_id) AS actor_key,
    _a.actor.type AS actor_type,
    _a.actor.ip_address AS client_ip,
    _a.actor.user_agent AS user_agent,
    'anthropic' AS vendor,
    COALESCE({_RESOURCE}) AS resource,
    CASE WHEN _a.type IS NULL OR _a.type = '' THEN 'activity without a type' END AS _error
"""


class AnthropicActivitySource(LogSource):
    """Anthropic Compliance API Activity Feed (JSON lines or `{"data": [...]}` pages)."""

    name = "anthropic_activity"
    logsource = ("anthropic", "activity")
    description = "Anthropic organisation activity (Compliance API /v1/compliance/activities)"
    envelope_paths = ("$.data",)
    select_sql = with_unmapped_nulls(_SELECT)
    stage_sql = _STAGES

    def recognise(self, record: dict[str, Any]) -> bool:
        actor = record.get("actor")
        return (
            {"id", "type", "created_at", "actor"} <= record.keys()
            and isinstance(actor, dict)
            and isinstance(actor.get("type"), str)
            and actor["type"].endswith("_actor")
        )
