"""Alerts become incidents: the one place a scan (or the daemon) hands alerts over.

Each alert is deduplicated into an incident by `store.incidents.open_or_update` with the
workspace's `[incidents] dedup_window`, and a newly opened incident gets the most
specific playbook that applies to its rule (`respond.playbook.choose`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from sentinel.respond.playbook import choose, load_playbooks
from sentinel.store import incidents
from sentinel.workspace import Workspace


def open_incidents(
    ws: Workspace,
    con: sqlite3.Connection,
    alerts: Iterable[incidents.Alert],
    *,
    actor: str | None = None,
) -> list[incidents.Outcome]:
    """Link every alert to its incident (opening new ones); one outcome per alert."""
    books = load_playbooks(ws)
    window = ws.config.incidents.dedup_window
    outcomes = []
    for alert in alerts:
        chosen = choose(books, alert.rule_id, alert.rule_title, list(alert.tags), alert.level)
        outcomes.append(
            incidents.open_or_update(
                con, alert, window=window, playbook=chosen.name if chosen else None, actor=actor
            )
        )
    return outcomes
