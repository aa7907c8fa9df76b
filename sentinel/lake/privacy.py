"""What a SQL session without reveal may see: the column policy and the masking it applies.

Masking happens *before* a query sees a value. The session's views wrap every text
column of the lake in `Masker.mask_strings` (a vectorised DuckDB UDF), so no function a
query applies afterwards (`left()`, `replace()`, `lower()`, a cast error, a JSON function)
can see, cut or reassemble the original: it only ever holds the masked text. DuckDB's
projection pushdown keeps the UDF off the columns a query does not touch, so
`SELECT count(*)` or a `GROUP BY model` costs nothing extra.

The policy, per event column:
- metadata (`event_id`, `ts`, `source`, `model`, the finding columns, …) is shown as it is;
- who and from where (`actor_*`, `client_ip`, `user_agent`, `resource`, `endpoint`) is
  shown in clear: it is what an investigator works with, not leaked content. A stricter
  deployment sets `[privacy] mask_identities = true` and these are masked too;
- every other string column (`prompt_text`, `response_text`, `raw`, and any column a
  later schema adds) is masked. Unknown means masked.

A finding is shown as its hint followed by a short keyed tag (`card ****1111 ·9c01`): the
first four hex digits of the finding's digest under the workspace key, so two different
cards stay two groups in a `GROUP BY` without either being revealed.

Escapes that hide an ASCII character (`\\u0040`, `\\/`, `%40`) are decoded before the scan
and the whole escaped span is masked, so a value stored JSON-escaped in `raw` is found
as what it decodes to (and a query's `json_extract` or `url_decode` cannot rebuild it).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.pii import engine
from sentinel.pii.catalog import Catalog, digest, load_catalog, normalise
from sentinel.pii.masking import TAG_LENGTH, hint, mask_table, replace_spans, tagged
from sentinel.workspace import Workspace

IDENTITY_COLUMNS = frozenset(
    {
        "actor_user", "actor_key", "actor_team", "actor_type",
        "client_ip", "user_agent", "resource", "endpoint",
    }
)  # fmt: skip
"""Who did it and from where: in clear unless `[privacy] mask_identities = true`."""

METADATA_COLUMNS = frozenset(
    {
        "event_id", "source", "source_file", "kind", "action", "outcome", "vendor",
        "model", "region", "pii_types", "pii_findings",
    }
)  # fmt: skip
"""Event columns sentinel itself describes (ids, enums, finding types and digests)."""


# An escape standing for a printable ASCII character, a quote or a line break: what a
# finding could hide behind (`\u0040` for `@`, `%2F` for `/`, `%0A` inside a PEM block).
_HIDING = r"\\u00(?:[2-7][0-9a-fA-F]|0[9aAdD])|\\[/\"]|%(?:[2-7][0-9a-fA-F]|0[9aAdD])"
_HIDING_RE = re.compile(_HIDING)


@dataclass(frozen=True)
class Masker:
    """Masks values with the workspace's detector catalog, hints tagged by its key."""

    catalog: Catalog
    key: bytes
    mask_identities: bool = False

    @classmethod
    def for_workspace(cls, ws: Workspace) -> Masker:
        config = ws.config
        return cls(
            load_catalog(config),
            ws.secret_key(),
            config.privacy.mask_identities,
        )

    def masks_column(self, name: str, kind: pa.DataType) -> bool:
        """Whether a view shows column `name` masked."""
        if name in METADATA_COLUMNS or not _holds_text(kind):
            return False
        return self.mask_identities or name not in IDENTITY_COLUMNS

    def tag(self, type_name: str, value: str) -> str:
        detector = self.catalog.detector_for(type_name)
        normalised = normalise(detector, value) if detector else value
        return digest(self.key, normalised)[:TAG_LENGTH]

    def mask_strings(self, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        """A string array with each finding replaced by its tagged hint.

        A text holding hiding escapes is scanned twice, as it is and decoded (decoding
        can also break a finding: `LIKE '%4539…'` holds `%45`); every span found either
        way is masked, overlapping spans merged.
        """
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
        n = len(values)
        if n == 0 or values.null_count == n:
            return values
        decoded: list[tuple[int, _Decoded]] = []
        texts = values
        hiding = pc.match_substring_regex(values, _HIDING).fill_null(False)
        if pc.any(hiding).as_py():
            rows = np.flatnonzero(hiding.to_numpy(zero_copy_only=False)).tolist()
            decoded = [(row, _decode(values[row].as_py())) for row in rows]
            extra = pa.array([d.text for _, d in decoded], values.type)
            texts = pa.chunked_array([values, extra], type=values.type)
        matches = engine.find(texts, self.catalog)
        if not matches:
            return values
        spans: dict[int, list[tuple[int, int, str]]] = {}
        tags: dict[tuple[str, str], str] = {}
        for found_row, indexes in matches.by_row():
            row, text = decoded[found_row - n] if found_row >= n else (found_row, None)
            for i in indexes:
                detector = self.catalog.detectors[matches.detectors[i]]
                value = matches.values[i]
                memo = (detector.name, value)
                if memo not in tags:
                    tags[memo] = tagged(hint(detector, value), self.tag(*memo))
                start, end = matches.starts[i], matches.ends[i]
                if text is not None:  # a decoded text: offsets map back to the escaped ones
                    start, end = text.raw(start), text.raw(end)
                spans.setdefault(row, []).append((start, end, tags[memo]))
        changed = np.zeros(n, dtype=bool)
        changed[list(spans)] = True
        replaced = [replace_spans(values[r].as_py(), _merged(spans[r])) for r in sorted(spans)]
        return pc.replace_with_mask(values, pa.array(changed), pa.array(replaced, values.type))

    def mask_text(self, text: str) -> str:
        """One string masked (error messages, audited queries, the prompt's history)."""
        if not text:
            return text
        return str(self.mask_strings(pa.array([text], pa.large_string()))[0].as_py())

    def mask_table(self, table: pa.Table) -> pa.Table:
        """The output-side net: every text in a result masked, identity columns excepted.

        The views already masked what they hold; this catches text a query built in
        ways the views cannot see (a literal typed into the query, a state table).
        """
        for index, column_field in enumerate(table.schema):
            kind = column_field.type
            if not _holds_text(kind) or (
                not self.mask_identities and column_field.name in IDENTITY_COLUMNS
            ):
                continue
            column = table.column(index)
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                chunks = [self.mask_strings(chunk) for chunk in column.chunks]
                masked = pa.chunked_array(chunks, type=kind)
            else:  # nested text (lists, structs, maps): the catalog's untagged hints
                single = pa.table({column_field.name: column})
                masked = mask_table(single, self.catalog).column(0)
            table = table.set_column(index, column_field, masked)
        return table


@dataclass(frozen=True)
class _Decoded:
    """A text with its hiding escapes decoded, and how to map offsets back."""

    text: str
    at: list[int]
    """Decoded offset of each escape, ascending."""
    extra: list[int]
    """Raw characters gained before and through each escape (cumulative, from 0)."""

    def raw(self, offset: int) -> int:
        """The raw offset of decoded `offset` (an escape is never cut in half)."""
        return offset + self.extra[bisect_left(self.at, offset)]


def _merged(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Spans sorted, overlapping ones joined (the first one's hint stands for the union)."""
    out: list[tuple[int, int, str]] = []
    for start, end, shown in sorted(spans):
        if out and start < out[-1][1]:
            last = out[-1]
            out[-1] = (last[0], max(last[1], end), last[2])
        else:
            out.append((start, end, shown))
    return out


def _decode(text: str) -> _Decoded:
    parts: list[str] = []
    at: list[int] = []
    extra = [0]
    last = 0
    length = 0
    for match in _HIDING_RE.finditer(text):
        parts.append(text[last : match.start()])
        length += match.start() - last
        escape = match.group()
        char = escape[1] if len(escape) == 2 else chr(int(escape[-2:], 16))
        parts.append(char)
        at.append(length)
        extra.append(extra[-1] + len(escape) - 1)
        length += 1
        last = match.end()
    parts.append(text[last:])
    return _Decoded("".join(parts), at, extra)


def _holds_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return True
    if pa.types.is_string_view(kind):  # masked as nested text is (`masking.mask_table`)
        return True
    if pa.types.is_dictionary(kind):
        return False
    return any(_holds_text(kind.field(i).type) for i in range(kind.num_fields))
