"""What a field name in a Sigma rule refers to, and the SQL that reads it.

Rules name fields exactly as the event schema does (`actor_key`, `pii_types`), or reach
into the original record with a dotted path (`raw.metadata.user_api_key_alias`). Anything
else is an error: a misspelt field must not compile into a query that matches nothing.
Names are taken as written — no case folding, no aliases — because DuckDB identifiers are
case-insensitive and `Action` silently reading `action` would hide a typo.

Every field has a *text* form (a VARCHAR expression, used for string, regex and CIDR
matching) and a *kind* the backend uses to choose numeric comparison, list iteration or
JSON access.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from sentinel.schema import EVENT_SCHEMA

FieldKind = Literal["string", "number", "timestamp", "list", "json"]

RAW_PREFIX = "raw."
LIST_ELEMENT = "\x00element"
"""Pseudo field name the backend uses for 'the current element of a list column'."""
LIST_ELEMENT_SQL = "elem"

TEXT_KEYWORD_FIELDS = ("prompt_text", "response_text", "raw")
"""Where a keyword (a value without a field) is searched."""

UNSUPPORTED_COLUMNS = frozenset({"pii_findings"})
"""Columns a rule cannot match on directly (struct lists); use `pii_types` or `raw.` paths."""

DERIVED_LISTS: dict[str, str] = {
    # Where the findings are (`prompt_text`, `response_text`, …): "PII in a response".
    "pii_findings.field": 'list_transform("pii_findings", lambda f: f.field)',
}
"""List fields computed from a struct-list column, matched like `pii_types`."""


@dataclass(frozen=True)
class FieldRef:
    """A resolved rule field: its name as written, kind and SQL expressions."""

    name: str
    kind: FieldKind
    column_sql: str
    """The value as stored: the quoted column, or the JSON text for `raw.` paths."""

    @property
    def text_sql(self) -> str:
        """The value as VARCHAR, for string, regex and CIDR matching."""
        if self.kind in ("string", "json"):
            return self.column_sql
        return f"CAST({self.column_sql} AS VARCHAR)"

    @property
    def number_sql(self) -> str:
        """The value as a number; NULL (never an error) when the text is not numeric."""
        if self.kind == "number":
            return self.column_sql
        return f"TRY_CAST({self.text_sql} AS DOUBLE)"


def _kind(field: pa.Field) -> FieldKind:
    if pa.types.is_list(field.type):
        return "list"
    if pa.types.is_integer(field.type) or pa.types.is_floating(field.type):
        return "number"
    if pa.types.is_timestamp(field.type):
        return "timestamp"
    return "string"


COLUMN_KINDS: dict[str, FieldKind] = {f.name: _kind(f) for f in EVENT_SCHEMA}


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def json_path(keys: list[str]) -> str:
    """A DuckDB JSON path selecting nested object keys, each quoted (dots, spaces ok)."""
    parts = []
    for key in keys:
        escaped = key.replace("\\", "\\\\").replace('"', '\\"')
        parts.append(f'."{escaped}"')
    return "$" + "".join(parts)


PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
"""A JSON key that a JSON text can spell only as itself or with `\\u` escapes."""


def raw_path_sql(keys: list[str]) -> str:
    """`raw.a.b` as SQL: `json_extract_string(raw, '$."a"."b"')`, parsed only where it
    can be found.

    Parsing the raw JSON of every event was most of a scan pass's time and memory (two
    `raw.` fields of one rule: 0.3 s and +120 MB on 3,600 gateway events of 4.5 KB). A
    key the JSON holds is written in its text, either as itself or with `\\u` escapes
    (the only escapes a key of letters, digits, `_` and `-` can have), so an event whose
    text contains neither the last key nor any `\\u` cannot match and is not parsed.
    Other keys are always parsed (a `/` may be written `\\/`, a quote must be escaped).
    """
    extract = f"json_extract_string(raw, {quote_literal(json_path(keys))})"
    if not PLAIN_KEY.fullmatch(keys[-1]):
        return extract
    guard = f"contains(raw, {quote_literal(keys[-1])}) OR contains(raw, '\\u')"
    return f"(CASE WHEN {guard} THEN {extract} END)"


class UnknownFieldError(ValueError):
    """A field name that is neither a schema column nor a `raw.` path."""

    def __init__(self, name: str) -> None:
        self.name = name
        hint = difflib.get_close_matches(name, list(COLUMN_KINDS), n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        super().__init__(
            f"unknown field {name!r}: not an event schema column and not a 'raw.' path" + suggestion
        )


def is_known_field(name: str) -> bool:
    if name == LIST_ELEMENT:
        return True
    if name.startswith(RAW_PREFIX):
        return all(name[len(RAW_PREFIX) :].split("."))
    if name in DERIVED_LISTS:
        return True
    return name in COLUMN_KINDS and name not in UNSUPPORTED_COLUMNS


def resolve_field(name: str) -> FieldRef:
    """Resolve a rule field name; raises UnknownFieldError for anything unknown."""
    if name == LIST_ELEMENT:
        return FieldRef(name, "string", LIST_ELEMENT_SQL)
    if not is_known_field(name):
        raise UnknownFieldError(name)
    if name in DERIVED_LISTS:
        return FieldRef(name, "list", DERIVED_LISTS[name])
    if name.startswith(RAW_PREFIX):
        keys = name[len(RAW_PREFIX) :].split(".")
        return FieldRef(name, "json", raw_path_sql(keys))
    return FieldRef(name, COLUMN_KINDS[name], quote_identifier(name))
