"""A small workspace for the dashboard: a few events (one with a card), incidents over them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sentinel.ingest.engine import ingest_paths
from sentinel.store import incidents as store
from sentinel.store.db import open_db, transaction
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines

HOSTILE = (
    "[bold red]alarm[/] [@click=app.quit]quit[/] \x1b[31mred\x1b]8;;http://x\x07link"
    "\x1b]8;;\x07 \u202eevil"
)
CARD = "4111 1111 1111 1111"
FROZEN_NOW = datetime(2025, 1, 25, 12, 0, tzinfo=UTC)


def alert(i: int, title: str, level: str, group: str, events: list[str]) -> store.Alert:
    first = "2025-01-24T09:20:46+00:00"
    return store.Alert(
        alert_id=f"alert-{i}", rule_id=f"rule-{i}", rule_title=title, level=level,
        group_key=group, first_ts=first, last_ts="2025-01-24T09:21:00+00:00",
        event_count=len(events),
        events=tuple(store.AlertEvent(event_id=e, ts=first, source="litellm") for e in events),
    )


@pytest.fixture()
def tui_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    lines = [litellm_line(i) for i in range(6)]
    lines.append(litellm_line(6, prompt=f"charge card {CARD} {HOSTILE}"))
    (ws.root / "incoming").mkdir()  # inside the workspace: the screens show it relative
    ingest_paths(ws, [write_lines(ws.root / "incoming" / "gw.jsonl", lines)])
    con = open_db(ws.state_db)
    try:
        store.open_or_update(con, alert(1, "Card sent to an AI vendor", "high",
                                        "actor_key=team-a-key", ["chatcmpl-00000006"]))
        store.open_or_update(con, alert(2, f"Hostile title {HOSTILE}", "medium",
                                        "actor_user=u3", ["chatcmpl-00000003"]))
        store.open_or_update(con, alert(3, "Quiet informational", "low",
                                        "client_ip=203.0.113.7", ["chatcmpl-00000001"]))
    finally:
        con.close()
    pin_recorded_times(ws)
    from sentinel.tui import data

    monkeypatch.setattr(data, "now", lambda: FROZEN_NOW)
    return ws


def pin_recorded_times(ws: Workspace) -> None:
    """The moments sentinel recorded while the fixture was built (a file read, a batch
    committed, an incident opened) moved to just before `FROZEN_NOW`, so every age and
    deadline a screen measures against the frozen clock is the same on every run."""
    read = (FROZEN_NOW - timedelta(minutes=5)).isoformat()
    opened = (FROZEN_NOW - timedelta(hours=2)).isoformat()
    con = open_db(ws.state_db)
    try:
        with transaction(con):
            con.execute("UPDATE files SET first_seen = ?, updated_at = ?", (read, read))
            con.execute("UPDATE batches SET committed_at = ?", (read,))
            con.execute("UPDATE incidents SET created_at = ?, updated_at = ?", (opened, opened))
    finally:
        con.close()
