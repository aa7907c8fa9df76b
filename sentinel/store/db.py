"""Opening `state.db`: SQLite in WAL mode with forward-only migrations.

WAL lets the daemon, the TUI, a cron scan and an analyst's query read while one
process writes. Each migration runs once, in order, inside a transaction, and the
applied version is kept in `PRAGMA user_version`.
"""

from __future__ import annotations

import sqlite3
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


def _migrate(con: sqlite3.Connection) -> None:
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version >= len(MIGRATIONS):
        return
    con.execute("BEGIN IMMEDIATE")
    try:
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
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
