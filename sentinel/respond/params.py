"""The incident fields a playbook may use: SQL parameters and command/message templates.

A query step writes `:actor_key`; a command step writes `{actor_key}`. Both name a
field from `INCIDENT_FIELDS`, checked when the playbook loads, and the value is bound
(SQL) or passed as one argv element (commands), never formatted into code.

The actor, network and vendor fields are the most frequent value among the incident's
linked events in the lake (NULL when none has one); the plural fields list them all.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import duckdb

from sentinel.exceptions import PlaybookError
from sentinel.store import incidents as store
from sentinel.workspace import Workspace

CASE_FIELDS = (
    "incident_id", "title", "rule_id", "severity", "status", "assignee", "group_key",
    "playbook", "first_seen", "last_seen", "detected_at",
)
EVENT_FIELDS = ("actor_key", "actor_user", "actor_team", "client_ip", "vendor", "model", "region")
LIST_FIELDS = ("event_ids", "actor_keys", "actor_users", "client_ips", "vendors")
INCIDENT_FIELDS = CASE_FIELDS + EVENT_FIELDS + LIST_FIELDS
SCALAR_FIELDS = CASE_FIELDS + EVENT_FIELDS

# Quoted text, comments and `::` casts are skipped so only real `:name` parameters match.
_SQL_TOKEN = re.compile(
    r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(--[^\n]*)|(/\*.*?\*/)|(::)"""
    r"""|(?<![\w:]):([A-Za-z_]\w*)|(\$[A-Za-z_]\w*|\$\d+|\?)""",
    re.S,
)
_TEMPLATE = re.compile(r"\{([^{}]*)\}")


def sql_parameters(sql: str) -> Iterator[tuple[str, str]]:
    """(kind, name) of each placeholder: ("named", "actor_key") or ("raw", "$1"/"?")."""
    for match in _SQL_TOKEN.finditer(sql):
        if match.group(6):
            yield "named", match.group(6)
        elif match.group(7):
            yield "raw", match.group(7)


def to_duckdb(sql: str) -> str:
    """`:name` placeholders rewritten as DuckDB's `$name` (quoted text untouched)."""

    def swap(match: re.Match[str]) -> str:
        return "$" + match.group(6) if match.group(6) else match.group(0)

    return _SQL_TOKEN.sub(swap, sql)


def template_fields(text: str) -> list[str]:
    """The `{field}` names in a template (`{{`/`}}` are literal braces)."""
    return _TEMPLATE.findall(text.replace("{{", "").replace("}}", ""))


def render(text: str, values: dict[str, Any]) -> str:
    """`text` with each `{field}` replaced by its value (no attribute or index access)."""
    parts = re.split(r"(\{\{|\}\}|\{[^{}]*\})", text)
    out = []
    for part in parts:
        if part in ("{{", "}}"):
            out.append(part[0])
        elif part.startswith("{") and part.endswith("}"):
            value = values.get(part[1:-1])
            out.append("" if value is None else str(value))
        else:
            out.append(part)
    return "".join(out)


def incident_values(ws: Workspace, con: sqlite3.Connection, incident_id: int) -> dict[str, Any]:
    """Every field of `INCIDENT_FIELDS` for one incident."""
    # Imported here, not above: every scan that opens incidents loads the playbooks, which
    # import this module; the lake reader (pyarrow.dataset, the PII engine) is for steps.
    from sentinel.store.ledger import linked_event_ids

    case = store.get(con, incident_id)
    values: dict[str, Any] = {
        "incident_id": case.incident_id, "title": case.title, "rule_id": case.rule_id,
        "severity": case.severity, "status": case.status, "assignee": case.assignee,
        "group_key": case.group_key, "playbook": case.playbook,
        "first_seen": store.parse_ts(case.first_seen), "last_seen": store.parse_ts(case.last_seen),
        "detected_at": store.parse_ts(case.created_at),
    }
    ids, lo, hi = linked_event_ids(con, incident_id)
    values["event_ids"] = ids
    values.update(_event_fields(ws, ids, lo, hi))
    return values


def _event_fields(ws: Workspace, ids: list[str], lo: str, hi: str) -> dict[str, Any]:
    from sentinel.lake.query import open_lake, query_error

    columns = ", ".join(
        f"list({c} ORDER BY {c}) FILTER (WHERE {c} IS NOT NULL) AS {c}" for c in EVENT_FIELDS
    )
    sql = (
        f"SELECT {columns} FROM events WHERE event_id IN (SELECT unnest($ids::VARCHAR[])) "
        "AND ts BETWEEN $lo::TIMESTAMPTZ AND $hi::TIMESTAMPTZ"
    )
    lake = open_lake(ws)
    try:
        row = lake.execute(sql, {"ids": ids, "lo": lo, "hi": hi}).fetchone()
    except duckdb.Error as exc:
        raise PlaybookError(f"cannot read the incident's events: {query_error(exc)}") from exc
    finally:
        lake.close()
    result: dict[str, Any] = {}
    for name, found in zip(EVENT_FIELDS, row or [None] * len(EVENT_FIELDS), strict=True):
        found = found or []
        counts: dict[str, int] = {}
        for value in found:
            counts[value] = counts.get(value, 0) + 1
        ranked = sorted(counts, key=lambda v: (-counts[v], v))
        result[name] = ranked[0] if ranked else None
        plural = {"actor_key": "actor_keys", "actor_user": "actor_users",
                  "client_ip": "client_ips", "vendor": "vendors"}.get(name)
        if plural:
            result[plural] = ranked
    return result
