"""CloudTrail: identities, failures, resources, Bedrock inference calls, insights."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel.sources.base import LogSource
from sentinel.sources.cloudtrail import CloudTrailSource

One = Callable[[Any], dict[str, Any]]


@pytest.fixture
def one(run_one: Callable[[LogSource, Any], dict[str, Any]]) -> One:
    return lambda record: run_one(CloudTrailSource(), record)


def call(event_name: str, event_source: str = "iam.amazonaws.com", **extra: Any) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDA",
            "userName": "Alice",
            "arn": "arn:aws:iam::123456789012:user/Alice",
            "accountId": "123456789012",
            "accessKeyId": "AKIAEXAMPLE",
        },
        "eventTime": "2024-10-30T20:01:59Z",
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.18",
        "requestParameters": None,
        "responseElements": None,
        "eventID": "ev-1",
        **extra,
    }


def test_attach_user_policy_field_by_field(one: One) -> None:
    record = call(
        "AttachUserPolicy",
        requestParameters={
            "userName": "backdoor",
            "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
        },
        tlsDetails={"tlsVersion": "TLSv1.3"},
    )
    event = one(record)
    assert event["event_id"] == "ev-1"
    assert event["ts"] == datetime(2024, 10, 30, 20, 1, 59, tzinfo=UTC)
    assert event["kind"] == "audit"
    assert event["action"] == "AttachUserPolicy"
    assert event["outcome"] == "success"
    assert event["actor_user"] == "Alice"
    assert event["actor_key"] == "AKIAEXAMPLE"
    assert event["actor_type"] == "IAMUser"
    assert event["client_ip"] == "203.0.113.7"
    assert event["user_agent"] == "aws-cli/2.18"
    assert event["endpoint"] == "iam.amazonaws.com"
    assert event["region"] == "us-east-1"
    assert event["resource"] == "backdoor"
    assert event["vendor"] is None and event["model"] is None
    assert json.loads(event["raw"])["tlsDetails"] == {"tlsVersion": "TLSv1.3"}


@pytest.mark.parametrize(
    ("params", "resource"),
    [
        ({"roleName": "TestRole", "assumeRolePolicyDocument": "{}"}, "TestRole"),
        ({"name": "myTrail2"}, "myTrail2"),
        ({"keyName": "mykeypair"}, "mykeypair"),
        ({"instancesSet": {"items": [{"instanceId": "i-1"}, {"instanceId": "i-2"}]}}, "i-1,i-2"),
        ({"somethingElse": 1}, None),
        (None, None),
    ],
)
def test_resource(one: One, params: Any, resource: str | None) -> None:
    assert one(call("X", requestParameters=params))["resource"] == resource


def test_error_code_is_a_failure(one: One) -> None:
    event = one(
        call(
            "UpdateTrail",
            "cloudtrail.amazonaws.com",
            errorCode="TrailNotFoundException",
            errorMessage="Unknown trail",
        )
    )
    assert event["outcome"] == "failure"


def test_console_login_failure_and_assumed_role(one: One) -> None:
    record = call(
        "ConsoleLogin", "signin.amazonaws.com", responseElements={"ConsoleLogin": "Failure"}
    )
    record["userIdentity"] = {
        "type": "AssumedRole",
        "arn": "arn:aws:sts::1:assumed-role/R/S",
        "accessKeyId": "ASIA1",
    }
    event = one(record)
    assert event["outcome"] == "failure"
    assert event["actor_user"] == "arn:aws:sts::1:assumed-role/R/S"
    assert event["actor_type"] == "AssumedRole"
    assert event["actor_key"] == "ASIA1"


def test_bedrock_converse_is_inference(one: One) -> None:
    record = call(
        "Converse",
        "bedrock.amazonaws.com",
        requestParameters={"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"},
    )
    event = one(record)
    assert event["kind"] == "inference"
    assert event["vendor"] == "aws-bedrock"
    assert event["model"] == "anthropic.claude-3-5-sonnet-20240620-v1:0"


def test_bedrock_control_plane_is_audit(one: One) -> None:
    event = one(call("DeleteModelInvocationLoggingConfiguration", "bedrock.amazonaws.com"))
    assert event["kind"] == "audit"
    assert event["vendor"] == "aws-bedrock"


def test_missing_event_id_is_derived_and_stable(run: Callable[..., Any]) -> None:
    record = call("CreateUser", requestParameters={"userName": "Bob"})
    del record["eventID"]
    events, rejected = run(CloudTrailSource(), [record, record])
    assert rejected == []
    assert events[0]["event_id"].startswith("cloudtrail:")
    assert events[0]["event_id"] == events[1]["event_id"]


def test_insight_event(one: One) -> None:
    record = {
        "eventVersion": "1.07",
        "eventTime": "2019-11-14T00:51:00Z",
        "awsRegion": "us-east-1",
        "eventID": "ins-1",
        "eventType": "AwsCloudTrailInsight",
        "insightDetails": {
            "state": "Start",
            "eventSource": "ssm.amazonaws.com",
            "eventName": "UpdateInstanceInformation",
            "insightType": "ApiCallRateInsight",
        },
        "eventCategory": "Insight",
    }
    event = one(record)
    assert event["action"] == "ApiCallRateInsight"
    assert event["endpoint"] == "ssm.amazonaws.com"
    assert event["resource"] == "UpdateInstanceInformation"
    assert event["outcome"] is None
    assert event["actor_user"] is None


def test_recognise() -> None:
    source = CloudTrailSource()
    assert source.recognise(call("CreateUser"))
    assert not source.recognise({"eventTime": "x", "eventName": "y"})
    assert CloudTrailSource.envelope_paths == ("$.Records",)


def test_redacted_guardrail_name_is_not_the_resource(one: One) -> None:
    params = {
        "guardrailIdentifier": "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123",
        "guardrailVersion": "DRAFT",
        "name": "HIDDEN_DUE_TO_SECURITY_REASONS",
        "blockedInputMessaging": "HIDDEN_DUE_TO_SECURITY_REASONS",
    }
    event = one(call("UpdateGuardrail", "bedrock.amazonaws.com", requestParameters=params))
    assert event["resource"] == "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123"
    only_redacted = one(call("CreateGuardrail", "bedrock.amazonaws.com",
                             requestParameters={"name": "HIDDEN_DUE_TO_SECURITY_REASONS"}))
    assert only_redacted["resource"] is None


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({}, 200),
        ({"errorCode": "AccessDenied"}, 403),
        ({"errorCode": "AccessDeniedException"}, 403),
        ({"errorCode": "Client.UnauthorizedOperation"}, 403),
        ({"errorCode": "NoSuchEntityException"}, 404),
        ({"errorCode": "TrailNotFoundException"}, 404),
        ({"errorCode": "ThrottlingException"}, 429),
        ({"errorCode": "Client.RequestLimitExceeded"}, 429),
        ({"errorCode": "ValidationException"}, 400),
        ({"errorCode": "Client.InvalidParameterValue"}, 400),
        ({"errorCode": "EntityAlreadyExistsException"}, 409),
        ({"errorCode": "ExpiredTokenException"}, 401),
        ({"errorCode": "InternalFailure"}, 500),
        ({"errorCode": "ServiceUnavailableException"}, 503),
        ({"errorCode": "SomeBrandNewError"}, None),
        ({"responseElements": {"ConsoleLogin": "Failure"}}, 401),
        ({"responseElements": {"ConsoleLogin": "Success"}}, 200),
    ],
)
def test_status_code(one: One, extra: dict[str, Any], status: int | None) -> None:
    assert one(call("ConsoleLogin", "signin.amazonaws.com", **extra))["status_code"] == status


def test_insight_has_no_status(one: One) -> None:
    record = call("x")
    del record["eventName"]
    record["insightDetails"] = {"insightType": "ApiCallRateInsight", "eventName": "Foo"}
    assert one(record)["status_code"] is None


def test_start_async_invoke_is_inference(one: One) -> None:
    assert one(call("StartAsyncInvoke", "bedrock.amazonaws.com"))["kind"] == "inference"
