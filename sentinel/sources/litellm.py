"""LiteLLM proxy logs: StandardLoggingPayload, LiteLLM_SpendLogs rows and LiteLLM_AuditLog.

LiteLLM writes the same request in several shapes: the S3/GCS/pub-sub callbacks emit a
StandardLoggingPayload (nested JSON), while a SpendLogs export carries `metadata`,
`messages`, `response` and `proxy_server_request` as JSON-encoded *strings*. Both are
read by one query that decodes such strings in SQL (`litellm_json`), so a field is found
wherever the version put it. LiteLLM_AuditLog rows (admin changes to keys, teams, users)
become `audit` events.

Mapping decisions (also in the README):
- action: `call_type` without its async `a` prefix, in OpenAI's endpoint vocabulary
  (`acompletion` → `chat.completions`, `aembedding` → `embeddings`, …); unknown call
  types are kept verbatim. Audit rows: `<object>.<action>`, e.g. `key.created`.
- actor_user: the authenticated identity first (key owner's email, then id, then the
  SpendLogs `user`), the caller-supplied `end_user` only when none is known.
- actor_key: the key alias, else the key hash. A value that still looks like a raw
  `sk-` key is replaced by its SHA-256 hex digest, which is how LiteLLM itself hashes
  keys, so it matches the `api_key` column of the spend logs.
- latency_ms: `endTime - startTime`, else `response_time * 1000`.
- vendor: `custom_llm_provider`, else the model map's `litellm_provider`.
"""

from __future__ import annotations

from typing import Any

from sentinel.sources.base import LogSource

_MACROS = [
    # A field that may hold JSON or a JSON-encoded string of it -> JSON.
    """
    CREATE OR REPLACE MACRO litellm_json(v) AS
        CASE WHEN v IS NULL OR json_type(v) = 'NULL' THEN NULL
             WHEN json_type(v) = 'VARCHAR' AND json_valid(v ->> '$') THEN (v ->> '$')::JSON
             ELSE v END
    """,
    # Non-empty text of a JSON value, NULL for null, '' and the Python repr 'None'.
    """
    CREATE OR REPLACE MACRO litellm_str(v) AS NULLIF(NULLIF(sentinel_text(v), ''), 'None')
    """,
    """
    CREATE OR REPLACE MACRO litellm_get(j, path) AS litellm_str(json_extract(j, path))
    """,
    # A message `content`: a string, or a list of parts of which the text parts count.
    """
    CREATE OR REPLACE MACRO litellm_content(c) AS
        CASE WHEN c IS NULL THEN NULL
             WHEN json_type(c) = 'VARCHAR' THEN c ->> '$'
             WHEN json_type(c) = 'ARRAY'
                 THEN NULLIF(array_to_string(json_extract_string(c, '$[*].text'), chr(10)), '')
        END
    """,
    # `messages`: a list of chat messages, or a plain prompt string.
    """
    CREATE OR REPLACE MACRO litellm_messages(m) AS
        CASE WHEN m IS NULL THEN NULL
             WHEN json_type(m) = 'VARCHAR' THEN NULLIF(m ->> '$', '')
             WHEN json_type(m) = 'ARRAY' THEN NULLIF(array_to_string(
                 list_transform(json_extract(m, '$[*].content'),
                                lambda c: litellm_content(c)), chr(10)), '')
        END
    """,
    # `response`: chat choices (message.content) or text-completion choices (text).
    """
    CREATE OR REPLACE MACRO litellm_response(r) AS
        CASE WHEN r IS NULL THEN NULL
             WHEN json_type(r) = 'OBJECT' THEN NULLIF(array_to_string(list_concat(
                 list_transform(json_extract(r, '$.choices[*].message.content'),
                                lambda c: litellm_content(c)),
                 json_extract_string(r, '$.choices[*].text')), chr(10)), '')
        END
    """,
    """
    CREATE OR REPLACE MACRO litellm_action(call_type) AS
        CASE WHEN call_type IN ('completion', 'acompletion') THEN 'chat.completions'
             WHEN call_type IN ('text_completion', 'atext_completion') THEN 'completions'
             WHEN call_type IN ('embedding', 'aembedding') THEN 'embeddings'
             WHEN call_type IN ('image_generation', 'aimage_generation')
                 THEN 'images.generations'
             WHEN call_type IN ('transcription', 'atranscription') THEN 'audio.transcriptions'
             WHEN call_type IN ('speech', 'aspeech') THEN 'audio.speech'
             WHEN call_type IN ('moderation', 'amoderation') THEN 'moderations'
             WHEN call_type IN ('rerank', 'arerank') THEN 'rerank'
             WHEN call_type IN ('responses', 'aresponses') THEN 'responses'
             WHEN call_type IN ('anthropic_messages', 'aanthropic_messages') THEN 'messages'
             ELSE call_type END
    """,
    """
    CREATE OR REPLACE MACRO litellm_audit_object(table_name) AS
        CASE table_name
            WHEN 'LiteLLM_VerificationToken' THEN 'key'
            WHEN 'LiteLLM_TeamTable' THEN 'team'
            WHEN 'LiteLLM_UserTable' THEN 'user'
            WHEN 'LiteLLM_OrganizationTable' THEN 'organization'
            WHEN 'LiteLLM_ProxyModelTable' THEN 'model'
            WHEN 'LiteLLM_EndUserTable' THEN 'end_user'
            ELSE table_name END
    """,
    # Never store a raw key: anything shaped like one becomes its SHA-256 (LiteLLM's hash).
    """
    CREATE OR REPLACE MACRO litellm_key(k) AS
        CASE WHEN k IS NULL OR k = '' THEN NULL
             WHEN regexp_matches(k, '^sk-') THEN sha256(k)
             ELSE k END
    """,
]

# Fields read from a record and from its (decoded) `metadata`, as text (`_t`, `_mt`) or
# as JSON (`_f`, `_m`). Each group is read with ONE multi-path extraction, because DuckDB
# parses a document once per call and these records are large (one call per field was
# the main cost, about 4x). The record-level reads are a materialised stage: inlining
# the nested macros at every use made planning take seconds per batch.
_TEXT_FIELDS = (
    "request_id", "id", "call_type", "status", "error_str", "changed_by",
    "changed_by_api_key", "table_name", "action", "object_id", "user", "end_user",
    "api_key", "team_id", "requester_ip_address", "custom_llm_provider", "model",
    "api_base", "prompt_tokens", "completion_tokens", "response_cost", "spend",
    "response_time",
)  # fmt: skip
_JSON_FIELDS = (
    "startTime", "endTime", "updated_at", "error_information", "proxy_server_request",
    "model_map_information", "hidden_params", "messages", "response",
)  # fmt: skip
_META_TEXT_FIELDS = (
    "user_api_key_user_email", "user_api_key_user_id", "user_api_key_end_user_id",
    "user_api_key_alias", "user_api_key_hash", "user_api_key", "user_api_key_team_alias",
    "user_api_key_team_id", "requester_ip_address", "user_agent",
)  # fmt: skip
_META_JSON_FIELDS = ("error_information", "usage_object", "model_map_information")


def _paths(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'$.\"{name}\"'" for name in names) + "]"


def _refs(alias: str, names: tuple[str, ...], prefix: str) -> dict[str, str]:
    return {f"{prefix}{name}": f"{alias}[{i}]" for i, name in enumerate(names, start=1)}


_REFS = {
    **_refs("_t", _TEXT_FIELDS, ""),
    **_refs("_f", _JSON_FIELDS, "j_"),
    **_refs("_mt", _META_TEXT_FIELDS, "m_"),
    **_refs("_m", _META_JSON_FIELDS, "mj_"),
}

# Text of a JSON value, with '' and Python's 'None' (LiteLLM writes both) as NULL.
_CLEAN = "lambda v: NULLIF(NULLIF(v, ''), 'None')"

_STAGES = [
    f"list_transform(json_extract_string(record, {_paths(_TEXT_FIELDS)}), {_CLEAN}) AS _t, "
    f"json_extract(record, {_paths(_JSON_FIELDS)}) AS _f, "
    "litellm_json(json_extract(record, '$.metadata')) AS _meta"
]

_SELECT_TEMPLATE = """
    list_transform(json_extract_string(_meta, {meta_text}), {clean}) AS _mt,
    json_extract(_meta, {meta_json}) AS _m,
    {request_id} IS NULL AND {changed_by} IS NOT NULL AS _is_audit,
    COALESCE({request_id}, {id}) AS event_id,
    COALESCE(sentinel_ts({j_startTime}), sentinel_ts({j_updated_at})) AS ts,
    source_offset,
    CASE WHEN _is_audit THEN 'audit' ELSE 'inference' END AS kind,
    CASE WHEN _is_audit THEN litellm_audit_object({table_name}) || '.'
                             || {action}
         ELSE litellm_action({call_type}) END AS action,
    CASE WHEN _is_audit THEN 'success'
         WHEN lower({status}) IN ('success', 'succeeded') THEN 'success'
         WHEN lower({status}) IN ('failure', 'failed', 'error') THEN 'failure'
         WHEN {error_str} IS NOT NULL THEN 'failure'
    END AS outcome,
    TRY_CAST(COALESCE(litellm_get({j_error_information}, '$.error_code'),
                      litellm_get({mj_error_information}, '$.error_code')) AS INTEGER)
        AS status_code,
    CASE WHEN _is_audit THEN {changed_by}
         ELSE COALESCE({m_user_api_key_user_email},
                       {m_user_api_key_user_id},
                       {user},
                       {end_user},
                       {m_user_api_key_end_user_id}) END AS actor_user,
    litellm_key(CASE WHEN _is_audit THEN {changed_by_api_key}
                     ELSE COALESCE({m_user_api_key_alias},
                                   {m_user_api_key_hash},
                                   {api_key},
                                   {m_user_api_key}) END) AS actor_key,
    COALESCE({m_user_api_key_team_alias}, {m_user_api_key_team_id},
             {team_id}) AS actor_team,
    NULL AS actor_type,
    COALESCE({requester_ip_address}, {m_requester_ip_address})
        AS client_ip,
    COALESCE({m_user_agent},
             litellm_get(litellm_json({j_proxy_server_request}), '$.headers."user-agent"'))
        AS user_agent,
    CASE WHEN NOT _is_audit THEN COALESCE(
        {custom_llm_provider},
        litellm_get({j_model_map_information}, '$.model_map_value.litellm_provider'),
        litellm_get({mj_model_map_information}, '$.model_map_value.litellm_provider'))
    END AS vendor,
    COALESCE({model}, litellm_get({j_hidden_params}, '$.litellm_model_name'))
        AS model,
    COALESCE({api_base}, litellm_get({j_hidden_params}, '$.api_base')) AS endpoint,
    NULL AS region,
    litellm_messages(litellm_json({j_messages})) AS prompt_text,
    litellm_response(litellm_json({j_response})) AS response_text,
    COALESCE(TRY_CAST({prompt_tokens} AS BIGINT),
             TRY_CAST(litellm_get({mj_usage_object}, '$.prompt_tokens') AS BIGINT))
        AS prompt_tokens,
    COALESCE(TRY_CAST({completion_tokens} AS BIGINT),
             TRY_CAST(litellm_get({mj_usage_object}, '$.completion_tokens') AS BIGINT))
        AS completion_tokens,
    COALESCE(TRY_CAST({response_cost} AS DOUBLE),
             TRY_CAST({spend} AS DOUBLE)) AS cost_usd,
    COALESCE(date_diff('microsecond', sentinel_ts({j_startTime}), sentinel_ts({j_endTime}))
                 / 1000.0,
             TRY_CAST({response_time} AS DOUBLE) * 1000.0) AS latency_ms,
    CASE WHEN _is_audit THEN {object_id} END AS resource,
    NULL AS _error
"""

_SELECT = _SELECT_TEMPLATE.format(
    meta_text=_paths(_META_TEXT_FIELDS),
    meta_json=_paths(_META_JSON_FIELDS),
    clean=_CLEAN,
    **_REFS,
)


class LiteLLMSource(LogSource):
    """LiteLLM proxy request logs (StandardLoggingPayload, SpendLogs) and its audit log."""

    name = "litellm"
    description = "LiteLLM proxy: StandardLoggingPayload, LiteLLM_SpendLogs and LiteLLM_AuditLog"

    def recognise(self, record: dict[str, Any]) -> bool:
        if {"changed_by", "action", "table_name", "object_id"} <= record.keys():
            return True
        return (
            "call_type" in record
            and "startTime" in record
            and ("response_cost" in record or "spend" in record)
        )

    def stages(self) -> list[str]:
        return list(_STAGES)

    def select_list(self) -> str:
        return _SELECT

    def setup_sql(self) -> list[str]:
        return list(_MACROS)
