"""Amazon Bedrock model invocation logs (`schemaType: ModelInvocationLog`).

Bedrock logs the request and response bodies verbatim, so their shape depends on the
model family and the API: Anthropic messages, Claude v2 / Llama / Mistral `prompt`,
Titan `inputText`, Converse / ConverseStream `messages[*].content[*].text`, and for
InvokeModelWithResponseStream an ARRAY of stream events (which may end with the
literal string "[DONE]"). The query types every known shape at once; a shape that
does not apply yields NULL, so no per-record branching is needed. Guardrail
assessments stay in `raw` (no column).

Mapping decisions (also in the README):
- actor_user: the IAM user name for `…:user/NAME` ARNs, else the whole ARN (assumed
  roles, root): exactly what the CloudTrail source stores for the same principal, so
  the two sources join on it. actor_type: `IAMUser`, `AssumedRole` or `Root`, as in
  CloudTrail.
- vendor: always `aws-bedrock` (the service called); the model provider is in `model`.
- kind: `inference` for model invocations (InvokeModel*, Converse*, StartAsyncInvoke, or
  no operation at all), `audit` for anything else the log carries (ListModels, …).
- outcome: `failure` when the record has an `errorCode`, the response body is an error
  (`{"type": "error", …}`) or a stream carries an exception event, else `success`.
- status_code: 200 for a success; for a failure the HTTP status of the error: the
  `errorCode` by its AWS family (`sentinel_aws_status`), else the Anthropic error type
  of the body, else the stream exception; NULL when none of them is known.
- prompt/completion tokens: `inputTokenCount` / `outputTokenCount`, else the body's own
  usage: Anthropic `usage.input_tokens/output_tokens`, Converse
  `usage.inputTokens/outputTokens`, Titan `inputTextTokenCount` / `results[].tokenCount`,
  Llama `prompt_token_count` / `generation_token_count`, and for streams the largest
  value of `message_start`/`message_delta` usage, Converse `metadata.usage` or
  `amazon-bedrock-invocationMetrics`.
- latency_ms: Converse `metrics.latencyMs`, else the stream's `invocationLatency`.
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.sources.base import LogSource
from sentinel.sources.cloudtrail import INFERENCE_EVENTS
from sentinel.sources.sqlshape import with_unmapped_nulls

_MACROS = [
    # A message `content` (minified JSON) as {string, parts}: a string, or the texts of
    # its parts, `text` (Anthropic, Converse) and `guardContent.text.text` (Converse
    # guarded input). Evaluated once per message in a stage: inside a lambda DuckDB does
    # not share subexpressions, and NULLIF / array_to_string repeat their argument.
    """
    CREATE OR REPLACE MACRO bedrock_content(c) AS {
        'string': CASE WHEN starts_with(c, '"') THEN c ->> '$' END,
        'parts': CASE WHEN starts_with(c, '[') THEN list_concat(
            json_extract_string(c, '$[*].text'),
            json_extract_string(c, '$[*].guardContent.text.text')) END}
    """,
    # `system` (minified JSON): a string (Anthropic) or a list of `{text}` (Converse).
    """
    CREATE OR REPLACE MACRO bedrock_system(s) AS
        CASE WHEN starts_with(s, '"') THEN [s ->> '$']
             WHEN starts_with(s, '[') THEN json_extract_string(s, '$[*].text')
        END
    """,
    # The HTTP status of an Anthropic error body's `error.type` (Anthropic API errors).
    """
    CREATE OR REPLACE MACRO bedrock_anthropic_status(t) AS
        CASE t WHEN 'invalid_request_error' THEN 400 WHEN 'authentication_error' THEN 401
               WHEN 'permission_error' THEN 403 WHEN 'not_found_error' THEN 404
               WHEN 'request_too_large' THEN 413 WHEN 'rate_limit_error' THEN 429
               WHEN 'api_error' THEN 500 WHEN 'overloaded_error' THEN 529 END
    """,
]

# Each record is parsed once, by one json_transform naming exactly the fields read (a
# materialised stage); DuckDB parses a document again for every JSON function call. The
# request body of every supported model family is typed at once (a shape that does not
# apply is NULL, which list_concat and array_to_string skip), so no per-record
# branching is needed. The response body is an object, or for
# InvokeModelWithResponseStream an ARRAY of stream events (which may end with the
# literal string "[DONE]"): it is read as JSON and typed by a second transform chosen
# by its first character.
_TEXT = {"text": "VARCHAR"}
_RECORD: dict[str, object] = {
    "identity": {"arn": "VARCHAR"},
    "requestId": "VARCHAR",
    "timestamp": "JSON",
    "operation": "VARCHAR",
    "errorCode": "VARCHAR",
    "modelId": "VARCHAR",
    "region": "VARCHAR",
    "input": {
        "inputTokenCount": "VARCHAR",
        "inputBodyJson": {
            "system": "JSON",
            "messages": [{"content": "JSON"}],
            "prompt": "VARCHAR",
            "inputText": "VARCHAR",
        },
    },
    "output": {"outputTokenCount": "VARCHAR", "outputBodyJson": "JSON"},
}
_BODY: dict[str, object] = {
    "content": [_TEXT],
    "output": {"message": {"content": [_TEXT]}},
    "results": [{"outputText": "VARCHAR"}],
    "outputs": [_TEXT],
    "generations": [_TEXT],
    "generation": "VARCHAR",
    "completion": "VARCHAR",
    "metrics": {"latencyMs": "VARCHAR"},
    "type": "VARCHAR",
    "error": {"type": "VARCHAR"},
    "usage": dict.fromkeys(("input_tokens", "output_tokens", "inputTokens", "outputTokens"),
                           "VARCHAR"),
    "inputTextTokenCount": "VARCHAR",
    "prompt_token_count": "VARCHAR",
    "generation_token_count": "VARCHAR",
}
_BODY["results"] = [{"outputText": "VARCHAR", "tokenCount": "VARCHAR"}]
# Exception events a response stream may carry instead of (or after) content, with the
# HTTP status Bedrock documents for each.
STREAM_EXCEPTIONS = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "throttlingException": 429,
    "validationException": 400,
    "serviceUnavailableException": 503,
    "modelTimeoutException": 408,
}
_STREAM: list[object] = [
    {
        "delta": _TEXT,
        "contentBlockDelta": {"delta": _TEXT},
        "completion": "VARCHAR",
        "outputText": "VARCHAR",
        "generation": "VARCHAR",
        "message": {"usage": {"input_tokens": "VARCHAR"}},
        "usage": {"output_tokens": "VARCHAR"},
        "metadata": {"usage": {"inputTokens": "VARCHAR", "outputTokens": "VARCHAR"}},
        "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": "VARCHAR",
            "outputTokenCount": "VARCHAR",
        },
        **dict.fromkeys(STREAM_EXCEPTIONS, "JSON"),
    }
]


def _structure(fields: object) -> str:
    return "'" + json.dumps(fields, separators=(",", ":")) + "'"


def _stream_status() -> str:
    """SQL: the status of a stream event `e` that is an exception event, else NULL."""
    cases = " ".join(
        f'WHEN e."{name}" IS NOT NULL THEN {status}' for name, status in STREAM_EXCEPTIONS.items()
    )
    return f"CASE {cases} END"


def _tokens(fields: list[str]) -> str:
    """SQL: the first of `fields` that holds a whole number."""
    return "COALESCE(" + ", ".join(f"TRY_CAST({f} AS BIGINT)" for f in fields) + ")"


_PROMPT_TOKENS = _tokens([
    '_b.input."inputTokenCount"',
    "_body.usage.input_tokens",
    '_body.usage."inputTokens"',
    '_body."inputTextTokenCount"',
    "_body.prompt_token_count",
    "list_max(list_transform(_stream, lambda e: COALESCE("
    'TRY_CAST(e."amazon-bedrock-invocationMetrics"."inputTokenCount" AS BIGINT), '
    'TRY_CAST(e.metadata.usage."inputTokens" AS BIGINT), '
    "TRY_CAST(e.message.usage.input_tokens AS BIGINT))))",
])
_COMPLETION_TOKENS = _tokens([
    '_b.output."outputTokenCount"',
    "_body.usage.output_tokens",
    '_body.usage."outputTokens"',
    "list_sum(list_transform(_body.results, lambda r: TRY_CAST(r.\"tokenCount\" AS BIGINT)))",
    "_body.generation_token_count",
    "list_max(list_transform(_stream, lambda e: COALESCE("
    'TRY_CAST(e."amazon-bedrock-invocationMetrics"."outputTokenCount" AS BIGINT), '
    'TRY_CAST(e.metadata.usage."outputTokens" AS BIGINT), '
    "TRY_CAST(e.usage.output_tokens AS BIGINT))))",
])
_INFERENCE = ", ".join(f"'{name}'" for name in INFERENCE_EVENTS)

_STAGES = [
    f"json_transform(record, {_structure(_RECORD)}) AS _b",
    f"""_b.input."inputBodyJson" AS _in,
        list_transform(_b.input."inputBodyJson".messages,
                       lambda m: bedrock_content(m.content)) AS _messages,
        CASE WHEN starts_with(_b.output.outputBodyJson, '{{')
             THEN json_transform(_b.output.outputBodyJson, {_structure(_BODY)})
        END AS _body,
        CASE WHEN starts_with(_b.output.outputBodyJson, '[')
             THEN json_transform(_b.output.outputBodyJson, {_structure(_STREAM)})
        END AS _stream""",
    f"""CASE WHEN _body.type = 'error' THEN COALESCE(
                 bedrock_anthropic_status(_body.error.type), 500)
             WHEN _stream IS NOT NULL THEN list_max(list_transform(_stream, lambda e:
                 {_stream_status()}))
        END AS _body_status""",
]

_SELECT = f"""
    _b.identity.arn AS _arn,
    _b."requestId" AS event_id,
    sentinel_ts(_b.timestamp) AS ts,
    source_offset,
    CASE WHEN _b.operation IS NULL OR _b.operation IN ({_INFERENCE}) THEN 'inference'
         ELSE 'audit' END AS kind,
    _b.operation AS action,
    CASE WHEN _b."errorCode" IS NOT NULL OR _body_status IS NOT NULL THEN 'failure'
         ELSE 'success' END AS outcome,
    CASE WHEN _b."errorCode" IS NOT NULL
             THEN COALESCE(sentinel_aws_status(_b."errorCode"), _body_status)
         ELSE COALESCE(_body_status, 200) END AS status_code,
    CASE WHEN contains(_arn, ':user/') THEN regexp_extract(_arn, '([^/]+)$', 1)
         ELSE _arn END AS actor_user,
    CASE WHEN regexp_matches(_arn, '^arn:[^:]+:iam::[^:]*:user/') THEN 'IAMUser'
         WHEN regexp_matches(_arn, '^arn:[^:]+:sts::[^:]*:assumed-role/') THEN 'AssumedRole'
         WHEN regexp_matches(_arn, '^arn:[^:]+:iam::[^:]*:root$') THEN 'Root'
    END AS actor_type,
    'aws-bedrock' AS vendor,
    _b."modelId" AS model,
    _b.region AS region,
    NULLIF(array_to_string(list_concat(
        bedrock_system(_in.system),
        list_transform(_messages, lambda m: CASE WHEN m.string IS NOT NULL THEN m.string
            ELSE NULLIF(list_aggr(m.parts, 'string_agg', chr(10)), '') END),
        [_in.prompt, _in."inputText"]), chr(10)), '') AS prompt_text,
    NULLIF(CASE WHEN _stream IS NOT NULL THEN array_to_string(list_transform(_stream,
                    lambda e: COALESCE(e.delta.text, e."contentBlockDelta".delta.text,
                                       e.completion, e."outputText", e.generation)), '')
                WHEN _body IS NOT NULL THEN array_to_string(list_concat(
                    list_transform(_body.content, lambda c: c.text),
                    list_transform(_body.output.message.content, lambda c: c.text),
                    list_transform(_body.results, lambda r: r."outputText"),
                    list_transform(_body.outputs, lambda o: o.text),
                    list_transform(_body.generations, lambda g: g.text),
                    [_body.generation, _body.completion]), chr(10))
           END, '') AS response_text,
    {_PROMPT_TOKENS} AS prompt_tokens,
    {_COMPLETION_TOKENS} AS completion_tokens,
    COALESCE(TRY_CAST(_body.metrics."latencyMs" AS DOUBLE),
             CASE WHEN _stream IS NOT NULL THEN TRY_CAST(json_extract_string(
                 _b.output."outputBodyJson",
                 '$[*]."amazon-bedrock-invocationMetrics".invocationLatency')[1] AS DOUBLE)
             END) AS latency_ms,
    NULL AS _error
"""


class BedrockSource(LogSource):
    """Amazon Bedrock model invocation logs (CloudWatch Logs or S3 delivery)."""

    name = "bedrock"
    logsource = ("ai_gateway", "bedrock")
    description = "Amazon Bedrock model invocation logs (schemaType ModelInvocationLog)"
    select_sql = with_unmapped_nulls(_SELECT)
    stage_sql = _STAGES
    macro_sql = _MACROS

    def recognise(self, record: dict[str, Any]) -> bool:
        if record.get("schemaType") == "ModelInvocationLog":
            return True
        return {"requestId", "operation", "modelId", "input", "identity"} <= record.keys()
