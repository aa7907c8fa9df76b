"""Anthropic Compliance API activities: actors, resources, failures, quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.sources.anthropic import AnthropicActivitySource
from sentinel.sources.base import LogSource

One = Callable[[Any], dict[str, Any]]
DATA = Path(__file__).parents[2] / "data" / "sources"


@pytest.fixture
def one(run_one: Callable[[LogSource, Any], dict[str, Any]]) -> One:
    return lambda record: run_one(AnthropicActivitySource(), record)


def _data(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines()]


def test_user_actor_field_by_field(one: One) -> None:
    event = one(_data("anthropic_activity.jsonl")[0])
    assert event["event_id"] == "activity_01A1"
    assert event["ts"] == datetime(2026, 4, 10, 8, 9, 10, tzinfo=UTC)
    assert event["kind"] == "audit"
    assert event["action"] == "claude_chat_created"
    assert event["outcome"] == "success"
    assert event["status_code"] is None
    assert event["actor_user"] == "ana.silva@northwind.example"
    assert event["actor_key"] is None
    assert event["actor_type"] == "user_actor"
    assert event["client_ip"] == "198.51.100.23"
    assert event["user_agent"].startswith("Mozilla/5.0 (Macintosh")
    assert event["vendor"] == "anthropic"
    assert event["resource"] == "claude_chat_01XyDMpzjS89pFZXqSFUBDr6"
    assert event["prompt_text"] is None and event["model"] is None
    assert json.loads(event["raw"])["claude_project_id"] == "claude_proj_01KGp4eZNug9ri4kE35RSppq"


@pytest.mark.parametrize(
    ("index", "action", "actor_user", "actor_key", "client_ip", "resource", "outcome"),
    [
        (1, "admin_api_key_created", "ana.silva@northwind.example", None, "198.51.100.23",
         "apikey_01AdminKeyQ9wE7rT5yU3iO1p", "success"),
        (2, "org_ip_restriction_deleted", None, "apikey_01AdminKeyQ9wE7rT5yU3iO1p",
         "203.0.113.77", "org_01Wv6QeBcDfGhJkLmNpQrSt8", "success"),
        (3, "sso_login_failed", "ana.silva@northwind.example", None, "203.0.113.77", None,
         "failure"),
        (4, "mcp_server_created", None, "apikey_01ApiKeyZ8xC6vB4nM2aS0dF", "192.0.2.10",
         "mcpsrv_01Q2w3E4r5T6y7U8i9O0pAs", "success"),
        (5, "claude_artifact_published", "ana.silva@northwind.example", None, "198.51.100.23",
         "claude_artifact_01ZxCvBnMaSdFgHjKlQwErTy", "success"),
        (6, "org_user_deleted", "directory_01H7xJ", None, None,
         "user_01DeletedUserR4tY6uI8oP0a", "success"),
        (7, "platform_spend_limit_deleted", "spend-limit-enforcer", None, None,
         "wrkspc_01Ws9dF7gH5jK3lZ1xC", "success"),
        (8, "primary_owner_transferred", "support@anthropic.com", None, None,
         "user_01NewOwnerZ2xC4vB6nM8aS0d", "success"),
    ],
)
def test_actors_and_resources(
    one: One, index: int, action: str, actor_user: str | None, actor_key: str | None,
    client_ip: str | None, resource: str, outcome: str,
) -> None:
    event = one(_data("anthropic_activity.jsonl")[index])
    assert (event["action"], event["actor_user"], event["actor_key"], event["client_ip"],
            event["resource"], event["outcome"]) == (
        action, actor_user, actor_key, client_ip, resource, outcome)


@pytest.mark.parametrize(
    ("activity_type", "outcome"),
    [
        ("magic_link_login_failed", "failure"),
        ("claude_chat_access_failed", "failure"),
        ("inference_hooks_request_denied", "failure"),
        ("org_directory_resync_failed", "failure"),
        ("sso_login_succeeded", "success"),
        ("claude_chat_deletion_failed_later", "success"),
    ],
)
def test_outcome(one: One, activity_type: str, outcome: str) -> None:
    record = dict(_data("anthropic_activity.jsonl")[0], type=activity_type)
    assert one(record)["outcome"] == outcome


def test_status_code_when_present(one: One) -> None:
    record = dict(_data("anthropic_activity.jsonl")[0], status_code=403)
    assert one(record)["status_code"] == 403


def test_bad_records_are_quarantined_with_a_reason(run: Callable[..., Any]) -> None:
    lines = (DATA / "anthropic_activity_bad.jsonl").read_text().splitlines()
    events, rejected = run(AnthropicActivitySource(), lines)
    assert [e["event_id"] for e in events] == ["activity_ok"]
    reasons = {r["source_offset"]: r["reason"] for r in rejected}
    assert reasons[0] == "activity without a type"
    assert reasons[1] == "no valid timestamp"
    assert reasons[2] == "invalid JSON"
    assert "array" in reasons[3]


def test_hostile_type_is_data(one: One) -> None:
    record = dict(_data("anthropic_activity.jsonl")[0], type="x'; DROP TABLE events; --")
    assert one(record)["action"] == "x'; DROP TABLE events; --"


def test_recognise() -> None:
    source = AnthropicActivitySource()
    records = _data("anthropic_activity.jsonl")
    assert all(source.recognise(r) for r in records)
    page = json.loads((DATA / "anthropic_activity_page.json").read_text())
    assert all(source.recognise(r) for r in page["data"])
    assert not source.recognise(dict(records[0], actor="someone"))
    assert not source.recognise(dict(records[0], actor={"type": "session"}))
    openai = {"id": "x", "type": "api_key.created", "effective_at": 1, "actor": {"type": "session"}}
    assert not source.recognise(openai)
