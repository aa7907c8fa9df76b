"""The vectorised matcher: every detector over a whole string column, Python only for candidates.

Three passes, each narrower than the last:

1. **Prefilter** — one RE2 alternation of every pattern (`Catalog.prefilter`) over the
   whole column with `pyarrow.compute.match_substring_regex`, one thread per chunk
   (Arrow releases the GIL). Most rows of a real prompt log stop here.
2. **Per detector** — each pattern over the candidate rows only, same function, giving
   the (row, detector) pairs that hold a match.
3. **Extraction** — for those pairs DuckDB's `regexp_extract_all` and
   `regexp_split_to_array` give every match and the length of the text between matches,
   hence character offsets, in one vectorised query. Tiny inputs (a single `mask_text`)
   use Python's `re` instead, which is faster than starting a query.

Only the matches themselves reach Python: guard groups, the validator, and overlap
resolution by priority. Offsets are Unicode code points, as Python indexes a `str`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sentinel.pii.catalog import Catalog

SMALL_INPUT_BYTES = 64 * 1024
"""Below this much candidate text, extraction runs in Python (no query start-up)."""

_CHUNK_BYTES = 4 * 1024 * 1024
_pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="pii")
_local = threading.local()


@dataclass
class Matches:
    """Accepted findings of one column, sorted by row then start (parallel lists)."""

    rows: list[int] = field(default_factory=list)
    detectors: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    values: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def by_row(self) -> Iterator[tuple[int, list[int]]]:
        """(row, indexes into these lists) for each row that has findings."""
        i = 0
        n = len(self.rows)
        while i < n:
            j = i
            while j < n and self.rows[j] == self.rows[i]:
                j += 1
            yield self.rows[i], list(range(i, j))
            i = j


def find(values: pa.Array | pa.ChunkedArray, catalog: Catalog) -> Matches:
    """Every validated, non-overlapping finding of `catalog` in a string column."""
    column = _as_large_string(values)
    if len(column) == 0 or column.null_count == len(column):
        return Matches()
    candidates = _rows_matching(column, catalog.prefilter)
    if len(candidates) == 0:
        return Matches()
    texts = column.take(pa.array(candidates))
    pairs = _pairs(texts, candidates, catalog)
    raw = _extract_small(pairs, catalog) if _small(pairs) else _extract_duckdb(pairs, catalog)
    return _validate(raw, catalog)


def _as_large_string(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], type=values.type)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    return values


def _slices(column: pa.ChunkedArray) -> list[pa.Array]:
    """Zero-copy slices of about `_CHUNK_BYTES` each, so every core gets work."""
    out: list[pa.Array] = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        size = max(1, int(len(chunk) * _CHUNK_BYTES / max(chunk.nbytes, 1)))
        out.extend(chunk.slice(i, size) for i in range(0, len(chunk), size))
    return out


def _rows_matching(column: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Row numbers (in `column`) where `pattern` matches somewhere."""
    slices = _slices(column)
    masks = list(_pool.map(lambda s: pc.match_substring_regex(s, pattern), slices))
    found = [
        np.flatnonzero(m.fill_null(False).to_numpy(zero_copy_only=False)) + offset
        for m, offset in zip(masks, np.cumsum([0] + [len(s) for s in slices[:-1]]), strict=True)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


@dataclass
class _Pairs:
    """Candidate (row, detector) pairs with the row's text."""

    rows: np.ndarray
    detectors: np.ndarray
    texts: pa.Array


def _pairs(texts: pa.ChunkedArray, rows: np.ndarray, catalog: Catalog) -> _Pairs:
    texts_array = texts.combine_chunks()

    def hits(index: int) -> np.ndarray:
        mask = pc.match_substring_regex(texts_array, catalog.detectors[index].pattern)
        return np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))

    per_detector = list(_pool.map(hits, range(len(catalog.detectors))))
    local = np.concatenate(per_detector)
    dets = np.concatenate([np.full(len(h), i, dtype=np.int32) for i, h in enumerate(per_detector)])
    return _Pairs(rows[local], dets, texts_array.take(pa.array(local)))


def _small(pairs: _Pairs) -> bool:
    return pairs.texts.nbytes <= SMALL_INPUT_BYTES


# A raw match before validation: (row, detector, start offset of the match, match text).
_Raw = tuple[int, int, int, str]


def _extract_small(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    out: list[_Raw] = []
    for row, det, text in zip(
        pairs.rows.tolist(), pairs.detectors.tolist(), pairs.texts.to_pylist(), strict=True
    ):
        for m in catalog.compiled[det].finditer(text):
            out.append((row, det, m.start(), m.group(0)))
    return out


def _connection() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute("SET threads = ?", [max(2, os.cpu_count() or 2)])
        _local.con = con
    return con


def _extract_duckdb(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    present = sorted(set(pairs.detectors.tolist()))
    table = pa.table(
        {
            "rid": pa.array(pairs.rows, pa.int64()),
            "det": pa.array(pairs.detectors, pa.int32()),
            "t": pairs.texts,
        }
    )
    selects = [
        f"SELECT rid, det, regexp_extract_all(t, $p{d}) AS m, "
        f"list_transform(regexp_split_to_array(t, $p{d}), lambda x: length(x)) AS g "
        f"FROM pii_pairs WHERE det = {int(d)}"
        for d in present
    ]
    params = {f"p{d}": catalog.detectors[d].pattern for d in present}
    con = _connection()
    con.register("pii_pairs", table)
    try:
        result = con.sql(" UNION ALL ".join(selects), params=params).to_arrow_table()
    finally:
        con.unregister("pii_pairs")
    out: list[_Raw] = []
    for row, det, found, gaps in zip(
        result["rid"].to_pylist(),
        result["det"].to_pylist(),
        result["m"].to_pylist(),
        result["g"].to_pylist(),
        strict=True,
    ):
        position = 0
        for text, gap in zip(found, gaps, strict=False):
            position += gap
            out.append((row, det, position, text))
            position += len(text)
    return out


def _validate(raw: Sequence[_Raw], catalog: Catalog) -> Matches:
    accepted: dict[int, list[tuple[int, int, int, str]]] = {}
    for row, det, start, text in raw:
        span = _value_span(catalog, det, text)
        if span is None:
            continue
        a, b = span
        kept = accepted.setdefault(row, [])
        kept.append((det, start + a, start + b, text[a:b]))
    matches = Matches()
    for row in sorted(accepted):
        chosen: list[tuple[int, int, int, str]] = []
        ranked = sorted(
            accepted[row], key=lambda f: (-catalog.detectors[f[0]].priority, f[1], f[1] - f[2])
        )
        for finding in ranked:
            if all(finding[2] <= c[1] or finding[1] >= c[2] for c in chosen):
                chosen.append(finding)
        for det, start, end, value in sorted(chosen, key=lambda f: f[1]):
            matches.rows.append(row)
            matches.detectors.append(det)
            matches.starts.append(start)
            matches.ends.append(end)
            matches.values.append(value)
    return matches


def _value_span(catalog: Catalog, det: int, text: str) -> tuple[int, int] | None:
    """The value's span inside one raw match, or None when guards or the validator say no."""
    compiled = catalog.compiled[det]
    m = compiled.fullmatch(text) or compiled.match(text)
    a, b = 0, len(text)
    if m is not None:
        groups = compiled.groupindex
        if ("pre" in groups and m.group("pre")) or ("post" in groups and m.group("post")):
            return None
        if "v" in groups and m.group("v") is not None:
            a, b = m.span("v")
    if b <= a:
        return None
    check = catalog.checks[det]
    if check is None:
        return a, b
    verdict = check(text[a:b])
    if verdict is True:
        return a, b
    if verdict is False:
        return None
    sub_a, sub_b = verdict
    return a + sub_a, a + sub_b
