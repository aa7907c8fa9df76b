"""DuckDB views over the lake: how every reader (`sentinel sql`, scans, the TUI) sees events.

`open_lake(ws)` returns an in-memory DuckDB connection with these views:

    events     every committed event, the schema columns in schema order
    <source>   one per source: the built-in and plugin sources, plus any `source=` directory
               found in the lake (e.g. `litellm`, `bedrock`, `cloudtrail`, `openai_audit`)
    findings   one row per PII finding, unnested from `events.pii_findings`

Invariants:
- No DuckDB database file is opened: the views read the Parquet files directly, so a
  reader never holds a lock an ingest could wait on. The glob is expanded when a query is
  bound, so a long session sees batches committed after it started.
- Only `lake/events/` is readable. After the views exist, external access is switched off
  except for that directory and the configuration is locked; `run_query` also refuses the
  statements that write files or load code (COPY, EXPORT, ATTACH, INSTALL, LOAD, …), so a
  query can neither change the lake nor read staging files, `state.db` or the secret key.
- An empty lake (or a source with no files) gives views over a typed zero-row table, so
  queries bind and return nothing rather than failing.
- Columns are selected by name, so files written by a later schema version with extra
  columns still read; `union_by_name` fills columns an older file lacks with NULL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import duckdb
import pyarrow as pa

from sentinel.detect.sqlmacros import install_macros
from sentinel.exceptions import QueryError
from sentinel.schema import EVENT_SCHEMA, empty_table
from sentinel.sources.base import SOURCE_NAME
from sentinel.sources.registry import ENTRY_POINT_GROUP
from sentinel.workspace import Workspace

RESERVED_VIEWS = frozenset({"events", "findings", "incidents"})
FILE_GLOB = "date=*/*.parquet"
_EMPTY = "_sentinel_empty_events"
_GLOB_CHARS = re.compile(r"[*?\[\]{}]")

FINDING_CONTEXT = ("event_id", "ts", "source", "actor_user", "actor_key", "vendor", "model")
FINDING_FIELDS = ("type", "field", "start", "end", "digest")

# Statement types a query may run. Everything else (COPY, EXPORT, ATTACH, DETACH, LOAD and
# INSTALL, VACUUM, …) is refused: the session is in-memory, so CREATE/INSERT only ever
# touch scratch tables, while those statements reach the file system or load code.
_ALLOWED = frozenset(
    getattr(duckdb.StatementType, name)
    for name in (
        "SELECT",
        "EXPLAIN",
        "PRAGMA",
        "CALL",
        "SET",
        "VARIABLE_SET",
        "CREATE",
        "DROP",
        "INSERT",
        "UPDATE",
        "DELETE",
        "ALTER",
        "TRANSACTION",
        "PREPARE",
        "EXECUTE",
        "ANALYZE",
        "RELATION",
    )
    if hasattr(duckdb.StatementType, name)
)

RETRY_HINT = (
    "a lake file changed while the query ran (compaction or retention); run the query again"
)


@dataclass(frozen=True)
class QueryResult:
    """The rows of one query, at most `limit` of them, and how many the query produced."""

    table: pa.Table
    total_rows: int

    @property
    def more_rows(self) -> int:
        return self.total_rows - self.table.num_rows


def open_lake(ws: Workspace) -> duckdb.DuckDBPyConnection:
    """An in-memory, UTC, lake-only DuckDB connection with the lake views."""
    try:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        con.register(_EMPTY, empty_table())
        # The macros compiled detection rules call (CIDR matching), so a rule's SQL from
        # `sentinel rules convert` runs as-is in `sentinel sql`.
        install_macros(con)
        refresh_views(con, ws)
        con.execute("SET allowed_directories = ?", [[str(ws.lake_dir) + "/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        raise query_error(exc) from exc
    return con


def refresh_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[str]:
    """(Re)create the lake views, picking up sources added since; returns the view names."""
    lake = ws.lake_dir
    views = {"events": _scan(lake, "source=*")}
    for name in lake_sources(ws):
        views[name] = _scan(lake, f"source={name}")
    for name, select in views.items():
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {select}')
    con.execute("CREATE OR REPLACE VIEW findings AS " + _FINDINGS_SQL)
    return sorted([*views, "findings"])


def lake_sources(ws: Workspace) -> list[str]:
    """Source names usable as view names: known sources plus `source=` directories found."""
    names = set(entry_points(group=ENTRY_POINT_GROUP).names)
    if ws.lake_dir.is_dir():
        names.update(
            entry.name.removeprefix("source=")
            for entry in ws.lake_dir.iterdir()
            if entry.name.startswith("source=") and entry.is_dir()
        )
    return sorted(n for n in names if SOURCE_NAME.fullmatch(n) and n not in RESERVED_VIEWS)


def run_query(con: duckdb.DuckDBPyConnection, sql: str, *, limit: int | None = None) -> QueryResult:
    """Run `sql` (one or more statements) and return the last statement's rows.

    At most `limit` rows are kept; the rest are counted, not held in memory.
    """
    try:
        statements = con.extract_statements(sql)
    except ValueError as exc:  # a statement type this duckdb's Python enum does not know
        raise QueryError("this statement is not allowed: sentinel sql only reads the lake") from exc
    except duckdb.Error as exc:
        raise query_error(exc) from exc
    if not statements:
        raise QueryError("empty query")
    for statement in statements:
        _check_allowed(statement)
    try:
        for statement in statements[:-1]:
            con.execute(statement.query)
        relation = con.sql(statements[-1].query)
        if relation is None:
            return QueryResult(pa.table({}), 0)
        return _collect(relation.to_arrow_reader(1024), limit)
    except (duckdb.Error, pa.ArrowException) as exc:
        raise query_error(exc) from exc


def query_error(exc: BaseException) -> QueryError:
    """A DuckDB error as one readable line, with a retry hint when lake files moved."""
    message = one_line(str(exc))
    if isinstance(exc, duckdb.IOException | FileNotFoundError) or "No files found" in message:
        message = f"{message} ({RETRY_HINT})"
    elif isinstance(exc, duckdb.PermissionException):
        message = f"{message} (sentinel sql reads only the lake views)"
    return QueryError(message)


def one_line(message: str) -> str:
    """DuckDB's multi-line message without the `LINE n:` excerpt, on one line."""
    head = re.split(r"\n\s*LINE \d+:", message, maxsplit=1)[0]
    return " ".join(part.strip() for part in head.splitlines() if part.strip())


def _check_allowed(statement: duckdb.Statement) -> None:
    if statement.type not in _ALLOWED:
        name = statement.type.name
        hint = " (to save a result use --format csv|json|parquet --output FILE)"
        raise QueryError(
            f"{name} statements are not allowed: sentinel sql only reads the lake"
            + (hint if name in {"COPY", "EXPORT"} else "")
        )


def _collect(reader: pa.RecordBatchReader, limit: int | None) -> QueryResult:
    kept: list[pa.RecordBatch] = []
    held = total = 0
    for batch in reader:
        total += batch.num_rows
        if limit is None or held < limit:
            take = batch if limit is None else batch.slice(0, limit - held)
            kept.append(take)
            held += take.num_rows
    return QueryResult(pa.Table.from_batches(kept, schema=reader.schema), total)


def _columns() -> str:
    return ", ".join(f'"{name}"' for name in EVENT_SCHEMA.names)


def _scan(lake: Path, partition: str) -> str:
    """SELECT of the schema columns from the files under one partition pattern."""
    if next(lake.glob(f"{partition}/{FILE_GLOB}"), None) is None:
        return f"SELECT {_columns()} FROM {_EMPTY}"
    pattern = f"{lake}/{partition}/{FILE_GLOB}"
    if _GLOB_CHARS.search(str(lake)):
        # The workspace path itself holds glob characters: list the files now instead
        # (a file compacted away later then needs the view refreshed; see RETRY_HINT).
        files = sorted(str(path) for path in lake.glob(f"{partition}/{FILE_GLOB}"))
        target = "[" + ", ".join(_literal(f) for f in files) + "]"
    else:
        target = _literal(pattern)
    return (
        f"SELECT {_columns()} FROM read_parquet({target}, "
        f"hive_partitioning = false, union_by_name = true)"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_FINDINGS_SQL = (
    "SELECT "
    + ", ".join(f'e."{c}"' for c in FINDING_CONTEXT)
    + ", "
    + ", ".join(f'f.finding."{c}" AS "{c}"' for c in FINDING_FIELDS)
    + " FROM events AS e, unnest(e.pii_findings) AS f(finding)"
)
