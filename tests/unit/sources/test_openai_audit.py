"""OpenAI organisation audit log: actors, per-type details, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel.sources.base import LogSource
from sentinel.sources.openai_audit import OpenAIAuditSource

One = Callable[[Any], dict[str, Any]]


@pytest.fixture
def one(run_one: Callable[[LogSource, Any], dict[str, Any]]) -> One:
    return lambda record: run_one(OpenAIAuditSource(), record)


SESSION_EVENT = {
    "id": "audit_log-1",
    "type": "api_key.created",
    "effective_at": 1720804090,
    "project": {"id": "proj_1", "name": "Default"},
    "actor": {
        "type": "session",
        "session": {
            "user": {"id": "user-1", "email": "alice@example.com"},
            "ip_address": "198.51.100.4",
            "user_agent": "Mozilla/5.0",
            "ja3": "abc",
        },
    },
    "api_key.created": {"id": "key_abc", "data": {"scopes": ["all"]}},
}


def test_session_event_field_by_field(one: One) -> None:
    event = one(SESSION_EVENT)
    assert event["event_id"] == "audit_log-1"
    assert event["ts"] == datetime(2024, 7, 12, 17, 8, 10, tzinfo=UTC)
    assert event["kind"] == "audit"
    assert event["action"] == "api_key.created"
    assert event["outcome"] == "success"
    assert event["actor_user"] == "alice@example.com"
    assert event["actor_type"] == "session"
    assert event["actor_key"] is None
    assert event["client_ip"] == "198.51.100.4"
    assert event["user_agent"] == "Mozilla/5.0"
    assert event["vendor"] == "openai"
    assert event["resource"] == "key_abc"
    assert json.loads(event["raw"])["project"]["id"] == "proj_1"


def test_api_key_actor(one: One) -> None:
    record = {
        "id": "audit_log-2",
        "type": "project.archived",
        "effective_at": "2024-07-31T21:30:46Z",
        "actor": {
            "type": "api_key",
            "api_key": {
                "id": "key_admin",
                "type": "service_account",
                "service_account": {"id": "svc_acct_1"},
            },
        },
        "project.archived": {"id": "proj_abc"},
    }
    event = one(record)
    assert event["actor_key"] == "key_admin"
    assert event["actor_user"] == "svc_acct_1"
    assert event["actor_type"] == "api_key"
    assert event["resource"] == "proj_abc"
    assert event["ts"] == datetime(2024, 7, 31, 21, 30, 46, tzinfo=UTC)
    assert event["client_ip"] is None


def test_login_failed_is_a_failure(one: One) -> None:
    record = {
        **SESSION_EVENT,
        "type": "login.failed",
        "login.failed": {"error_code": "invalid_password"},
    }
    del record["api_key.created"]
    event = one(record)
    assert event["outcome"] == "failure"
    assert event["resource"] is None


def test_a_type_that_looks_like_a_path_is_only_a_name(run: Callable[..., Any]) -> None:
    hostile = {**SESSION_EVENT, "type": "$[["}
    events, rejected = run(OpenAIAuditSource(), [hostile, SESSION_EVENT])
    assert rejected == []
    assert [e["resource"] for e in events] == [None, "key_abc"]


def test_recognise() -> None:
    source = OpenAIAuditSource()
    assert source.recognise(SESSION_EVENT)
    assert not source.recognise({"object": "list", "data": []})
    assert not source.recognise({"id": "x", "type": "y", "effective_at": 1, "actor": "me"})
    assert OpenAIAuditSource.envelope_paths == ("$.data",)


def test_siem_export_with_underscored_details_key(one: One) -> None:
    record = {k: v for k, v in SESSION_EVENT.items() if k != "api_key.created"}
    record["api_key_created"] = {"id": "key_siem", "data": {"scopes": ["all"]}}
    event = one(record)
    assert event["action"] == "api_key.created"
    assert event["resource"] == "key_siem"


def test_dotted_details_key_wins_over_an_underscored_one(one: One) -> None:
    record = dict(SESSION_EVENT, api_key_created={"id": "key_other"})
    assert one(record)["resource"] == "key_abc"
