"""What responders do to an incident: status, assignment, notes, merge, split, playbook.

Each function is one transaction that changes the case and appends its timeline entry
(`store.audit.append`) together, so the timeline is the complete history of the case.
`actor` is who the responder says they are (`--as`); the OS user is always recorded too.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sentinel.exceptions import StoreError
from sentinel.store import audit
from sentinel.store.db import transaction
from sentinel.store.incidents import _NEXT, OPEN_STATUSES, STATUSES, get, now
from sentinel.store.incidents import _refresh as refresh


def mask_free_text(text: str) -> str:
    """A responder's text with any PII or secret in it masked (it is stored and exported)."""
    from sentinel.pii.masking import mask_text

    return mask_text(text)


def set_status(
    con: sqlite3.Connection, incident_id: int, status: str, *, actor: str | None = None,
    note: str = "",
) -> int:
    """Move the case to `status`; returns the timeline entry's sequence number."""
    if status not in STATUSES:
        raise StoreError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
    note = mask_free_text(note)
    key = audit.chain_key(con)
    with transaction(con):
        case = get(con, incident_id)
        _check_not_merged(case.merged_into, incident_id)
        if status not in _NEXT[case.status]:
            raise StoreError(
                f"incident {incident_id} is {case.status}; it cannot become {status}"
                + (" (a recurrence opens a new incident)" if case.status == "resolved" else "")
            )
        con.execute(
            "UPDATE incidents SET status = ?, updated_at = ? WHERE incident_id = ?",
            (status, now(), incident_id),
        )
        detail = {"from": case.status, "to": status, "note": note}
        return audit.append(con, "incident.status", detail, actor=actor,
                            incident_id=incident_id, key=key).seq


def assign(
    con: sqlite3.Connection, incident_id: int, assignee: str, *, actor: str | None = None
) -> int:
    key = audit.chain_key(con)
    with transaction(con):
        case = get(con, incident_id)
        _check_not_merged(case.merged_into, incident_id)
        con.execute(
            "UPDATE incidents SET assignee = ?, updated_at = ? WHERE incident_id = ?",
            (assignee, now(), incident_id),
        )
        detail = {"from": case.assignee, "to": assignee}
        return audit.append(con, "incident.assigned", detail, actor=actor,
                            incident_id=incident_id, key=key).seq


def add_note(
    con: sqlite3.Connection, incident_id: int, text: str, *, actor: str | None = None
) -> int:
    if not text.strip():
        raise StoreError("a note needs some text")
    return record(con, incident_id, "incident.note", {"note": mask_free_text(text)}, actor=actor)


def set_playbook(
    con: sqlite3.Connection, incident_id: int, playbook: str | None, *, actor: str | None = None
) -> int:
    key = audit.chain_key(con)
    with transaction(con):
        case = get(con, incident_id)
        con.execute(
            "UPDATE incidents SET playbook = ?, updated_at = ? WHERE incident_id = ?",
            (playbook, now(), incident_id),
        )
        detail = {"from": case.playbook, "to": playbook}
        return audit.append(con, "incident.playbook", detail, actor=actor,
                            incident_id=incident_id, key=key).seq


def record(
    con: sqlite3.Connection, incident_id: int, action: str, detail: dict[str, Any], *,
    actor: str | None = None,
) -> int:
    """A timeline entry for an existing incident that changes nothing else."""
    key = audit.chain_key(con)
    with transaction(con):
        get(con, incident_id)
        return audit.append(con, action, detail, actor=actor, incident_id=incident_id,
                            key=key).seq


def merge(
    con: sqlite3.Connection, target: int, others: list[int], *, actor: str | None = None
) -> int:
    """Move the alerts and events of `others` into `target`; the others point to it."""
    others = sorted(set(others) - {target})
    if not others:
        raise StoreError("merge needs at least one incident besides the target")
    key = audit.chain_key(con)
    with transaction(con):
        case = get(con, target)
        _check_not_merged(case.merged_into, target)
        if case.status not in OPEN_STATUSES:
            raise StoreError(f"incident {target} is {case.status}; merge into an open incident")
        for other in others:
            source = get(con, other)
            _check_not_merged(source.merged_into, other)
            con.execute(
                "UPDATE incident_alerts SET incident_id = ? WHERE incident_id = ?", (target, other)
            )
            # Events linked by reference follow their alerts; the given ones are moved.
            con.execute(
                "INSERT OR IGNORE INTO incident_event_rows SELECT ?, event_id, alert_id, ts, "
                "source, source_file, source_offset, lake_file FROM incident_event_rows "
                "WHERE incident_id = ?",
                (target, other),
            )
            con.execute("DELETE FROM incident_event_rows WHERE incident_id = ?", (other,))
            rules = sorted(set(case.rules) | set(source.rules))
            con.execute(
                "UPDATE incidents SET rules = ?, updated_at = ? WHERE incident_id = ?",
                (json.dumps(rules), now(), target),
            )
            case = get(con, target)
            con.execute(
                "UPDATE incidents SET merged_into = ?, alert_count = 0, event_count = 0, "
                "updated_at = ? WHERE incident_id = ?", (target, now(), other),
            )
            audit.append(con, "incident.merged_into", {"into": target}, actor=actor,
                         incident_id=other, key=key)
        refresh(con, target)
        return audit.append(con, "incident.merged", {"from": others}, actor=actor,
                            incident_id=target, key=key).seq


def split(
    con: sqlite3.Connection, incident_id: int, alert_ids: list[str], *, actor: str | None = None
) -> int:
    """Move `alert_ids` (and their events) out into a new incident; returns its id."""
    if not alert_ids:
        raise StoreError("split needs at least one alert id (see `sentinel incidents show`)")
    key = audit.chain_key(con)
    with transaction(con):
        case = get(con, incident_id)
        _check_not_merged(case.merged_into, incident_id)
        marks = ",".join("?" * len(alert_ids))
        linked = {
            r[0] for r in con.execute(
                f"SELECT alert_id FROM incident_alerts WHERE incident_id = ? "
                f"AND alert_id IN ({marks})", (incident_id, *alert_ids),
            )
        }
        missing = sorted(set(alert_ids) - linked)
        if missing:
            raise StoreError(f"incident {incident_id} has no alert {', '.join(missing)}")
        remaining = con.execute(
            "SELECT count(*) FROM incident_alerts WHERE incident_id = ?", (incident_id,)
        ).fetchone()[0]
        if remaining <= len(linked):
            raise StoreError("a split must leave at least one alert in the incident")
        first = con.execute(
            f"SELECT rule_id, level, first_ts, last_ts FROM incident_alerts WHERE alert_id IN "
            f"({marks}) ORDER BY first_ts LIMIT 1", tuple(alert_ids),
        ).fetchone()
        stamp = now()
        cur = con.execute(
            "INSERT INTO incidents (title, rule_id, rules, severity, tags, group_key, first_seen, "
            "last_seen, playbook, split_from, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (case.title, first[0], json.dumps([first[0]]), first[1], json.dumps(case.tags),
             case.group_key, first[2], first[3], case.playbook, incident_id, stamp, stamp),
        )
        new_id = int(cur.lastrowid or 0)
        con.execute(
            f"UPDATE incident_alerts SET incident_id = ? WHERE alert_id IN ({marks})",
            (new_id, *alert_ids),
        )
        con.execute(
            f"UPDATE incident_event_rows SET incident_id = ? WHERE incident_id = ? "
            f"AND alert_id IN ({marks})", (new_id, incident_id, *alert_ids),
        )
        # The rules of the original case are what its remaining alerts say.
        con.execute("UPDATE incidents SET rules = '[]' WHERE incident_id = ?", (incident_id,))
        refresh(con, incident_id)
        refresh(con, new_id)
        detail = {"alerts": sorted(alert_ids)}
        audit.append(con, "incident.split", {**detail, "into": new_id}, actor=actor,
                     incident_id=incident_id, key=key)
        audit.append(con, "incident.split_from", {**detail, "from": incident_id}, actor=actor,
                     incident_id=new_id, key=key)
        return new_id


def _check_not_merged(merged_into: int | None, incident_id: int) -> None:
    if merged_into is not None:
        raise StoreError(f"incident {incident_id} was merged into incident {merged_into}")
