"""DuckDB views over the lake: how every reader (`sentinel sql`, scans, the TUI) sees events.

`LakeViews(ws).install(con)` gives a DuckDB connection these views:

    events     every committed event, the schema columns in schema order
    <source>   one per source: the built-in and plugin sources, those of `sentinel.toml`,
               plus any `source=` directory found in the lake
    findings   one row per PII finding, unnested from `events.pii_findings`
    alerts, incidents, …   read-only copies of the `state.db` tables that exist

Invariants:
- DuckDB opens no file itself. The lake is read through pyarrow datasets registered in
  the connection (a list of the committed batch files, made when the views are
  installed or refreshed), and `state.db` tables are read with `sqlite3` into Arrow. So
  the connection can run with DuckDB's local file system disabled (`sandbox.lock`):
  a query cannot read `state.db`, the secret key or staging files, and cannot write.
- A lake file that is not an event Parquet file (corrupt, truncated, foreign) is left
  out of the views and reported in `problems`; every other batch stays queryable.
- With a `Masker`, text columns are masked inside the views (see `lake.privacy`), so a
  query only ever sees masked text. The unmasked datasets are registered under
  `_sentinel_*` names that `sandbox` refuses in a user's query.
- An empty lake (or a source with no files) gives views over a typed zero-row dataset,
  so queries bind and return nothing rather than failing.
- Columns are selected by name: files of a later schema version with extra columns
  still read, and a column an older file lacks reads as NULL.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sentinel.detect.sqlmacros import install_macros
from sentinel.duck import one_line
from sentinel.exceptions import QueryError
from sentinel.lake.privacy import Masker
from sentinel.schema import EVENT_SCHEMA
from sentinel.sources.base import SOURCE_NAME
from sentinel.sources.registry import available_sources
from sentinel.workspace import Workspace

RESERVED_VIEWS = frozenset({"events", "findings", "alerts", "incidents"})
STATE_TABLES: tuple[str, ...] = ("alerts", "incidents")
"""`state.db` tables a session shows as views (when they exist)."""
INTERNAL_COLUMNS: dict[str, frozenset[str]] = {"alerts": frozenset({"alert_ref"})}
"""Store keys of those tables that mean nothing to an analyst (`alert_ref` joins an alert
to its compact links, which the session does not show), left out of their views."""
FILE_GLOB = "date=*/*.parquet"
PRIVATE_PREFIX = "_sentinel"
MASK_FUNCTION = "_sentinel_mask"
REQUIRED_COLUMNS = ("event_id", "ts", "source")

FINDING_CONTEXT = ("event_id", "ts", "source", "actor_user", "actor_key", "vendor", "model")
FINDING_FIELDS = ("type", "field", "start", "end", "digest")

RETRY_HINT = (
    "a lake file changed while the query ran (compaction or retention); run the query again"
)

Connect = Callable[[], duckdb.DuckDBPyConnection]


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory, UTC DuckDB connection with sentinel's macros (no views yet)."""
    try:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # stdout carries data only
        # The macros compiled detection rules call (CIDR matching), so a rule's SQL from
        # `sentinel rules convert` runs as-is in `sentinel sql`.
        install_macros(con)
    except duckdb.Error as exc:
        raise query_error(exc) from exc
    return con


@dataclass
class LakeViews:
    """Installs (and refreshes) the views of one workspace on a connection."""

    ws: Workspace
    masker: Masker | None = None
    state_tables: tuple[str, ...] = STATE_TABLES
    problems: list[str] = field(default_factory=list)
    """Lake files left out of the views at the last install, with the reason."""
    _checked: dict[tuple[str, int, int, int], str | None] = field(default_factory=dict)

    def install(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """(Re)create every view, picking up batches and sources added since; their names."""
        lake = self.ws.lake_dir
        self.problems = []
        names: list[str] = []
        try:
            if self.masker is not None:
                _install_mask_function(con, self.masker)
            partitions = {"events": "source=*"}
            partitions.update({name: f"source={name}" for name in lake_sources(self.ws)})
            for name, pattern in partitions.items():
                con.register(f"{PRIVATE_PREFIX}_lake_{name}", self._dataset(lake, pattern))
                con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {self._select(name)}')
                names.append(name)
            con.execute("CREATE OR REPLACE VIEW findings AS " + _FINDINGS_SQL)
            names.append("findings")
            for name, table in read_state_tables(self.ws.state_db, self.state_tables).items():
                if self.masker is not None:
                    table = self.masker.mask_table(table)
                con.register(f"{PRIVATE_PREFIX}_state_{name}", table)
                con.execute(
                    f'CREATE OR REPLACE VIEW "{name}" AS '
                    f'SELECT * FROM "{PRIVATE_PREFIX}_state_{name}"'
                )
                names.append(name)
        except duckdb.Error as exc:
            raise query_error(exc) from exc
        return sorted(names)

    def _select(self, name: str) -> str:
        columns = []
        for column in EVENT_SCHEMA:
            quoted = f'"{column.name}"'
            if self.masker is not None and self.masker.masks_column(column.name, column.type):
                columns.append(f"{MASK_FUNCTION}({quoted}) AS {quoted}")
            else:
                columns.append(quoted)
        return f'SELECT {", ".join(columns)} FROM "{PRIVATE_PREFIX}_lake_{name}"'

    def _dataset(self, lake: Path, pattern: str) -> ds.Dataset:
        files = []
        for path in sorted(lake.glob(f"{pattern}/{FILE_GLOB}")):
            problem = self._check(path)
            if problem is None:
                files.append(str(path))
            elif pattern == "source=*":  # reported once, from the events view
                self.problems.append(f"{path.relative_to(lake)}: {problem}")
        return ds.dataset(files, schema=EVENT_SCHEMA, format="parquet")

    def _check(self, path: Path) -> str | None:
        """Why `path` is not a readable event file (None: it is), cached by file identity."""
        try:
            stat = path.stat()
        except OSError as exc:
            return f"cannot read: {exc.strerror}"
        identity = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if identity not in self._checked:
            self._checked[identity] = file_problem(path)
        return self._checked[identity]


def file_problem(path: Path) -> str | None:
    """Why a lake file cannot be read as events: not Parquet, or columns of the wrong type."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        return f"not a readable Parquet file ({one_line(str(exc))[:120]})"
    for name in REQUIRED_COLUMNS:
        if name not in schema.names:
            return f"not an event file (no column {name!r})"
    for column in EVENT_SCHEMA:
        if column.name in schema.names:
            found = schema.field(column.name).type
            if not _compatible(found, column.type):
                return f"column {column.name!r} is {found}, not {column.type}"
    return None


def _compatible(found: pa.DataType, expected: pa.DataType) -> bool:
    if found == expected:
        return True
    texts = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    return any(t(found) for t in texts) and any(t(expected) for t in texts)


def read_state_tables(state_db: Path, names: Iterable[str]) -> dict[str, pa.Table]:
    """The `state.db` tables among `names` that exist, read-only, as Arrow tables."""
    if not state_db.is_file():
        return {}
    tables: dict[str, pa.Table] = {}
    try:
        con = sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)
    except sqlite3.Error:
        return {}
    try:
        present = {
            row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        for name in names:
            if name not in present:
                continue
            cursor = con.execute(f'SELECT * FROM "{name}"')  # a declared name, never user text
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
            hidden = INTERNAL_COLUMNS.get(name, frozenset())
            tables[name] = pa.table(
                {c: _column([r[i] for r in rows]) for i, c in enumerate(columns)
                 if c not in hidden}
            )
    except sqlite3.Error as exc:
        raise QueryError(f"cannot read {state_db}: {exc}") from exc
    finally:
        con.close()
    return tables


def _column(values: list[object]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowException, OverflowError):  # SQLite columns may mix types
        return pa.array([None if v is None else str(v) for v in values], pa.string())


def _install_mask_function(con: duckdb.DuckDBPyConnection, masker: Masker) -> None:
    try:
        con.remove_function(MASK_FUNCTION)
    except (duckdb.Error, ValueError):
        pass
    con.create_function(  # type: ignore[call-overload]
        MASK_FUNCTION,
        masker.mask_strings,
        [duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"),
        type="arrow",
        side_effects=False,
    )


def open_lake(ws: Workspace, *, connect: Connect = connect) -> duckdb.DuckDBPyConnection:
    """A trusted, unmasked, lake-only connection with the views (hunts, scans)."""
    from sentinel.lake import sandbox

    con = connect()
    LakeViews(ws).install(con)
    sandbox.lock(con)
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[str]:
    """Re-install the unmasked views of `open_lake`, picking up batches and sources."""
    return LakeViews(ws).install(con)


def lake_sources(ws: Workspace) -> list[str]:
    """Source names usable as view names: known sources plus `source=` directories found."""
    names = set(available_sources())
    names.update(source.name for source in ws.config.sources)
    if ws.lake_dir.is_dir():
        names.update(
            entry.name.removeprefix("source=")
            for entry in os.scandir(ws.lake_dir)
            if entry.name.startswith("source=") and entry.is_dir()
        )
    return sorted(
        n
        for n in names
        if SOURCE_NAME.fullmatch(n)
        and n not in RESERVED_VIEWS
        and not n.startswith(PRIVATE_PREFIX)
    )


def query_error(exc: BaseException, mask: Callable[[str], str] | None = None) -> QueryError:
    """A DuckDB error as one readable line (masked), with a hint when lake files moved."""
    message = one_line(str(exc))
    vanished = ("No files found", "No such file or directory", "Failed to open")
    if isinstance(exc, duckdb.IOException | FileNotFoundError) or any(
        text in message for text in vanished
    ):
        message = f"{message} ({RETRY_HINT})"
    elif isinstance(exc, duckdb.PermissionException):
        message = f"{message} (sentinel sql reads only the lake views)"
    return QueryError(mask(message) if mask else message)


_FINDINGS_SQL = (
    "SELECT "
    + ", ".join(f'e."{c}"' for c in FINDING_CONTEXT)
    + ", "
    + ", ".join(f'f.finding."{c}" AS "{c}"' for c in FINDING_FIELDS)
    + " FROM events AS e, unnest(e.pii_findings) AS f(finding)"
)
