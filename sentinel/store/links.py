"""The events behind each alert, stored compact and read as `alert_events`.

Tables (migration 8 in `sentinel.store.db`):

    alert_links   (alert_ref, event_id, ts, source_offset, file_ref), keyed by alert then
                  event, WITHOUT ROWID: the table is its key's B-tree
    link_files    (file_ref, source, source_file, lake_file, batch_id): each provenance once
    alert_events  a view of the two with `alerts.alert_id`: (alert_id, event_id, ts, source,
                  source_file, source_offset, lake_file, batch_id), what every reader reads

Why: a scan records a link per event of each alert (297,000 for the side-by-side bench's
ten rules). As one wide row each (the source file, lake file and batch id repeated, 555
bytes, keyed by a random alert id into two indexes) they took 2.3 s to insert and 165 MB;
compact, keyed by an integer given in recording order, 1.1 s and 23 MB (measured on this
machine, the event-id index included).

Invariants:
- Writers write here (`insert_links`, `insert_feed`), inside the caller's transaction;
  readers read the `alert_events` view. A link belongs to a stored alert (`alert_ref`) and
  a `link_files` row (`file_ref`), both read or written in the same transaction (not
  declared as foreign keys: checking them cost 15% of recording). Neither alerts nor link
  files are ever changed or deleted, so a key means one alert or provenance for good.
- At most one link per (alert, event): a repeat is ignored.
- A scan's links arrive in key order (its alerts' keys are the newest), so they are
  appended to the table; only the event-id index (which finds the alerts sharing an
  event, `store.grouping`) takes them in random places.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

LINK_COLUMNS = (
    "alert_id", "event_id", "ts", "source", "source_file", "source_offset", "lake_file",
    "batch_id",
)
"""An `alert_events` row; `ts` as Python's `datetime.isoformat()` writes it."""

FileKey = tuple[str | None, str | None, str | None, str | None]
"""A link's provenance: (source, source_file, lake_file, batch_id)."""

_INSERT = (
    "INSERT OR IGNORE INTO alert_links (alert_ref, event_id, ts, source_offset, file_ref) "
    "VALUES (?, ?, ?, ?, ?)"
)


@runtime_checkable
class LinkFeed(Protocol):
    """Links kept outside Python (a scan's, in DuckDB), handed over already compact, so no
    Python object is built per link beyond the row `executemany` binds."""

    def files(self) -> list[FileKey]:
        """The distinct provenances of the links."""
        ...

    def compact(
        self, alerts: Mapping[str, int], files: Mapping[FileKey, int]
    ) -> Iterable[Sequence[Any]]:
        """(alert_ref, event_id, ts, source_offset, file_ref) of the links of `alerts`
        (alert id -> alert_ref) only, ordered by alert_ref then event_id; `files` gives
        each provenance's `file_ref`."""
        ...


def file_refs(con: sqlite3.Connection, files: Iterable[FileKey]) -> dict[FileKey, int]:
    """The `link_files` row of each provenance, added when new (a few per scan: one per
    lake file read)."""
    refs: dict[FileKey, int] = {}
    for key in dict.fromkeys(files):
        source, source_file, lake_file, batch_id = key
        row = con.execute(
            "SELECT file_ref FROM link_files WHERE lake_file IS ? AND source_file IS ? "
            "AND source IS ? AND batch_id IS ? ORDER BY file_ref LIMIT 1",
            (lake_file, source_file, source, batch_id),
        ).fetchone()
        if row is None:
            cursor = con.execute(
                "INSERT INTO link_files (source, source_file, lake_file, batch_id) "
                "VALUES (?, ?, ?, ?)", key,
            )
            refs[key] = int(cursor.lastrowid or 0)
        else:
            refs[key] = int(row[0])
    return refs


def alert_refs(con: sqlite3.Connection, alert_ids: Iterable[str]) -> dict[str, int]:
    """The key (`alert_ref`) of each stored alert among `alert_ids`."""
    ids = json.dumps(list(dict.fromkeys(alert_ids)))
    return dict(con.execute(
        "SELECT alert_id, alert_ref FROM alerts "
        "WHERE alert_id IN (SELECT value FROM json_each(?))", (ids,)))


def insert_links(
    con: sqlite3.Connection,
    rows: Iterable[Sequence[Any]],
    refs: Mapping[str, int] | None = None,
) -> None:
    """Store links given as `alert_events` rows (`LINK_COLUMNS` order), of alerts already
    stored; with `refs` (alert id -> alert_ref), only the links of those alerts."""
    given = list(rows)
    if refs is None:
        refs = alert_refs(con, (row[0] for row in given))
    kept = [row for row in given if row[0] in refs]
    files = file_refs(con, ((r[3], r[4], r[6], r[7]) for r in kept))
    compact = [(refs[r[0]], r[1], r[2], r[5], files[(r[3], r[4], r[6], r[7])]) for r in kept]
    compact.sort(key=lambda link: (link[0], link[1]))  # stable: of repeats, the first stays
    con.executemany(_INSERT, compact)


def insert_feed(con: sqlite3.Connection, refs: Mapping[str, int], feed: LinkFeed) -> None:
    """Store the links of the alerts `refs` (alert id -> alert_ref) from a `LinkFeed`."""
    if refs:
        con.executemany(_INSERT, feed.compact(refs, file_refs(con, feed.files())))
