"""Store fixtures: an initialised workspace's state.db and alerts to feed it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from sentinel.store.db import open_db
from sentinel.store.incidents import Alert, AlertEvent
from sentinel.workspace import Workspace


@pytest.fixture()
def con(workspace: Workspace) -> Iterator[sqlite3.Connection]:
    connection = open_db(workspace.state_db)
    yield connection
    connection.close()


def make_alert(
    alert_id: str,
    *,
    rule: str = "rule-card",
    group: str = "key-a",
    first: str = "2025-03-01T10:00:00+00:00",
    last: str | None = None,
    level: str = "high",
    events: tuple[str, ...] = (),
    event_ts: str | None = "first",
) -> Alert:
    ids = events or (f"{alert_id}-e1", f"{alert_id}-e2")
    return Alert(
        alert_id=alert_id, rule_id=rule, rule_title=f"{rule} fired", level=level,
        group_key=group, first_ts=first, last_ts=last or first, event_count=len(ids),
        tags=("attack.t1567",),
        events=tuple(
            AlertEvent(
                e, first if event_ts == "first" else event_ts, "litellm", "/logs/a.jsonl",
                n * 100, "lake/x.parquet",
            )
            for n, e in enumerate(ids)
        ),
    )
