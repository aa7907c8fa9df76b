"""Anthropic activity files through the real `sentinel ingest`: recognised without
`--source`, pages unwrapped, bad records quarantined with their reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "sources"


def sentinel(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(workspace), *args],
        capture_output=True, text=True, timeout=120,
    )


def test_pages_lines_and_bad_records(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert sentinel(ws, "init").returncode == 0
    files = [DATA / name for name in ("anthropic_activity.jsonl", "anthropic_activity_page.json")]
    assert sentinel(ws, "ingest", *map(str, files)).returncode == 0
    # Its first record has no type, so the bad file is not recognised: name the source.
    bad = str(DATA / "anthropic_activity_bad.jsonl")
    assert "unrecognised" in sentinel(ws, "ingest", bad).stderr
    sentinel(ws, "ingest", "--source", "anthropic_activity", bad)
    result = sentinel(ws, "sql", "--format", "json",
                      "SELECT source, action, outcome FROM events ORDER BY event_id")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["source"] for r in rows} == {"anthropic_activity"}
    # 9 lines, the 2 activities of the page again (same ids, counted as events of their
    # own file), and the one good line of the bad file.
    assert len(rows) == 12
    quarantined = [json.loads(line) for q in (ws / "quarantine").glob("*")
                   for line in q.read_text().splitlines()]
    reasons = sorted(q["reason"] for q in quarantined)
    assert "activity without a type" in reasons and "no valid timestamp" in reasons
    # A top-level JSON array is unwrapped: each of its three strings is rejected.
    assert reasons.count("record is a JSON varchar, not an object") == 3
    assert len(quarantined) == 6
