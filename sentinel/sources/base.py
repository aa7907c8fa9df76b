"""The contract every log format implements.

A source does two things: it recognises its records from their content (never from a
file name), and it turns records into event-schema rows with one DuckDB SQL query, so
the per-record work (JSON extraction, flattening, casts) runs vectorised inside DuckDB.

The ingest engine handles framing (JSON lines, one pretty-printed document, a JSON
array, gzip) and unwrapping of envelope documents. It then evaluates the source's
`select_list()` over a relation `records(source_offset BIGINT, record JSON)` holding
one row per record, as `SELECT <select_list> FROM records`; one output row per record
is therefore guaranteed.
The select list must name (`expr AS name`) every column of
`sentinel.schema.SOURCE_COLUMNS` plus `_error`: NULL for a good row, otherwise the
reason the record is rejected (it goes to quarantine with that reason). `event_id` may
be NULL; the engine then derives a stable id from the source and the raw record. The
engine casts each column to its schema type, so `ts` must already be a TIMESTAMPTZ
(a NULL `ts` quarantines the record as "no valid timestamp").

SQL macros usable in any source query (registered by `sentinel.duck`):
`sentinel_ts(json)` parses epoch seconds/milliseconds, ISO-8601 and
`YYYY-MM-DD HH:MM:SS.ffffff` into TIMESTAMPTZ (UTC); `sentinel_text(json)` gives the
text of a JSON string, or the JSON text of any other value, NULL for JSON null.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
"""What a source name may be (use `fullmatch`): it becomes a lake partition directory,
a view name in `sentinel sql` and a config table name, so one rule serves all three."""


class LogSource(ABC):
    """A log format sentinel can ingest."""

    name: ClassVar[str]
    """Short identifier: the `source` column value and the `--source` option value."""

    description: ClassVar[str] = ""
    """One line for `sentinel sources` and the README."""

    logsource: ClassVar[tuple[str, str | None]] = ("ai_gateway", None)
    """The Sigma `(product, service)` of its events, e.g. `("ai_gateway", "litellm")`.

    A rule selects this source when its logsource names the product and either this
    service or none (`product: ai_gateway` selects every gateway source, built-in,
    configured or plugin). A service of None stands for the source's own name, so a
    plugin that declares nothing is the gateway service named after itself."""

    envelope_paths: ClassVar[tuple[str, ...]] = ()
    """JSON paths of arrays that hold the records when a document wraps them,
    e.g. `("$.Records",)` for CloudTrail files. A top-level JSON array is always unwrapped."""

    @abstractmethod
    def recognise(self, record: dict[str, Any]) -> bool:
        """True when this (already unwrapped) sample record is of this format."""

    select_sql: ClassVar[str] = ""
    """The select list (see the module docstring); or override `select_list()`."""

    stage_sql: ClassVar[Sequence[str]] = ()
    """Optional SELECT lists evaluated, in order, before the select list.

    Each stage adds columns to every row (its input's columns are kept); a stage column
    is computed once per row however often later stages or the select list refer to it.
    Use it to parse a record once instead of once per field, e.g.
    `json_transform(record, '{"id": "VARCHAR", "metadata": "JSON"}') AS r`, then read
    `r.id` and `r.metadata` in the select list."""

    macro_sql: ClassVar[Sequence[str]] = ()
    """Statements run once per connection before use (e.g. CREATE OR REPLACE MACRO)."""

    @property
    def sigma_logsource(self) -> tuple[str, str]:
        """`logsource` with the service filled in (the source's name when undeclared)."""
        product, service = self.logsource
        return product, service or self.name

    def select_list(self) -> str:
        """The SELECT list turning `records(source_offset, record)` into schema columns."""
        if not self.select_sql:
            raise NotImplementedError(f"source {self.name!r} defines no select list")
        return self.select_sql

    def stages(self) -> list[str]:
        return list(self.stage_sql)

    def setup_sql(self) -> list[str]:
        return list(self.macro_sql)

    def parameters(self) -> list[Any]:
        """Values bound to `$1, $2, …` in `select_list()` (for config-driven sources)."""
        return []
