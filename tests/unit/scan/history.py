"""Generated event histories for baseline tests, and a runner for one baseline over them.

`history` writes weeks of ordinary traffic for a few keys: weekday working hours busier
than weekends, random noise per hour, optional steady growth. Tests add a planted anomaly
and split the rows into already-scanned history and new events (`run`), exactly as the
scan hands them to a baseline: two Parquet files, the second one listed as new.
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sentinel.detect.baseline import parse
from sentinel.detect.baseline_sql import compile_baseline
from sentinel.scan.baselines import baseline_rows
from sentinel.schema import EVENT_SCHEMA

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Traffic:
    """How the generated keys behave."""

    days: int = 21
    keys: tuple[str, ...] = ("k1", "k2", "k3")
    per_hour: int = 8
    """Mean requests per working hour on a weekday."""
    hours: tuple[int, ...] = tuple(range(8, 18))
    weekend: float = 0.25
    """Weekend traffic as a share of a weekday's (0: nobody works weekends)."""
    growth: float = 0.0
    """Daily growth, e.g. 0.02 for +2 % a day."""
    noise: float = 0.5
    """Relative spread of each hour's count around its mean."""
    seed: int = 0
    ips: dict[str, tuple[str, ...]] = field(default_factory=dict)


def make_event(n: int, ts: datetime, key: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": f"e{n:07d}", "ts": ts, "ingested_at": ts, "source": "litellm",
        "kind": "inference", "action": "chat.completions", "outcome": "success",
        "actor_key": key, "actor_user": f"{key}@example.org", "client_ip": "10.0.0.1",
        "vendor": "openai", "model": "gpt-4o", "prompt_text": "hello", "response_text": "hi",
        "prompt_tokens": 100, "completion_tokens": 50, "cost_usd": 0.001,
        "pii_types": [], "pii_count": 0, "pii_findings": [], "raw": "{}",
    }
    row.update(extra)
    return row


def history(traffic: Traffic, start: datetime = MONDAY) -> list[dict[str, Any]]:
    """Ordinary traffic: every key busy in working hours, quieter at weekends."""
    rng = random.Random(traffic.seed)
    rows: list[dict[str, Any]] = []
    for day in range(traffic.days):
        date = start + timedelta(days=day)
        scale = (1 + traffic.growth) ** day * (traffic.weekend if date.weekday() >= 5 else 1)
        for key in traffic.keys:
            ips = traffic.ips.get(key, (f"10.1.{traffic.keys.index(key)}.1",))
            for hour in traffic.hours:
                mean = traffic.per_hour * scale
                count = max(0, round(rng.gauss(mean, mean * traffic.noise)))
                for _ in range(count):
                    ts = date + timedelta(hours=hour, seconds=rng.randrange(3600))
                    rows.append(make_event(len(rows), ts, key, client_ip=rng.choice(ips),
                                           prompt_tokens=rng.randint(50, 400)))
    return rows


def run(
    yaml_text: str,
    rows: list[dict[str, Any]],
    new_from: datetime,
    tmp_path: Path,
    *,
    sources: tuple[str, ...] = ("litellm",),
) -> list[dict[str, Any]]:
    """The baseline's alerts when events from `new_from` on are new and the rest scanned."""
    path = tmp_path / "baseline.yml"
    loaded, problems = parse(textwrap.dedent(yaml_text), path)
    assert loaded is not None, [str(p) for p in problems]
    base = compile_baseline(loaded, sources)
    old = [r for r in rows if r["ts"] < new_from]
    new = [r for r in rows if r["ts"] >= new_from]
    files = []
    for name, part in (("old", old), ("new", new)):
        file = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}.parquet"
        pq.write_table(pa.Table.from_pylist(part, schema=EVENT_SCHEMA), file)
        files.append(str(file))
    every = [r["ts"] for r in rows]
    low = min(r["ts"] for r in new)
    high = max(r["ts"] for r in new)
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    try:
        return baseline_rows(
            duck, base, files, [files[1]], low=low, high=high, since=None,
            lake_start=min(every).replace(hour=0, minute=0, second=0, microsecond=0),
            extra={"digest_key": "00" * 32},
        )
    finally:
        duck.close()
