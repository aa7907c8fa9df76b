"""The config-mapped JSON-lines source: mapping, list joining, validation, matching."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel.exceptions import ConfigError
from sentinel.sources.jsonl import JsonlSource

FIELDS = {
    "ts": "$.created_at",
    "event_id": "$.request_id",
    "actor_user": "$.who.email",
    "model": "$.model",
    "prompt_text": "$.request.messages[*].content",
    "response_text": "$.response.text",
    "prompt_tokens": "$.usage.input",
    "cost_usd": "$.usage.cost",
}

RECORD = {
    "created_at": "2024-01-02 03:04:05.123456",
    "request_id": "r-1",
    "who": {"email": "bob@example.com"},
    "model": "acme-large",
    "request": {"messages": [{"content": "first"}, {"content": "second"}]},
    "response": {"text": "answer"},
    "usage": {"input": "42", "cost": 0.01},
    "extra": [1, 2, 3],
}


def test_mapped_fields(run: Callable[..., Any]) -> None:
    source = JsonlSource("acme", FIELDS, defaults={"vendor": "acme", "kind": "inference"})
    events, rejected = run(source, [RECORD])
    assert rejected == []
    (event,) = events
    assert event["source"] == "acme"
    assert event["event_id"] == "r-1"
    assert event["ts"] == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert event["actor_user"] == "bob@example.com"
    assert event["model"] == "acme-large"
    assert event["prompt_text"] == "first\nsecond"
    assert event["response_text"] == "answer"
    assert event["prompt_tokens"] == 42
    assert event["cost_usd"] == 0.01
    assert event["vendor"] == "acme"
    assert event["kind"] == "inference"
    assert event["action"] is None


def test_defaults_fill_only_missing_values(run: Callable[..., Any]) -> None:
    source = JsonlSource("acme", FIELDS, defaults={"model": "unknown"})
    without_model = {k: v for k, v in RECORD.items() if k != "model"}
    events, _ = run(source, [RECORD, without_model])
    assert [e["model"] for e in events] == ["acme-large", "unknown"]


def test_array_value_is_joined_and_epoch_time(run: Callable[..., Any]) -> None:
    source = JsonlSource("acme", {"ts": "$.t", "resource": "$.tags"})
    events, rejected = run(source, [{"t": 1704164645, "tags": ["a", "b"]}])
    assert rejected == []
    assert events[0]["resource"] == "a\nb"
    assert events[0]["ts"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert events[0]["event_id"].startswith("acme:")


def test_missing_time_is_rejected(run: Callable[..., Any]) -> None:
    events, rejected = run(JsonlSource("acme", {"ts": "$.t"}), [{"t": "not a time"}])
    assert events == []
    assert rejected[0]["reason"] == "no valid timestamp"


def test_paths_are_parameters_not_sql() -> None:
    source = JsonlSource("acme", {"ts": "$.t", "model": '$."x\'); DROP TABLE y; --"'})
    assert "DROP" not in source.select_list()
    assert "$.t" in source.parameters()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"ts": "created_at"}, "paths start with '$'"),
        ({"ts": "$.t", "promt_text": "$.p"}, "did you mean 'prompt_text'"),
        ({"model": "$.m"}, "`ts` must be mapped"),
        ({"ts": "$[["}, "invalid JSON path"),
        ({"ts": "$.t", "source_offset": "$.o"}, "unknown column"),
    ],
)
def test_invalid_configuration(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("$", r"\$").replace("[", r"\[")):
        JsonlSource("acme", fields)


def test_invalid_default_column() -> None:
    with pytest.raises(ConfigError, match="did you mean 'vendor'"):
        JsonlSource("acme", {"ts": "$.t"}, defaults={"vendr": "acme"})


def test_recognise_needs_a_match_path() -> None:
    assert not JsonlSource("acme", FIELDS).recognise(RECORD)
    matching = JsonlSource("acme", FIELDS, match="$.who.email")
    assert matching.recognise(RECORD)
    assert not matching.recognise({"created_at": "x"})
    with pytest.raises(ConfigError):
        JsonlSource("acme", FIELDS, match="who")
