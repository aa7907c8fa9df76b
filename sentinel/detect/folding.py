"""A list of values on one field compiled as one expression instead of one per value.

A Sigma selection such as `prompt_text|contains: [a, b, c]` or `client_ip|cidr: [...]` is
an OR of one comparison per value. Compiled one by one, each value re-reads the field: five
phrases are five `lower(prompt_text)` copies and five searches per row, and eight networks
are eight IP parses per row (the public-address rule spent 8 s of a 10 s pass on them over
a million events). Folded, the field is read once per row:

* **Substrings**, case-insensitive, every value a plain ASCII literal: one RE2 alternation
  `regexp_matches(field, 'lit1|lit2|…')`. The case-insensitivity is spelt out per letter
  as the characters DuckDB's `lower()` maps to it (`[aA]`, `[kKK]` with the Kelvin
  sign, `[iIİ]` with the dotted capital I), *not* RE2's `(?i)`: Unicode case folding also
  matches `ſ` for `s` and `K` for `k` in places `lower()` does not, and the result must be
  exactly the unfolded `contains(lower(field), lower(value))` (`s` is spelt `(?:s|S)`, see
  `_caseless`). Values with other characters
  (non-ASCII, wildcards) keep the per-value form.
* **Networks**: one parse per address family, `sentinel_ipv4(field)` bound once with a
  lambda and compared with every network of that family.

Both are exact rewrites of the OR they replace (NULL field: false), checked by the
differential test and by the backend's CIDR tests.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from sentinel.detect.fields import quote_literal

# The characters whose DuckDB `lower()` is this ASCII letter, besides the letter's two cases
# (probed over every code point: only these two map into ASCII).
_EXTRA_UPPER = {"k": "\u212a", "i": "\u0130"}
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_LAMBDA_VAR = "sentinel_ip"


def foldable_literal(text: str) -> bool:
    """A substring the alternation can carry exactly: printable ASCII only."""
    return bool(text) and all(" " <= ch <= "~" for ch in text)


def _caseless(ch: str) -> str:
    lower = ch.lower()
    if lower == "s":
        # RE2 parses a two-letter class `[sS]` as the literal `s` with case folding, and when
        # it merges such literals into one class (`[aA]|[sS]` factored to `[AaSs]`) it adds
        # every Unicode case variant: `ſ` too, which `lower()` does not map to `s`. Found
        # by the pass's differential test; `(?:s|S)` is never turned into that literal. `k`
        # (whose only other variant, `K`, is wanted) and `i` have three-letter classes.
        return "(?:s|S)"
    if "a" <= lower <= "z":
        return f"[{lower}{lower.upper()}{_EXTRA_UPPER.get(lower, '')}]"
    return "\\" + ch if ch in _RE2_SPECIAL else ch


def substrings_sql(field_sql: str, literals: Sequence[str]) -> str:
    """True when the text contains any literal, letters compared as DuckDB `lower()` does."""
    pattern = "|".join("".join(_caseless(ch) for ch in literal) for literal in literals)
    return f"coalesce(regexp_matches({field_sql}, {quote_literal(pattern)}), false)"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks_sql(field_sql: str, networks: Sequence[Network]) -> str:
    """True when the address is in any network: one parse per family present."""
    parts = []
    for bits, macro in ((32, "sentinel_ipv4"), (128, "sentinel_ipv6")):
        tests = []
        for network in networks:
            if network.max_prefixlen != bits:
                continue
            shift = bits - network.prefixlen
            if shift == bits:  # /0: any address of the family (a shift by the width is undefined)
                tests.append(f"{_LAMBDA_VAR} IS NOT NULL")
            else:
                value = int(network.network_address) >> shift
                tests.append(f"({_LAMBDA_VAR} >> {shift}) = {value}")
        if tests:
            parts.append(
                f"coalesce(list_transform([{macro}({field_sql})], lambda {_LAMBDA_VAR}: "
                f"{' OR '.join(tests)})[1], false)"
            )
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


# --- One scan of a text column for every regex of a pass -----------------------------------
#
# A pass evaluates every rule over one source; six rules with a regex (or a folded substring
# list) on `prompt_text` are six RE2 scans of the same text, and the text is most of the
# bytes. `share_regex_scans` computes one alternation of every pattern on a column once per
# row (a *prefilter*) and guards each rule's own regex with it:
#
#     coalesce(regexp_matches(col, 'p1'), false)
#  -> coalesce(CASE WHEN <prefilter> THEN regexp_matches(col, 'p1') ELSE false END, false)
#
# Exact by construction, at the level of one comparison, so a rule's `not`, `and` and `or`
# need no analysis: when `p1` matches, the alternation `(?:p1)|(?:p2)|…` matches, so the
# guard is true and the rule's own regex decides; when the guard is false, `p1` cannot match;
# when the column is NULL both sides are false (the coalesce). Each pattern sits in its own
# non-capturing group, so an inline flag such as `(?i)` stays within it. DuckDB's CASE runs
# the THEN branch only on the rows whose guard is true, so a rule's regex reads the few rows
# the alternation kept. A column with a single pattern is left alone (nothing to share).

_ATOM = re.compile(
    r"""coalesce\(regexp_matches\((?P<field>"(?:[^"]|"")+"), """
    r"""'(?P<pattern>(?:[^']|'')*)'\), false\)"""
    r"""|'(?:[^']|'')*'|"(?:[^"]|"")*\""""
)
PREFILTER_PREFIX = "sentinel_prefilter"
MAX_ALTERNATION = 4_000
"""Characters per prefilter pattern: a column with more patterns gets several prefilters,
so RE2's compiled program stays small (its memory budget fails a huge alternation)."""


def _atoms(condition: str) -> list[re.Match[str]]:
    """The regex comparisons on a plain column, outside any quoted literal or identifier."""
    return [m for m in _ATOM.finditer(condition) if m.group("field")]


def share_regex_scans(conditions: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """`conditions` with each regex guarded by its column's prefilter, and the prefilters
    as (alias, SQL expression) for the relation the conditions read (see above)."""
    patterns: dict[str, list[str]] = {}
    for condition in conditions:
        for match in _atoms(condition):
            found = patterns.setdefault(match.group("field"), [])
            if match.group("pattern") not in found:
                found.append(match.group("pattern"))
    guards: dict[tuple[str, str], str] = {}
    prefilters: list[tuple[str, str]] = []
    for field_sql, quoted in patterns.items():
        if len(quoted) < 2:
            continue
        for chunk in _chunks(quoted):
            alias = f"{PREFILTER_PREFIX}{len(prefilters)}"
            pattern = "|".join(f"(?:{q.replace(chr(39) * 2, chr(39))})" for q in chunk)
            prefilters.append((alias, f"regexp_matches({field_sql}, {quote_literal(pattern)})"))
            guards.update({(field_sql, q): alias for q in chunk})
    if not prefilters:
        return list(conditions), []

    def guard(match: re.Match[str]) -> str:
        text = match.group(0)
        alias = guards.get((match.group("field"), match.group("pattern")))
        if not match.group("field") or alias is None:
            return text  # a quoted literal or identifier, or a lone pattern
        inner = text[len("coalesce("):-len(", false)")]
        return f"coalesce(CASE WHEN {alias} THEN {inner} ELSE false END, false)"

    return [_ATOM.sub(guard, condition) for condition in conditions], prefilters


def _chunks(patterns: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    size = 0
    for pattern in patterns:
        if chunks[-1] and size + len(pattern) > MAX_ALTERNATION:
            chunks.append([])
            size = 0
        chunks[-1].append(pattern)
        size += len(pattern) + 5
    return [chunk for chunk in chunks if len(chunk) > 1] if len(chunks) > 1 else chunks
