"""The vectorised matcher: every detector over a whole string column, Python only for candidates.

Three passes, each narrower than the last:

1. **Prefilter** — one RE2 alternation of every pattern (`Catalog.prefilter`) over the
   whole column with `pyarrow.compute.match_substring_regex`, one thread per chunk
   (Arrow releases the GIL). The alternation is of each detector's *anchor*, a short
   necessary condition, because RE2's DFA slows down with many counted repetitions.
   Most rows of a real prompt log stop here.
2. **Per detector** — each anchor over the candidate rows only, giving the (row,
   detector) pairs worth extracting. Literal anchors (`AKIA`, `sk-ant-`) run at memchr
   speed.
3. **Extraction** — for those pairs DuckDB's `regexp_extract_all` returns every match in
   one vectorised query; Python only locates each match string (`str.find`) and
   confirms it. Tiny inputs (a single `mask_text`) use Python's `re` directly, which is
   faster than starting a query.

Only the matches reach Python: context guards, the validator, and overlap resolution by
priority. Offsets are Unicode code points, as Python indexes a `str`.
"""

from __future__ import annotations

import os
import re
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
    """Candidate (row, detector) pairs; `local` indexes the candidate texts."""

    rows: np.ndarray
    detectors: np.ndarray
    local: np.ndarray
    texts: pa.Array


def _pairs(texts: pa.ChunkedArray, rows: np.ndarray, catalog: Catalog) -> _Pairs:
    texts_array = texts.combine_chunks()
    distinct = list(dict.fromkeys(catalog.anchors))

    def hits(anchor: str) -> np.ndarray:
        mask = pc.match_substring_regex(texts_array, anchor)
        return np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))

    by_anchor = dict(zip(distinct, _pool.map(hits, distinct), strict=True))
    per_detector = [by_anchor[a] for a in catalog.anchors]
    local = np.concatenate(per_detector)
    dets = np.concatenate([np.full(len(h), i, dtype=np.int32) for i, h in enumerate(per_detector)])
    return _Pairs(rows[local], dets, local, texts_array)


def _small(pairs: _Pairs) -> bool:
    used = pairs.texts.take(pa.array(np.unique(pairs.local))) if len(pairs.local) else pairs.texts
    return used.nbytes <= SMALL_INPUT_BYTES


# A located match before validation: (row, detector, the match in the row's text).
_Raw = tuple[int, int, re.Match[str]]


def _extract_small(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    texts = _pair_texts(pairs)
    out: list[_Raw] = []
    for row, det, local in zip(
        pairs.rows.tolist(), pairs.detectors.tolist(), pairs.local.tolist(), strict=True
    ):
        out.extend((row, det, m) for m in catalog.compiled[det].finditer(texts[local]))
    return out


def _pair_texts(pairs: _Pairs) -> dict[int, str]:
    wanted = np.unique(pairs.local)
    return dict(zip(wanted.tolist(), pairs.texts.take(pa.array(wanted)).to_pylist(), strict=True))


def _connection() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect()
        con.execute(f"SET threads = {max(2, os.cpu_count() or 2)}")
        _local.con = con
    return con


def _extract_duckdb(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    """Every match of each pair's pattern via `regexp_extract_all`, located in Python.

    A match string is found with `str.find` from the end of the previous match and
    confirmed with the Python pattern at that position (a `\\b` in the pattern can make
    an earlier copy of the same string a non-match), which also yields the groups.
    """
    present = sorted(set(pairs.detectors.tolist()))
    table = pa.table(
        {
            "rid": pa.array(pairs.rows, pa.int64()),
            "det": pa.array(pairs.detectors, pa.int32()),
            "loc": pa.array(pairs.local, pa.int64()),
            "t": pairs.texts.take(pa.array(pairs.local)),
        }
    )
    selects = [
        f"SELECT rid, det, loc, regexp_extract_all(t, $p{d}) AS m "
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
    texts = _pair_texts(pairs)
    out: list[_Raw] = []
    for row, det, local, found in zip(
        result["rid"].to_pylist(),
        result["det"].to_pylist(),
        result["loc"].to_pylist(),
        result["m"].to_pylist(),
        strict=True,
    ):
        text = texts[local]
        compiled = catalog.compiled[det]
        cursor = 0
        for value in found:
            position = text.find(value, cursor)
            while position >= 0:
                m = compiled.fullmatch(text, position, position + len(value))
                if m is not None:
                    out.append((row, det, m))
                    cursor = position + len(value)
                    break
                position = text.find(value, position + 1)
    return out


def _validate(raw: Sequence[_Raw], catalog: Catalog) -> Matches:
    accepted: dict[int, list[tuple[int, int, int, str]]] = {}
    for row, det, first in raw:
        m: re.Match[str] | None = first
        for _ in range(_RETRIES):
            assert m is not None
            span = _value_span(catalog, det, m)
            if span is not None:
                a, b = span
                accepted.setdefault(row, []).append((det, a, b, m.string[a:b]))
                break
            m = _retry(catalog, det, m)
            if m is None:
                break
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


_RETRIES = 4
_RETRY_WINDOW = 256


def _retry(catalog: Catalog, det: int, m: re.Match[str]) -> re.Match[str] | None:
    """The next match starting inside a rejected labelled match.

    Matches do not overlap, so a labelled candidate that runs on and is rejected
    (`sin: … PESEL: 32082114933`) may have swallowed the label of a real finding.
    """
    if "v" not in m.re.groupindex:
        return None
    end = min(len(m.string), m.end() + _RETRY_WINDOW)
    return catalog.compiled[det].search(m.string, m.start() + 1, end)


def _value_span(catalog: Catalog, det: int, m: re.Match[str]) -> tuple[int, int] | None:
    """The value's span in the text, or None when the validator or the context say no.

    `before` applies where the candidate token starts and where the value starts;
    `after` where the value finally ends (a validator may keep only part of a candidate
    that ran on into the next number or word).
    """
    text = m.string
    a, b = m.span("v") if "v" in m.re.groupindex and m.group("v") is not None else m.span()
    if b <= a:
        return None
    check = catalog.checks[det]
    verdict = True if check is None else check(text[a:b])
    if verdict is False:
        return None
    if verdict is not True:
        a, b = a + verdict[0], a + verdict[1]
    before, after = catalog.befores[det], catalog.afters[det]
    if before is not None:
        for start in {m.start(), a}:  # the candidate token's start, and the value's
            if start > 0 and before.match(text, start - 1, start):
                return None
    if after is not None and after.match(text, b):
        return None
    return a, b
