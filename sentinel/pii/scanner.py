"""The ingest-time scan: fill `pii_*` columns and apply the workspace's `store_text` mode.

Called by the ingest engine on every batch (up to ~100k events). Prompt and response
text go through the vectorised engine as one column; each finding becomes a
(type, field, start, end, digest) struct whose digest is an HMAC of the normalised value
under the workspace key — the lake can answer "where did this card appear?" without
holding the card a second time.

Invariant of `store_text = "masked"` and `"none"`: no finding's value survives in any
column, `raw` included. `raw` is scanned in its own right (its JSON escaping can hide a
value from a scan of the text) and every value found in the text is also replaced
literally, in both plain and JSON-escaped form. `"none"` additionally removes prompt
and response strings from `raw` (see `_strip_raw_text`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.config import Config
from sentinel.pii import engine
from sentinel.pii.catalog import Catalog, digest, load_catalog, normalise
from sentinel.pii.masking import mask_array, placeholder, replace_spans
from sentinel.pii.pool import ScanPool
from sentinel.schema import FINDING_TYPE, TEXT_COLUMNS

REDACTED = "[REDACTED]"
# JSON keys under which gateways keep message text (OpenAI, Anthropic, Bedrock, LiteLLM).
_TEXT_KEYS = frozenset(
    "content text prompt messages input output completion response system instructions "
    "inputText outputText question answer query".split()
)
# Keys kept even inside message structures: they describe the message, they are not it.
_KEEP_KEYS = frozenset("role type name id model index finish_reason tool_call_id".split())
_MIN_TEXT_FRAGMENT = 8


def scan_events(
    table: pa.Table, config: Config, key: bytes, pool: ScanPool | None = None
) -> pa.Table:
    """`table` (EVENT_SCHEMA) with pii columns filled and text stored per `store_text`.

    `pool` (the Runtime's) runs the scan over threads and worker processes; without
    it the scan runs on the calling thread.
    """
    catalog = load_catalog(config)
    n = table.num_rows
    texts = pa.chunked_array(
        [c for name in TEXT_COLUMNS for c in table.column(name).cast(pa.large_string()).chunks],
        type=pa.large_string(),
    )
    if config.pii.scan and n:
        matches = engine.find(texts, catalog, processes=config.pii.processes, pool=pool)
    else:
        matches = engine.Matches()
    table = _with_findings(table, matches, catalog, key)
    mode = config.privacy.store_text
    if mode == "full":
        return table
    return _apply_store_text(table, texts, matches, catalog, mode)


def _with_findings(
    table: pa.Table, matches: engine.Matches, catalog: Catalog, key: bytes
) -> pa.Table:
    n = table.num_rows
    events = np.asarray(matches.rows, dtype=np.int64) % max(n, 1)
    fields = np.asarray(matches.rows, dtype=np.int64) // max(n, 1)
    order: Any = np.lexsort((np.asarray(matches.starts), fields, events)) if len(matches) else []
    digests: dict[tuple[str, str], str] = {}
    types, field_names, starts, ends, hashes = [], [], [], [], []
    per_event_types: dict[int, set[str]] = defaultdict(set)
    for i in order:
        detector = catalog.detectors[matches.detectors[i]]
        value = matches.values[i]
        memo = (detector.normaliser, value)
        if memo not in digests:
            digests[memo] = digest(key, normalise(detector, value))
        types.append(detector.name)
        field_names.append(TEXT_COLUMNS[fields[i]])
        starts.append(matches.starts[i])
        ends.append(matches.ends[i])
        hashes.append(digests[memo])
        per_event_types[int(events[i])].add(detector.name)
    counts = (
        np.bincount(events, minlength=n).astype(np.int32)
        if len(matches)
        else np.zeros(n, dtype=np.int32)
    )
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    structs = pa.StructArray.from_arrays(
        [
            pa.array(types, pa.string()),
            pa.array(field_names, pa.string()),
            pa.array(starts, pa.int32()),
            pa.array(ends, pa.int32()),
            pa.array(hashes, pa.string()),
        ],
        fields=list(FINDING_TYPE),
    )
    findings = pa.ListArray.from_arrays(pa.array(offsets), structs, type=pa.list_(FINDING_TYPE))
    type_counts = np.zeros(n, dtype=np.int32)
    type_values: list[str] = []
    for event in sorted(per_event_types):
        names = sorted(per_event_types[event])
        type_counts[event] = len(names)
        type_values.extend(names)
    type_offsets = np.concatenate([[0], np.cumsum(type_counts)]).astype(np.int32)
    pii_types = pa.ListArray.from_arrays(pa.array(type_offsets), pa.array(type_values, pa.string()))
    schema = table.schema
    for name, array in (
        ("pii_types", pii_types),
        ("pii_count", pa.array(counts, pa.int32())),
        ("pii_findings", findings),
    ):
        index = schema.get_field_index(name)
        table = table.set_column(index, schema.field(index), array.cast(schema.field(index).type))
    return table


def _apply_store_text(
    table: pa.Table,
    texts: pa.ChunkedArray,
    matches: engine.Matches,
    catalog: Catalog,
    mode: str,
) -> pa.Table:
    n = table.num_rows
    literal: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for i in range(len(matches)):
        detector = catalog.detectors[matches.detectors[i]]
        literal[matches.rows[i] % n].append((matches.values[i], placeholder(detector)))
    raw = table.column("raw").combine_chunks()
    if mode == "none":
        raw = _strip_raw_text(raw, table)
    raw = _replace_literals(raw, literal)
    raw = mask_array(raw, catalog, placeholders=True)
    schema = table.schema
    raw_index = schema.get_field_index("raw")
    table = table.set_column(raw_index, schema.field(raw_index), raw.cast(pa.string()))
    for column_number, name in enumerate(TEXT_COLUMNS):
        index = schema.get_field_index(name)
        if mode == "none":
            stored = pa.nulls(n, pa.string())
        else:
            stored = _text_with_placeholders(texts, matches, catalog, column_number, n)
        table = table.set_column(index, schema.field(index), stored)
    return table


def _text_with_placeholders(
    texts: pa.ChunkedArray, matches: engine.Matches, catalog: Catalog, column: int, n: int
) -> pa.Array:
    own = texts.slice(column * n, n).combine_chunks()
    spans: dict[int, list[tuple[int, int, str]]] = defaultdict(list)
    for i in range(len(matches)):
        if matches.rows[i] // n == column:
            detector = catalog.detectors[matches.detectors[i]]
            spans[matches.rows[i] % n].append(
                (matches.starts[i], matches.ends[i], placeholder(detector))
            )
    if not spans:
        return own.cast(pa.string())
    rows = sorted(spans)
    originals = own.take(pa.array(rows)).to_pylist()
    replaced = [replace_spans(t, spans[r]) for t, r in zip(originals, rows, strict=True)]
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    out = pc.replace_with_mask(own, pa.array(mask), pa.array(replaced, pa.large_string()))
    return out.cast(pa.string())


def _replace_literals(raw: pa.Array, literal: dict[int, list[tuple[str, str]]]) -> pa.Array:
    """Replace each value found in an event's text wherever it appears in its `raw`."""
    if not literal:
        return raw
    rows = sorted(r for r in literal if raw[r].is_valid)
    if not rows:
        return raw
    originals = raw.take(pa.array(rows)).to_pylist()
    replaced = []
    for text, row in zip(originals, rows, strict=True):
        for value, shown in sorted(literal[row], key=lambda p: -len(p[0])):
            text = text.replace(value, shown)
            escaped = json.dumps(value, ensure_ascii=False)[1:-1]
            if escaped != value:
                text = text.replace(escaped, shown)
            ascii_escaped = json.dumps(value)[1:-1]
            if ascii_escaped not in (value, escaped):
                text = text.replace(ascii_escaped, shown)
        replaced.append(text)
    mask = np.zeros(len(raw), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(raw, pa.array(mask), pa.array(replaced, raw.type))


def _strip_raw_text(raw: pa.Array, table: pa.Table) -> pa.Array:
    """`raw` without message text: string leaves under text keys, or found in the text.

    Best effort by design: `raw` is whatever the gateway logged. Strings under keys that
    hold message text anywhere in a record are replaced, as is any longer string that
    occurs inside the event's prompt or response. A record that is not JSON loses every
    line of its prompt and response by literal replacement.
    """
    prompts = table.column("prompt_text").to_pylist()
    responses = table.column("response_text").to_pylist()
    rows = [r for r in range(len(raw)) if raw[r].is_valid and (prompts[r] or responses[r])]
    if not rows:
        return raw
    originals = raw.take(pa.array(rows)).to_pylist()
    replaced = [
        _strip_one(text, prompts[r] or "", responses[r] or "")
        for text, r in zip(originals, rows, strict=True)
    ]
    mask = np.zeros(len(raw), dtype=bool)
    mask[rows] = True
    return pc.replace_with_mask(raw, pa.array(mask), pa.array(replaced, raw.type))


def _strip_one(raw: str, prompt: str, response: str) -> str:
    try:
        record = json.loads(raw)
    except ValueError:
        for line in sorted(set((prompt + "\n" + response).splitlines()), key=len, reverse=True):
            if len(line) >= 4:
                raw = raw.replace(json.dumps(line)[1:-1], REDACTED).replace(line, REDACTED)
        return raw
    return json.dumps(_strip_value(record, prompt, response, None, False), ensure_ascii=False)


def _strip_value(value: Any, prompt: str, response: str, key: str | None, text: bool) -> Any:
    """`text` is true below a key that holds message text (`messages`, `content`, …)."""
    if isinstance(value, dict):
        inner = text and key not in _KEEP_KEYS
        return {
            k: _strip_value(v, prompt, response, k, inner or k in _TEXT_KEYS)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_strip_value(v, prompt, response, key, text) for v in value]
    if isinstance(value, str) and (
        (text and key not in _KEEP_KEYS)
        or (len(value) >= _MIN_TEXT_FRAGMENT and (value in prompt or value in response))
    ):
        return REDACTED
    return value
