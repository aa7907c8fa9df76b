"""The vectorised matcher: every detector over a whole string column, Python only for candidates.

Three passes, each narrower than the last:

1. **Prefilter** — one RE2 alternation of every detector's *anchor* (`Catalog.prefilter`)
   over the whole column with `pyarrow.compute.match_substring_regex`, one run of rows per
   core (Arrow releases the GIL). An anchor is a short necessary condition of its
   pattern, because RE2's DFA slows down with many counted repetitions. Most rows of a
   real prompt log stop here. Identical candidate texts (a repeated prompt) go through
   the next passes once; their findings are repeated for every row holding them.
2. **Per detector** — an RE2 `Set` of the anchors, matched once against each candidate
   text, says which detectors can match there: the (row, detector) pairs worth
   extracting. One DFA pass per candidate, however many detectors.
3. **Extraction** — for each detector, one RE2 `finditer` over its candidate texts
   joined together gives every match with its byte offsets and group `v`; Python only
   converts offsets to code points. Tiny inputs (a single `mask_text`) use Python's `re`
   directly, which is also the reference the RE2 path is tested against.

Only the matches reach Python, where `sentinel.pii.verdicts` judges them: context
guards, the validator, and overlap resolution by priority. Offsets are Unicode code
points, as Python indexes a `str`.

Both cores: the prefilter (most of the work on real prompt logs: one DFA pass over
every byte) runs over threads on the whole column, since RE2 releases the GIL. The
later passes hold the GIL, so when the candidate texts are large they are cut into
parts, one per core, for this process and worker processes (`sentinel.pii.workers`).
Workers get candidates only: shipping whole parts of the column down a pipe, each
prefiltered by one process, cost a copy of the text and a worker's start-up per run
where the candidates were a few rows.

Threads and worker processes belong to a `ScanPool` the caller passes (the Runtime's);
none is created here. Without one, the scan runs on the calling thread alone.

A few short texts (what a command prints: alert rows, a `mask_text`) take a shorter way,
`find_strings`: the same anchors, patterns, verdicts and findings, in Python and RE2
alone. Arrow's compute functions are worth their start-up (importing
`pyarrow.compute`, ~35 ms, and compiling the prefilter on every call) only over a
column; this module imports them where a column is scanned, not at import, and the
worker machinery (`sentinel.pii.workers`) where a pool is used.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import re2

from sentinel.pii.catalog import Catalog, _re2_options, build_catalog
from sentinel.pii.detectors import Detector
from sentinel.pii.re2compat import Regexp, all_spans
from sentinel.pii.verdicts import Matches, Raw, located_match, validate

if TYPE_CHECKING:  # a pool is passed in; the worker machinery loads when one is used
    from concurrent.futures import Executor

    from sentinel.pii.pool import ScanPool

SMALL_INPUT_BYTES = 4 * 1024
"""Below this much candidate text, extraction runs in Python's `re` (no joining)."""

_MIN_SLICE_BYTES = 1024 * 1024


def find(
    values: pa.Array | pa.ChunkedArray,
    catalog: Catalog,
    processes: int = 0,
    pool: ScanPool | None = None,
) -> Matches:
    """Every validated, non-overlapping finding of `catalog` in a string column.

    With a `pool`, the prefilter runs over its threads on the whole column (RE2 releases
    the GIL: every core, nothing copied), and when the candidate texts it leaves hold
    more than `workers.PARALLEL_BYTES` they are cut into `processes` parts (0: one per
    core) for the later passes, which hold the GIL: this process takes the first part
    and the pool's worker processes the others (see `sentinel.pii.workers`). Without a
    pool, everything runs on the calling thread.
    """
    column = _as_large_string(values)
    if len(column) == 0 or column.null_count == len(column):
        return Matches()
    if pool is None:
        return _find_here(column, catalog, None)
    from sentinel.pii import workers

    threads = pool.executor()
    candidates = _rows_matching(column, catalog.prefilter, threads, pool.threads)
    if len(candidates) == 0:
        return Matches()
    texts = pa.chunked_array([_take(column, candidates)])
    count = (processes or workers.cores()) if texts.nbytes >= workers.PARALLEL_BYTES else 1
    parts = workers.split(texts, count) if count > 1 else []
    helpers = pool.workers.get(len(parts) - 1) if len(parts) > 1 else []
    if not helpers:
        return _found(texts, candidates, catalog)
    for helper, (_, part) in zip(helpers, parts[1:], strict=True):
        helper.send(Part(catalog.detectors, prefiltered=True), part)
    out = _found(parts[0][1], candidates[: len(parts[0][1])], catalog)
    for helper, (first, part) in zip(helpers, parts[1:], strict=True):
        rows = candidates[first : first + len(part)]
        try:
            found = helper.receive()
            pool.workers.answered()
        except workers.WorkerError:
            pool.workers.discard(helper)
            out.extend(_found(part, rows, catalog))
            continue
        found.rows = rows[np.asarray(found.rows, dtype=np.int64)].tolist()
        out.extend(found)
    return out


@dataclass(frozen=True)
class Part:
    """What a worker process is asked to scan its part with."""

    detectors: tuple[Detector, ...]
    prefiltered: bool = False
    """Every text of the part passed the prefilter already: it is not run again."""


def scan_part(request: Part | tuple[Detector, ...], part: pa.Array) -> Matches:
    """`find` in a worker process, on its part of a column (rows counted from 0)."""
    if isinstance(request, Part):
        catalog = _catalog_of(request.detectors)
        column = pa.chunked_array([part])
        if request.prefiltered:
            return _found(column, np.arange(len(part), dtype=np.int64), catalog)
        return _find_here(column, catalog, None)
    return _find_here(pa.chunked_array([part]), _catalog_of(request), None)


def worker_main() -> None:
    """A worker process (`ScanPool`'s entry): scan parts until the caller closes the pipe."""
    from sentinel.pii import workers

    workers.run(scan_part)


@functools.lru_cache(maxsize=4)
def _catalog_of(detectors: tuple[Detector, ...]) -> Catalog:
    return build_catalog(detectors)


def find_strings(texts: Sequence[str | None], catalog: Catalog) -> Matches:
    """`find` over a few short texts held as Python strings: the same findings, no Arrow.

    For texts under `SMALL_INPUT_BYTES` in all (the caller checks: `fits_strings`), where
    `find` would extract with Python's `re` as well. The prefilter pass is left out: it
    is the alternation of the anchors that the RE2 `Set` matches against each text next,
    so a text it would stop meets no anchor there either. Identical texts are scanned once.
    """
    distinct: dict[str, int] = {}
    for text in texts:
        if text:
            distinct.setdefault(text, len(distinct))
    match = catalog.anchor_set.Match
    raw: list[Raw] = []
    for text, index in distinct.items():
        anchors = match(text.encode())  # None when no anchor occurs
        if not anchors:
            continue
        for det, anchor in enumerate(catalog.anchor_of):
            if anchor in anchors:
                found = catalog.compiled[det].finditer(text)
                raw.extend(located_match(index, det, m) for m in found)
    if not raw:
        return Matches()
    rows = [row for row, text in enumerate(texts) if text]
    text_of = [distinct[text] for text in texts if text]
    return _expand(validate(raw, catalog), np.array(rows, np.int64), np.array(text_of, np.int64))


def fits_strings(texts: Sequence[str | None]) -> bool:
    """Whether `texts` are few enough bytes for `find_strings` (`SMALL_INPUT_BYTES`)."""
    return sum(len(text.encode()) for text in dict.fromkeys(texts) if text) <= SMALL_INPUT_BYTES


def _find_here(
    column: pa.ChunkedArray, catalog: Catalog, executor: Executor | None, threads: int = 1
) -> Matches:
    """`find` in this process, its prefilter over `threads` slices on `executor`."""
    candidates = _rows_matching(column, catalog.prefilter, executor, threads)
    if len(candidates) == 0:
        return Matches()
    return _found(pa.chunked_array([_take(column, candidates)]), candidates, catalog)


def _found(texts: pa.ChunkedArray, rows: np.ndarray, catalog: Catalog) -> Matches:
    """The later passes over candidate `texts` (all past the prefilter), whose findings
    are reported under `rows` (one per text, ascending)."""
    encoded = texts.combine_chunks().dictionary_encode()
    distinct = encoded.dictionary
    if len(distinct) == len(encoded):
        return _find_in(distinct, rows, catalog)
    # Identical texts (a repeated prompt, a retry, a shared template) are scanned once:
    # findings are a function of the text alone.
    found = _find_in(distinct, np.arange(len(distinct), dtype=np.int64), catalog)
    return _expand(found, rows, encoded.indices.to_numpy(zero_copy_only=False))


def _take(column: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """`column.take(rows)` for ascending `rows`, chunk by chunk.

    `ChunkedArray.take` concatenates every chunk first: a copy of the whole column (the
    prompt and response columns of a batch) to read a few thousand rows.
    """
    ends = np.cumsum([len(c) for c in column.chunks])
    cuts = np.searchsorted(rows, ends)
    parts, first, begin = [], 0, 0
    for chunk, end, cut in zip(column.chunks, ends.tolist(), cuts.tolist(), strict=True):
        if cut > first:
            parts.append(chunk.take(pa.array(rows[first:cut] - begin)))
        first, begin = cut, end
    return pa.concat_arrays(parts) if parts else pa.array([], column.type)


def _find_in(texts: pa.Array, rows: np.ndarray, catalog: Catalog) -> Matches:
    """Findings of each of `texts`, reported under `rows` (one per text, ascending)."""
    pairs = _pairs(pa.chunked_array([texts]), rows, catalog)
    raw = _extract_small(pairs, catalog) if _small(pairs) else _extract_re2(pairs, catalog)
    return validate(raw, catalog)


def _expand(found: Matches, rows: np.ndarray, text_of: np.ndarray) -> Matches:
    """`found` (per distinct text) repeated for every row holding that text, in row order."""
    spans: dict[int, tuple[int, int]] = {}
    for text, indexes in found.by_row():
        spans[text] = (indexes[0], indexes[-1] + 1)
    out = Matches()
    for row, text in zip(rows.tolist(), text_of.tolist(), strict=True):
        span = spans.get(text)
        if span is None:
            continue
        a, b = span
        out.rows.extend([row] * (b - a))
        out.detectors.extend(found.detectors[a:b])
        out.starts.extend(found.starts[a:b])
        out.ends.extend(found.ends[a:b])
        out.values.extend(found.values[a:b])
    return out


def _as_large_string(values: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], type=values.type)
    if pa.types.is_dictionary(values.type):
        values = values.cast(values.type.value_type)
    if not pa.types.is_large_string(values.type):
        values = values.cast(pa.large_string())
    return values


def _runs(column: pa.ChunkedArray, count: int) -> list[tuple[int, pa.ChunkedArray]]:
    """`column` as up to `count` runs of rows of about equal bytes, each with its first row.

    A run is zero-copy slices that may span chunks (a batch's text column arrives in a
    dozen chunks): one regex call per run compiles the pattern and warms its DFA once,
    where a call per chunk slice paid that ~30 times a batch (~10 % of the prefilter).
    """
    column = pa.chunked_array([c for c in column.chunks if len(c)], type=column.type)
    count = max(1, min(count, column.nbytes // _MIN_SLICE_BYTES))
    if count == 1 or len(column) < 2:
        return [(0, column)]
    from sentinel.pii import workers

    return workers.split(column, count, first_share=1.0)


def _rows_matching(
    column: pa.ChunkedArray, pattern: str, executor: Executor | None, threads: int
) -> np.ndarray:
    """Row numbers (in `column`) where `pattern` matches somewhere, over `threads` threads."""
    import pyarrow.compute as pc

    runs = _runs(column, threads if executor is not None else 1)
    if len(runs) > 1 and executor is not None:
        masks = list(executor.map(lambda run: pc.match_substring_regex(run[1], pattern), runs))
    else:
        masks = [pc.match_substring_regex(run, pattern) for _, run in runs]
    found = [
        np.flatnonzero(m.fill_null(False).to_numpy(zero_copy_only=False)) + first
        for m, (first, _) in zip(masks, runs, strict=True)
    ]
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


@dataclass
class _Pairs:
    """Candidate (row, detector) pairs; `local` indexes the candidate texts."""

    rows: np.ndarray
    detectors: np.ndarray
    local: np.ndarray
    strings: list[str]
    encoded: list[bytes]
    texts: pa.Array
    """The candidate texts as one Arrow array (what `strings` and `encoded` hold)."""
    lengths: np.ndarray
    """Each text's length in bytes."""
    ascii: np.ndarray
    """Whether each text is ASCII (bytes are code points)."""
    _continuations: np.ndarray | None = None

    def starts(self) -> np.ndarray:
        """Each text's first byte in `texts`' data buffer."""
        offsets = np.frombuffer(self.texts.buffers()[1], dtype=np.int64)
        return offsets[self.texts.offset : self.texts.offset + len(self.texts)]

    def continuations(self, at: np.ndarray) -> np.ndarray:
        """How many UTF-8 continuation bytes precede each byte `at` in `texts`' data buffer."""
        if self._continuations is None:
            data = np.frombuffer(self.texts.buffers()[2], dtype=np.uint8)
            self._continuations = np.flatnonzero((data & 0xC0) == 0x80)
        return np.searchsorted(self._continuations, at)


def _pairs(texts: pa.ChunkedArray, rows: np.ndarray, catalog: Catalog) -> _Pairs:
    """Which detectors' anchors occur in each candidate text: one RE2 `Set` pass per text."""
    import pyarrow.compute as pc

    strings = texts.to_pylist()
    encoded = texts.cast(pa.large_binary()).to_pylist()
    array = texts.combine_chunks()
    lengths = pc.binary_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    ascii_ = lengths == pc.utf8_length(array).to_numpy(zero_copy_only=False)
    match = catalog.anchor_set.Match
    per_anchor: list[list[int]] = [[] for _ in range(catalog.anchor_count)]
    for index, data in enumerate(encoded):
        for anchor in match(data):
            per_anchor[anchor].append(index)
    hits = [np.asarray(per_anchor[a], dtype=np.int64) for a in catalog.anchor_of]
    local = np.concatenate(hits) if hits else np.empty(0, dtype=np.int64)
    dets = np.concatenate([np.full(len(h), i, dtype=np.int32) for i, h in enumerate(hits)])
    return _Pairs(rows[local], dets, local, strings, encoded, array, lengths, ascii_)


def _small(pairs: _Pairs) -> bool:
    used = sum(len(pairs.encoded[i]) for i in np.unique(pairs.local).tolist())
    return used <= SMALL_INPUT_BYTES


def _extract_small(pairs: _Pairs, catalog: Catalog) -> list[Raw]:
    """Python's `re` on each pair: the reference semantics, and cheapest for one string."""
    out: list[Raw] = []
    for row, det, local in zip(
        pairs.rows.tolist(), pairs.detectors.tolist(), pairs.local.tolist(), strict=True
    ):
        found = catalog.compiled[det].finditer(pairs.strings[local])
        out.extend(located_match(row, det, m) for m in found)
    return out


_SEPARATOR = b"\n"


def _extract_re2(pairs: _Pairs, catalog: Catalog) -> list[Raw]:
    """Every match of each detector in one RE2 search over its candidates, joined.

    Texts are joined by a newline, which reads like a text boundary to `\\b` and to the
    patterns' separators. A match that includes a newline separator may have run from one
    text into the next, so the texts it touches are matched again on their own. Owners
    and offsets of the matches are computed with numpy; only matches in non-ASCII texts
    go through `_located` one by one.
    """
    out: list[Raw] = []
    lengths, ascii_ = pairs.lengths, pairs.ascii
    order = np.argsort(pairs.detectors, kind="stable")
    bounds = np.flatnonzero(np.diff(pairs.detectors[order])) + 1
    for group in np.split(order, bounds):
        if len(group) == 0:
            continue
        det = int(pairs.detectors[group[0]])
        engine, v = catalog.engines[det], catalog.value_groups[det]
        original, limit = engine, 0
        unbounded = _unbounded(catalog.detectors[det].pattern) if v else None
        if unbounded is not None:
            engine, limit = unbounded
        local = pairs.local[group]
        group_rows = pairs.rows[group]
        parts = [pairs.encoded[i] for i in local.tolist()]
        sizes = lengths[local]
        starts = np.zeros(len(parts), dtype=np.int64)
        np.cumsum(sizes[:-1] + 1, out=starts[1:])
        found = all_spans(engine, _SEPARATOR.join(parts))
        if not found:
            continue
        spans = np.array([(m[0][0], m[0][1], m[v][0], m[v][1]) for m in found], dtype=np.int64)
        owner = np.searchsorted(starts, spans[:, 0], side="right") - 1
        overflow = spans[:, 1] > starts[owner] + sizes[owner]  # took in a separator
        redo = np.zeros(len(parts), dtype=bool)
        if limit:  # a value longer than the pattern allows: match its text as written
            redo[owner[spans[:, 3] - spans[:, 2] > limit]] = True
        if overflow.any():
            last = np.searchsorted(starts, spans[overflow, 1] - 1, side="right") - 1
            for first, stop in zip(owner[overflow].tolist(), last.tolist(), strict=True):
                redo[first : stop + 1] = True
        keep = ~redo[owner]
        base = starts[owner]
        shifted = spans - base[:, None]
        no_value = spans[:, 2] < 0
        shifted[no_value, 2] = shifted[no_value, 0]
        shifted[no_value, 3] = shifted[no_value, 1]
        plain = keep & ascii_[local[owner]]
        strings = pairs.strings
        for row, text_index, a0, b0, a1, b1 in zip(
            group_rows[owner[plain]].tolist(),
            local[owner[plain]].tolist(),
            *shifted[plain].T.tolist(),
            strict=True,
        ):
            out.append((row, det, strings[text_index], a0, b0, a1, b1))
        other = np.flatnonzero(keep & ~plain)
        if len(other):
            # Code points before each match: bytes less UTF-8 continuation bytes.
            first = pairs.starts()[local[owner[other]]]
            before = pairs.continuations(first + shifted[other, 0])
            piece_ascii = pairs.continuations(first + shifted[other, 1]) == before
            moved = shifted[other] - (before - pairs.continuations(first))[:, None]
            for index, is_ascii, a0, b0, a1, b1 in zip(
                other.tolist(), piece_ascii.tolist(), *moved.T.tolist(), strict=True
            ):
                k = int(owner[index])
                text = strings[int(local[k])]
                if is_ascii:
                    out.append((int(group_rows[k]), det, text, a0, b0, a1, b1))
                    continue
                m = found[index]
                result = _located(
                    int(group_rows[k]), det, text, parts[k], int(starts[k]), m[0], m[v], catalog
                )
                if result is not None:
                    out.append(result)
        for k in np.flatnonzero(redo).tolist():
            row, text = int(group_rows[k]), strings[int(local[k])]
            for m in all_spans(original, parts[k]):
                result = _located(row, det, text, parts[k], 0, m[0], m[v], catalog)
                if result is not None:
                    out.append(result)
    return out


_BOUNDED_VALUE = re.compile(r"\(\?P<v>(\[(?:\\.|[^\]\\])+\])\{(\d+),(\d+)\}\)$")


@functools.lru_cache(maxsize=64)
def _unbounded(pattern: str) -> tuple[Regexp, int] | None:
    """`pattern` with its final `(?P<v>[class]{m,n})` made `{m,}`, and n; or None.

    RE2 builds a large automaton for a long counted repetition of a class holding
    non-ASCII characters (`[^\\s"']{8,128}`: a third of the generic secret's cost).
    Where the pattern is `prefix(?P<v>C{m,n})` with no alternation at its top level,
    both forms choose the same prefix (both need m characters of C after it) and so the
    same match, except that the unbounded value runs on past n characters: such matches
    (more than n bytes) are matched again with the pattern as written.
    """
    found = _BOUNDED_VALUE.search(pattern)
    if found is None or int(found[3]) < 32 or _top_level_alternation(pattern[: found.start()]):
        return None
    rewritten = f"{pattern[: found.start()]}(?P<v>{found[1]}{{{found[2]},}})"
    return re2.compile(rewritten.encode(), _re2_options()), int(found[3])


def _top_level_alternation(pattern: str) -> bool:
    """Whether `pattern` has a `|` outside every group (and every class), or is unbalanced."""
    depth, i, n = 0, 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i += 1
        elif c == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth < 0:
                return True
        elif c == "|" and depth == 0:
            return True
        i += 1
    return depth != 0


def _located(
    row: int,
    det: int,
    text: str,
    data: bytes,
    base: int,
    span: tuple[int, int],
    value: tuple[int, int],
    catalog: Catalog,
) -> Raw | None:
    """An RE2 match at byte offsets (from `base` in the joined texts) in code points.

    A match holding non-ASCII text is confirmed with Python's `re`, because RE2's case
    folding is Unicode (`(?i:s)` also matches `ſ`) where the Python pattern is ASCII.
    """
    start, end = span[0] - base, span[1] - base
    a, b = (value[0] - base, value[1] - base) if value[0] >= 0 else (start, end)
    if len(data) == len(text):  # ASCII: bytes are characters
        return row, det, text, start, end, a, b
    shift = len(data[:start].decode())
    piece = data[start:end]
    if not piece.isascii():
        m = catalog.compiled[det].fullmatch(text, shift, shift + len(piece.decode()))
        return None if m is None else located_match(row, det, m)
    shift -= start  # the match is ASCII: one byte, one character from its start on
    return row, det, text, start + shift, end + shift, a + shift, b + shift
