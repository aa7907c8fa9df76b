"""The dashboard's DuckDB sessions: long-lived, masked, shared by its worker threads.

Two masked `SqlSession`s live as long as the app: one for the dashboard's own queries
(incident detail, sources; `SharedSession.query`) and the SQL console's (`Console`),
which keeps a result open while the analyst scrolls. Their views are installed once and
refreshed only when the workspace changed (a committed batch or incident, seen through
SQLite's `data_version`), so a screen does not pay for re-listing the lake and re-reading
state tables each time. A console reveal opens its own unmasked session for that one
query, after the audit trail has recorded why.

DuckDB allows one open result per connection and a connection is not for two threads at
once: every use of a session holds its lock (a console query in one worker and the
fetching of the previous result in another), and a `Result` knows when a newer query
has replaced it.

The console's connections keep DuckDB's streaming buffer small (`SMALL_STREAMING_BUFFER`). An
open result is computed ahead of what was fetched until the buffer is full, and here
computing a row means masking its text (a Python UDF holding the GIL): with DuckDB's
default of about 1 MB the first 500 rows of `SELECT * FROM events` waited on the masking
of rows nobody had asked for (0.6–1.5 s against 0.2–0.3 s measured on 10M events),
and that masking went on competing with the drawing of the grid.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import duckdb
import pyarrow as pa

from sentinel.exceptions import QueryError, SentinelError
from sentinel.lake.query import STATE_TABLES, Connect, connect, query_error
from sentinel.lake.session import QueryResult, SqlSession
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

COMMAND = "tui sql"
SMALL_STREAMING_BUFFER = "SET streaming_buffer_size = '1KB'"
"""The console connections' DuckDB setting (see the docstring): one literal statement."""
Mask = Callable[[pa.Table], pa.Table]


def console_connect() -> duckdb.DuckDBPyConnection:
    """A lake connection (`lake.query.connect`) that computes little ahead of a fetch."""
    con = connect()
    try:
        con.execute(SMALL_STREAMING_BUFFER)
    except duckdb.Error as exc:
        con.close()
        raise query_error(exc) from exc
    return con


class Result:
    """The last statement's rows of one console query, fetched a chunk at a time."""

    def __init__(
        self, rows: QueryResult, console: Console, generation: int, mask: Mask | None
    ) -> None:
        self._rows = rows
        self._console = console
        self.generation = generation
        self.mask = mask
        """The output-side net for showing these rows (None: revealed, shown as they are)."""
        self.done = False
        self.fetched = 0

    @property
    def current(self) -> bool:
        """False once a newer query replaced this one (its rows are gone)."""
        return self.generation == self._console.generation

    def fetch(self, rows: int) -> pa.Table:
        """Up to `rows` more rows (fewer, and `done`, at the end)."""
        with self._console.lock:
            if not self.current:
                self.done = True
                return self._rows.schema.empty_table()
            table = self._rows.fetch(rows)
        self.fetched += table.num_rows
        if table.num_rows < rows:
            self.done = True
        return table


class SharedSession:
    """One masked session, opened on first use and refreshed when the workspace changed."""

    def __init__(
        self, ws: Workspace, command: str, state_tables: tuple[str, ...] = STATE_TABLES,
        connect: Connect = connect,
    ) -> None:
        self.ws = ws
        self.command = command
        self.state_tables = state_tables
        self.connect = connect
        self.lock = threading.RLock()
        self._session: SqlSession | None = None
        self._state: sqlite3.Connection | None = None
        self._seen: int | None = None

    def session(self) -> SqlSession:
        """The masked session, its views refreshed if the workspace changed since."""
        with self.lock:
            seen = self._workspace_version()
            if self._session is None:
                self._session = SqlSession(
                    self.ws, command=self.command, state_tables=self.state_tables,
                    connect=self.connect,
                )
            elif seen != self._seen:
                self._session.refresh()
            self._seen = seen
            return self._session

    def query(self, sql: str, params: dict[str, object] | None = None) -> pa.Table:
        """A trusted query of the dashboard's own (values bound) over the masked views."""
        with self.lock:
            session = self.session()
            try:
                return session.con.sql(sql, params=params or {}).to_arrow_table()
            except duckdb.Error as exc:
                raise query_error(exc, session.mask) from exc

    def close(self) -> None:
        with self.lock:
            for closing in (self._session, self._state):
                if closing is not None:
                    closing.close()
            self._session = self._state = None

    def _workspace_version(self) -> int:
        """Changes when another connection committed to state.db (a batch, an incident)."""
        if self._state is None:
            self._state = open_db(self.ws.state_db)
        return int(self._state.execute("PRAGMA data_version").fetchone()[0])


class Console(SharedSession):
    """What the SQL screen runs queries on: one open result at a time."""

    def __init__(self, ws: Workspace) -> None:
        super().__init__(ws, COMMAND, connect=console_connect)
        self.generation = 0
        self._revealed: SqlSession | None = None

    def schema(self) -> dict[str, list[tuple[str, str]]]:
        """Every view and its columns (the sidebar)."""
        with self.lock:
            session = self.session()
            return {view: session.schema(view) for view in session.tables()}

    def run(self, query: str, reason: str | None = None) -> Result:
        """Run every statement of `query` in order; the last one's result, unread.

        With a `reason` the rows are unmasked: the reveal is written to the audit trail
        (query and reason masked) before any statement runs.
        """
        with self.lock:
            self.generation += 1
            self._close_revealed()
            if reason is None:
                session = self.session()
            else:
                session = SqlSession(self.ws, reveal_reason=reason, command=COMMAND,
                                     connect=console_connect)
                self._revealed = session
                self._audit(session, query)
            last = None
            for result in session.execute(query):
                last = result
            if last is None:
                raise QueryError("the query returned no result")
            mask = None if session.revealed else session.masker.mask_table
            return Result(last, self, self.generation, mask)

    def close(self) -> None:
        with self.lock:
            self.generation += 1
            self._close_revealed()
            super().close()

    def _close_revealed(self) -> None:
        if self._revealed is not None:
            self._revealed.close()
            self._revealed = None

    def _audit(self, session: SqlSession, query: str) -> None:
        reveal = session.reveal(query)
        assert reveal is not None
        con = open_db(self.ws.state_db)
        try:
            audit.record(con, "reveal", {
                "command": reveal.command, "query": reveal.query, "reason": reveal.reason,
            })
        except SentinelError:
            session.close()
            self._revealed = None
            raise
        finally:
            con.close()
