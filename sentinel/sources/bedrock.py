"""Amazon Bedrock model invocation logs (`schemaType: ModelInvocationLog`).

Bedrock logs the request and response bodies verbatim, so their shape depends on the
model family and the API: Anthropic messages, Claude v2 / Llama / Mistral `prompt`,
Titan `inputText`, Converse / ConverseStream `messages[*].content[*].text`, and for
InvokeModelWithResponseStream an ARRAY of stream events (which may end with the
literal string "[DONE]"). The macros below try every known shape at once; a shape that
does not apply yields an empty list, so no per-record branching is needed. Guardrail
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

from typing import Any

from sentinel.sources.base import LogSource

_MACROS = [
    # Text of one message: `content` as a string, or parts with `text` (Anthropic,
    # Converse) or `guardContent.text.text` (Converse guarded input). A macro, not a
    # lambda: DuckDB cannot bind a lambda nested in a macro called from a lambda.
    """
    CREATE OR REPLACE MACRO bedrock_message(m) AS
        CASE WHEN json_type(json_extract(m, '$.content')) = 'VARCHAR' THEN m ->> '$.content'
             ELSE NULLIF(array_to_string(list_concat(
                 json_extract_string(m, '$.content[*].text'),
                 json_extract_string(m, '$.content[*].guardContent.text.text')), chr(10)), '')
        END
    """,
    # A request body of any supported model family -> one prompt text.
    """
    CREATE OR REPLACE MACRO bedrock_prompt(b) AS
        NULLIF(array_to_string(list_concat(
            CASE json_type(json_extract(b, '$.system'))
                WHEN 'VARCHAR' THEN [b ->> '$.system']
                WHEN 'ARRAY' THEN json_extract_string(b, '$.system[*].text')
            END,
            list_transform(json_extract(b, '$.messages[*]'), lambda m: bedrock_message(m)),
            [b ->> '$.prompt', b ->> '$.inputText']), chr(10)), '')
    """,
    # A non-streamed response body of any supported model family -> its text.
    """
    CREATE OR REPLACE MACRO bedrock_response_body(b) AS
        array_to_string(list_concat(
            json_extract_string(b, '$.content[*].text'),
            json_extract_string(b, '$.output.message.content[*].text'),
            json_extract_string(b, '$.results[*].outputText'),
            json_extract_string(b, '$.outputs[*].text'),
            json_extract_string(b, '$.generations[*].text'),
            [b ->> '$.generation', b ->> '$.completion']), chr(10))
    """,
    # A streamed response (array of events, maybe ending in "[DONE]") -> the joined deltas.
    """
    CREATE OR REPLACE MACRO bedrock_response_stream(b) AS
        array_to_string(list_transform(json_extract(b, '$[*]'),
            lambda e: COALESCE(json_extract_string(e, '$.delta.text'),
                               json_extract_string(e, '$.contentBlockDelta.delta.text'),
                               json_extract_string(e, '$.completion'),
                               json_extract_string(e, '$.outputText'),
                               json_extract_string(e, '$.generation'))), '')
    """,
    """
    CREATE OR REPLACE MACRO bedrock_response(b) AS
        NULLIF(CASE json_type(b)
                   WHEN 'ARRAY' THEN bedrock_response_stream(b)
                   WHEN 'OBJECT' THEN bedrock_response_body(b)
               END, '')
    """,
]

_SELECT = """
    record ->> '$.identity.arn' AS _arn,
    json_extract(record, '$.output.outputBodyJson') AS _out,
    record ->> '$.requestId' AS event_id,
    sentinel_ts(json_extract(record, '$.timestamp')) AS ts,
    source_offset,
    'inference' AS kind,
    record ->> '$.operation' AS action,
    CASE WHEN sentinel_text(json_extract(record, '$.errorCode')) IS NOT NULL THEN 'failure'
         ELSE 'success' END AS outcome,
    NULL AS status_code,
    CASE WHEN regexp_matches(_arn, ':user/') THEN regexp_extract(_arn, '([^/]+)$', 1)
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
    record ->> '$.modelId' AS model,
    NULL AS endpoint,
    record ->> '$.region' AS region,
    bedrock_prompt(json_extract(record, '$.input.inputBodyJson')) AS prompt_text,
    bedrock_response(_out) AS response_text,
    TRY_CAST(record ->> '$.input.inputTokenCount' AS BIGINT) AS prompt_tokens,
    TRY_CAST(record ->> '$.output.outputTokenCount' AS BIGINT) AS completion_tokens,
    NULL AS cost_usd,
    COALESCE(TRY_CAST(_out ->> '$.metrics.latencyMs' AS DOUBLE),
             TRY_CAST(json_extract_string(
                 _out, '$[*]."amazon-bedrock-invocationMetrics".invocationLatency')[1]
                 AS DOUBLE)) AS latency_ms,
    NULL AS resource,
    NULL AS _error
"""


class BedrockSource(LogSource):
    """Amazon Bedrock model invocation logs (CloudWatch Logs or S3 delivery)."""

    name = "bedrock"
    description = "Amazon Bedrock model invocation logs (schemaType ModelInvocationLog)"

    def recognise(self, record: dict[str, Any]) -> bool:
        if record.get("schemaType") == "ModelInvocationLog":
            return True
        return {"requestId", "operation", "modelId", "input", "identity"} <= record.keys()

    def select_list(self) -> str:
        return _SELECT

    def setup_sql(self) -> list[str]:
        return list(_MACROS)
