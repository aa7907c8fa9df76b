"""Masking: the one way sentinel shows a finding, used by every command that prints text.

A finding is replaced by a safe hint that tells an analyst what it was without being it:
`card ****1111`, `j***@example.com`, `AKIA****WXYZ`. Secrets never show more than
their provider prefix and last four characters, short secrets and passwords not even
those. `mask_table` applies this to every string in an arbitrary query result (SQL
console aliases and substrings included, in any of Arrow's layouts of text: string,
large string, string view), so no output path needs to know which columns hold text.
Masking is idempotent: a hint is never itself a finding.

A small array (a few alert rows, one `mask_text`) is masked through Python strings
(`engine.find_strings`) and never loads `pyarrow.compute`: the same findings and hints
as a column's, at a fraction of the start-up cost a `sentinel scan` from cron pays.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa

from sentinel.pii import engine
from sentinel.pii.catalog import Catalog, default_catalog
from sentinel.pii.detectors import Detector
from sentinel.pii.verdicts import Matches

_LONG_SECRET = 20
"""Secrets at least this long may show their last four; shorter ones (passwords) never."""


TAG_MARK = " ·"
TAG_LENGTH = 4
"""A shown finding is its hint, TAG_MARK and the first TAG_LENGTH hex digits of its keyed
digest (`card ****1111 ·9c01`): two values with the same hint read apart, and the tag says
nothing about the value to anyone without the workspace key."""


def tagged(hint_text: str, value_digest: str) -> str:
    return hint_text + TAG_MARK + value_digest[:TAG_LENGTH]


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
    kind = values.type
    if pa.types.is_string_view(kind):  # few compute kernels take views: mask a copy
        masked = mask_array(values.cast(pa.large_string()), catalog, placeholders)
        return _as_type(masked, kind)
    small = values.nbytes <= 2 * engine.SMALL_INPUT_BYTES  # offsets and validity included
    if small and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        texts = values.to_pylist()
        if engine.fits_strings(texts):
            matches = engine.find_strings(texts, catalog)
            if not matches:
                return values
            for row, text in _replaced(texts.__getitem__, matches, catalog, placeholders):
                texts[row] = text
            return pa.array(texts, kind)
    import pyarrow.compute as pc  # a column's way: see the module docstring

    matches = engine.find(values, catalog)
    if not matches:
        return values
    mask = [False] * len(values)
    replacements = []
    for row, text in _replaced(lambda row: values[row].as_py(), matches, catalog, placeholders):
        mask[row] = True
        replacements.append(text)
    value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
    plain = values.cast(value_type) if pa.types.is_dictionary(values.type) else values
    return pc.replace_with_mask(plain, pa.array(mask), pa.array(replacements, value_type))


def _replaced(
    text_of: Callable[[int], str], matches: Matches, catalog: Catalog, placeholders: bool
) -> Iterator[tuple[int, str]]:
    """(row, its text with every finding replaced) for each row that has findings."""
    for row, indexes in matches.by_row():
        spans = []
        for i in indexes:
            detector = catalog.detectors[matches.detectors[i]]
            shown = placeholder(detector) if placeholders else hint(detector, matches.values[i])
            spans.append((matches.starts[i], matches.ends[i], shown))
        yield row, replace_spans(text_of(row), spans)


def mask_table(table: pa.Table, catalog: Catalog | None = None) -> pa.Table:
    """`table` with findings masked in every string, at any depth of lists, structs and maps.

    A query can nest text (`json_transform(raw, …)`, `list(prompt_text)`, `{'p': …}`), and
    nested text is shown like any other.
    """
    catalog = catalog or default_catalog()
    for index, column_field in enumerate(table.schema):
        if not _holds_text(column_field.type):
            continue
        column = table.column(index)
        chunks = [_mask_nested(chunk, catalog) for chunk in column.chunks]
        table = table.set_column(
            index, column_field.name, pa.chunked_array(chunks, type=column_field.type)
        )
    return table


def _as_type(array: pa.Array, kind: pa.DataType) -> pa.Array:
    # `cast` loads pyarrow.compute even when there is nothing to convert
    return array if array.type == kind else array.cast(kind)


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )


def _holds_text(kind: pa.DataType) -> bool:
    if _is_text(kind):
        return True
    if pa.types.is_dictionary(kind):
        return False
    return any(_holds_text(kind.field(i).type) for i in range(kind.num_fields))


def _mask_nested(array: pa.Array, catalog: Catalog) -> pa.Array:
    """`array` (any type) with its strings masked; the same array when it holds none."""
    kind = array.type
    if not _holds_text(kind):
        return array
    if _is_text(kind):
        if pa.types.is_dictionary(kind):  # mask each distinct value once
            dictionary = _as_type(mask_array(array.dictionary, catalog), kind.value_type)
            return pa.DictionaryArray.from_arrays(array.indices, dictionary)
        return _as_type(mask_array(array, catalog), kind)
    if array.offset:  # the offsets and validity of a slice cannot be reused as they are
        array = array.take(pa.array(range(len(array))))
    nulls = array.is_null() if array.null_count else None
    if pa.types.is_struct(kind):
        fields = [_mask_nested(array.field(i), catalog) for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(fields, fields=list(kind), mask=nulls)
    if pa.types.is_map(kind):
        keys, items = _mask_nested(array.keys, catalog), _mask_nested(array.items, catalog)
        rebuilt = pa.MapArray.from_arrays(array.offsets, keys, items, mask=nulls)
        return rebuilt.cast(kind)
    if pa.types.is_fixed_size_list(kind):
        values = _mask_nested(array.values, catalog)
        return pa.FixedSizeListArray.from_arrays(values, kind.list_size, mask=nulls).cast(kind)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        values = _mask_nested(array.values, catalog)
        return type(array).from_arrays(array.offsets, values, mask=nulls).cast(kind)
    # A type holding text that is none of the above (a union, a list view): not shown.
    raise TypeError(f"cannot mask values of type {kind}")
