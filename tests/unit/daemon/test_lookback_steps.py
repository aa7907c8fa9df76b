"""The lookback lane reads a backlog in steps: `run_scan(max_events=…)` stops at the batch
where its rules' oldest watermark has that many events behind it, and the next scan goes
on from there. Stepped or not, the same alerts (a correlation's burst is one alert even
when its events come in different steps)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sentinel.ingest.engine import ingest_paths
from sentinel.scan.lakefiles import newest_seq, seq_within
from sentinel.scan.runner import run_scan
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines

RULES = """\
title: Failed request
id: 11111111-2222-4333-8444-555555555701
name: step_failed_request
status: test
level: low
logsource: {product: ai_gateway}
detection:
  sel: {outcome: failure}
  condition: sel
---
title: Many failed requests from one key
id: 11111111-2222-4333-8444-555555555702
status: test
level: high
correlation:
  type: event_count
  rules: [step_failed_request]
  group-by: [actor_key]
  timespan: 5m
  condition: {gte: 12}
"""
FILES, LINES = 5, 10
FIRST = "2025-01-24T09:20:46+00:00"
"""The first event's time (`litellm_line(0)`)."""


def _ingest(ws: Workspace, tmp_path: Path) -> None:
    """Five batches of ten events; every event a failure of one key (one burst of 50)."""
    for n in range(FILES):
        lines = [litellm_line(n * LINES + i, status="failure") for i in range(LINES)]
        ingest_paths(ws, [write_lines(tmp_path / f"gw{n}.jsonl", lines)])


def _rules(tmp_path: Path) -> list[Path]:
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    return [rules]


def _alerts(ws: Workspace) -> list[tuple[str, str]]:
    con = sqlite3.connect(ws.state_db)
    try:
        return con.execute(
            "SELECT rule_id, first_ts FROM alerts ORDER BY rule_id, first_ts").fetchall()
    finally:
        con.close()


def test_seq_within_stops_where_the_events_add_up(workspace: Workspace, tmp_path: Path) -> None:
    _ingest(workspace, tmp_path)
    con = sqlite3.connect(workspace.state_db)
    try:
        seqs = [r[0] for r in con.execute("SELECT rowid FROM batches ORDER BY rowid")]
        upto = newest_seq(con)
        assert len(seqs) == FILES and upto == seqs[-1]
        assert seq_within(con, 0, upto, 20) == seqs[1]  # 10 + 10
        assert seq_within(con, 0, upto, 29) == seqs[1]
        assert seq_within(con, seqs[1], upto, 30) == seqs[4]
        assert seq_within(con, 0, upto, 5) == seqs[0]  # at least one batch, however large
        assert seq_within(con, 0, seqs[2], 1000) == seqs[2]  # never past `upto`
        assert seq_within(con, upto, upto, 10) == upto  # nothing new
    finally:
        con.close()


@pytest.mark.parametrize("step", [25, None])
def test_a_stepped_lookback_finds_what_one_scan_finds(
    workspace: Workspace, tmp_path: Path, step: int | None
) -> None:
    _ingest(workspace, tmp_path)
    rules = _rules(tmp_path)
    reached = []
    for _ in range(FILES + 1):
        report = run_scan(workspace, rules=rules, open_incidents=False, max_events=step)
        reached.append((report.new_batches, report.batch_seq))
    if step is None:
        assert [n for n, _ in reached] == [FILES, 0, 0, 0, 0, 0]
    else:  # 20 events per scan (two batches; a third would pass 25), then the last one
        assert [n for n, _ in reached] == [2, 2, 1, 0, 0, 0]
        assert reached[0][1] < reached[1][1] < reached[2][1] == reached[-1][1]
    # The burst of 50 failures is one alert from its first event, whatever the steps (a
    # burst going on is not reported again; its base rule alone only feeds it).
    assert _alerts(workspace) == [("11111111-2222-4333-8444-555555555702", FIRST)]
