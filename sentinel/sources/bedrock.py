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
- outcome: `failure` when the record has an `errorCode`, else `success`.
- latency_ms: Converse `metrics.latencyMs`, else the stream's `invocationLatency`.
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.sources.base import LogSource

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
}
_STREAM: list[object] = [
    {
        "delta": _TEXT,
        "contentBlockDelta": {"delta": _TEXT},
        "completion": "VARCHAR",
        "outputText": "VARCHAR",
        "generation": "VARCHAR",
    }
]


def _structure(fields: object) -> str:
    return "'" + json.dumps(fields, separators=(",", ":")) + "'"


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
]

_SELECT = """
    _b.identity.arn AS _arn,
    _b."requestId" AS event_id,
    sentinel_ts(_b.timestamp) AS ts,
    source_offset,
    'inference' AS kind,
    _b.operation AS action,
    CASE WHEN _b."errorCode" IS NOT NULL THEN 'failure' ELSE 'success' END AS outcome,
    NULL AS status_code,
    CASE WHEN contains(_arn, ':user/') THEN regexp_extract(_arn, '([^/]+)$', 1)
         ELSE _arn END AS actor_user,
    NULL AS actor_key,
    NULL AS actor_team,
    CASE WHEN regexp_matches(_arn, '^arn:[^:]+:iam::[^:]*:user/') THEN 'IAMUser'
         WHEN regexp_matches(_arn, '^arn:[^:]+:sts::[^:]*:assumed-role/') THEN 'AssumedRole'
         WHEN regexp_matches(_arn, '^arn:[^:]+:iam::[^:]*:root$') THEN 'Root'
    END AS actor_type,
    NULL AS client_ip,
    NULL AS user_agent,
    'aws-bedrock' AS vendor,
    _b."modelId" AS model,
    NULL AS endpoint,
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
    TRY_CAST(_b.input."inputTokenCount" AS BIGINT) AS prompt_tokens,
    TRY_CAST(_b.output."outputTokenCount" AS BIGINT) AS completion_tokens,
    NULL AS cost_usd,
    COALESCE(TRY_CAST(_body.metrics."latencyMs" AS DOUBLE),
             CASE WHEN _stream IS NOT NULL THEN TRY_CAST(json_extract_string(
                 _b.output."outputBodyJson",
                 '$[*]."amazon-bedrock-invocationMetrics".invocationLatency')[1] AS DOUBLE)
             END) AS latency_ms,
    NULL AS resource,
    NULL AS _error
"""


class BedrockSource(LogSource):
    """Amazon Bedrock model invocation logs (CloudWatch Logs or S3 delivery)."""

    name = "bedrock"
    description = "Amazon Bedrock model invocation logs (schemaType ModelInvocationLog)"
    select_sql = _SELECT
    stage_sql = _STAGES
    macro_sql = _MACROS

    def recognise(self, record: dict[str, Any]) -> bool:
        if record.get("schemaType") == "ModelInvocationLog":
            return True
        return {"requestId", "operation", "modelId", "input", "identity"} <= record.keys()
