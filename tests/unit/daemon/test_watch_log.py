"""The daemon's log lines: one per event, hostile values cannot forge a line or a key."""

from __future__ import annotations

import io
import json

from sentinel.watch.log import EventLog


def test_text_lines_quote_hostile_values() -> None:
    out = io.StringIO()
    log = EventLog("text", out)
    log.info("ingested", path="/var/log/a b\n2026 error forged=1\x1b[31m", events=3)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert " info ingested path=\"/var/log/a b\\n2026 error forged=1\\u001b[31m\" events=3" in (
        lines[0]
    )
    assert "\x1b" not in out.getvalue()


def test_json_lines_parse_back() -> None:
    out = io.StringIO()
    log = EventLog("json", out)
    log.error("file.failed", path="/x\ny", reason="bad gzip")
    log.warning("store.paused", retry_in=2.0)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["file.failed", "store.paused"]
    assert records[0]["path"] == "/x\ny" and records[0]["level"] == "error"
    assert records[1]["retry_in"] == 2.0 and records[1]["ts"].endswith("Z")
