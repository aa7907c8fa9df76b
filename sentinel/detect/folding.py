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
  exactly the unfolded `contains(lower(field), lower(value))`. Values with other characters
  (non-ASCII, wildcards) keep the per-value form.
* **Networks**: one parse per address family, `sentinel_ipv4(field)` bound once with a
  lambda and compared with every network of that family.

Both are exact rewrites of the OR they replace (NULL field: false), checked by the
differential test and by the backend's CIDR tests.
"""

from __future__ import annotations

import ipaddress
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
