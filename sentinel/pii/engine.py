"""The vectorised matcher: every detector over a whole string column, Python only for candidates.

Three passes, each narrower than the last:

1. **Prefilter** — one RE2 alternation of every detector's *anchor* (`Catalog.prefilter`)
   over the whole column with `pyarrow.compute.match_substring_regex`, one slice per
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

Only the matches reach Python: context guards, the validator, and overlap resolution by
priority. Offsets are Unicode code points, as Python indexes a `str`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import re2

from sentinel.pii import workers
from sentinel.pii.catalog import Catalog, _re2_options, build_catalog, forget_verdicts
from sentinel.pii.detectors import Detector

SMALL_INPUT_BYTES = 4 * 1024
"""Below this much candidate text, extraction runs in Python's `re` (no joining)."""

_THREADS = max(2, os.cpu_count() or 2)
_MIN_SLICE_BYTES = 1024 * 1024
_pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="pii")


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

    def extend(self, other: Matches, row_offset: int = 0) -> None:
        """Append `other`'s findings (rows after these), their rows shifted by `row_offset`."""
        self.rows.extend([row + row_offset for row in other.rows])
        self.detectors.extend(other.detectors)
        self.starts.extend(other.starts)
        self.ends.extend(other.ends)
        self.values.extend(other.values)

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
    """Every validated, non-overlapping finding of `catalog` in a string column.

    A column of more than `workers.PARALLEL_BYTES` is cut into one part per core; this
    process scans the first and worker processes the others (see `sentinel.pii.workers`).
    """
    column = _as_large_string(values)
    if len(column) == 0 or column.null_count == len(column):
        return Matches()
    count = workers.cores() if column.nbytes >= workers.PARALLEL_BYTES else 1
    parts = workers.split(column, count) if count > 1 else []
    if len(parts) < 2:
        return _find_here(column, catalog, _THREADS)
    helpers = workers.workers(len(parts) - 1)
    if not helpers:
        return _find_here(column, catalog, _THREADS)
    for helper, (_, part) in zip(helpers, parts[1:], strict=True):
        helper.send(catalog.detectors, part)
    out = _find_here(parts[0][1], catalog, 1)
    for helper, (first, part) in zip(helpers, parts[1:], strict=True):
        try:
            found = helper.receive()
            workers.answered()
        except workers.WorkerError:
            workers.discard(helper)
            found = _find_here(part, catalog, _THREADS)
        out.extend(found, first)
    return out


def scan_part(detectors: tuple[Detector, ...], part: pa.Array) -> Matches:
    """`find` in a worker process, on its part of a column."""
    return _find_here(pa.chunked_array([part]), _catalog_of(detectors), 1)


@functools.lru_cache(maxsize=4)
def _catalog_of(detectors: tuple[Detector, ...]) -> Catalog:
    return build_catalog(detectors)


def _find_here(column: pa.ChunkedArray, catalog: Catalog, threads: int) -> Matches:
    """`find` in this process, its prefilter over `threads` slices of the column."""
    candidates = _rows_matching(column, catalog.prefilter, threads)
    if len(candidates) == 0:
        return Matches()
    texts = _take(column, candidates).dictionary_encode()
    distinct = texts.dictionary
    try:
        if len(distinct) == len(texts):
            return _find_in(distinct, candidates, catalog)
        # Identical texts (a repeated prompt, a retry, a shared template) are scanned
        # once: findings are a function of the text alone.
        found = _find_in(distinct, np.arange(len(distinct), dtype=np.int64), catalog)
        return _expand(found, candidates, texts.indices.to_numpy(zero_copy_only=False))
    finally:
        forget_verdicts(catalog)


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
    return _validate(raw, catalog)


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


def _slices(column: pa.ChunkedArray, count: int) -> list[pa.Array]:
    """Zero-copy slices, `count` at most: each call builds its own DFA, so fewer is cheaper."""
    out: list[pa.Array] = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        parts = max(1, min(count, chunk.nbytes // _MIN_SLICE_BYTES))
        size = -(-len(chunk) // parts)
        out.extend(chunk.slice(i, size) for i in range(0, len(chunk), size))
    return out


def _rows_matching(column: pa.ChunkedArray, pattern: str, threads: int) -> np.ndarray:
    """Row numbers (in `column`) where `pattern` matches somewhere, over `threads` threads."""
    slices = _slices(column, threads)
    if len(slices) > 1:
        masks = list(_pool.map(lambda s: pc.match_substring_regex(s, pattern), slices))
    else:
        masks = [pc.match_substring_regex(s, pattern) for s in slices]
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


# A located match before validation: (row, detector, text, start, end, value start,
# value end), offsets in code points; the value span is the match's when the pattern
# has no group `v` (or it did not take part).
_Raw = tuple[int, int, str, int, int, int, int]


def _raw(row: int, det: int, m: re.Match[str]) -> _Raw:
    a, b = m.span("v") if "v" in m.re.groupindex and m.group("v") is not None else m.span()
    return row, det, m.string, m.start(), m.end(), a, b


def _extract_small(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    """Python's `re` on each pair: the reference semantics, and cheapest for one string."""
    out: list[_Raw] = []
    for row, det, local in zip(
        pairs.rows.tolist(), pairs.detectors.tolist(), pairs.local.tolist(), strict=True
    ):
        out.extend(_raw(row, det, m) for m in catalog.compiled[det].finditer(pairs.strings[local]))
    return out


_SEPARATOR = b"\n"
_UNANCHORED = re2._Anchor.UNANCHORED


def _extract_re2(pairs: _Pairs, catalog: Catalog) -> list[_Raw]:
    """Every match of each detector in one RE2 search over its candidates, joined.

    Texts are joined by a newline, which reads like a text boundary to `\\b` and to the
    patterns' separators. A match that includes a newline separator may have run from one
    text into the next, so the texts it touches are matched again on their own. Owners
    and offsets of the matches are computed with numpy; only matches in non-ASCII texts
    go through `_located` one by one.
    """
    out: list[_Raw] = []
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
        found = _all_spans(engine, _SEPARATOR.join(parts))
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
            for m in _all_spans(original, parts[k]):
                result = _located(row, det, text, parts[k], 0, m[0], m[v], catalog)
                if result is not None:
                    out.append(result)
    return out


_BOUNDED_VALUE = re.compile(r"\(\?P<v>(\[(?:\\.|[^\]\\])+\])\{(\d+),(\d+)\}\)$")


@functools.lru_cache(maxsize=64)
def _unbounded(pattern: str) -> tuple[re2._Regexp, int] | None:
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


def _all_spans(engine: re2._Regexp, data: bytes) -> list[list[tuple[int, int]]]:
    """The byte spans of every group of each successive match of `engine` in `data`.

    `re2._Regexp.finditer` wraps each match in an object that decodes offsets group by
    group; the extension's `Match` returns them all at once, at a third of the cost.
    """
    match = engine._regexp.Match
    pos, end = 0, len(data)
    found: list[list[tuple[int, int]]] = []
    while True:
        spans = match(_UNANCHORED, data, pos, end)
        start, stop = spans[0]
        if start < 0:
            return found
        found.append(spans)
        if stop == pos:  # empty match: step over one byte
            if pos == end:
                return found
            pos += 1
        else:
            pos = stop


def _located(
    row: int,
    det: int,
    text: str,
    data: bytes,
    base: int,
    span: tuple[int, int],
    value: tuple[int, int],
    catalog: Catalog,
) -> _Raw | None:
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
        return None if m is None else _raw(row, det, m)
    shift -= start  # the match is ASCII: one byte, one character from its start on
    return row, det, text, start + shift, end + shift, a + shift, b + shift


def _validate(raw: Sequence[_Raw], catalog: Catalog) -> Matches:
    accepted: dict[int, list[tuple[int, int, int, str]]] = {}
    labelled = catalog.value_groups
    for found in raw:
        span = _value_span(catalog, found)
        if span is None and labelled[found[1]]:
            found, span = _retried(catalog, found)
        if span is not None:
            a, b = span
            finding = (found[1], a, b, found[2][a:b])
            kept = accepted.get(found[0])
            if kept is None:
                accepted[found[0]] = [finding]
            else:
                kept.append(finding)
    matches = Matches()
    priority = [-d.priority for d in catalog.detectors]
    for row in sorted(accepted):
        candidates = accepted[row]
        if len(candidates) == 1:
            chosen = candidates
        else:
            chosen = []
            ranked = sorted(candidates, key=lambda f: (priority[f[0]], f[1], f[1] - f[2]))
            for finding in ranked:
                if all(finding[2] <= c[1] or finding[1] >= c[2] for c in chosen):
                    chosen.append(finding)
            chosen.sort(key=lambda f: f[1])
        for det, start, end, value in chosen:
            matches.rows.append(row)
            matches.detectors.append(det)
            matches.starts.append(start)
            matches.ends.append(end)
            matches.values.append(value)
    return matches


def _retried(catalog: Catalog, found: _Raw) -> tuple[_Raw, tuple[int, int] | None]:
    """The first of the next matches (`_retry`) of a rejected labelled match that passes."""
    for _ in range(_RETRIES - 1):
        following = _retry(catalog, found)
        if following is None:
            break
        found = following
        span = _value_span(catalog, found)
        if span is not None:
            return found, span
    return found, None


_RETRIES = 4
_RETRY_WINDOW = 256


def _retry(catalog: Catalog, found: _Raw) -> _Raw | None:
    """The next match starting inside a rejected labelled match.

    Matches do not overlap, so a labelled candidate that runs on and is rejected
    (`sin: … PESEL: 32082114933`) may have swallowed the label of a real finding.
    RE2 searches ASCII text (Python's `re` is slow on case-insensitive labels).
    """
    row, det, text, start, end, _, _ = found
    v = catalog.value_groups[det]
    if not v:
        return None
    stop = min(len(text), end + _RETRY_WINDOW)
    if text.isascii():
        data = text[:stop].encode()
        spans = catalog.engines[det]._regexp.Match(_UNANCHORED, data, start + 1, stop)
        if spans[0][0] < 0:
            return None
        a, b = spans[v] if spans[v][0] >= 0 else spans[0]
        return row, det, text, spans[0][0], spans[0][1], a, b
    # RE2 over the UTF-8 bytes too: it matches wherever Python's ASCII pattern does (its
    # case folding is Unicode), so no RE2 match means none for Python either, and an
    # ASCII match is Python's; only a match holding non-ASCII text needs Python's `re`.
    data = text[:stop].encode()
    begin = len(text[: start + 1].encode())
    spans = catalog.engines[det]._regexp.Match(_UNANCHORED, data, begin, len(data))
    if spans[0][0] < 0:
        return None
    first, last = spans[0]
    if data[first:last].isascii():
        shift = first - len(data[:first].decode())
        a, b = spans[v] if spans[v][0] >= 0 else spans[0]
        return row, det, text, first - shift, last - shift, a - shift, b - shift
    m = catalog.compiled[det].search(text, start + 1, stop)
    return None if m is None else _raw(row, det, m)


_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}[ -]?")


def _value_span(catalog: Catalog, found: _Raw) -> tuple[int, int] | None:
    """The value's span in the text, or None when the validator or the context say no.

    `before` applies where the value starts (and where the label starts, if any);
    `after` where the value finally ends (a validator may keep only part of a candidate
    that ran on into the next number or word).
    """
    _, det, text, start, end, a, b = found
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
        # Where the candidate starts (a label, or a run of digits) and where the value
        # starts must both start a word. Except: a run glued to a word whose validator
        # kept the whole tail after a first token (`X9 4111 1111 1111 1111`, `v2 …`):
        # that head is a token of its own, unless it reads as the start of an IBAN
        # (`DE89 3704 0044 0532 0130 01`, one that failed mod-97: the run is the IBAN).
        head_cut = (
            not catalog.value_groups[det]
            and a > start
            and b == end
            and not _IBAN_HEAD.fullmatch(text, max(start - 2, 0), a)
        )
        for at in (a,) if head_cut else {start, a}:
            if at > 0 and before.match(text, at - 1, at):
                return None
    if after is not None and after.match(text, b):
        return None
    return a, b
