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

import json
from typing import Any

from sentinel.sources.base import LogSource
from sentinel.sources.sqlshape import with_unmapped_nulls

_MACROS = [
    # A field that may hold JSON or a JSON-encoded string of it -> JSON. `v` is JSON as
    # DuckDB writes it (from json_extract / json_transform: minified), so its first
    # character gives its type without parsing it again.
    """
    CREATE OR REPLACE MACRO litellm_json(v) AS
        CASE WHEN v IS NULL OR v::VARCHAR = 'null' THEN NULL
             WHEN starts_with(v, '"') AND json_valid(v ->> '$') THEN (v ->> '$')::JSON
             ELSE v END
    """,
    # Non-empty text of a JSON value, NULL for null, '' and the Python repr 'None'.
    """
    CREATE OR REPLACE MACRO litellm_str(v) AS NULLIF(NULLIF(sentinel_text(v), ''), 'None')
    """,
    """
    CREATE OR REPLACE MACRO litellm_get(j, path) AS litellm_str(json_extract(j, path))
    """,
    # The same cleaning for a value already read as text.
    """
    CREATE OR REPLACE MACRO litellm_clean(t) AS NULLIF(NULLIF(t, ''), 'None')
    """,
    # A message `content` (minified JSON): a string, or a list of parts of which the
    # text parts count.
    """
    CREATE OR REPLACE MACRO litellm_content(c) AS
        CASE WHEN c IS NULL THEN NULL
             WHEN starts_with(c, '"') THEN c ->> '$'
             WHEN starts_with(c, '[')
                 THEN NULLIF(array_to_string(json_extract_string(c, '$[*].text'), chr(10)), '')
        END
    """,
    # The same split in two, for the typed path: a `content` as {string, parts}, parsed
    # once per message in a stage (inside a lambda DuckDB does not share subexpressions,
    # and NULLIF / array_to_string repeat their argument), then joined.
    """
    CREATE OR REPLACE MACRO litellm_content_parts(c) AS {
        'string': CASE WHEN starts_with(c, '"') THEN c ->> '$' END,
        'parts': CASE WHEN starts_with(c, '[') THEN json_extract_string(c, '$[*].text') END}
    """,
    """
    CREATE OR REPLACE MACRO litellm_content_text(p) AS
        CASE WHEN p.string IS NOT NULL THEN p.string
             ELSE NULLIF(list_aggr(p.parts, 'string_agg', chr(10)), '') END
    """,
    # A `content` read as VARCHAR that is certainly a JSON string's value: a string reads
    # as its text, any other JSON value as JSON text (an object, an array, a number,
    # true, false, NaN, Infinity; null reads as NULL, as does a missing content).
    """
    CREATE OR REPLACE MACRO litellm_plain(c) AS
        c IS NULL OR c = '' OR NOT (contains('[{-0123456789', left(c, 1))
                                    OR c IN ('true', 'false', 'null', 'NaN', 'Infinity',
                                             'nan', 'inf', 'infinity'))
    """,
    # `messages` (any JSON, e.g. a decoded string): a list of chat messages, or a plain
    # prompt string. The slow path: most records take the typed one in the query.
    """
    CREATE OR REPLACE MACRO litellm_messages(m) AS
        CASE WHEN m IS NULL THEN NULL
             WHEN json_type(m) = 'VARCHAR' THEN NULLIF(m ->> '$', '')
             WHEN json_type(m) = 'ARRAY' THEN NULLIF(array_to_string(
                 list_transform(json_extract(m, '$[*].content'),
                                lambda c: litellm_content(c)), chr(10)), '')
        END
    """,
    # `response` (any JSON): chat choices (message.content) or text-completion choices
    # (text). The slow path, as for messages.
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
             WHEN starts_with(k, 'sk-') THEN sha256(k)
             ELSE k END
    """,
]

# Each record is parsed ONCE, by one json_transform naming exactly the fields read (a
# materialised stage, so the struct is not rebuilt per reference). DuckDB parses a
# document once per JSON function call and these records are several KB, so one call
# per field was the main cost. Fields are read as text (VARCHAR gives the same text as
# json_extract_string) unless their JSON type matters (timestamps) or they must be
# decoded (metadata may be a JSON-encoded string, in SpendLogs rows). `messages` and
# `response` are typed down to the message contents, read as text, so a prompt that is
# a plain string is never written back out as JSON and re-parsed (a record with other
# contents, e.g. lists of parts, is read again with them typed as JSON); a record where
# they are not shaped that way (a SpendLogs string, a plain prompt) takes the slow
# path, the macros above.
_TEXT_FIELDS = (
    "request_id", "id", "call_type", "status", "error_str", "changed_by",
    "changed_by_api_key", "table_name", "action", "object_id", "user", "end_user",
    "api_key", "team_id", "requester_ip_address", "custom_llm_provider", "model",
    "api_base", "prompt_tokens", "completion_tokens", "response_cost", "spend",
    "response_time",
)  # fmt: skip
_META_TEXT_FIELDS = (
    "user_api_key_user_email", "user_api_key_user_id", "user_api_key_end_user_id",
    "user_api_key_alias", "user_api_key_hash", "user_api_key", "user_api_key_team_alias",
    "user_api_key_team_id", "requester_ip_address", "user_agent",
)  # fmt: skip
_PROVIDER = {"model_map_value": {"litellm_provider": "VARCHAR"}}
_CONTENT = {"content": "JSON"}
_TEXT_CONTENT = {"content": "VARCHAR"}
_RECORD: dict[str, object] = {
    **dict.fromkeys(_TEXT_FIELDS, "VARCHAR"),
    **dict.fromkeys(("startTime", "endTime", "updated_at", "proxy_server_request"), "JSON"),
    "error_information": {"error_code": "VARCHAR"},
    "model_map_information": _PROVIDER,
    "hidden_params": {"litellm_model_name": "VARCHAR", "api_base": "VARCHAR"},
    "messages": [_TEXT_CONTENT],
    "response": {
        "choices": [{"message": _TEXT_CONTENT, "text": "VARCHAR"}],
        "object": "VARCHAR",
        "id": "VARCHAR",
    },
}
# The contents typed as JSON, read again only for a record whose contents are not all
# plain strings (see `litellm_plain`).
_TYPED: dict[str, object] = {
    "messages": [_CONTENT],
    "response": {"choices": [{"message": _CONTENT}]},
}
_META: dict[str, object] = {
    **dict.fromkeys(_META_TEXT_FIELDS, "VARCHAR"),
    "error_information": {"error_code": "VARCHAR"},
    "usage_object": {"prompt_tokens": "VARCHAR", "completion_tokens": "VARCHAR"},
    "model_map_information": _PROVIDER,
}
# `metadata` is read in the same pass when it is an object (the usual payload). Where it
# is not (a SpendLogs JSON-encoded string, null, …) every field of the typed struct is
# NULL, and only then is it read again through `litellm_json`, which decodes strings.
_RECORD["metadata"] = _META


def _leaves(fields: dict[str, object], prefix: str) -> list[str]:
    paths = []
    for name, value in fields.items():
        path = f'{prefix}."{name}"'
        paths += _leaves(value, path) if isinstance(value, dict) else [path]
    return paths


def _structure(fields: dict[str, object]) -> str:
    return "'" + json.dumps(fields, separators=(",", ":")) + "'"


_STAGES = [
    f"json_transform(record, {_structure(_RECORD)}) AS _r",
    "CASE WHEN "
    + " OR ".join(f"{leaf} IS NOT NULL" for leaf in _leaves(_META, "_r.metadata"))
    + " THEN _r.metadata ELSE json_transform(litellm_json(json_extract(record, '$.metadata')), "
    f"{_structure(_META)}) END AS _m, "
    # Contents are read as text: a plain string needs no second parse. One message and
    # one choice (the usual record) are checked without a lambda.
    "CASE WHEN len(_r.messages) = 1 THEN litellm_plain(_r.messages[1].content)"
    " ELSE list_bool_and(list_transform(_r.messages, lambda m: litellm_plain(m.content)))"
    " END AS _plain_prompt, "
    "CASE WHEN len(_r.response.choices) = 1"
    " THEN litellm_plain(_r.response.choices[1].message.content)"
    " ELSE list_bool_and(list_transform(_r.response.choices,"
    " lambda c: litellm_plain(c.message.content))) END AS _plain_reply",
    # Every text field cleaned once, so the select list refers to plain struct fields.
    "{" + ", ".join(f"'{name}': litellm_clean(_r.\"{name}\")" for name in _TEXT_FIELDS)
    + ", " + ", ".join(f"'m_{name}': litellm_clean(_m.\"{name}\")" for name in _META_TEXT_FIELDS)
    + "} AS _t, "
    # Records with a content that is not a plain string (a list of parts, …) are read
    # again with the contents typed as JSON.
    "CASE WHEN (_r.messages IS NOT NULL AND _plain_prompt IS NOT TRUE)"
    " OR (_r.response.choices IS NOT NULL AND _plain_reply IS NOT TRUE)"
    f" THEN json_transform(record, {_structure(_TYPED)}) END AS _typed",
]

_REFS = {
    **{name: f'_t."{name}"' for name in _TEXT_FIELDS},
    **{f"m_{name}": f'_t."m_{name}"' for name in _META_TEXT_FIELDS},
}

_SELECT_TEMPLATE = """
    {request_id} IS NULL AND {changed_by} IS NOT NULL AS _is_audit,
    COALESCE({request_id}, {id}) AS event_id,
    COALESCE(sentinel_ts(_r."startTime"), sentinel_ts(_r.updated_at)) AS ts,
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
    TRY_CAST(COALESCE(litellm_clean(_r.error_information.error_code),
                      litellm_clean(_m.error_information.error_code)) AS INTEGER)
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
    COALESCE({requester_ip_address}, {m_requester_ip_address})
        AS client_ip,
    COALESCE({m_user_agent},
             litellm_get(litellm_json(_r.proxy_server_request), '$.headers."user-agent"'))
        AS user_agent,
    CASE WHEN NOT _is_audit THEN COALESCE(
        {custom_llm_provider},
        litellm_clean(_r.model_map_information.model_map_value.litellm_provider),
        litellm_clean(_m.model_map_information.model_map_value.litellm_provider))
    END AS vendor,
    COALESCE({model}, litellm_clean(_r.hidden_params.litellm_model_name)) AS model,
    COALESCE({api_base}, litellm_clean(_r.hidden_params.api_base)) AS endpoint,
    CASE WHEN _r.messages IS NULL
         THEN litellm_messages(litellm_json(json_extract(record, '$.messages')))
         WHEN _plain_prompt IS NOT TRUE
         THEN NULLIF(array_to_string(list_transform(
             list_transform(_typed.messages, lambda m: litellm_content_parts(m.content)),
             lambda p: litellm_content_text(p)), chr(10)), '')
         WHEN len(_r.messages) = 1 THEN NULLIF(_r.messages[1].content, '')
         ELSE NULLIF(array_to_string(
             list_transform(_r.messages, lambda m: m.content), chr(10)), '')
    END AS prompt_text,
    CASE WHEN _r.response.choices IS NULL AND _r.response.object IS NULL
              AND _r.response.id IS NULL
         THEN litellm_response(litellm_json(json_extract(record, '$.response')))
         WHEN _r.response.choices IS NOT NULL AND _plain_reply IS NOT TRUE
         THEN NULLIF(array_to_string(list_concat(
             list_transform(
                 list_transform(_typed.response.choices,
                                lambda c: litellm_content_parts(c.message.content)),
                 lambda p: litellm_content_text(p)),
             list_transform(_r.response.choices, lambda c: c.text)), chr(10)), '')
         WHEN len(_r.response.choices) = 1
         THEN NULLIF(concat_ws(chr(10), _r.response.choices[1].message.content,
                               _r.response.choices[1].text), '')
         ELSE NULLIF(array_to_string(list_concat(
             list_transform(_r.response.choices, lambda c: c.message.content),
             list_transform(_r.response.choices, lambda c: c.text)), chr(10)), '')
    END AS response_text,
    COALESCE(TRY_CAST({prompt_tokens} AS BIGINT),
             TRY_CAST(litellm_clean(_m.usage_object.prompt_tokens) AS BIGINT))
        AS prompt_tokens,
    COALESCE(TRY_CAST({completion_tokens} AS BIGINT),
             TRY_CAST(litellm_clean(_m.usage_object.completion_tokens) AS BIGINT))
        AS completion_tokens,
    COALESCE(TRY_CAST({response_cost} AS DOUBLE),
             TRY_CAST({spend} AS DOUBLE)) AS cost_usd,
    COALESCE(date_diff('microsecond', sentinel_ts(_r."startTime"),
                       sentinel_ts(_r."endTime")) / 1000.0,
             TRY_CAST({response_time} AS DOUBLE) * 1000.0) AS latency_ms,
    CASE WHEN _is_audit THEN {object_id} END AS resource,
    NULL AS _error
"""

_SELECT = with_unmapped_nulls(_SELECT_TEMPLATE.format(**_REFS))


class LiteLLMSource(LogSource):
    """LiteLLM proxy request logs (StandardLoggingPayload, SpendLogs) and its audit log."""

    name = "litellm"
    logsource = ("ai_gateway", "litellm")
    description = "LiteLLM proxy: StandardLoggingPayload, LiteLLM_SpendLogs and LiteLLM_AuditLog"
    select_sql = _SELECT
    stage_sql = _STAGES
    macro_sql = _MACROS

    def recognise(self, record: dict[str, Any]) -> bool:
        if {"changed_by", "action", "table_name", "object_id"} <= record.keys():
            return True
        return (
            "call_type" in record
            and "startTime" in record
            and ("response_cost" in record or "spend" in record)
        )
