"""Verdicts: which located matches become findings.

The engine (`sentinel.pii.engine`) locates every match of every detector; here each one
is judged: the detector's validator (which may keep only part of the candidate), the
context guards before and after the value, a retry inside a rejected labelled match
(which may have swallowed the label of a real finding), and, per row, overlaps resolved
by detector priority. Only matches reach this module, so it is plain Python.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import re2

from sentinel.pii.catalog import Catalog
from sentinel.pii.validators import Verdict

_UNANCHORED = re2._Anchor.UNANCHORED


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


# A located match before validation: (row, detector, text, start, end, value start,
# value end), offsets in code points; the value span is the match's when the pattern
# has no group `v` (or it did not take part).
Raw = tuple[int, int, str, int, int, int, int]


def located_match(row: int, det: int, m: re.Match[str] | re2._Match) -> Raw:
    """The `Raw` of a match found in one text (by Python's `re`, or RE2 for a user's pattern).

    Group `v` is looked up by number: RE2's match objects take no group names.
    """
    v = m.re.groupindex.get("v", 0)
    a, b = m.span(v) if v and m.start(v) >= 0 else m.span()
    return row, det, m.string, m.start(), m.end(), a, b


def validate(raw: Sequence[Raw], catalog: Catalog) -> Matches:
    """The accepted findings among `raw`, non-overlapping, sorted by row then start."""
    accepted: dict[int, list[tuple[int, int, int, str]]] = {}
    labelled = catalog.value_groups
    # A validator is a function of the value alone, and logs repeat the same look-alikes
    # (`127.0.0.1`, `sk-xxxx…`, `${DB_PASSWORD}`): each distinct value is checked once per
    # call. The memo lives only as long as this call, so no value outlives its scan.
    verdicts: dict[tuple[int, str], Verdict] = {}
    twin_of = catalog.twin_of
    for found in raw:
        span = _value_span(catalog, found, verdicts)
        if span is None and twin_of[found[1]] >= 0:
            # What the detector rejects, its twin may accept (a documentation key)
            retyped = (found[0], twin_of[found[1]], *found[2:])
            span = _value_span(catalog, retyped, verdicts)
            if span is not None:
                found = retyped
        if span is None and labelled[found[1]]:
            found, span = _retried(catalog, found, verdicts)
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


def _retried(
    catalog: Catalog, found: Raw, verdicts: dict[tuple[int, str], Verdict]
) -> tuple[Raw, tuple[int, int] | None]:
    """The first of the next matches (`_retry`) of a rejected labelled match that passes."""
    for _ in range(_RETRIES - 1):
        following = _retry(catalog, found)
        if following is None:
            break
        found = following
        span = _value_span(catalog, found, verdicts)
        if span is not None:
            return found, span
    return found, None


_RETRIES = 4
_RETRY_WINDOW = 256


def _retry(catalog: Catalog, found: Raw) -> Raw | None:
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
    return None if m is None else located_match(row, det, m)


_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}[ -]?")


def _value_span(
    catalog: Catalog, found: Raw, verdicts: dict[tuple[int, str], Verdict]
) -> tuple[int, int] | None:
    """The value's span in the text, or None when the validator or the context say no.

    `before` applies where the value starts (and where the label starts, if any);
    `after` where the value finally ends (a validator may keep only part of a candidate
    that ran on into the next number or word).
    """
    _, det, text, start, end, a, b = found
    if b <= a:
        return None
    check = catalog.checks[det]
    verdict: Verdict = True
    if check is not None:
        key = (det, text[a:b])
        if key not in verdicts:
            verdicts[key] = check(key[1])
        verdict = verdicts[key]
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
