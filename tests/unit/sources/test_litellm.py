"""LiteLLM: StandardLoggingPayload, SpendLogs (string-encoded fields) and AuditLog rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel.sources.base import LogSource
from sentinel.sources.litellm import LiteLLMSource

One = Callable[[Any], dict[str, Any]]


@pytest.fixture
def one(run_one: Callable[[LogSource, Any], dict[str, Any]]) -> One:
    return lambda record: run_one(LiteLLMSource(), record)


STANDARD = {
    "id": "chatcmpl-1",
    "call_type": "acompletion",
    "status": "success",
    "custom_llm_provider": "openai",
    "startTime": "2025-01-24T09:20:46.000Z",
    "endTime": "2025-01-24T09:20:46.250Z",
    "response_time": 0.9,
    "model": "gpt-4o",
    "metadata": {
        "user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
        "user_api_key_alias": "ci-bot",
        "user_api_key_team_alias": "data-science",
        "user_api_key_team_id": "team-1",
        "user_api_key_user_id": "u-1",
        "user_api_key_user_email": "alice@example.com",
        "requester_ip_address": "10.0.0.5",
        "user_agent": "curl/8.0",
    },
    "response_cost": 0.5,
    "prompt_tokens": 10,
    "completion_tokens": 20,
    "end_user": "customer-42",
    "api_base": "https://api.openai.com",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hello"},
                {"type": "image_url", "image_url": {"url": "x"}},
            ],
        },
    ],
    "response": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]},
    "some_future_field": {"kept": True},
}


def test_standard_logging_payload_field_by_field(one: One) -> None:
    event = one(STANDARD)
    assert event["event_id"] == "chatcmpl-1"
    assert event["ts"] == datetime(2025, 1, 24, 9, 20, 46, tzinfo=UTC)
    assert event["source"] == "litellm"
    assert event["kind"] == "inference"
    assert event["action"] == "chat.completions"
    assert event["outcome"] == "success"
    assert event["actor_user"] == "alice@example.com"
    assert event["actor_key"] == "ci-bot"
    assert event["actor_team"] == "data-science"
    assert event["client_ip"] == "10.0.0.5"
    assert event["user_agent"] == "curl/8.0"
    assert event["vendor"] == "openai"
    assert event["model"] == "gpt-4o"
    assert event["endpoint"] == "https://api.openai.com"
    assert event["prompt_text"] == "Be brief.\nHello"
    assert event["response_text"] == "hi"
    assert event["prompt_tokens"] == 10
    assert event["completion_tokens"] == 20
    assert event["cost_usd"] == 0.5
    assert event["latency_ms"] == 250.0
    assert event["resource"] is None
    assert json.loads(event["raw"])["some_future_field"] == {"kept": True}


def test_keys_in_any_order_give_the_same_event(one: One) -> None:
    reversed_record = dict(reversed(list(STANDARD.items())))
    a, b = one(STANDARD), one(reversed_record)
    for column in ("event_id", "ts", "action", "actor_user", "prompt_text", "cost_usd"):
        assert a[column] == b[column]


SPEND_LOG = {
    "request_id": "chatcmpl-2",
    "call_type": "aembedding",
    "api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
    "startTime": "2025-01-24 09:20:46.847371",
    "endTime": "2025-01-24 09:20:46.851954",
    "model": "text-embedding-3-small",
    "user": "",
    "team_id": "team-7",
    "metadata": json.dumps(
        {
            "user_api_key_alias": None,
            "requester_ip_address": "192.0.2.1",
            "usage_object": {"prompt_tokens": 3},
        }
    ),
    "spend": 0.000225,
    "end_user": "customer-9",
    "requester_ip_address": None,
    "custom_llm_provider": "",
    "api_base": "",
    "messages": json.dumps([{"role": "user", "content": "secret text"}]),
    "response": json.dumps({"choices": [{"message": {"content": [{"text": "ok"}]}}]}),
    "proxy_server_request": json.dumps({"headers": {"user-agent": "openai-python/1.0"}}),
    "status": "success",
}


def test_spend_log_decodes_string_encoded_fields(one: One) -> None:
    event = one(SPEND_LOG)
    assert event["event_id"] == "chatcmpl-2"
    assert event["ts"] == datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC)
    assert event["action"] == "embeddings"
    assert event["actor_user"] == "customer-9"  # no authenticated identity: end_user
    assert event["actor_key"] == SPEND_LOG["api_key"]  # already a hash: kept
    assert event["actor_team"] == "team-7"
    assert event["client_ip"] == "192.0.2.1"  # from the decoded metadata
    assert event["user_agent"] == "openai-python/1.0"
    assert event["vendor"] is None  # '' is not a vendor
    assert event["endpoint"] is None
    assert event["prompt_text"] == "secret text"
    assert event["response_text"] == "ok"
    assert event["prompt_tokens"] == 3  # from metadata.usage_object
    assert event["cost_usd"] == pytest.approx(0.000225)
    assert event["latency_ms"] == pytest.approx(4.583)


def test_empty_encoded_objects_give_no_text(one: One) -> None:
    event = one({**SPEND_LOG, "messages": "{}", "response": "{}", "metadata": "{}"})
    assert event["prompt_text"] is None
    assert event["response_text"] is None


def test_a_raw_key_is_never_stored(one: One) -> None:
    raw_key = "sk-1234567890abcdef"
    event = one({**SPEND_LOG, "api_key": raw_key})
    assert event["actor_key"] == hashlib.sha256(raw_key.encode()).hexdigest()
    assert raw_key not in (event["actor_key"] or "")


def test_failure_with_error_code(one: One) -> None:
    record = {
        **STANDARD,
        "status": "failure",
        "error_str": "RateLimitError",
        "error_information": {"error_code": "429", "error_class": "RateLimitError"},
        "response": {},
    }
    event = one(record)
    assert event["outcome"] == "failure"
    assert event["status_code"] == 429
    assert event["response_text"] is None


def test_epoch_start_time_and_response_time_latency(one: One) -> None:
    record = {**STANDARD, "startTime": 1737710446.5, "response_time": 0.75}
    del record["endTime"]
    event = one(record)
    assert event["ts"] == datetime(2025, 1, 24, 9, 20, 46, 500000, tzinfo=UTC)
    assert event["latency_ms"] == 750.0


@pytest.mark.parametrize(
    ("call_type", "action"),
    [
        ("completion", "chat.completions"),
        ("atext_completion", "completions"),
        ("aimage_generation", "images.generations"),
        ("aresponses", "responses"),
        ("something_new", "something_new"),
    ],
)
def test_call_type_mapping(one: One, call_type: str, action: str) -> None:
    assert one({**STANDARD, "call_type": call_type})["action"] == action


def test_plain_string_prompt(one: One) -> None:
    event = one({**STANDARD, "messages": "Complete this sentence"})
    assert event["prompt_text"] == "Complete this sentence"


AUDIT = {
    "id": "6b1c2c3e-0000-4000-8000-000000000001",
    "updated_at": "2025-02-01T12:00:00Z",
    "changed_by": "admin@example.com",
    "changed_by_api_key": "sk-admin-raw-key",
    "action": "created",
    "table_name": "LiteLLM_VerificationToken",
    "object_id": "token-hash-123",
    "before_value": None,
    "updated_values": json.dumps({"key_alias": "new-key"}),
}


def test_audit_log_record(one: One) -> None:
    event = one(AUDIT)
    assert event["kind"] == "audit"
    assert event["event_id"] == AUDIT["id"]
    assert event["ts"] == datetime(2025, 2, 1, 12, 0, tzinfo=UTC)
    assert event["action"] == "key.created"
    assert event["outcome"] == "success"
    assert event["actor_user"] == "admin@example.com"
    assert event["actor_key"] == hashlib.sha256(b"sk-admin-raw-key").hexdigest()
    assert event["resource"] == "token-hash-123"
    assert event["model"] is None and event["prompt_text"] is None


def test_audit_log_unknown_table_and_epoch_time(one: One) -> None:
    event = one({**AUDIT, "table_name": "LiteLLM_Budget", "updated_at": 1738411200})
    assert event["action"] == "LiteLLM_Budget.created"
    assert event["ts"] == datetime(2025, 2, 1, 12, 0, tzinfo=UTC)


def test_record_without_time_is_rejected(run: Callable[..., Any]) -> None:
    record = {k: v for k, v in STANDARD.items() if k not in ("startTime", "endTime")}
    events, rejected = run(LiteLLMSource(), [record, STANDARD])
    assert len(events) == 1
    assert [r["reason"] for r in rejected] == ["no valid timestamp"]


def test_recognise() -> None:
    source = LiteLLMSource()
    assert source.recognise(STANDARD)
    assert source.recognise(SPEND_LOG)
    assert source.recognise(AUDIT)
    assert not source.recognise({"call_type": "acompletion"})
    assert not source.recognise({"eventVersion": "1.08", "eventTime": "x", "eventSource": "y"})
