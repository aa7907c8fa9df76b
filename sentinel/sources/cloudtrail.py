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
- status_code: 200 for a success; a failed ConsoleLogin (no errorCode, only
  `responseElements.ConsoleLogin: Failure`) is 401; any other failure is the HTTP status
  of its `errorCode`'s AWS family (`sentinel_aws_status`: AccessDenied* 403, *NotFound /
  NoSuch* 404, Throttling* 429, Validation*/Invalid* 400, …), NULL for an unknown code.
- resource: the first present of a fixed list of `requestParameters` keys naming the
  object acted on (user, role, group, policy, trail, bucket, key, instance, model…).
  A value CloudTrail redacted (`HIDDEN_DUE_TO_SECURITY_REASONS`, e.g. a guardrail's
  `name`) is skipped, so the next key (`guardrailIdentifier`) names the object.
- Insight events (no eventName): action = the insight type, endpoint and resource =
  the API the insight is about.
- vendor: `aws-bedrock` for `bedrock.amazonaws.com` events, else NULL.
"""

from __future__ import annotations

import json
from typing import Any

from sentinel.sources.base import LogSource
from sentinel.sources.sqlshape import with_unmapped_nulls

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
    "StartAsyncInvoke",
)

REDACTED = "HIDDEN_DUE_TO_SECURITY_REASONS"
"""What CloudTrail writes instead of a request parameter it does not disclose."""


# Each record is parsed once, by one json_transform naming exactly the fields read (VARCHAR
# gives the same text as `->>`); DuckDB parses a document again for every JSON function
# call, and this query reads some 35 paths.
_RECORD: dict[str, object] = {
    **dict.fromkeys(
        ("eventSource", "eventID", "eventName", "errorCode", "sourceIPAddress", "userAgent",
         "awsRegion"),
        "VARCHAR",
    ),
    "eventTime": "JSON",
    "insightDetails": dict.fromkeys(("insightType", "eventSource", "eventName"), "VARCHAR"),
    "responseElements": {"ConsoleLogin": "VARCHAR"},
    "userIdentity": dict.fromkeys(
        ("userName", "arn", "invokedBy", "accessKeyId", "type"), "VARCHAR"
    ),
    "requestParameters": {
        **dict.fromkeys(RESOURCE_KEYS, "VARCHAR"),
        "instancesSet": {"items": [{"instanceId": "VARCHAR"}]},
    },
}

_STAGES = [
    "json_transform(record, '" + json.dumps(_RECORD, separators=(",", ":")) + "') AS _c"
]


def _resource_expr() -> str:
    paths = [f"NULLIF(_c.\"requestParameters\".\"{key}\", '{REDACTED}')" for key in RESOURCE_KEYS]
    paths.append(
        "array_to_string(list_transform(_c.\"requestParameters\".\"instancesSet\".items, "
        "lambda i: i.\"instanceId\"), ',')"
    )
    return "NULLIF(COALESCE(\n        " + ",\n        ".join(paths) + "), '')"


_INFERENCE = ", ".join(f"'{name}'" for name in INFERENCE_EVENTS)

_SELECT = f"""
    _c."eventSource" AS _source,
    _c."eventID" AS event_id,
    sentinel_ts(_c."eventTime") AS ts,
    source_offset,
    CASE WHEN _source = 'bedrock.amazonaws.com' AND _c."eventName" IN ({_INFERENCE})
         THEN 'inference' ELSE 'audit' END AS kind,
    COALESCE(_c."eventName", _c."insightDetails"."insightType") AS action,
    CASE WHEN _c."errorCode" IS NOT NULL
              OR _c."responseElements"."ConsoleLogin" = 'Failure' THEN 'failure'
         WHEN _c."eventName" IS NULL THEN NULL
         ELSE 'success' END AS outcome,
    CASE WHEN _c."errorCode" IS NOT NULL THEN sentinel_aws_status(_c."errorCode")
         WHEN _c."responseElements"."ConsoleLogin" = 'Failure' THEN 401
         WHEN _c."eventName" IS NOT NULL THEN 200 END AS status_code,
    COALESCE(_c."userIdentity"."userName", _c."userIdentity".arn,
             _c."userIdentity"."invokedBy") AS actor_user,
    _c."userIdentity"."accessKeyId" AS actor_key,
    _c."userIdentity".type AS actor_type,
    _c."sourceIPAddress" AS client_ip,
    _c."userAgent" AS user_agent,
    CASE WHEN _source = 'bedrock.amazonaws.com' THEN 'aws-bedrock' END AS vendor,
    CASE WHEN _source = 'bedrock.amazonaws.com'
         THEN _c."requestParameters"."modelId" END AS model,
    COALESCE(_source, _c."insightDetails"."eventSource") AS endpoint,
    _c."awsRegion" AS region,
    COALESCE({_resource_expr()},
             _c."insightDetails"."eventName") AS resource,
    NULL AS _error
"""


class CloudTrailSource(LogSource):
    """AWS CloudTrail management and data events, as delivered to S3 or CloudWatch."""

    name = "cloudtrail"
    logsource = ("aws", "cloudtrail")
    description = "AWS CloudTrail events (S3 `Records` files or one event per line)"
    envelope_paths = ("$.Records",)
    select_sql = with_unmapped_nulls(_SELECT)
    stage_sql = _STAGES

    def recognise(self, record: dict[str, Any]) -> bool:
        return (
            "eventVersion" in record
            and "eventTime" in record
            and ("eventSource" in record or "insightDetails" in record)
        )
