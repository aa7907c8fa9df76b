"""Bedrock invocation logs: every request/response body shape, streaming, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.sources.base import LogSource
from sentinel.sources.bedrock import BedrockSource

One = Callable[[Any], dict[str, Any]]


@pytest.fixture
def one(run_one: Callable[[LogSource, Any], dict[str, Any]]) -> One:
    return lambda record: run_one(BedrockSource(), record)


def invocation(operation: str, body_in: Any, body_out: Any, **extra: Any) -> dict[str, Any]:
    return {
        "schemaType": "ModelInvocationLog",
        "schemaVersion": "1.0",
        "timestamp": "2024-04-18T22:54:57Z",
        "accountId": "111111111111",
        "identity": {"arn": "arn:aws:iam::111111111111:user/john.doe@example.com"},
        "region": "us-east-1",
        "requestId": "req-1",
        "operation": operation,
        "modelId": "anthropic.claude-3-haiku-20240307-v1:0",
        "input": {
            "inputContentType": "application/json",
            "inputBodyJson": body_in,
            "inputTokenCount": 12,
        },
        "output": {
            "outputContentType": "application/json",
            "outputBodyJson": body_out,
            "outputTokenCount": 34,
        },
        **extra,
    }


def test_anthropic_messages_field_by_field(one: One) -> None:
    record = invocation(
        "InvokeModel",
        {
            "anthropic_version": "bedrock-2023-05-31",
            "system": "You are terse.",
            "messages": [
                {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": [{"type": "text", "text": "4"}]},
                {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
            ],
        },
        {"id": "msg_1", "content": [{"type": "text", "text": "6"}], "usage": {}},
        unknownTopLevel="kept",
    )
    event = one(record)
    assert event["event_id"] == "req-1"
    assert event["ts"] == datetime(2024, 4, 18, 22, 54, 57, tzinfo=UTC)
    assert event["kind"] == "inference"
    assert event["action"] == "InvokeModel"
    assert event["outcome"] == "success"
    assert event["actor_user"] == "john.doe@example.com"
    assert event["actor_type"] == "IAMUser"
    assert event["vendor"] == "aws-bedrock"
    assert event["model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert event["region"] == "us-east-1"
    assert event["prompt_text"] == "You are terse.\nWhat is 2+2?\n4\nAnd 3+3?"
    assert event["response_text"] == "6"
    assert event["prompt_tokens"] == 12
    assert event["completion_tokens"] == 34
    assert event["actor_key"] is None and event["cost_usd"] is None
    assert json.loads(event["raw"])["unknownTopLevel"] == "kept"


@pytest.mark.parametrize(
    ("body_in", "body_out", "prompt", "response"),
    [
        pytest.param(
            {"prompt": "\n\nHuman: hi\n\nAssistant:"},
            {"completion": " hello"},
            "\n\nHuman: hi\n\nAssistant:",
            " hello",
            id="claude-v2-text",
        ),
        pytest.param(
            {"inputText": "Summarise"},
            {"results": [{"outputText": "Short."}, {"outputText": "Shorter."}]},
            "Summarise",
            "Short.\nShorter.",
            id="titan",
        ),
        pytest.param(
            {"prompt": "[INST] hi [/INST]"},
            {"generation": "Hello!"},
            "[INST] hi [/INST]",
            "Hello!",
            id="llama",
        ),
        pytest.param(
            {"prompt": "<s>[INST] hi"},
            {"outputs": [{"text": "Bonjour"}]},
            "<s>[INST] hi",
            "Bonjour",
            id="mistral",
        ),
        pytest.param(
            {
                "system": [{"text": "Be safe."}],
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"text": "first"},
                            {
                                "guardContent": {
                                    "text": {"text": "guarded", "qualifiers": ["query"]}
                                }
                            },
                        ],
                    }
                ],
            },
            {
                "output": {
                    "message": {"role": "assistant", "content": [{"text": "a"}, {"text": "b"}]}
                },
                "metrics": {"latencyMs": 271},
            },
            "Be safe.\nfirst\nguarded",
            "a\nb",
            id="converse",
        ),
    ],
)
def test_body_shapes(one: One, body_in: Any, body_out: Any, prompt: str, response: str) -> None:
    event = one(invocation("Converse", body_in, body_out))
    assert event["prompt_text"] == prompt
    assert event["response_text"] == response


def test_converse_latency(one: One) -> None:
    record = invocation(
        "Converse",
        {"messages": []},
        {"output": {"message": {"content": []}}, "metrics": {"latencyMs": 271}},
    )
    event = one(record)
    assert event["latency_ms"] == 271.0
    assert event["prompt_text"] is None and event["response_text"] is None


def test_stream_array_ending_in_done(one: One) -> None:
    stream = [
        {"type": "message_start", "message": {"id": "m", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"invocationLatency": 3848}},
        "[DONE]",
    ]
    event = one(
        invocation(
            "InvokeModelWithResponseStream",
            {"messages": [{"role": "user", "content": "hi"}]},
            stream,
        )
    )
    assert event["response_text"] == "Hello"
    assert event["latency_ms"] == 3848.0


def test_converse_stream_events(one: One) -> None:
    stream = [
        {"messageStart": {"role": "assistant"}},
        {"contentBlockDelta": {"delta": {"text": "Jeff"}, "contentBlockIndex": 0}},
        {"contentBlockDelta": {"delta": {"text": "erson City"}, "contentBlockIndex": 0}},
        {"messageStop": {"stopReason": "end_turn"}},
    ]
    event = one(invocation("ConverseStream", {"messages": []}, stream))
    assert event["response_text"] == "Jefferson City"


def test_error_is_a_failure(one: One) -> None:
    record = invocation("InvokeModel", {"inputText": "x"}, None, errorCode="ThrottlingException")
    del record["output"]
    event = one(record)
    assert event["outcome"] == "failure"
    assert event["response_text"] is None
    assert event["completion_tokens"] is None


@pytest.mark.parametrize(
    ("arn", "user", "actor_type"),
    [
        ("arn:aws:iam::1:user/path/bob", "bob", "IAMUser"),
        (
            "arn:aws:sts::1:assumed-role/Role/session",
            "arn:aws:sts::1:assumed-role/Role/session",
            "AssumedRole",
        ),
        ("arn:aws:iam::1:root", "arn:aws:iam::1:root", "Root"),
        ("<redacted>", "<redacted>", None),
    ],
)
def test_identity(one: One, arn: str, user: str, actor_type: str | None) -> None:
    record = invocation("InvokeModel", {"inputText": "x"}, {"results": []})
    record["identity"] = {"arn": arn}
    event = one(record)
    assert event["actor_user"] == user
    assert event["actor_type"] == actor_type


def test_keys_in_any_order_and_epoch_timestamp(one: One) -> None:
    record = invocation("InvokeModel", {"inputText": "x"}, {"results": []})
    record["timestamp"] = 1713480897
    event = one(dict(reversed(list(record.items()))))
    assert event["ts"] == datetime(2024, 4, 18, 22, 54, 57, tzinfo=UTC)
    assert event["prompt_text"] == "x"


def test_recognise() -> None:
    source = BedrockSource()
    assert source.recognise(invocation("Converse", {}, {}))
    without_schema = invocation("Converse", {}, {})
    del without_schema["schemaType"]
    assert source.recognise(without_schema)
    assert not source.recognise({"requestId": "x", "operation": "y"})


def test_messages_without_text_leave_no_blank_lines(one: One) -> None:
    document = {"document": {"format": "pdf", "name": "spec", "source": {"bytes": "..."}}}
    body = {
        "messages": [
            {"role": "user", "content": [document]},
            {"role": "user", "content": [{"text": "Summarise it"}]},
        ]
    }
    event = one(invocation("Converse", body, {"output": {"message": {"content": [document]}}}))
    assert event["prompt_text"] == "Summarise it"
    assert event["response_text"] is None


SAMPLES = Path(__file__).parents[3].parent / "shared" / "samples"
SAMPLE = SAMPLES / "bedrock" / "test-aws-bedrock.log"


@pytest.mark.parametrize(
    ("body_out", "prompt_tokens", "completion_tokens"),
    [
        pytest.param({"content": [], "usage": {"input_tokens": 859, "output_tokens": 15}},
                     859, 15, id="anthropic"),
        pytest.param({"output": {"message": {"content": []}},
                      "usage": {"inputTokens": 37, "outputTokens": 62, "totalTokens": 99}},
                     37, 62, id="converse"),
        pytest.param({"inputTextTokenCount": 5, "results": [{"tokenCount": 7, "outputText": "a"},
                                                            {"tokenCount": 3, "outputText": "b"}]},
                     5, 10, id="titan"),
        pytest.param({"generation": "x", "prompt_token_count": 11, "generation_token_count": 4},
                     11, 4, id="llama"),
        pytest.param([{"type": "message_start",
                       "message": {"usage": {"input_tokens": 571, "output_tokens": 1}}},
                      {"type": "message_delta", "usage": {"output_tokens": 281}}, "[DONE]"],
                     571, 281, id="anthropic-stream"),
        pytest.param([{"metadata": {"usage": {"inputTokens": 62, "outputTokens": 36}}}],
                     62, 36, id="converse-stream"),
        pytest.param([{"outputText": "a", "amazon-bedrock-invocationMetrics":
                       {"inputTokenCount": 9, "outputTokenCount": 2}}], 9, 2, id="titan-stream"),
        pytest.param({"content": []}, None, None, id="no-usage"),
    ],
)
def test_tokens_from_the_body_when_counts_are_absent(
    one: One, body_out: Any, prompt_tokens: int | None, completion_tokens: int | None
) -> None:
    record = invocation("InvokeModel", {"inputText": "x"}, body_out)
    del record["input"]["inputTokenCount"], record["output"]["outputTokenCount"]
    event = one(record)
    assert (event["prompt_tokens"], event["completion_tokens"]) == (
        prompt_tokens,
        completion_tokens,
    )


def test_explicit_counts_win_over_the_body(one: One) -> None:
    body = {"content": [], "usage": {"input_tokens": 1, "output_tokens": 2}}
    event = one(invocation("InvokeModel", {"inputText": "x"}, body))
    assert (event["prompt_tokens"], event["completion_tokens"]) == (12, 34)


@pytest.mark.skipif(not SAMPLE.is_file(), reason=f"shared sample not found at {SAMPLE}")
def test_real_samples_give_the_same_tokens_from_their_bodies(
    run: Callable[..., Any],
) -> None:
    records = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    stripped = json.loads(json.dumps(records))
    for record in stripped:
        record["input"].pop("inputTokenCount", None)
        record["output"].pop("outputTokenCount", None)
    source = BedrockSource()
    with_counts, rejected = run(source, records)
    from_bodies, rejected_too = run(source, stripped)
    assert rejected == rejected_too == []
    expected = [(e["prompt_tokens"], e["completion_tokens"]) for e in with_counts]
    assert [(e["prompt_tokens"], e["completion_tokens"]) for e in from_bodies] == expected
    assert all(e["status_code"] == 200 and e["kind"] == "inference" for e in with_counts)


@pytest.mark.parametrize(
    ("operation", "kind"),
    [
        ("InvokeModel", "inference"),
        ("InvokeModelWithResponseStream", "inference"),
        ("Converse", "inference"),
        ("ConverseStream", "inference"),
        ("ListModels", "audit"),
        ("GetModelInvocationLoggingConfiguration", "audit"),
        (None, "inference"),
    ],
)
def test_kind_by_operation(one: One, operation: str | None, kind: str) -> None:
    record = invocation("x", {"inputText": "x"}, {"results": []})
    record["operation"] = operation
    assert one(record)["kind"] == kind


@pytest.mark.parametrize(
    ("error_code", "body_out", "status", "outcome"),
    [
        (None, {"results": []}, 200, "success"),
        ("ThrottlingException", None, 429, "failure"),
        ("AccessDeniedException", None, 403, "failure"),
        ("ValidationException", None, 400, "failure"),
        ("ResourceNotFoundException", None, 404, "failure"),
        ("ModelTimeoutException", None, 408, "failure"),
        ("InternalServerException", None, 500, "failure"),
        ("ServiceUnavailableException", None, 503, "failure"),
        ("ModelErrorException", None, 424, "failure"),
        ("SomethingNew", None, None, "failure"),
        (None, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
         529, "failure"),
        (None, {"type": "error", "error": {"type": "rate_limit_error"}}, 429, "failure"),
        (None, [{"contentBlockDelta": {"delta": {"text": "a"}}},
                {"throttlingException": {"message": "slow down"}}], 429, "failure"),
        (None, [{"modelStreamErrorException": {"message": "x", "originalStatusCode": 500}}],
         424, "failure"),
        ("ValidationException", {"type": "error", "error": {"type": "invalid_request_error"}},
         400, "failure"),
    ],
)
def test_status_code_and_outcome(
    one: One, error_code: str | None, body_out: Any, status: int | None, outcome: str
) -> None:
    extra = {"errorCode": error_code} if error_code else {}
    event = one(invocation("InvokeModel", {"inputText": "x"}, body_out, **extra))
    assert (event["status_code"], event["outcome"]) == (status, outcome)
