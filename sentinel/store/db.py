"""Opening `state.db`: SQLite in WAL mode with forward-only migrations.

WAL lets the daemon, the TUI, a cron scan and an analyst's query read while one
process writes. Each migration runs once, in order, inside a transaction, and the
applied version is kept in `PRAGMA user_version`.

Every write goes through `transaction(con)`: BEGIN IMMEDIATE takes the write lock up
front, so a busy database shows up at BEGIN (where it is safe to retry) and never halfway
through the body. The retry is bounded; after it the caller gets a `StoreError`, not a
hang. Keep the body short: other processes wait for it.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sentinel.exceptions import StoreError
from sentinel.schema import SCHEMA_VERSION

MIGRATIONS: list[str] = [
    # 1: ingest bookkeeping and the audit trail.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE files (
        file_id      INTEGER PRIMARY KEY,
        path         TEXT NOT NULL,
        device       INTEGER NOT NULL,
        inode        INTEGER NOT NULL,
        fingerprint  TEXT NOT NULL,
        fingerprint_len INTEGER NOT NULL,
        source       TEXT,
        framing      TEXT,
        offset       INTEGER NOT NULL DEFAULT 0,
        disk_size    INTEGER NOT NULL DEFAULT 0,  -- bytes on disk when last read
        records      INTEGER NOT NULL DEFAULT 0,
        quarantined  INTEGER NOT NULL DEFAULT 0,
        first_seen   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX files_identity ON files(device, inode);
    CREATE INDEX files_fingerprint ON files(fingerprint, fingerprint_len);
    CREATE INDEX files_path ON files(path);
    CREATE TABLE batches (
        batch_id     TEXT PRIMARY KEY,
        file_id      INTEGER NOT NULL REFERENCES files(file_id),
        start_offset INTEGER NOT NULL,
        end_offset   INTEGER NOT NULL,
        outputs      TEXT NOT NULL,   -- JSON list of [staging name, final path]
        pending      INTEGER NOT NULL, -- 1 until every output is renamed into place
        events       INTEGER NOT NULL,
        quarantined  INTEGER NOT NULL,
        committed_at TEXT NOT NULL
    );
    CREATE INDEX batches_file ON batches(file_id);
    CREATE TABLE audit (
        seq        INTEGER PRIMARY KEY,
        ts         TEXT NOT NULL,
        actor      TEXT NOT NULL,
        action     TEXT NOT NULL,
        detail     TEXT NOT NULL,
        prev_hash  TEXT NOT NULL,
        hash       TEXT NOT NULL
    );
    """,
    # 2: incidents, their evidence and playbook progress; the audit trail becomes the
    # keyed, per-incident timeline (see sentinel/store/audit.py).
    """
    ALTER TABLE audit ADD COLUMN incident_id INTEGER;
    ALTER TABLE audit ADD COLUMN os_user TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN alg TEXT NOT NULL DEFAULT 'sha256';
    CREATE INDEX audit_incident ON audit(incident_id, seq);
    CREATE TABLE incidents (
        incident_id   INTEGER PRIMARY KEY,
        title         TEXT NOT NULL,
        rule_id       TEXT NOT NULL,
        rules         TEXT NOT NULL,             -- JSON list of every rule id linked
        severity      TEXT NOT NULL,
        tags          TEXT NOT NULL DEFAULT '[]', -- JSON list
        status        TEXT NOT NULL DEFAULT 'new',
        assignee      TEXT,
        group_key     TEXT NOT NULL DEFAULT '',
        first_seen    TEXT NOT NULL,
        last_seen     TEXT NOT NULL,
        alert_count   INTEGER NOT NULL DEFAULT 0,
        event_count   INTEGER NOT NULL DEFAULT 0,
        playbook      TEXT,
        recurrence_of INTEGER REFERENCES incidents(incident_id),
        merged_into   INTEGER REFERENCES incidents(incident_id),
        split_from    INTEGER REFERENCES incidents(incident_id),
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE INDEX incidents_dedup ON incidents(rule_id, group_key, status);
    CREATE TABLE incident_alerts (
        incident_id INTEGER NOT NULL REFERENCES incidents(incident_id),
        alert_id    TEXT NOT NULL,
        rule_id     TEXT NOT NULL,
        level       TEXT NOT NULL,
        first_ts    TEXT NOT NULL,
        last_ts     TEXT NOT NULL,
        event_count INTEGER NOT NULL,
        linked_at   TEXT NOT NULL,
        PRIMARY KEY (incident_id, alert_id)
    );
    CREATE UNIQUE INDEX incident_alerts_alert ON incident_alerts(alert_id);
    CREATE TABLE incident_events (
        incident_id   INTEGER NOT NULL REFERENCES incidents(incident_id),
        event_id      TEXT NOT NULL,
        alert_id      TEXT NOT NULL,
        ts            TEXT,
        source        TEXT,
        source_file   TEXT,
        source_offset INTEGER,
        lake_file     TEXT,
        PRIMARY KEY (incident_id, event_id)
    );
    CREATE TABLE playbook_steps (
        incident_id INTEGER NOT NULL REFERENCES incidents(incident_id),
        step_id     TEXT NOT NULL,
        state       TEXT NOT NULL,               -- done, skipped, failed, approved
        actor       TEXT NOT NULL,
        note        TEXT NOT NULL DEFAULT '',
        detail      TEXT NOT NULL DEFAULT '{}',  -- JSON: kind-specific outcome
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (incident_id, step_id)
    );
    CREATE TABLE evidence (
        evidence_id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(incident_id),
        step_id     TEXT,
        kind        TEXT NOT NULL,               -- query, command, webhook
        title       TEXT NOT NULL,
        content     TEXT NOT NULL,               -- masked JSON rows or masked output
        sha256      TEXT NOT NULL,
        rows        INTEGER NOT NULL DEFAULT 0,
        actor       TEXT NOT NULL,
        created_at  TEXT NOT NULL
    )
    """,
    # 3: scans, their alerts (with each event's lake provenance) and per-rule watermarks
    # (see sentinel/store/alerts.py).
    """
    CREATE TABLE scans (
        scan_id      TEXT PRIMARY KEY,
        started_at   TEXT NOT NULL,
        finished_at  TEXT,
        batch_seq    INTEGER NOT NULL DEFAULT 0, -- newest batches.rowid covered
        rules        INTEGER NOT NULL DEFAULT 0,
        alerts       INTEGER NOT NULL DEFAULT 0,
        stats        TEXT NOT NULL DEFAULT '{}'  -- JSON: per-rule seconds and rows read
    );
    CREATE TABLE alerts (
        alert_id     TEXT PRIMARY KEY,           -- derived from rule, group and first event
        rule_id      TEXT NOT NULL,
        rule_title   TEXT NOT NULL,
        rule_kind    TEXT NOT NULL,              -- detection, correlation, baseline
        level        TEXT NOT NULL,
        tags         TEXT NOT NULL DEFAULT '[]', -- JSON list
        group_key    TEXT NOT NULL DEFAULT '',
        group_fields TEXT NOT NULL DEFAULT '{}', -- JSON object: field -> value
        first_ts     TEXT NOT NULL,
        last_ts      TEXT NOT NULL,
        event_count  INTEGER NOT NULL,
        scan_id      TEXT NOT NULL REFERENCES scans(scan_id),
        created_at   TEXT NOT NULL,
        detail       TEXT NOT NULL DEFAULT '{}'  -- JSON: e.g. a baseline's expected value
    );
    CREATE INDEX alerts_rule ON alerts(rule_id, group_key, first_ts);
    CREATE INDEX alerts_scan ON alerts(scan_id);
    CREATE TABLE alert_events (
        alert_id      TEXT NOT NULL REFERENCES alerts(alert_id),
        event_id      TEXT NOT NULL,
        ts            TEXT,
        source        TEXT,
        source_file   TEXT,
        source_offset INTEGER,
        lake_file     TEXT,                      -- relative to lake/events/
        batch_id      TEXT,
        PRIMARY KEY (alert_id, event_id)
    );
    CREATE INDEX alert_events_event ON alert_events(event_id);
    CREATE TABLE rule_watermarks (
        rule_id    TEXT PRIMARY KEY,
        batch_seq  INTEGER NOT NULL,             -- batches.rowid up to which it has run
        rule_hash  TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )
    """,
    # 4: ingest provenance: the content before a file's checkpoint (identity of files that
    # start alike), and per batch the path its bytes were read under and the
    # `source_file` label its events carry.
    """
    ALTER TABLE files ADD COLUMN tail_fingerprint TEXT;
    ALTER TABLE batches ADD COLUMN path TEXT;
    ALTER TABLE batches ADD COLUMN source_file TEXT;
    CREATE INDEX batches_path ON batches(path, file_id);
    """,
    # 5: the incidents that already hold an event, looked up by event id when a new alert
    # arrives (without it, every alert of thousands of events scanned the whole table).
    """
    CREATE INDEX incident_events_event ON incident_events(event_id);
    """,
    # 6: an incident refers to the events of the alerts a scan recorded instead of copying
    # them (a side-by-side scan copied 296,000 links, 3 s of its intake). The table keeps
    # the links given with their events (alerts built outside a scan, links made before
    # this migration) as `incident_event_rows`; `incident_events` becomes a view of those
    # plus the `alert_events` of every alert linked `by_reference`, one row per incident
    # and event: a given link wins, else the alert linked first (lowest rowid). Readers
    # keep reading `incident_events`; writers write `incident_event_rows`. (`+` keeps
    # SQLite from walking every alert of a large incident per event: an event is found
    # by id, then its few alerts by theirs.)
    """
    ALTER TABLE incident_events RENAME TO incident_event_rows;
    ALTER TABLE incident_alerts ADD COLUMN by_reference INTEGER NOT NULL DEFAULT 0;
    CREATE VIEW incident_events AS
    SELECT incident_id, event_id, alert_id, ts, source, source_file, source_offset, lake_file
    FROM incident_event_rows
    UNION ALL
    SELECT l.incident_id, e.event_id, e.alert_id, e.ts, e.source, e.source_file,
           e.source_offset, e.lake_file
    FROM incident_alerts AS l JOIN alert_events AS e ON e.alert_id = l.alert_id
    WHERE l.by_reference = 1
      AND NOT EXISTS (SELECT 1 FROM incident_event_rows AS r
                      WHERE r.incident_id = l.incident_id AND r.event_id = e.event_id)
      AND NOT EXISTS (SELECT 1 FROM alert_events AS o
                      JOIN incident_alerts AS k ON k.alert_id = o.alert_id
                      WHERE o.event_id = e.event_id AND +k.incident_id = l.incident_id
                        AND k.by_reference = 1 AND k.rowid < l.rowid)
    """,
    # 7: an alert remembers whether the incident intake has taken it. A scan commits its
    # alerts before the intake runs; an intake that failed (or a process that died) in
    # between left them out of every incident for good, since the next scan finds no new
    # alert. Now every scan first takes the alerts still pending. Alerts recorded before
    # this migration and linked to no incident were left behind that way: pending too.
    """
    ALTER TABLE alerts ADD COLUMN pending_intake INTEGER NOT NULL DEFAULT 0;
    UPDATE alerts SET pending_intake = 1
    WHERE alert_id NOT IN (SELECT alert_id FROM incident_alerts);
    CREATE INDEX alerts_pending_intake ON alerts(pending_intake) WHERE pending_intake = 1
    """,
    # 8: an alert's event links, compact (see sentinel/store/alerts.py). A row of
    # `alert_events` repeated the source file, the lake file and the batch id of its event
    # (555 bytes a row) and was keyed by a random alert id: recording a side-by-side scan's
    # 297,000 links took 2.3 s. Now `alerts` gets an integer key, `alert_ref`, given in
    # the order alerts are recorded (the rowid: stable, even through VACUUM); a link is
    # (alert_ref, event_id, ts, source_offset, file_ref), ordered by its alert, and
    # `link_files` holds each distinct provenance once. `alert_events` becomes a view with
    # the same columns, so every reader reads what it read; writers write the tables.
    # `alerts` is rebuilt for its new key (same columns, then `alert_ref`, same order).
    # No foreign keys on a link (checking two per link cost 15% of recording): its only
    # writer, `store.links`, takes both keys from rows it has just read or written, and
    # neither alerts nor link files are ever deleted.
    """
    DROP VIEW incident_events;
    CREATE TABLE alerts_keyed (
        alert_id       TEXT NOT NULL UNIQUE,
        rule_id        TEXT NOT NULL,
        rule_title     TEXT NOT NULL,
        rule_kind      TEXT NOT NULL,
        level          TEXT NOT NULL,
        tags           TEXT NOT NULL DEFAULT '[]',
        group_key      TEXT NOT NULL DEFAULT '',
        group_fields   TEXT NOT NULL DEFAULT '{}',
        first_ts       TEXT NOT NULL,
        last_ts        TEXT NOT NULL,
        event_count    INTEGER NOT NULL,
        scan_id        TEXT NOT NULL REFERENCES scans(scan_id),
        created_at     TEXT NOT NULL,
        detail         TEXT NOT NULL DEFAULT '{}',
        pending_intake INTEGER NOT NULL DEFAULT 0,
        alert_ref      INTEGER PRIMARY KEY
    );
    INSERT INTO alerts_keyed (alert_ref, alert_id, rule_id, rule_title, rule_kind, level, tags,
        group_key, group_fields, first_ts, last_ts, event_count, scan_id, created_at, detail,
        pending_intake)
    SELECT rowid, alert_id, rule_id, rule_title, rule_kind, level, tags, group_key,
        group_fields, first_ts, last_ts, event_count, scan_id, created_at, detail,
        pending_intake
    FROM alerts ORDER BY rowid;
    CREATE TABLE link_files (
        file_ref    INTEGER PRIMARY KEY,
        source      TEXT,
        source_file TEXT,
        lake_file   TEXT,                        -- relative to lake/events/
        batch_id    TEXT
    );
    INSERT INTO link_files (source, source_file, lake_file, batch_id)
    SELECT DISTINCT source, source_file, lake_file, batch_id FROM alert_events;
    CREATE INDEX link_files_lake ON link_files(lake_file);
    CREATE TABLE alert_links (
        alert_ref     INTEGER NOT NULL,          -- alerts.alert_ref
        event_id      TEXT NOT NULL,
        ts            TEXT,
        source_offset INTEGER,
        file_ref      INTEGER NOT NULL,          -- link_files.file_ref
        PRIMARY KEY (alert_ref, event_id)
    ) WITHOUT ROWID;
    INSERT INTO alert_links (alert_ref, event_id, ts, source_offset, file_ref)
    SELECT a.rowid, e.event_id, e.ts, e.source_offset, f.file_ref
    FROM alert_events AS e JOIN alerts AS a ON a.alert_id = e.alert_id
    JOIN link_files AS f ON f.source IS e.source AND f.source_file IS e.source_file
        AND f.lake_file IS e.lake_file AND f.batch_id IS e.batch_id
    ORDER BY a.rowid, e.event_id;
    DROP TABLE alert_events;
    DROP TABLE alerts;
    ALTER TABLE alerts_keyed RENAME TO alerts;
    CREATE INDEX alerts_rule ON alerts(rule_id, group_key, first_ts);
    CREATE INDEX alerts_scan ON alerts(scan_id);
    CREATE INDEX alerts_pending_intake ON alerts(pending_intake) WHERE pending_intake = 1;
    CREATE INDEX alert_links_event ON alert_links(event_id);
    CREATE VIEW alert_events AS
    SELECT a.alert_id, l.event_id, l.ts, f.source, f.source_file, l.source_offset,
           f.lake_file, f.batch_id
    FROM alert_links AS l JOIN alerts AS a ON a.alert_ref = l.alert_ref
    LEFT JOIN link_files AS f ON f.file_ref = l.file_ref;
    CREATE VIEW incident_events AS
    SELECT incident_id, event_id, alert_id, ts, source, source_file, source_offset, lake_file
    FROM incident_event_rows
    UNION ALL
    SELECT l.incident_id, e.event_id, e.alert_id, e.ts, e.source, e.source_file,
           e.source_offset, e.lake_file
    FROM incident_alerts AS l JOIN alert_events AS e ON e.alert_id = l.alert_id
    WHERE l.by_reference = 1
      AND NOT EXISTS (SELECT 1 FROM incident_event_rows AS r
                      WHERE r.incident_id = l.incident_id AND r.event_id = e.event_id)
      AND NOT EXISTS (SELECT 1 FROM alert_events AS o
                      JOIN incident_alerts AS k ON k.alert_id = o.alert_id
                      WHERE o.event_id = e.event_id AND +k.incident_id = l.incident_id
                        AND k.by_reference = 1 AND k.rowid < l.rowid)
    """,
]


def open_db(path: Path) -> sqlite3.Connection:
    """Open (creating and migrating if needed) the case store."""
    try:
        # check_same_thread=False: ingest hands its connection to one commit worker
        # while the opening thread waits; no two threads ever use it at once.
        con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        _migrate(con)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open case store {path}: {exc}") from exc
    return con


#: How long `transaction` keeps retrying a locked database before giving up (seconds).
BUSY_WAIT = 30.0


@contextmanager
def transaction(
    con: sqlite3.Connection, *, wait: float = BUSY_WAIT
) -> Iterator[sqlite3.Connection]:
    """Run the body as one write transaction: BEGIN IMMEDIATE … COMMIT, ROLLBACK on error.

    A locked database (another process writing) is retried with a growing, jittered
    backoff for at most `wait` seconds, then reported as a `StoreError`. Inside an
    already open transaction the body runs in a SAVEPOINT instead, so helpers that write
    (the audit trail, say) can be called from a bigger transaction.
    """
    if con.in_transaction:
        with _savepoint(con):
            yield con
        return
    _begin(con, wait)
    try:
        yield con
    except BaseException:
        _rollback(con)
        raise
    try:
        con.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(con)
        raise StoreError(f"cannot commit to the case store: {exc}") from exc


def _begin(con: sqlite3.Connection, wait: float) -> None:
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            con.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise StoreError(f"cannot start a case store transaction: {exc}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreError(
                    f"the case store stayed locked by another process for {wait:g} s; "
                    "try again when the other sentinel command has finished",
                    title="Case store busy",
                ) from exc
            # Jitter keeps two waiting processes from retrying in lockstep.
            time.sleep(min(delay * (1 + random.random()), left))
            delay = min(delay * 2, 0.5)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        # SQLITE_BUSY = 5, SQLITE_LOCKED = 6; extended codes keep the primary in the low byte.
        return code & 0xFF in (5, 6)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _rollback(con: sqlite3.Connection) -> None:
    # ROLLBACK fails only when SQLite already rolled back (e.g. on a full disk);
    # the original error is the one worth reporting.
    try:
        if con.in_transaction:
            con.execute("ROLLBACK")
    except sqlite3.Error:
        pass


# One fixed name serves nested savepoints too: SQLite's ROLLBACK TO and RELEASE act on the
# innermost savepoint of that name. A constant keeps every statement below literal SQL.
_SAVEPOINT = "SAVEPOINT sentinel_sp"
_ROLLBACK_TO = "ROLLBACK TO sentinel_sp"
_RELEASE = "RELEASE sentinel_sp"


@contextmanager
def _savepoint(con: sqlite3.Connection) -> Iterator[None]:
    con.execute(_SAVEPOINT)
    try:
        yield
    except BaseException:
        con.execute(_ROLLBACK_TO)
        con.execute(_RELEASE)
        raise
    con.execute(_RELEASE)


def _migrate(con: sqlite3.Connection) -> None:
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return
    with transaction(con):
        # Re-read inside the write lock: another process may have migrated meanwhile.
        version = con.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in script.split(";"):
                if statement.strip():
                    con.execute(statement)
            # PRAGMA takes no bound parameters; `number` is our own migration index.
            con.execute("PRAGMA user_version = " + str(int(number)))
        con.execute(
            "INSERT OR REPLACE INTO meta VALUES ('event_schema_version', ?)", (str(SCHEMA_VERSION),)
        )
