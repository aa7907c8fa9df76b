"""Helpers for PII tests: event tables in the lake schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sentinel.pii.catalog import default_catalog
from sentinel.pii.engine import find
from sentinel.schema import EVENT_SCHEMA

KEY = bytes(range(32))


def event_table(prompts: list[str | None], responses: list[str | None] | None = None,
                extra_raw: dict[str, object] | None = None) -> pa.Table:
    responses = responses or [None] * len(prompts)
    ts = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i, (prompt, response) in enumerate(zip(prompts, responses, strict=True)):
        row: dict[str, object] = {name: None for name in EVENT_SCHEMA.names}
        record = {
            "id": f"e{i}",
            "messages": [{"role": "user", "content": prompt}],
            "choices": [{"message": {"role": "assistant", "content": response}}],
            **(extra_raw or {}),
        }
        row.update(event_id=f"e{i}", ts=ts, ingested_at=ts, source="test", prompt_text=prompt,
                   response_text=response, raw=json.dumps(record))
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def findings(text: str) -> list[tuple[str, str]]:
    """(type, value) of every finding in one text, through the vectorised path too."""
    catalog = default_catalog()
    matches = find(pa.array([text], pa.large_string()), catalog)
    return [(catalog.detectors[d].name, v) for d, v in zip(matches.detectors, matches.values,
                                                           strict=True)]


@pytest.fixture(params=["python", "re2"])
def extraction(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through both extraction paths (small inputs in Python, large in RE2)."""
    from sentinel.pii import engine

    monkeypatch.setattr(engine, "SMALL_INPUT_BYTES", 10**9 if request.param == "python" else -1)
    return str(request.param)
