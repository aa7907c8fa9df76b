"""One connection normalises batch after batch: each result is that batch's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa

from sentinel.ingest.normalise import connect, normalise
from sentinel.sources.litellm import LiteLLMSource
from sentinel.sources.registry import get_source
from tests.conftest import litellm_line


def _batch(texts: list[str]) -> pa.Table:
    return pa.table(
        {
            "source_offset": pa.array(range(len(texts)), pa.int64()),
            "record": pa.array(texts, pa.string()),
        }
    )


def test_batches_on_one_connection_do_not_leak_into_each_other() -> None:
    con = connect()
    litellm = LiteLLMSource()
    first_at, second_at = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC)
    events, _ = normalise(con, litellm, _batch([litellm_line(i) for i in range(3)]), "a", first_at)
    assert events.num_rows == 3
    assert set(events.column("source_file").to_pylist()) == {"a"}
    assert set(events.column("ingested_at").to_pylist()) == {first_at}
    # A second batch (with a bad line: the validating query) and a second source.
    texts = [litellm_line(i) for i in range(10, 15)] + ["{cut"]
    events, rejected = normalise(con, litellm, _batch(texts), "b", second_at)
    assert events.column("event_id").to_pylist() == [
        f"chatcmpl-{i:08d}" for i in range(10, 15)
    ]
    assert set(events.column("source_file").to_pylist()) == {"b"}
    assert set(events.column("ingested_at").to_pylist()) == {second_at}
    assert rejected.column("reason").to_pylist() == ["invalid JSON"]
    cloudtrail = get_source("cloudtrail")
    record = {"eventTime": "2025-01-01T00:00:00Z", "eventName": "GetObject",
              "eventSource": "s3.amazonaws.com", "eventID": "e1"}  # fmt: skip
    events, _ = normalise(con, cloudtrail, _batch([json.dumps(record)]), None)
    assert events.column("source").to_pylist() == ["cloudtrail"]
    assert events.column("source_file").to_pylist() == [None]
    assert con.cached == 3  # litellm (plain and validating), cloudtrail: bound once each
    con.close()
    assert con.cached == 0


def test_two_custom_sources_with_the_same_shape_keep_their_own_paths() -> None:
    """Same query text, different JSON paths (parameters): each source binds its own."""
    from sentinel.sources.jsonl import JsonlSource

    first = JsonlSource("alpha", {"ts": "$.t", "actor_user": "$.a"}, match="$.a")
    second = JsonlSource("beta", {"ts": "$.t", "actor_user": "$.b"}, match="$.b")
    record = json.dumps({"t": 1737710446, "a": "from-a", "b": "from-b"})
    con = connect()
    try:
        events, _ = normalise(con, first, _batch([record]), None)
        assert events.column("actor_user").to_pylist() == ["from-a"]
        events, _ = normalise(con, second, _batch([record]), None)
        assert events.column("actor_user").to_pylist() == ["from-b"]
    finally:
        con.close()
