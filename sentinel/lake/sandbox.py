"""The SQL sandbox: a query may read the lake views, and do nothing else.

Two walls, each enough on its own for the lake:

1. **Nothing to open.** `lock` runs after the views exist (they read through Arrow, see
   `lake.query`): DuckDB's local file system is disabled, external access is off, no
   directory is allowed, spilling to a temp directory is off, Python replacement scans
   are off and the configuration is locked. `COPY … TO`, `read_text('state.db')`,
   `ATTACH`, `INSTALL` and `glob()` have no file system to reach, however a statement
   is wrapped.
2. **Only reads parse.** `check` admits a statement by its parse tree, not its first
   word: SELECT (WITH, VALUES, DESCRIBE, SHOW and SUMMARIZE parse as SELECT) and
   EXPLAIN [ANALYZE] of one. EXPLAIN is unwrapped and its inner statement checked the
   same way; the text run is rebuilt from the checked part. PREPARE, EXECUTE, SET,
   PRAGMA, CALL, CREATE, COPY, ATTACH, … are refused. Inside a SELECT, every table
   reference is walked: the unmasked `_sentinel_*` datasets behind the views, other
   catalogs and file-reading table functions (`read_parquet`, `query`, …) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import duckdb

from sentinel.duck import one_line
from sentinel.exceptions import QueryError

PRIVATE_PREFIX = "_sentinel"
TABLE_FUNCTIONS = frozenset(
    {
        "range", "generate_series", "unnest", "json_each", "json_tree",
        "duckdb_tables", "duckdb_views", "duckdb_columns", "duckdb_functions",
        "duckdb_types", "duckdb_keywords", "pragma_table_info",
    }
)  # fmt: skip
"""Table functions a query may call: generators and catalog listings, none reads a file."""
REFUSED_FUNCTIONS = frozenset({"query", "query_table", "getenv", "read_blob", "read_text"})
METADATA_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
OWN_CATALOGS = frozenset({"", "memory", "temp", "system"})

NOT_ALLOWED = "sentinel sql only reads the lake views"
_EXPORT_HINT = " (to save a result use --output FILE)"
_EXPLAIN = re.compile(r"(?is)explain\s+(?:(analy[sz]e)\s+)?(.*)")
_LOCK_SETTINGS = (
    "SET temp_directory = ''",
    "SET python_enable_replacements = false",
    "SET allowed_directories = []",
    "SET allowed_paths = []",
    "SET enable_external_access = false",
    "SET disabled_filesystems = 'LocalFileSystem'",
    "SET lock_configuration = true",
)


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """Take every file system away from `con` and lock its configuration."""
    for setting in _LOCK_SETTINGS:
        con.execute(setting)


def check(con: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> str:
    """The SQL to run for `statement` when it only reads; QueryError otherwise."""
    kind = statement.type.name
    if kind == "SELECT":
        _check_select(con, statement.query)
        return statement.query
    if kind == "EXPLAIN":
        match = _EXPLAIN.fullmatch(strip_comments(statement.query))
        if match is None:
            raise QueryError(f"this EXPLAIN cannot be checked: {NOT_ALLOWED}")
        inner = split(con, match.group(2))
        if len(inner) != 1 or inner[0].type.name != "SELECT":
            what = inner[0].type.name if len(inner) == 1 else "several statements"
            raise QueryError(f"EXPLAIN of {what} is not allowed: {NOT_ALLOWED}")
        _check_select(con, inner[0].query)
        analyze = "ANALYZE " if match.group(1) else ""
        return f"EXPLAIN {analyze}{inner[0].query}"
    hint = _EXPORT_HINT if kind in {"COPY", "EXPORT"} else ""
    raise QueryError(f"{kind} statements are not allowed: {NOT_ALLOWED}{hint}")


def split(con: duckdb.DuckDBPyConnection, sql: str) -> list[duckdb.Statement]:
    """The statements of `sql`, in order (a parse error is a QueryError)."""
    try:
        return list(con.extract_statements(sql))
    except ValueError as exc:  # a statement type this duckdb's Python enum does not know
        raise QueryError(f"this statement is not allowed: {NOT_ALLOWED}") from exc
    except duckdb.Error as exc:
        raise QueryError(one_line(str(exc))) from exc


def _check_select(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    try:
        rows = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"this statement cannot be checked: {NOT_ALLOWED}") from exc
    tree: dict[str, Any] = json.loads(rows[0][0]) if rows else {"error": True}
    if tree.get("error"):
        raise QueryError(str(tree.get("error_message") or f"cannot parse: {NOT_ALLOWED}"))
    if len(list(tree.get("statements") or [])) != 1:
        raise QueryError(f"one statement at a time: {NOT_ALLOWED}")
    for node in _nodes(tree["statements"]):
        kind = node.get("type")
        if kind in ("BASE_TABLE", "SHOW_REF"):
            _check_table(node)
        elif kind == "TABLE_FUNCTION":
            name = _function_name(node.get("function"))
            if name not in TABLE_FUNCTIONS:
                raise QueryError(f"table function {name}() is not allowed: {NOT_ALLOWED}")
        elif node.get("class") == "FUNCTION":
            name = _function_name(node)
            if name in REFUSED_FUNCTIONS or name.startswith(PRIVATE_PREFIX):
                raise QueryError(f"function {name}() is not allowed: {NOT_ALLOWED}")


def _check_table(node: dict[str, Any]) -> None:
    name, schema, catalog = (
        str(node.get(key) or "").strip('"').lower()
        for key in ("table_name", "schema_name", "catalog_name")
    )
    if name.startswith(PRIVATE_PREFIX) or schema.startswith(PRIVATE_PREFIX):
        raise QueryError(f"{name} is not a view: {NOT_ALLOWED}")
    if catalog not in OWN_CATALOGS and schema not in METADATA_SCHEMAS:
        raise QueryError(f"{catalog}.{schema}.{name} is not a view: {NOT_ALLOWED}")
    if node.get("type") == "SHOW_REF":  # SHOW TABLES, SHOW events: names, no values
        return
    if any(ch in name for ch in "/\\.:") or "." in schema:
        raise QueryError(f"'{name}' is a path, not a view: {NOT_ALLOWED}")


def _function_name(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    return str(node.get("function_name", "")).lower()


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    """Every object of a serialised parse tree, depth first."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def strip_comments(sql: str) -> str:
    """`sql` without leading whitespace and comments, and without a trailing `;`."""
    text = sql
    while True:
        text = text.lstrip()
        if text.startswith("--"):
            text = text.partition("\n")[2]
        elif text.startswith("/*"):
            end = text.find("*/")
            text = "" if end < 0 else text[end + 2 :]
        else:
            break
    return text.rstrip().rstrip(";").rstrip()


def statement_complete(text: str) -> bool:
    """Whether `text` ends with a `;` outside quotes and comments (for line-wise input)."""
    state: str | None = None
    ended = False
    i = 0
    while i < len(text):
        char, pair = text[i], text[i : i + 2]
        if state is None:
            if char in "'\"":
                state, ended = char, False
            elif pair in ("--", "/*"):
                state = pair
                i += 1
            elif char == ";":
                ended = True
            elif not char.isspace():
                ended = False
        elif state in ("'", '"'):
            if char == state:
                state = None
        elif state == "--":
            if char == "\n":
                state = None
        elif pair == "*/":
            state = None
            i += 1
        i += 1
    return ended and state in (None, "--")
