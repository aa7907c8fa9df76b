"""Hand-made lake files for tests: EVENT_SCHEMA rows in the hive layout the writer uses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sentinel.schema import EVENT_SCHEMA

T0 = dt.datetime(2025, 1, 24, 9, 0, tzinfo=dt.UTC)


def event(i: int, source: str = "litellm", **overrides: Any) -> dict[str, Any]:
    """One schema row; `overrides` replace any column."""
    row: dict[str, Any] = {
        "event_id": f"{source}-{i:04d}",
        "ts": T0 + dt.timedelta(minutes=i),
        "ingested_at": T0 + dt.timedelta(days=1),
        "source": source,
        "kind": "inference",
        "action": "chat.completions",
        "outcome": "success",
        "status_code": 200,
        "actor_user": f"user{i % 3}",
        "actor_key": "team-a-key",
        "vendor": "openai",
        "model": "gpt-4o",
        "prompt_text": f"Summarise ticket #{i}",
        "prompt_tokens": 10 + i,
        "cost_usd": 0.5,
        "pii_types": [],
        "pii_count": 0,
        "pii_findings": [],
        "raw": "{}",
    }
    row.update(overrides)
    return row


def with_email(row: dict[str, Any], digest: str = "d1") -> dict[str, Any]:
    """`row` with one email finding in its prompt."""
    return {
        **row,
        "pii_types": ["email"],
        "pii_count": 1,
        "pii_findings": [
            {"type": "email", "field": "prompt_text", "start": 0, "end": 12, "digest": digest}
        ],
    }


def write_events(
    lake_dir: Path,
    rows: list[dict[str, Any]],
    *,
    source: str = "litellm",
    date: str = "2025-01-24",
    batch: str = "batch-0001",
    schema: pa.Schema = EVENT_SCHEMA,
) -> Path:
    """Write `rows` as one committed batch file and return its path."""
    directory = lake_dir / f"source={source}" / f"date={date}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{batch}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path
