"""The lake writer's split of a batch by (source, UTC date): same rows, same order, per part."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.exceptions import SourceError
from sentinel.lake.writer import partitions, write_staging
from sentinel.schema import EVENT_SCHEMA
from tests.unit.lake.lakefiles import event

MIDNIGHT = dt.datetime(2025, 1, 24, tzinfo=dt.UTC)


def _table(rows: list[tuple[str, dt.datetime]]) -> pa.Table:
    return pa.Table.from_pylist(
        [event(i, source, ts=ts) for i, (source, ts) in enumerate(rows)], schema=EVENT_SCHEMA
    )


def _reference(table: pa.Table) -> dict[tuple[str, str], list[str]]:
    """What the writer did before: the date by `strftime` of every row, parts by filter."""
    dates = pc.strftime(table.column("ts"), format="%Y-%m-%d").to_pylist()
    parts: dict[tuple[str, str], list[str]] = {}
    for source, date, event_id in zip(
        table.column("source").to_pylist(), dates, table.column("event_id").to_pylist(),
        strict=True,
    ):
        parts.setdefault((source, date), []).append(event_id)
    return parts


def _split(table: pa.Table) -> dict[tuple[str, str], list[str]]:
    return {
        (source, date): part.column("event_id").to_pylist()
        for source, date, part in partitions(table)
    }


def test_a_batch_across_midnight_is_two_slices() -> None:
    rows = [("litellm", MIDNIGHT + dt.timedelta(minutes=m)) for m in range(-3, 3)]
    table = _table(rows)
    parts = partitions(table)
    assert [(s, d, p.num_rows) for s, d, p in parts] == [
        ("litellm", "2025-01-23", 3), ("litellm", "2025-01-24", 3),
    ]
    # zero-copy: each part shares the batch's buffers
    assert parts[1][2].column("raw").chunks[0].buffers()[2].address == (
        table.column("raw").chunks[0].buffers()[2].address
    )


def test_interleaved_sources_and_days_keep_row_order() -> None:
    rows = [
        ("litellm", MIDNIGHT), ("bedrock", MIDNIGHT), ("litellm", MIDNIGHT - dt.timedelta(hours=1)),
        ("litellm", MIDNIGHT + dt.timedelta(hours=5)), ("bedrock", MIDNIGHT),
    ]
    table = _table(rows)
    assert list(_split(table)) == [
        ("litellm", "2025-01-24"), ("bedrock", "2025-01-24"), ("litellm", "2025-01-23"),
    ]
    assert _split(table) == _reference(table)


def test_dates_before_1970_and_at_day_edges() -> None:
    edges = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        MIDNIGHT - dt.timedelta(microseconds=1),
        MIDNIGHT,
    ]
    table = _table([("litellm", ts) for ts in edges])
    assert _split(table) == _reference(table)


@settings(max_examples=60, deadline=None)
@given(st.lists(
    st.tuples(st.sampled_from(["litellm", "bedrock", "gw_2"]),
              st.integers(min_value=-3 * 86_400_000_000, max_value=3 * 86_400_000_000)),
    min_size=1, max_size=40,
))
def test_same_parts_as_formatting_every_row(rows: list[tuple[str, int]]) -> None:
    table = _table([(s, MIDNIGHT + dt.timedelta(microseconds=us)) for s, us in rows])
    assert _split(table) == _reference(table)


def test_written_files_hold_every_row_once(tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [
        (rng.choice(["litellm", "bedrock"]), MIDNIGHT + dt.timedelta(hours=rng.randint(-30, 30)))
        for _ in range(300)
    ]
    table = _table(rows)
    outputs = write_staging(table, tmp_path, "b1")
    assert len(outputs) == len(_reference(table))
    seen = []
    for name, final in outputs:
        part = pq.read_table(tmp_path / name)
        source, date = final.split("/")[0], final.split("/")[1]
        assert set(part.column("source").to_pylist()) == {source.removeprefix("source=")}
        assert set(pc.strftime(part.column("ts"), format="%Y-%m-%d").to_pylist()) == {
            date.removeprefix("date=")
        }
        seen += part.column("event_id").to_pylist()
    assert sorted(seen) == sorted(table.column("event_id").to_pylist())


def test_a_bad_source_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a valid lake partition"):
        write_staging(_table([("Bad Name", MIDNIGHT)]), tmp_path, "b1")
