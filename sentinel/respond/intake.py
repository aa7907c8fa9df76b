"""Alerts become incidents: the one place a scan (or the daemon) hands alerts over.

Each alert is deduplicated into an incident by `store.incidents.open_or_update` with the
workspace's `[incidents] dedup_window`, and a newly opened incident gets the most
specific playbook that applies to its rule (`respond.playbook.choose`). When another
rule's alert joins an incident because it shares events (a prompt with a whole customer
record fires the card rule and the record rule), the incident takes that rule's playbook
if it has a higher `priority` and nobody has started the current one yet.

Alerts are linked a chunk per write transaction, each alert in its own savepoint (the
`transaction` helper nests): one commit, and so one fsync, per alert cost about 4 ms, 8 s
of a scan that raised 2,000 alerts. A chunk ends after `CHUNK_SECONDS`, so another writer
(an analyst acknowledging a case) never waits long for the lock.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from datetime import timedelta

from sentinel.respond.books import Playbooks
from sentinel.respond.playbook import Playbook, choose, load_playbooks
from sentinel.store import alerts as alert_store
from sentinel.store import audit, incidents, progress, triage
from sentinel.store.db import transaction
from sentinel.workspace import Workspace

CHUNK_SECONDS = 0.5


def take_pending(
    ws: Workspace,
    con: sqlite3.Connection,
    known: Iterable[incidents.Alert] = (),
    *,
    actor: str | None = None,
    playbooks: Playbooks | None = None,
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
    playbooks: Playbooks | None = None,
) -> list[incidents.Outcome]:
    """Link every alert to its incident (opening new ones); one outcome per alert.

    `playbooks`: a strict cache the caller keeps between calls (the watcher's scan
    lanes); without it every playbook file is parsed for this call."""
    books = playbooks.load() if playbooks is not None else load_playbooks(ws)
    window = ws.config.incidents.dedup_window
    key = audit.chain_key(con)  # read once: it is a file read per alert otherwise
    outcomes: list[incidents.Outcome] = []
    pending = iter(list(alerts))
    alert = next(pending, None)
    while alert is not None:
        with transaction(con):
            started = time.monotonic()
            taken: list[str] = []
            while alert is not None and time.monotonic() - started < CHUNK_SECONDS:
                outcomes.append(_open_one(con, books, alert, window, actor, key))
                taken.append(alert.alert_id)
                alert = next(pending, None)
            alert_store.mark_taken(con, taken)
    return outcomes


def _open_one(
    con: sqlite3.Connection,
    books: dict[str, Playbook],
    alert: incidents.Alert,
    window: timedelta,
    actor: str | None,
    key: bytes,
) -> incidents.Outcome:
    chosen = choose(books, alert.rule_id, alert.rule_title, list(alert.tags), alert.level)
    outcome = incidents.open_or_update(
        con, alert, window=window, playbook=chosen.name if chosen else None, actor=actor,
        key=key,
    )
    if outcome.shared_events and chosen is not None:
        case = incidents.get(con, outcome.incident_id)
        current = books.get(case.playbook or "")
        better = current is None or chosen.priority > current.priority
        started = bool(progress.states(con, case.incident_id))
        if better and chosen.name != case.playbook and not started:
            triage.set_playbook(con, case.incident_id, chosen.name, actor=actor)
    return outcome
