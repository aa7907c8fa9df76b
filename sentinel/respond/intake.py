"""Alerts become incidents: the one place a scan (or the daemon) hands alerts over.

Each alert is deduplicated into an incident with the workspace's `[incidents]
dedup_window` (`store.grouping.open_many`: the rules of `store.incidents.open_or_update`,
decided for a chunk of alerts with a few statements instead of ~15 per alert), and a
newly opened incident gets the most specific playbook that applies to its rule
(`respond.routes.choose`). When another rule's alert joins an incident because it
shares events (a prompt with a whole customer record fires the card rule and the record
rule), the incident takes that rule's playbook if it has a higher `priority` and nobody
has started the current one yet.

Alerts are linked a chunk per write transaction (`CHUNK_ALERTS`), each chunk's alerts
marked taken (`store.alerts.mark_taken`) in the transaction that links them; so a chunk
is linked and marked wholly or not at all, and another writer (an analyst acknowledging
a case) waits for one chunk at most. Alerts a failed intake did not take stay pending:
`take_pending` (every scan, and so the watcher's lanes) takes them.

The intake sees the playbooks as routes (`respond.routes.Route`: name, priority,
applies_to), from whatever `RouteSource` the caller hands it (a scan's kept routes, the
watcher's strict cache) or else from parsing every playbook file; it never imports the
playbook schema itself, so a scan with kept routes imports no pydantic and no YAML.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from sentinel.respond.routes import Route, RouteSource, choose
from sentinel.store import alerts as alert_store
from sentinel.store import audit, grouping, incidents, progress
from sentinel.workspace import Workspace

CHUNK_ALERTS = 2000
"""Alerts per write transaction (2,000 take ~0.2 s on an idle machine)."""


def take_pending(
    ws: Workspace,
    con: sqlite3.Connection,
    known: Iterable[incidents.Alert] = (),
    *,
    actor: str | None = None,
    playbooks: RouteSource | None = None,
) -> list[incidents.Outcome]:
    """Link every alert still pending (`store.alerts.pending`), oldest first.

    `known`: alerts the caller holds (this scan's), used as given (an alert built with its
    events keeps them); the others come from `state.db` without events (linked by
    reference to their `alert_events`)."""
    given = {alert.alert_id: alert for alert in known}
    waiting = [given.get(a.alert_id, a) for a in alert_store.pending(con)]
    if not waiting:
        return []
    return open_incidents(ws, con, waiting, actor=actor, playbooks=playbooks)


def open_incidents(
    ws: Workspace,
    con: sqlite3.Connection,
    alerts: Iterable[incidents.Alert],
    *,
    actor: str | None = None,
    playbooks: RouteSource | None = None,
) -> list[incidents.Outcome]:
    """Link every alert to its incident (opening new ones); one outcome per alert.

    `playbooks`: where the routes come from (a scan's kept routes, the strict cache the
    watcher's scan lanes keep between calls); without it every playbook file is parsed
    for this call. A broken playbook raises its `PlaybookError` before anything is linked."""
    books = playbooks.routes() if playbooks is not None else _parsed(ws)
    window = ws.config.incidents.dedup_window
    key = audit.chain_key(con)  # read once: it is a file read per alert otherwise
    pending = list(alerts)
    chosen = _Chooser(books)
    return grouping.open_many(
        con, pending, window=window, playbooks=[chosen.name(a) for a in pending],
        upgrade=_upgrade(con, books, chosen), actor=actor, key=key, chunk=CHUNK_ALERTS,
    )


class _Chooser:
    """`choose` once per distinct (rule, title, tags, level): a scan's thousands of alerts
    come from a handful of rules."""

    def __init__(self, books: dict[str, Route]) -> None:
        self.books = books
        self.seen: dict[tuple[str, str, tuple[str, ...], str], Route | None] = {}

    def book(self, alert: incidents.Alert) -> Route | None:
        known = (alert.rule_id, alert.rule_title, tuple(alert.tags), alert.level)
        if known not in self.seen:
            self.seen[known] = choose(self.books, alert.rule_id, alert.rule_title,
                                      alert.tags, alert.level)
        return self.seen[known]

    def name(self, alert: incidents.Alert) -> str | None:
        book = self.book(alert)
        return book.name if book is not None else None


def _upgrade(
    con: sqlite3.Connection, books: dict[str, Route], chosen: _Chooser
) -> grouping.Upgrade:
    """The playbook a case takes when an alert of another rule joins it by its events: the
    alert's own, if it has a higher priority and nobody has started the current one."""

    def better(alert: incidents.Alert, incident_id: int, playbook: str | None) -> str | None:
        book = chosen.book(alert)
        if book is None or book.name == playbook:
            return None
        current = books.get(playbook or "")
        if current is not None and book.priority <= current.priority:
            return None
        return None if progress.states(con, incident_id) else book.name

    return better


def _parsed(ws: Workspace) -> dict[str, Route]:
    """Every playbook file parsed and validated (the schema imported only here)."""
    from sentinel.respond.playbook import load_playbooks, routes_of

    return routes_of(load_playbooks(ws))
