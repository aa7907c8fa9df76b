"""Masking: the one way sentinel shows a finding, used by every command that prints text.

A finding is replaced by a safe hint that tells an analyst what it was without being it:
`card ****1111`, `j***@example.com`, `AKIA****WXYZ`. Secrets never show more than
their provider prefix and last four characters, short secrets and passwords not even
those. `mask_table` applies this to every string in an arbitrary query result (SQL
console aliases and substrings included), so no output path needs to know which columns
hold text. Masking is idempotent: a hint is never itself a finding.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from sentinel.pii import engine
from sentinel.pii.catalog import Catalog, default_catalog
from sentinel.pii.detectors import Detector

_LONG_SECRET = 20
"""Secrets at least this long may show their last four; shorter ones (passwords) never."""


def hint(detector: Detector, value: str) -> str:
    """The safe, human-readable stand-in for one finding's value."""
    if detector.kind == "secret":
        return _secret_hint(detector, value)
    digits = re.sub(r"\D", "", value)
    name = detector.name
    if name == "credit_card":
        return f"card ****{digits[-4:]}"
    if name == "email":
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if name == "ssn":
        return "ssn ***-**-****"
    if name == "iban":
        compact = value.replace(" ", "")
        return f"iban {compact[:2]}****{compact[-4:]}"
    if name == "phone":
        return f"phone ****{digits[-2:]}"
    if name == "ipv4":
        return f"ipv4 {value.split('.', 1)[0]}.*.*.*"
    if name == "ipv6":
        return f"ipv6 {value.split(':', 1)[0]}:****"
    if name == "date_of_birth":
        return "dob ****"
    compact = re.sub(r"[\s./-]", "", value)
    return f"{name} ****{compact[-2:]}" if len(compact) >= 8 else f"{name} ****"


def _secret_hint(detector: Detector, value: str) -> str:
    prefix = ""
    if detector.prefix:
        m = re.match(detector.prefix, value)
        prefix = m.group(0) if m else ""
    if detector.name in ("private_key", "generic_secret", "database_url") or (
        len(value) < _LONG_SECRET
    ):
        return f"{prefix}****" if prefix else f"{detector.name} ****"
    return f"{prefix or detector.name + ' '}****{value[-4:]}"


def placeholder(detector: Detector) -> str:
    """What `store_text = "masked"` leaves in the lake: `[CREDIT_CARD]`, `[EMAIL]`."""
    return f"[{detector.name.upper()}]"


def replace_spans(text: str, spans: Sequence[tuple[int, int, str]]) -> str:
    """`text` with each (start, end) span, sorted and disjoint, replaced by its string."""
    parts = []
    last = 0
    for start, end, replacement in spans:
        parts.append(text[last:start])
        parts.append(replacement)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def mask_text(text: str, catalog: Catalog | None = None) -> str:
    """`text` with every finding replaced by its hint."""
    if not text:
        return text
    masked = mask_array(pa.array([text], pa.large_string()), catalog)
    return str(masked[0].as_py())


def mask_array(
    values: pa.Array | pa.ChunkedArray, catalog: Catalog | None = None, placeholders: bool = False
) -> pa.Array:
    """A string array with every finding replaced (by its hint, or `[TYPE]` placeholders)."""
    catalog = catalog or default_catalog()
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    matches = engine.find(values, catalog)
    if not matches:
        return values
    mask = [False] * len(values)
    replacements = []
    for row, indexes in matches.by_row():
        text = values[row].as_py()
        spans = []
        for i in indexes:
            detector = catalog.detectors[matches.detectors[i]]
            shown = placeholder(detector) if placeholders else hint(detector, matches.values[i])
            spans.append((matches.starts[i], matches.ends[i], shown))
        mask[row] = True
        replacements.append(replace_spans(text, spans))
    value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    plain = values.cast(value_type) if pa.types.is_dictionary(values.type) else values
    return pc.replace_with_mask(plain, pa.array(mask), pa.array(replacements, value_type))


def mask_table(table: pa.Table, catalog: Catalog | None = None) -> pa.Table:
    """`table` with findings masked in every string and list-of-string column."""
    catalog = catalog or default_catalog()
    for index, column_field in enumerate(table.schema):
        masked = _mask_column(table.column(index), column_field.type, catalog)
        if masked is not None:
            table = table.set_column(index, column_field.name, masked)
    return table


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _mask_column(
    column: pa.ChunkedArray, kind: pa.DataType, catalog: Catalog
) -> pa.ChunkedArray | None:
    if _is_text(kind):
        masked = mask_array(column, catalog)
        target = kind.value_type if pa.types.is_dictionary(kind) else kind
        return pa.chunked_array([masked.cast(target)], type=target)
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and _is_text(kind.value_type):
        chunks = []
        for chunk in column.chunks:
            if chunk.offset:  # offsets + validity of a slice cannot be reused as they are
                chunk = chunk.take(pa.array(range(len(chunk))))
            flat = mask_array(chunk.values, catalog).cast(kind.value_type)
            rebuilt = type(chunk).from_arrays(chunk.offsets, flat, mask=chunk.is_null())
            chunks.append(rebuilt.cast(kind))
        return pa.chunked_array(chunks, type=kind)
    return None
