"""A baseline's worked examples (`examples:` in its YAML), run by `sentinel baselines check`.

Rules ship example events (`*.tests.jsonl`); a baseline needs a history before its new
events, so its examples generate one (`HistoryExample`: an event repeated at given hours
on a number of days) and add the new events on a given day and time. Each example runs
the baseline twice, in a scratch DuckDB over two Parquet files in a temporary directory
(never the workspace): as a `--since` rescan does (the history read from the files) and
as an increment does (the history's model, then the new events), and both must give the
expected number of alerts. So an example checks the YAML's thresholds and the model's
agreement with the full query at once.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sentinel.detect.baseline import Example, LoadedBaseline
from sentinel.detect.baseline_sql import compile_baseline
from sentinel.detect.engine import parquet_relation
from sentinel.detect.rules import RuleProblem
from sentinel.scan.baselines import baseline_rows, model_rows
from sentinel.schema import EVENT_SCHEMA

DAY_0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DIGEST_KEY = "00" * 32
"""Examples hold no real data: a fixed key for first_seen digests of prompt text."""


@dataclass(frozen=True)
class ExampleResult:
    name: str
    expected: int
    full: int
    model: int

    @property
    def ok(self) -> bool:
        return self.expected == self.full == self.model


def _event(n: int, ts: datetime, source: str, columns: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": f"example-{n:07d}", "ts": ts, "ingested_at": ts, "source": source,
        "source_file": "example.jsonl", "source_offset": n, "kind": "inference",
        "action": "chat.completions", "outcome": "success", "prompt_tokens": 100,
        "completion_tokens": 50, "cost_usd": 0.001, "prompt_text": "hello",
        "response_text": "hi", "pii_types": [], "pii_count": 0, "raw": "{}",
    }
    row.update(columns)
    return row


def example_events(
    example: Example, source: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(history, new) rows of one example."""
    old: list[dict[str, Any]] = []
    for part in example.history:
        for day in range(part.days):
            date = DAY_0 + timedelta(days=day)
            if part.weekdays and date.weekday() >= 5:
                continue
            for hour in range(24) if part.hours == "all" else part.hours:
                for i in range(part.per_hour):
                    ts = date + timedelta(hours=hour, seconds=i * 3600 // part.per_hour)
                    old.append(_event(len(old), ts, source, part.event))
    new: list[dict[str, Any]] = []
    for item in example.new:
        hour, minute = (int(x) for x in item.time.split(":"))
        at = DAY_0 + timedelta(days=item.day, hours=hour, minutes=minute)
        for i in range(item.count):
            new.append(_event(500_000 + len(new), at + timedelta(seconds=i), source, item.event))
    return old, new


def run_example(loaded: LoadedBaseline, sources: tuple[str, ...], example: Example,
                directory: Path) -> ExampleResult:
    base = compile_baseline(loaded, sources)
    old, new = example_events(example, sources[0])
    files = []
    for name, rows in (("history", old), ("new", new)):
        path = directory / f"{name}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), path)
        files.append(str(path))
    every = old + new
    low = min(r["ts"] for r in (new or every))
    high = max(r["ts"] for r in (new or every))
    start = min(r["ts"] for r in every).replace(hour=0, minute=0, second=0, microsecond=0)
    duck = duckdb.connect(":memory:")
    try:
        duck.execute("SET TimeZone = 'UTC'")
        full = baseline_rows(duck, base, files, files[1:], low=low, high=high, since=None,
                             lake_start=start, extra={"digest_key": DIGEST_KEY})
        history = parquet_relation(files[:1])
        model = f"({base.aggregate.replace('{relation}', history)})"
        decided = model_rows(duck, base, model, parquet_relation(files[1:]), low=low,
                             high=high, lake_start=start,
                             extra={"digest_key": DIGEST_KEY})
    finally:
        duck.close()
    return ExampleResult(example.name, example.alerts, len(full), len(decided))


def check_examples(loaded: LoadedBaseline, sources: tuple[str, ...]) -> list[RuleProblem]:
    """Every example of a baseline run; a problem, located at the example, for each that
    does not give its expected alerts (or whose two runs disagree)."""
    problems: list[RuleProblem] = []
    for index, example in enumerate(loaded.spec.examples):
        if not example.new:
            problems.append(loaded.problem(("examples", index), f"example {example.name!r} "
                                           "has no new events to judge"))
            continue
        with tempfile.TemporaryDirectory(prefix="sentinel-baseline-example-") as tmp:
            result = run_example(loaded, sources, example, Path(tmp))
        if not result.ok:
            problems.append(loaded.problem(
                ("examples", index),
                f"example {example.name!r}: expected {result.expected} alert(s), the "
                f"baseline gave {result.full} (and {result.model} from its model)",
            ))
    return problems
