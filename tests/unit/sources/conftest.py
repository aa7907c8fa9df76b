"""Helpers for source tests: run records through the real normalisation query."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pytest

from sentinel.ingest.normalise import connect, normalise
from sentinel.sources.base import LogSource

Normalised = tuple[list[dict[str, Any]], list[dict[str, Any]]]


def run_source(source: LogSource, records: list[Any]) -> Normalised:
    """Normalise records (dicts, or raw JSON text) -> (events, rejected) as dicts."""
    texts = [r if isinstance(r, str) else json.dumps(r) for r in records]
    table = pa.table(
        {
            "source_offset": pa.array(range(len(texts)), pa.int64()),
            "record": pa.array(texts, pa.string()),
        }
    )
    events, rejected = normalise(connect(), source, table, "x")
    return events.to_pylist(), rejected.to_pylist()


@pytest.fixture
def run() -> Callable[[LogSource, list[Any]], Normalised]:
    return run_source


@pytest.fixture
def run_one() -> Callable[[LogSource, Any], dict[str, Any]]:
    """Normalise one record that must be accepted, returning its event."""

    def _one(source: LogSource, record: Any) -> dict[str, Any]:
        events, rejected = run_source(source, [record])
        assert rejected == []
        assert len(events) == 1
        return events[0]

    return _one
