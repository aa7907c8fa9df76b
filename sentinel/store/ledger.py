"""The exposure ledger of an incident: which PII and secret types reached which vendor.

One row per (type × vendor, model, region, key, team, user) over the incident's linked
events, with the first and last time, how many events and findings, and the keyed
digests of the values (the same digests `sentinel hunt --value` matches). It answers
"who must be notified" and is what a deletion request to a vendor lists.

Invariants:
- Computed from the lake, never copied from it: the linked event ids are bound as one
  list parameter (never formatted into the SQL) and the time bounds of the linked events
  let DuckDB skip row groups by their statistics.
- Holds counts and digests, never a value: the query reads `pii_findings`, which stores
  types, positions and digests only, and no text column.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import duckdb
import pyarrow as pa

from sentinel.exceptions import StoreError
from sentinel.lake.query import open_lake, query_error
from sentinel.store.incidents import parse_ts
from sentinel.workspace import Workspace

LEDGER_COLUMNS = (
    "pii_type", "vendor", "model", "region", "actor_key", "actor_team", "actor_user",
    "first_ts", "last_ts", "events", "findings", "distinct_values", "digests",
)

_LEDGER_SQL = """
SELECT f.finding.type AS pii_type, e.vendor, e.model, e.region, e.actor_key,
       e.actor_team, e.actor_user,
       min(e.ts) AS first_ts, max(e.ts) AS last_ts,
       count(DISTINCT e.event_id) AS events, count(*) AS findings,
       count(DISTINCT f.finding.digest) AS distinct_values,
       list(DISTINCT f.finding.digest ORDER BY f.finding.digest) AS digests
FROM events AS e, unnest(e.pii_findings) AS f(finding)
WHERE e.event_id IN (SELECT unnest($ids::VARCHAR[]))
  AND e.ts BETWEEN $lo::TIMESTAMPTZ AND $hi::TIMESTAMPTZ
GROUP BY ALL
ORDER BY pii_type, vendor NULLS LAST, model NULLS LAST, actor_key NULLS LAST, actor_user
"""


def linked_event_ids(con: sqlite3.Connection, incident_id: int) -> tuple[list[str], str, str]:
    """The incident's linked event ids and the time range they span."""
    rows = con.execute(
        "SELECT event_id, ts FROM incident_events WHERE incident_id = ?", (incident_id,)
    ).fetchall()
    times = [r[1] for r in rows if r[1]]
    if len(times) == len(rows) and times:
        lo, hi = min(times, key=parse_ts), max(times, key=parse_ts)
    else:  # a provenance row without a time: no pruning, still correct
        lo, hi = "1970-01-01T00:00:00+00:00", "9999-12-31T00:00:00+00:00"
    return [r[0] for r in rows], lo, hi


def exposure(
    ws: Workspace,
    con: sqlite3.Connection,
    incident_id: int,
    *,
    lake: duckdb.DuckDBPyConnection | None = None,
) -> pa.Table:
    """The incident's exposure ledger as an Arrow table (columns `LEDGER_COLUMNS`).

    `lake` is a connection with the lake views a long-lived caller keeps (the TUI's);
    without one the lake is opened for this call. The ledger reads no text column, so
    masked views give the same ledger.
    """
    ids, lo, hi = linked_event_ids(con, incident_id)
    own = lake is None
    duck = open_lake(ws) if lake is None else lake
    try:
        return duck.sql(_LEDGER_SQL, params={"ids": ids, "lo": lo, "hi": hi}).to_arrow_table()
    except duckdb.Error as exc:
        raise StoreError(f"cannot compute the exposure ledger: {query_error(exc)}") from exc
    finally:
        if own:
            duck.close()


_RELATED_SQL = """
WITH mine AS (
    SELECT client_ip, actor_user, actor_key FROM events
    WHERE event_id IN (SELECT unnest($ids::VARCHAR[]))
      AND ts BETWEEN $lo::TIMESTAMPTZ AND $hi::TIMESTAMPTZ
)
SELECT e.event_id,
       CASE WHEN e.client_ip IN (SELECT client_ip FROM mine) THEN 'client_ip ' || e.client_ip
            WHEN e.actor_user IN (SELECT actor_user FROM mine) THEN 'actor_user ' || e.actor_user
            ELSE 'actor_key ' || e.actor_key END AS shared
FROM events AS e
WHERE e.event_id IN (SELECT unnest($others::VARCHAR[]))
  AND (e.client_ip IN (SELECT client_ip FROM mine)
       OR e.actor_user IN (SELECT actor_user FROM mine)
       OR e.actor_key IN (SELECT actor_key FROM mine))
"""


def related_incidents(
    ws: Workspace, con: sqlite3.Connection, incident_id: int
) -> list[dict[str, object]]:
    """Other incidents whose events share a client IP, user or key with this one's, and
    happened within a day of it: the other chapters of one story (e.g. a stolen laptop's
    key, then the same address at the cloud console), for a responder to merge or not."""
    ids, lo, hi = linked_event_ids(con, incident_id)
    if not ids:
        return []
    lo_ts, hi_ts = parse_ts(lo) - timedelta(days=1), parse_ts(hi) + timedelta(days=1)
    # Every other open case's events, from the link tables themselves: the
    # `incident_events` view's one-row-per-event dedup costs index probes per link, and an
    # event listed twice for one case changes nothing here.
    candidates = con.execute(
        "SELECT e.incident_id, e.event_id, e.ts FROM (SELECT incident_id, event_id, ts "
        "FROM incident_event_rows UNION ALL SELECT k.incident_id, a.event_id, a.ts "
        "FROM incident_alerts AS k JOIN alert_events AS a ON a.alert_id = k.alert_id "
        "WHERE k.by_reference = 1) AS e JOIN incidents AS i USING (incident_id) "
        "WHERE e.incident_id != ? AND i.merged_into IS NULL",
        (incident_id,),
    ).fetchall()
    owner = {
        event_id: other for other, event_id, ts in candidates
        if ts and lo_ts <= parse_ts(ts) <= hi_ts
    }
    if not owner:
        return []
    lake = open_lake(ws)
    try:
        rows = lake.execute(
            _RELATED_SQL,
            {"ids": ids, "lo": lo, "hi": hi, "others": list(owner)},
        ).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"cannot find related incidents: {query_error(exc)}") from exc
    finally:
        lake.close()
    shared: dict[int, set[str]] = {}
    for event_id, what in rows:
        if what:
            shared.setdefault(owner[event_id], set()).add(str(what))
    result: list[dict[str, object]] = []
    for other, values in sorted(shared.items()):
        title = con.execute(
            "SELECT title FROM incidents WHERE incident_id = ?", (other,)
        ).fetchone()[0]
        result.append({"incident_id": other, "title": title, "shared": sorted(values)})
    return result
