"""What the Sources screen reads: how far behind reading is, and what the last scan did.

Reads only, each in the caller's (worker) thread, never Textual. The lake is read through
the app's masked session; everything else comes from `state.db` and the watcher's
heartbeat file.

Invariants:
- No clock is read here. Every time is returned as it was recorded (ISO 8601 text or a
  datetime) and the screen turns it into an age against `data.now()`, the dashboard's one
  clock, so a test that freezes that clock freezes every age on the screen.
- A path is shown relative to the workspace when it lies inside it (`demo-logs/…`): the
  part that tells files apart, not the machine's directory layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.tui.data import state
from sentinel.watch.status import Status, daemon_state
from sentinel.workspace import Workspace

if TYPE_CHECKING:
    from sentinel.tui.sessions import SharedSession


def sources_overview(ws: Workspace, lake: SharedSession) -> list[dict[str, Any]]:
    """Per source: events, findings, first/last event (the lake) and when sentinel last
    committed a batch of it (`state.db`: cheaper than reading `ingested_at` back, and the
    same moment)."""
    table = lake.query(
        "SELECT source, count(*) AS events, sum(pii_count) AS findings, min(ts) AS first_ts, "
        "max(ts) AS last_ts FROM events GROUP BY 1 ORDER BY 1"
    )
    with state(ws) as con:
        last = dict(con.execute(
            "SELECT f.source, max(b.committed_at) FROM batches b "
            "JOIN files f ON f.file_id = b.file_id GROUP BY 1"
        ).fetchall())
    rows = list(table.to_pylist())
    for row in rows:
        row["last_ingest"] = last.get(row["source"])
    return rows


def hourly(lake: SharedSession, days: int = 7) -> dict[str, list[int]]:
    """Events per hour per source over the last `days` days of data (for sparklines)."""
    rows = lake.query(
        "WITH last AS (SELECT max(ts) AS hi FROM events) "
        "SELECT source, date_trunc('hour', ts) AS hour, count(*) AS n FROM events, last "
        "WHERE ts > last.hi - to_days($days) GROUP BY 1, 2 ORDER BY 1, 2",
        {"days": days},
    ).to_pylist()
    series: dict[str, list[int]] = {}
    for row in rows:
        series.setdefault(row["source"], []).append(int(row["n"]))
    return series


def shown_path(ws: Workspace, path: str) -> str:
    """`path` relative to the workspace when inside it, else as recorded."""
    try:
        return str(Path(path).relative_to(ws.root))
    except ValueError:
        return path


def watched_files(ws: Workspace, limit: int = 200) -> list[dict[str, Any]]:
    """Files sentinel reads, most recently read first: offset against the size on disk,
    records, quarantined, last read."""
    with state(ws) as con:
        cur = con.execute(
            "SELECT path, source, framing, offset, disk_size, records, quarantined, updated_at "
            "FROM files ORDER BY updated_at DESC LIMIT ?", (limit,),
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur]
    for row in rows:
        try:
            row["size_now"] = Path(row["path"]).stat().st_size
        except OSError:
            row["size_now"] = None
        row["shown_path"] = shown_path(ws, row["path"])
    return rows


@dataclass(frozen=True)
class RuleRun:
    """What one rule found and cost in a scan (the scan's `stats` JSON, one entry)."""

    rule_id: str
    title: str
    alerts: int
    matches: int
    seconds: float
    rows_read: int


@dataclass(frozen=True)
class ScanSummary:
    scan_id: str
    started_at: str
    finished_at: str | None
    rules: int
    alerts: int
    per_rule: list[RuleRun] = field(default_factory=list)
    """Most alerts first, then the slowest: what an on-call looks at first."""


def last_scan(ws: Workspace) -> ScanSummary | None:
    """The most recent scan and its per-rule figures, None before the first scan."""
    with state(ws) as con:
        row = con.execute(
            "SELECT scan_id, started_at, finished_at, rules, alerts, stats FROM scans "
            "ORDER BY started_at DESC, rowid DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        titles = dict(con.execute(
            "SELECT rule_id, max(rule_title) FROM alerts GROUP BY 1"
        ).fetchall())
    try:
        stats = json.loads(row[5] or "{}")
    except ValueError:
        stats = {}
    runs = [
        RuleRun(
            str(rule_id), str(titles.get(rule_id) or rule_id), int(s.get("alerts") or 0),
            int(s.get("matches") or 0), float(s.get("seconds") or 0.0),
            int(s.get("rows_read") or 0),
        )
        for rule_id, s in (stats.items() if isinstance(stats, dict) else [])
        if isinstance(s, dict)
    ]
    runs.sort(key=lambda r: (-r.alerts, -r.seconds, r.rule_id))
    return ScanSummary(str(row[0]), str(row[1]), row[2], int(row[3]), int(row[4]), runs)


Watcher = Status
"""The watcher daemon as its lock and heartbeat file tell it (`sentinel status`'s own
reading, `watch.status.daemon_state`: one place decides running, stopped or stale)."""


def watcher(ws: Workspace) -> Watcher:
    return daemon_state(ws)
