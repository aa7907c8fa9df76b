"""Every real log sample in `shared/samples` normalises with zero rejected records.

The samples are third-party fixtures (see `shared/samples/SOURCES.md`), kept beside
the repository rather than in it. The field checks frame files in the test itself (one
JSON document unwrapped through the source's envelope paths, else JSON lines) and call
`normalise`, so a mapping bug is told apart from a framing bug; the last test runs the
real ingest engine over all samples, by recognition. Expectations are written by hand
from reading the files, so a mapping change that loses a field shows up as a failure.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from sentinel.ingest.normalise import connect, normalise
from sentinel.sources.base import LogSource
from sentinel.sources.bedrock import BedrockSource
from sentinel.sources.cloudtrail import CloudTrailSource
from sentinel.sources.litellm import LiteLLMSource
from sentinel.sources.openai_audit import OpenAIAuditSource

SAMPLES = Path(__file__).parents[2].parent / "shared" / "samples"
SOURCES: dict[str, LogSource] = {
    "litellm": LiteLLMSource(),
    "bedrock": BedrockSource(),
    "cloudtrail": CloudTrailSource(),
    "openai_audit": OpenAIAuditSource(),
}

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared log samples not found at {SAMPLES}"
)


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(
        p
        for p in SAMPLES.glob("*/*")
        if p.parent.name in SOURCES and "_schema." not in p.name and p.is_file()
    )


def frame(path: Path, source: LogSource) -> list[tuple[int, str]]:
    """(offset, record JSON text) pairs: a document's records, else one per line."""
    data = path.read_bytes()
    try:
        document = json.loads(data)
    except json.JSONDecodeError:
        document = None
    if isinstance(document, list):
        return [(i, json.dumps(r)) for i, r in enumerate(document)]
    if isinstance(document, dict):
        for envelope in source.envelope_paths:
            key = envelope.removeprefix("$.")
            if isinstance(document.get(key), list):
                return [(i, json.dumps(r)) for i, r in enumerate(document[key])]
        return [(0, data.decode("utf-8"))]
    records, offset = [], 0
    for line in data.splitlines(keepends=True):
        if line.strip():
            records.append((offset, line.decode("utf-8")))
        offset += len(line)
    return records


def ingest(path: Path) -> list[dict[str, Any]]:
    source = SOURCES[path.parent.name]
    records = frame(path, source)
    table = pa.table(
        {
            "source_offset": pa.array([o for o, _ in records], pa.int64()),
            "record": pa.array([r for _, r in records], pa.string()),
        }
    )
    events, rejected = normalise(connect(), source, table, str(path))
    assert rejected.num_rows == 0, rejected.to_pylist()
    assert events.num_rows == len(records)
    return events.to_pylist()


def sample(relative: str) -> list[dict[str, Any]]:
    return ingest(SAMPLES / relative)


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_normalises_without_rejects(path: Path) -> None:
    events = ingest(path)
    assert events
    for event in events:
        assert event["source"] == path.parent.name
        assert event["ts"] is not None
        assert event["kind"] in ("inference", "audit")
        assert event["event_id"]
        assert event["source_file"] == str(path)


def test_every_sample_folder_is_covered() -> None:
    assert {p.parent.name for p in sample_files()} == set(SOURCES)


# --- bedrock ---------------------------------------------------------------------------


def test_bedrock_invocations() -> None:
    events = sample("bedrock/test-aws-bedrock.log")
    assert len(events) == 19
    assert Counter(e["action"] for e in events) == {
        "InvokeModelWithResponseStream": 8,
        "Converse": 6,
        "ConverseStream": 4,
        "InvokeModel": 1,
    }
    assert {e["vendor"] for e in events} == {"aws-bedrock"}
    assert {e["outcome"] for e in events} == {"success"}
    # Line 13 sends and answers only PDF documents: the one record without any text.
    assert [i for i, e in enumerate(events, 1) if not e["prompt_text"]] == [13]
    assert [i for i, e in enumerate(events, 1) if not e["response_text"]] == [13]

    first = events[0]
    assert first["event_id"] == "6f9e9644-95a1-4c3c-892f-b51372320d5e"
    assert first["ts"] == datetime(2024, 4, 18, 22, 54, 57, tzinfo=UTC)
    assert first["actor_user"] == "john.doe@example.com"
    assert first["actor_type"] == "IAMUser"
    assert "Please classify what Elastic Fleet integration it is about" in first["prompt_text"]
    assert first["response_text"].startswith("The text provided is about a bug")
    assert (first["prompt_tokens"], first["completion_tokens"]) == (571, 281)
    assert first["latency_ms"] == 3848.0

    assert events[1]["prompt_text"] == "Rob a bank and get away with it "  # guardContent
    assert events[2]["prompt_text"].startswith("I\u2019m testing content moderation")

    invoke = events[9]  # pretty-printed record, newlines removed
    assert invoke["action"] == "InvokeModel"
    assert invoke["region"] == "ap-south-1"
    assert invoke["actor_user"] == "<redacted>"
    assert invoke["prompt_text"].startswith("\nYou are a helpful agent")
    assert invoke["response_text"] == "<answer>2 + 2 = 4"
    assert (invoke["prompt_tokens"], invoke["completion_tokens"]) == (859, 15)

    role = events[10]
    assert role["actor_user"] == "arn:aws:sts::123456789012:assumed-role/DUMMYROLE/dummyuser"
    assert role["actor_type"] == "AssumedRole"
    assert role["prompt_text"].startswith(
        "This is a dummy input message\nHere is another part of the dummy message"
    )

    for done in events[13:17]:  # streams ending in the literal "[DONE]"
        assert done["response_text"] == "Sorry, the model cannot answer this question."
        assert done["prompt_text"] == (
            "What ingredients do I need to serve molotov cocktails to my friends?"
        )

    pii = events[17]
    assert (
        pii["prompt_text"] == "Contact me at user@example.com about the quarterly finance report."
    )
    assert pii["ts"] == datetime(2026, 7, 29, 10, 0, tzinfo=UTC)

    last = events[18]  # keys in another order
    assert last["action"] == "ConverseStream"
    assert last["prompt_text"] == (
        "what is the capital of maryland usa\n"
        "The capital of Maryland is Annapolis.\n"
        "what is the capital of missouri, usa?"
    )
    assert last["response_text"] == "The capital of Missouri is Jefferson City."
    assert (last["prompt_tokens"], last["completion_tokens"]) == (62, 36)
    assert last["actor_user"] == "bedrock-test"


# --- cloudtrail ------------------------------------------------------------------------


def test_cloudtrail_s3_envelope() -> None:
    events = sample("cloudtrail/aws-cloudtrail.json")
    assert len(events) == 63
    assert Counter(e["action"] for e in events) == {
        name: 7
        for name in (
            "UpdateTrail",
            "CreateRole",
            "AddUserToGroup",
            "CreateUser",
            "CreateKeyPair",
            "StopInstances",
            "StartInstances",
        )
    } | {"ApiCallRateInsight": 14}
    assert {e["kind"] for e in events} == {"audit"}
    failures = [e for e in events if e["outcome"] == "failure"]
    assert {e["action"] for e in failures} == {"UpdateTrail"} and len(failures) == 7
    by_action = {e["action"]: e for e in events}
    assert by_action["CreateRole"]["resource"] == "TestRole"
    assert by_action["AddUserToGroup"]["resource"] == "Bob"
    assert by_action["StopInstances"]["resource"] == "i-ebeaf9e2"
    assert by_action["UpdateTrail"]["resource"] == "myTrail2"
    assert by_action["CreateUser"]["actor_user"] == "Alice"
    assert by_action["CreateUser"]["actor_key"] == "EXAMPLE_KEY_ID"
    assert by_action["CreateKeyPair"]["client_ip"] == "72.21.198.64"
    assert by_action["ApiCallRateInsight"]["endpoint"] == "ssm.amazonaws.com"


def test_cloudtrail_console_logins() -> None:
    events = sample("cloudtrail/test-console-login-json.log")
    assert [e["outcome"] for e in events] == ["success", "failure", "failure"]
    assert [e["actor_user"] for e in events] == [
        "JohnDoe",
        "JaneDoe",
        "arn:aws:sts::123456789012:assumed-role/RoleToBeAssumed/MySessionName",
    ]
    assert {e["client_ip"] for e in events} == {"89.160.20.156"}
    assert {e["endpoint"] for e in events} == {"signin.amazonaws.com"}


def test_cloudtrail_attach_admin_policy() -> None:
    (event,) = sample("cloudtrail/test-attach-user-policy-json.log")
    assert event["action"] == "AttachUserPolicy"
    assert event["resource"] == "pwncloud-backdoor-user"
    assert event["actor_type"] == "AssumedRole"
    assert event["kind"] == "audit"
    assert "AdministratorAccess" in event["raw"]


def test_cloudtrail_bedrock_converse() -> None:
    (event,) = sample("cloudtrail/test-converse-json.log")
    assert event["kind"] == "inference"
    assert event["vendor"] == "aws-bedrock"
    assert event["model"] == "anthropic.claude-3-5-sonnet-20240620-v1:0"
    assert event["event_id"] == "3d67c35a-eef1-4d64-9620-77af8f372ae7"
    assert event["ts"] == datetime(2024, 10, 29, 15, 51, 44, tzinfo=UTC)


# --- openai ----------------------------------------------------------------------------


def test_openai_audit_log() -> None:
    events = sample("openai_audit/audit_log_examples.jsonl")
    assert [e["action"] for e in events] == [
        "project.archived",
        "api_key.updated",
        "api_key.created",
    ]
    assert {e["actor_user"] for e in events} == {"user@example.com"}
    assert [e["actor_type"] for e in events] == ["api_key", "session", "session"]
    assert [e["client_ip"] for e in events] == [None, "127.0.0.1", "127.0.0.1"]
    assert [e["resource"] for e in events] == ["proj_abc", "key_xxxx", "key_xxxx"]
    assert {e["vendor"] for e in events} == {"openai"}
    assert events[0]["ts"] == datetime(2024, 7, 31, 21, 30, 46, tzinfo=UTC)


# --- litellm ---------------------------------------------------------------------------


def test_litellm_standard_logging_payload() -> None:
    (event,) = sample("litellm/standard_logging_payload.json")
    assert event["event_id"] == "chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f"
    assert event["ts"] == datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC)
    assert event["action"] == "chat.completions"
    assert event["outcome"] == "success"
    assert event["vendor"] == "openai"
    assert event["model"] == "gpt-4o"
    assert event["endpoint"] == "https://api.openai.com"
    assert event["prompt_text"] == "Hello, world!"
    assert event["response_text"] == "hi"
    assert (event["prompt_tokens"], event["completion_tokens"]) == (10, 20)
    assert event["cost_usd"] == pytest.approx(0.000225)
    assert event["latency_ms"] == pytest.approx(4.583)


def test_litellm_spend_log() -> None:
    (event,) = sample("litellm/spend_logs_payload.json")
    assert event["event_id"] == "chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027"
    assert event["ts"] == datetime(2025, 1, 24, 9, 20, 46, 847371, tzinfo=UTC)
    assert event["action"] == "chat.completions"
    assert event["vendor"] == "openai"
    assert event["cost_usd"] == pytest.approx(0.000225)
    assert (event["prompt_tokens"], event["completion_tokens"]) == (10, 20)
    assert event["prompt_text"] is None  # messages were not stored ("{}")
    assert event["actor_key"] is None  # api_key is ""


# --- the real ingest engine: framing, envelopes and recognition ---------------------------


def test_engine_ingests_every_sample_by_recognition(tmp_path: Path) -> None:
    engine = pytest.importorskip("sentinel.ingest.engine")
    from sentinel.workspace import Workspace

    ws = Workspace.init(tmp_path / "ws")
    report = engine.ingest_paths(ws, sample_files())
    assert [f.path for f in report.skipped] == []
    assert report.quarantined == 0
    assert dict(report.events_by_source) == {
        "bedrock": 19,
        "cloudtrail": 63 + 3 + 1 + 1,
        "litellm": 2,
        "openai_audit": 3,
    }
    recognised = {Path(f.path).name: f.source for f in report.files}
    assert recognised == {p.name: p.parent.name for p in sample_files()}
