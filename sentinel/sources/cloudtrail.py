"""AWS CloudTrail records: the control plane around Bedrock and the IAM activity near it.

CloudTrail is where an AI incident's "who changed what" lives: keys created, policies
attached, logging turned off, Bedrock `InvokeModel`/`Converse` calls (without their
bodies, which are only in Bedrock's own invocation logs). S3 delivery wraps records in
`{"Records": [...]}`; the engine unwraps it through `envelope_paths`.

Mapping decisions (also in the README):
- actor_user: `userIdentity.userName`, else its `arn` (assumed roles, root), else the
  invoking service; actor_type: `userIdentity.type`. The Bedrock source derives the
  same value from an ARN, so the two sources join on actor_user.
- actor_key: `userIdentity.accessKeyId`, an access key *id* (not a secret).
- kind: `inference` for Bedrock runtime calls (InvokeModel*, Converse*), else `audit`.
- outcome: `failure` when `errorCode` is set or a ConsoleLogin failed, else `success`.
- resource: the first present of a fixed list of `requestParameters` keys naming the
  object acted on (user, role, group, policy, trail, bucket, key, instance, model…).
- Insight events (no eventName): action = the insight type, endpoint and resource =
  the API the insight is about.
- vendor: `aws-bedrock` for `bedrock.amazonaws.com` events, else NULL.
"""

from __future__ import annotations

from typing import Any

from sentinel.sources.base import LogSource

# requestParameters keys that name the object an API call acts on, most specific first.
RESOURCE_KEYS = (
    "userName",
    "roleName",
    "groupName",
    "policyArn",
    "trailName",
    "name",
    "bucketName",
    "keyName",
    "keyId",
    "accessKeyId",
    "secretId",
    "functionName",
    "instanceId",
    "modelId",
    "modelIdentifier",
    "guardrailIdentifier",
    "knowledgeBaseId",
    "agentId",
    "resourceArn",
)

INFERENCE_EVENTS = (
    "InvokeModel",
    "InvokeModelWithResponseStream",
    "InvokeModelWithBidirectionalStream",
    "Converse",
    "ConverseStream",
)


def _resource_expr() -> str:
    paths = [f"json_extract_string(record, '$.requestParameters.{key}')" for key in RESOURCE_KEYS]
    paths.append(
        "array_to_string(json_extract_string(record, "
        "'$.requestParameters.instancesSet.items[*].instanceId'), ',')"
    )
    return "NULLIF(COALESCE(\n        " + ",\n        ".join(paths) + "), '')"


_INFERENCE = ", ".join(f"'{name}'" for name in INFERENCE_EVENTS)

_SELECT = f"""
    record ->> '$.eventSource' AS _source,
    record ->> '$.eventID' AS event_id,
    sentinel_ts(json_extract(record, '$.eventTime')) AS ts,
    source_offset,
    CASE WHEN _source = 'bedrock.amazonaws.com' AND record ->> '$.eventName' IN ({_INFERENCE})
         THEN 'inference' ELSE 'audit' END AS kind,
    COALESCE(record ->> '$.eventName', record ->> '$.insightDetails.insightType') AS action,
    CASE WHEN sentinel_text(json_extract(record, '$.errorCode')) IS NOT NULL
              OR record ->> '$.responseElements.ConsoleLogin' = 'Failure' THEN 'failure'
         WHEN record ->> '$.eventName' IS NULL THEN NULL
         ELSE 'success' END AS outcome,
    NULL AS status_code,
    COALESCE(record ->> '$.userIdentity.userName', record ->> '$.userIdentity.arn',
             record ->> '$.userIdentity.invokedBy') AS actor_user,
    record ->> '$.userIdentity.accessKeyId' AS actor_key,
    NULL AS actor_team,
    record ->> '$.userIdentity.type' AS actor_type,
    record ->> '$.sourceIPAddress' AS client_ip,
    record ->> '$.userAgent' AS user_agent,
    CASE WHEN _source = 'bedrock.amazonaws.com' THEN 'aws-bedrock' END AS vendor,
    CASE WHEN _source = 'bedrock.amazonaws.com'
         THEN record ->> '$.requestParameters.modelId' END AS model,
    COALESCE(_source, record ->> '$.insightDetails.eventSource') AS endpoint,
    record ->> '$.awsRegion' AS region,
    NULL AS prompt_text,
    NULL AS response_text,
    NULL AS prompt_tokens,
    NULL AS completion_tokens,
    NULL AS cost_usd,
    NULL AS latency_ms,
    COALESCE({_resource_expr()},
             record ->> '$.insightDetails.eventName') AS resource,
    NULL AS _error
"""


class CloudTrailSource(LogSource):
    """AWS CloudTrail management and data events, as delivered to S3 or CloudWatch."""

    name = "cloudtrail"
    description = "AWS CloudTrail events (S3 `Records` files or one event per line)"
    envelope_paths = ("$.Records",)

    def recognise(self, record: dict[str, Any]) -> bool:
        return (
            "eventVersion" in record
            and "eventTime" in record
            and ("eventSource" in record or "insightDetails" in record)
        )

    def select_list(self) -> str:
        return _SELECT
