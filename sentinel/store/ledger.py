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


def exposure(ws: Workspace, con: sqlite3.Connection, incident_id: int) -> pa.Table:
    """The incident's exposure ledger as an Arrow table (columns `LEDGER_COLUMNS`)."""
    ids, lo, hi = linked_event_ids(con, incident_id)
    lake = open_lake(ws)
    try:
        return lake.sql(_LEDGER_SQL, params={"ids": ids, "lo": lo, "hi": hi}).to_arrow_table()
    except duckdb.Error as exc:
        raise StoreError(f"cannot compute the exposure ledger: {query_error(exc)}") from exc
    finally:
        lake.close()
