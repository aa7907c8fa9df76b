"""The Runtime: everything long-lived for one workspace, owned by one object.

A CLI command opens one Runtime and closes it when it ends; the watcher daemon keeps one
for its lifetime and the TUI one for its session. Everything that outlives a single
call lives here and nowhere else (no module-level pools or caches):

- the **config**, reloadable: `config` re-reads `sentinel.toml` when it changes on
  disk. A new config is validated first (TOML, keys, types, user PII detectors, custom
  source mappings); if it is invalid the old one stays in force and the problem is
  reported once per edit (a warning on the `sentinel` logger, and `config_error`);
- **DuckDB**: `duckdb()` opens a connection with every sentinel macro
  (`sentinel.duck`); `ingest_session()` is the calling thread's ingest session, whose
  bound queries are kept between runs;
- the **PII scan pool** (`pii`): threads and worker processes, started on first use,
  health-checked, restartable, stopped by `close()`;
- the ingest **read buffers** (`buffers`);
- **state.db** connections: `state_db()` is the calling thread's connection, opened on
  first use (SQLite connections must not be shared between threads at once).

Per-thread resources are keyed by the thread and closed once it has ended (checked
whenever another thread asks for one), so a TUI that runs each query in a fresh worker
thread does not pile up connections over a shift.

`close()` (or leaving the `with` block) stops and closes all of it; a closed Runtime
refuses further use. Invariant: a Runtime never changes the workspace by itself;
opening one only reads the config and key.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import duckdb

from sentinel import duck
from sentinel.buffers import BufferPools
from sentinel.config import Config, load_config
from sentinel.duck import DuckSession
from sentinel.exceptions import ConfigError, SentinelError, WorkspaceError
from sentinel.pii.catalog import load_catalog
from sentinel.pii.pool import ScanHealth, ScanPool
from sentinel.sources.base import LogSource
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

log = logging.getLogger(__name__)

_Stamp = tuple[int, int, int] | None


def _stamp(path: Path) -> _Stamp:
    """What changes when a file is edited or replaced: inode, size, mtime (ns)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def validate_config(config: Config) -> tuple[LogSource, ...]:
    """Check the parts of a config that are only compiled when used (raises ConfigError).

    Returns the config's custom sources, built (and so checked) once per config.
    """
    from sentinel.sources.jsonl import JsonlSource

    load_catalog(config)  # user PII detectors: regexes, validators
    return tuple(
        JsonlSource(c.name, c.fields, match=c.match, defaults=c.defaults)
        for c in config.sources
    )


@dataclass(frozen=True)
class Health:
    """A snapshot of what a Runtime holds, for `sentinel` health checks and soak tests."""

    config_ok: bool
    config_error: str | None
    pii: ScanHealth
    ingest_sessions: int
    bound_queries: int
    state_connections: int
    buffer_bytes: int


class Runtime:
    """The long-lived resources of one workspace (see the module docstring)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        path = workspace.config_path
        stamp = _stamp(path)
        config = load_config(path)  # an invalid config at start is an error, not a warning
        self._custom = validate_config(config)
        self._config, self._config_stamp = config, stamp
        self.config_error: ConfigError | None = None
        self.pii = ScanPool()
        self.buffers = BufferPools()
        self._lock = threading.Lock()
        self._sessions: dict[threading.Thread, DuckSession] = {}
        self._state: dict[threading.Thread, sqlite3.Connection] = {}
        self._closed = False

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Runtime:
        """A Runtime over the existing workspace at `path`."""
        return cls(Workspace.open(path))

    # -- config ---------------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The config in force: re-read when `sentinel.toml` changed, the old one kept
        (and the problem reported once) when the new one is invalid."""
        if _stamp(self.workspace.config_path) != self._config_stamp:
            try:
                self.reload_config()
            except ConfigError:
                pass  # reported by reload_config; the previous config stays in force
        return self._config

    def reload_config(self) -> Config:
        """Read and validate `sentinel.toml` now; raises ConfigError and keeps the old one."""
        path = self.workspace.config_path
        stamp = _stamp(path)
        try:
            config = load_config(path)
            custom = validate_config(config)
        except ConfigError as exc:
            with self._lock:
                first = self._config_stamp != stamp
                self._config_stamp, self.config_error = stamp, exc
            if first:
                log.warning("%s; keeping the previous configuration", exc)
            raise
        with self._lock:
            self._config, self._custom = config, custom
            self._config_stamp, self.config_error = stamp, None
        return config

    def config_and_sources(self) -> tuple[Config, tuple[LogSource, ...]]:
        """The config in force and the custom sources it declares, as one consistent pair."""
        self.config  # noqa: B018 - re-reads sentinel.toml if it changed
        with self._lock:
            return self._config, self._custom

    # -- DuckDB ---------------------------------------------------------------------

    def duckdb(self) -> duckdb.DuckDBPyConnection:
        """A new in-memory DuckDB connection (UTC, every sentinel macro); the caller closes it."""
        self._check_open()
        return duck.connect()

    def ingest_session(self) -> DuckSession:
        """This thread's ingest session: one connection whose bound queries are reused."""
        self._check_open()
        me = threading.current_thread()
        with self._lock:
            session = self._sessions.get(me)
        if session is None:
            self._prune()
            session = DuckSession(duck.connect())
            with self._lock:
                self._sessions[me] = session
        return session

    # -- state.db -------------------------------------------------------------------

    def state_db(self) -> sqlite3.Connection:
        """This thread's `state.db` connection (opened, and migrated, on first use).

        Write through `sentinel.store.db.transaction`. A thread may hand its connection
        to one helper thread at a time (ingest's commit worker does), never share it.
        """
        self._check_open()
        me = threading.current_thread()
        with self._lock:
            con = self._state.get(me)
        if con is not None and not _alive(con):
            with self._lock:
                self._state.pop(me, None)
            _close_quietly(con)
            con = None
        if con is None:
            self._prune()
            con = open_db(self.workspace.state_db)
            with self._lock:
                self._state[me] = con
        return con

    def _prune(self) -> None:
        """Close the per-thread resources of threads that have ended."""
        with self._lock:
            dead_sessions = [t for t in self._sessions if not t.is_alive()]
            sessions = [self._sessions.pop(t) for t in dead_sessions]
            dead_state = [t for t in self._state if not t.is_alive()]
            state = [self._state.pop(t) for t in dead_state]
        for session in sessions:
            session.close()
        for con in state:
            _close_quietly(con)

    # -- health and lifetime --------------------------------------------------------

    def health(self) -> Health:
        self._prune()
        with self._lock:
            sessions = list(self._sessions.values())
            state = len(self._state)
        error = self.config_error
        return Health(
            config_ok=error is None,
            config_error=str(error) if error else None,
            pii=self.pii.health(),
            ingest_sessions=len(sessions),
            bound_queries=sum(s.cached for s in sessions),
            state_connections=state,
            buffer_bytes=self.buffers.held_bytes,
        )

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the PII pool, close every connection, drop the buffers. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions, self._sessions = list(self._sessions.values()), {}
            state, self._state = list(self._state.values()), {}
        self.pii.close()
        for session in sessions:
            session.close()
        for con in state:
            _close_quietly(con)
        self.buffers.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise SentinelError("this sentinel runtime is closed", title="Internal error")

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _alive(con: sqlite3.Connection) -> bool:
    """Whether a cached connection still works (a health check before reuse)."""
    try:
        con.execute("SELECT 1").fetchone()
    except sqlite3.Error:
        return False
    return True


def _close_quietly(con: sqlite3.Connection) -> None:
    try:
        con.close()
    except sqlite3.Error:
        pass


def as_runtime(target: Workspace | Runtime) -> tuple[Runtime, bool]:
    """`target` as a Runtime, and whether the caller opened it (and so must close it)."""
    if isinstance(target, Runtime):
        return target, False
    if isinstance(target, Workspace):
        return Runtime(target), True
    raise WorkspaceError(f"expected a workspace or a runtime, got {type(target).__name__}")
