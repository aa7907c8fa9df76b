"""A user-defined JSON-lines source: schema columns mapped to JSON paths in `sentinel.toml`.

Gateways sentinel does not know (an in-house proxy, a vendor export) are made
ingestible without code: each event-schema column is given a JSON path, e.g.

    [sources.acme.fields]
    ts = "$.created_at"
    prompt_text = "$.request.messages[*].content"

Paths are user input, so they are bound as query parameters (`$1`, `$2`, …) and
never formatted into SQL. They are checked when the source is built: an unknown
column or a malformed path raises `ConfigError` (with a "did you mean" for columns),
and `ts` is required. A path that yields a list (a wildcard, or an array value) is
joined with newlines. Such a source recognises a record only through its optional
`match` path; otherwise it is chosen explicitly (`--source NAME` or the config).
Its Sigma logsource is `product: ai_gateway, service: NAME` unless the config gives a
`[sources.NAME.logsource]` table (`product`, `service`).

Cost: a record is parsed once for all the paths that name one value (one
`json_extract(record, [paths])` in a stage) and once per wildcard path (read straight
to text by `json_extract_string`). Extracting each path alone, then reading its JSON
through generic macros, parsed a prompt five times: 85 % of a custom-source ingest.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import duckdb

from sentinel.exceptions import ConfigError
from sentinel.schema import SOURCE_COLUMNS
from sentinel.sources.base import LogSource

# Columns a user may map: every source column except the engine's own provenance.
MAPPABLE_COLUMNS: tuple[str, ...] = tuple(c for c in SOURCE_COLUMNS if c != "source_offset")

_MACROS = [
    # Texts (a JSON string's text, any other value's JSON text, none for null) -> lines.
    """
    CREATE OR REPLACE MACRO jsonl_lines(texts) AS NULLIF(array_to_string(texts, chr(10)), '')
    """,
    # The JSON value a path yielded -> text; an array value -> its elements' lines. `v`
    # comes from `json_extract`, which writes JSON without leading space: its first
    # character tells an array without parsing it (a prompt can be long).
    """
    CREATE OR REPLACE MACRO jsonl_text(v) AS
        CASE WHEN starts_with(v, '[') THEN jsonl_lines(json_extract_string(v, '$[*]'))
             ELSE json_extract_string(v, '$') END
    """,
    # The first value of an array value, or the value itself (for the timestamp).
    """
    CREATE OR REPLACE MACRO jsonl_first(v) AS
        CASE WHEN starts_with(v, '[') THEN json_extract(v, '$[0]') ELSE v END
    """,
]


class JsonlSource(LogSource):
    """JSON lines whose fields are mapped to schema columns by configuration."""

    name = "jsonl"
    description = "JSON lines mapped to the event schema by sentinel.toml"
    macro_sql = _MACROS

    def __init__(
        self,
        name: str,
        fields: Mapping[str, str],
        match: str | None = None,
        defaults: Mapping[str, str] | None = None,
        logsource: tuple[str, str | None] | None = None,
    ) -> None:
        if not name or not isinstance(name, str):
            raise ConfigError("a custom source needs a non-empty name")
        # `name` is a class attribute on built-in sources; a configured source has its own.
        setattr(self, "name", name)  # noqa: B010
        setattr(self, "description", f"custom JSON-lines source {name!r}")  # noqa: B010
        # Rules select it as a gateway service named after it unless the config says else.
        setattr(self, "logsource", logsource or ("ai_gateway", name))  # noqa: B010
        self.fields = dict(fields)
        self.defaults = dict(defaults or {})
        self.match = match
        where = f"sources.{name}"
        for column in [*self.fields, *self.defaults]:
            _check_column(column, where)
        con = duckdb.connect(":memory:")  # one for every path: a connection costs ~20 ms
        try:
            self._wildcards = {
                column for column, path in self.fields.items()
                if _check_path(con, path, f"{where}.fields.{column}")
            }
            if match is not None:
                _check_path(con, match, f"{where}.match")
        finally:
            con.close()
        if "ts" not in self.fields:
            raise ConfigError(f"{where}: `ts` must be mapped to the path of the event time")
        for column, value in self.defaults.items():
            if not isinstance(value, str):
                raise ConfigError(f"{where}.defaults.{column}: must be a string")

    def recognise(self, record: dict[str, Any]) -> bool:
        if self.match is None:
            return False
        con = duckdb.connect(":memory:")
        try:
            row = con.execute(
                "SELECT json_exists(?::JSON, ?)", [json.dumps(record), self.match]
            ).fetchone()
        except duckdb.Error:
            return False
        finally:
            con.close()
        return bool(row and row[0])

    def stages(self) -> list[str]:
        """One parse of the record for every path that names one value (`_jsonl`, a list
        of JSON values in `_single` order); a wildcard path is read on its own below
        (DuckDB takes a list of paths only without wildcards)."""
        single = self._single()
        if not single:
            return []
        marks = ", ".join(f"${self._index('field', column)}" for column in single)
        return [f"json_extract(record, [{marks}]) AS _jsonl"]

    def select_list(self) -> str:
        single = self._single()
        columns: list[str] = []
        for column in SOURCE_COLUMNS:
            if column == "source_offset":
                columns.append("source_offset")
                continue
            expr = "NULL"
            if column in self.fields:
                mark = f"${self._index('field', column)}"
                if column in single:  # one JSON value, parsed out in the stage
                    value = f"_jsonl[{single.index(column) + 1}]"
                    expr = (
                        f"sentinel_ts(jsonl_first({value}))" if column == "ts"
                        else f"jsonl_text({value})"
                    )
                elif column == "ts":  # the first value a wildcard yields
                    expr = f"sentinel_ts(json_extract(record, {mark})[1])"
                else:  # every value a wildcard yields, as text, one per line
                    expr = f"jsonl_lines(json_extract_string(record, {mark}))"
            if column in self.defaults:
                default = f"${self._index('default', column)}::VARCHAR"
                expr = f"COALESCE({expr}, {default})" if expr != "NULL" else default
            columns.append(f"{expr} AS {column}")
        columns.append("NULL AS _error")
        return ",\n".join(columns)

    def _single(self) -> list[str]:
        """The mapped columns whose path yields one value (not a wildcard), in `$n` order."""
        return [c for c in SOURCE_COLUMNS if c in self.fields and c not in self._wildcards]

    def parameters(self) -> list[Any]:
        return [value for _, _, value in self._bindings()]

    def _bindings(self) -> list[tuple[str, str, str]]:
        """(kind, column, value) for each parameter, in `$n` order."""
        bound = [("field", c, self.fields[c]) for c in SOURCE_COLUMNS if c in self.fields]
        bound += [("default", c, self.defaults[c]) for c in SOURCE_COLUMNS if c in self.defaults]
        return bound

    def _index(self, kind: str, column: str) -> int:
        for n, (k, c, _) in enumerate(self._bindings(), start=1):
            if (k, c) == (kind, column):
                return n
        raise KeyError(column)


def _check_column(column: str, where: str) -> None:
    if column in MAPPABLE_COLUMNS:
        return
    close = difflib.get_close_matches(column, MAPPABLE_COLUMNS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"{where}: unknown column {column!r}{hint} (columns: {', '.join(MAPPABLE_COLUMNS)})"
    )


def _check_path(con: duckdb.DuckDBPyConnection, path: str, where: str) -> bool:
    """Check a JSON path; True when it is a wildcard (DuckDB yields a list for it)."""
    if not isinstance(path, str) or not path.startswith("$"):
        raise ConfigError(f"{where}: {path!r} is not a JSON path; paths start with '$'")
    try:
        row = con.execute("SELECT typeof(json_extract('{}'::JSON, ?))", [path]).fetchone()
    except duckdb.Error as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{where}: invalid JSON path {path!r}: {detail}") from exc
    return row is not None and str(row[0]).endswith("[]")
