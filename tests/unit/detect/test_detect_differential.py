"""Differential test: random Sigma rules on random events, DuckDB vs a plain Python evaluator.

The evaluator below is written from Sigma's specification, independently of the backend:
values match case-insensitively (per-character simple lowercase, as DuckDB's `lower()`:
`str.lower` except `İ` → `i`; no final sigma in the alphabet; the Kelvin sign `K` and the
long `ſ` are there because RE2's case folding treats them unlike `lower()`), `*` and
`?` are wildcards unless escaped, a missing field never equals a value (so `not` matches
it), list columns match when any element matches, keywords search prompt, response and
raw text. Values deliberately contain LIKE and SQL metacharacters (`%`, `_`, `'`, `\\`),
escaped Sigma wildcards, unicode and case variants.

SENTINEL_DIFF_EXAMPLES scales the run (default 600 rules, each on 8 events).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.engine import HIT_COLUMNS, SELECT_PREFIX, pass_sql
from sentinel.detect.folding import share_regex_scans
from sentinel.detect.testing import events_table
from sentinel.duck import register_macros as install_macros

EXAMPLES = int(os.environ.get("SENTINEL_DIFF_EXAMPLES", "600"))
ALPHABET = "aAbB%_'\\*? éÉßΣσ中kKiİſs.|("
TEXT_FIELDS = ("actor_user", "prompt_text", "model")
MULTI, SINGLE = object(), object()


@dataclass(frozen=True)
class Item:
    field: str
    modifier: str  # "", contains, startswith, endswith, re, cased, gte, lt, null, exists
    values: tuple[Any, ...]
    all: bool = False


# --- the independent evaluator -------------------------------------------------------------


def lower(text: str) -> str:
    return "".join("i" if ch == "İ" else ch.lower() for ch in text)


def pattern_regex(tokens: tuple[Any, ...], modifier: str) -> str:
    body = "".join(".*" if t is MULTI else "." if t is SINGLE else re.escape(t) for t in tokens)
    if modifier in ("contains", "keyword"):
        body = f".*{body}.*"
    elif modifier == "startswith":
        body = f"{body}.*"
    elif modifier == "endswith":
        body = f".*{body}"
    return body


def string_matches(value: str | None, tokens: tuple[Any, ...], modifier: str, cased: bool) -> bool:
    if value is None:
        return False
    regex = pattern_regex(tokens, modifier)
    if cased:
        return re.fullmatch(regex, value, re.S) is not None
    regex = pattern_regex(tuple(lower(t) if isinstance(t, str) else t for t in tokens), modifier)
    return re.fullmatch(regex, lower(value), re.S) is not None


def item_matches(item: Item, event: dict[str, Any]) -> bool:
    if item.modifier == "keyword":
        texts = [event.get("prompt_text"), event.get("response_text"), event.get("raw")]
        return any(any(string_matches(t, v, "keyword", False) for t in texts) for v in item.values)
    value = event.get(item.field)
    if item.modifier == "null":
        return value is None
    if item.modifier == "exists":
        return value is not None
    if item.modifier in ("gte", "lt"):
        results = [
            value is not None and (value >= v if item.modifier == "gte" else value < v)
            for v in item.values
        ]
    elif item.modifier == "re":
        results = [value is not None and re.search(v, value) is not None for v in item.values]
    elif item.field == "pii_types":
        results = [
            any(string_matches(e, v, item.modifier, False) for e in value or [])
            for v in item.values
        ]
    else:
        cased = item.modifier == "cased"
        mod = "" if cased else item.modifier
        results = [string_matches(value, v, mod, cased) for v in item.values]
    return all(results) if item.all else any(results)


def evaluate(condition: Any, selections: dict[str, list[Item]], event: dict[str, Any]) -> bool:
    op = condition[0]
    if op == "sel":
        return all(item_matches(item, event) for item in selections[condition[1]])
    if op == "not":
        return not evaluate(condition[1], selections, event)
    results = [evaluate(c, selections, event) for c in condition[1:]]
    return all(results) if op == "and" else any(results)


# --- rendering the same rule as Sigma -------------------------------------------------------


def sigma_string(tokens: tuple[Any, ...]) -> str:
    out = []
    for t in tokens:
        if t is MULTI:
            out.append("*")
        elif t is SINGLE:
            out.append("?")
        else:
            out.append("\\" + t if t in "*?\\" else t)
    return "".join(out)


def render_selection(items: list[Item]) -> Any:
    if items[0].modifier == "keyword":
        return [sigma_string(v) for item in items for v in item.values]
    detection: dict[str, Any] = {}
    for item in items:
        mods = {"": "", "cased": "|cased", "null": "", "exists": "|exists"}.get(
            item.modifier, "|" + item.modifier
        )
        key = item.field + mods + ("|all" if item.all else "")
        if item.modifier == "null":
            detection[key] = None
        elif item.modifier == "exists":
            detection[key] = True
        elif item.modifier in ("gte", "lt", "re"):
            detection[key] = list(item.values)
        else:
            detection[key] = [sigma_string(v) for v in item.values]
    return detection


def render_condition(condition: Any) -> str:
    op = condition[0]
    if op == "sel":
        return condition[1]
    if op == "not":
        return f"not ({render_condition(condition[1])})"
    return "(" + f" {op} ".join(render_condition(c) for c in condition[1:]) + ")"


# --- strategies -----------------------------------------------------------------------------

chars = st.sampled_from(ALPHABET)
texts = st.text(alphabet=ALPHABET, max_size=6)
tokens = st.lists(
    st.one_of(chars, chars, chars, chars, chars, st.just(MULTI), st.just(SINGLE)), max_size=5
).map(tuple)
regexes = st.builds(
    # the alphabet has no regex metacharacters, so fragments are literal in RE2 and Python
    lambda a, b, star, flag: flag + a + (".*" if star else "") + b,
    st.text(alphabet="aAbB%_' éÉ中", max_size=3),
    st.text(alphabet="aAbB%_' éÉ中", max_size=2),
    st.booleans(),
    st.sampled_from(["", "(?i)"]),
)


@st.composite
def items(draw: Any) -> Item:
    kind = draw(
        st.sampled_from(["text", "text", "text", "list", "number", "re", "null", "keyword"])
    )
    if kind == "keyword":
        return Item(
            "", "keyword", tuple(draw(st.lists(tokens.filter(bool), min_size=1, max_size=2)))
        )
    if kind == "number":
        return Item(
            "status_code", draw(st.sampled_from(["gte", "lt"])), (draw(st.integers(0, 600)),)
        )
    if kind == "null":
        return Item(
            draw(st.sampled_from(TEXT_FIELDS)), draw(st.sampled_from(["null", "exists"])), ()
        )
    if kind == "re":
        return Item(draw(st.sampled_from(TEXT_FIELDS)), "re", (draw(regexes),))
    field = "pii_types" if kind == "list" else draw(st.sampled_from(TEXT_FIELDS))
    modifiers = ["", "contains", "startswith", "endswith"] + (["cased"] if kind == "text" else [])
    modifier = draw(st.sampled_from(modifiers))
    values = tuple(draw(st.lists(tokens, min_size=1, max_size=3)))
    use_all = len(values) > 1 and modifier != "" and draw(st.booleans())
    return Item(field, modifier, values, use_all)


@st.composite
def rules(draw: Any) -> tuple[dict[str, list[Item]], Any]:
    selections: dict[str, list[Item]] = {}
    for index in range(draw(st.integers(1, 3))):
        first = draw(items())
        group = [first] if first.modifier == "keyword" else [first]
        if first.modifier != "keyword" and draw(st.booleans()):
            second = draw(items().filter(lambda i: i.modifier != "keyword"))
            if second.field != first.field:
                group.append(second)
        selections[f"sel{index}"] = group
    names = list(selections)

    def tree(depth: int) -> st.SearchStrategy[Any]:
        leaf = st.sampled_from(names).map(lambda n: ("sel", n))
        if depth == 0:
            return leaf
        sub = tree(depth - 1)
        return st.one_of(
            leaf,
            sub.map(lambda c: ("not", c)),
            st.tuples(st.sampled_from(["and", "or"]), sub, sub).map(lambda t: (t[0], t[1], t[2])),
        )

    return selections, draw(tree(3))


# Characters that Unicode case folding (RE2's `(?i)`) equates with an ASCII letter although
# DuckDB's `lower()` maps only some of them to it: K → k and İ → i do, ſ → s does not.
TWINS = str.maketrans({"k": "\u212a", "K": "\u212a", "i": "\u0130", "s": "\u017f", "S": "\u017f"})


def near_misses(selections: dict[str, list[Item]]) -> list[str]:
    """Strings built from the rule's own values (wildcards filled, case swapped), so that
    random events hit the interesting boundaries instead of never matching."""
    pool = []
    for group in selections.values():
        for item in group:
            for value in item.values:
                if isinstance(value, tuple):
                    text = "".join("xY" if t is MULTI else "Z" if t is SINGLE else t for t in value)
                    pool.extend([text, text.swapcase(), "a" + text.upper() + "b", text[1:],
                                 text.translate(TWINS)])
    return pool or ["a"]


@st.composite
def events(draw: Any, pool: list[str]) -> list[dict[str, Any]]:
    values = st.one_of(st.sampled_from(pool), st.sampled_from(pool), texts)
    out = []
    for index in range(8):
        event: dict[str, Any] = {"event_id": f"e{index}"}
        for name in TEXT_FIELDS + ("response_text",):
            if draw(st.integers(0, 4)):
                event[name] = draw(values)
        if draw(st.booleans()):
            event["pii_types"] = draw(st.lists(values, max_size=3))
        if draw(st.booleans()):
            event["status_code"] = draw(st.integers(0, 600))
        if draw(st.integers(0, 3)) == 0:
            event["raw"] = json.dumps({"note": draw(values)}, ensure_ascii=False)
        out.append(event)
    return out


# --- the test -------------------------------------------------------------------------------

CON = duckdb.connect()
install_macros(CON)
RUNS = {"cases": 0}


def run_duckdb(sql: str, rows: list[dict[str, Any]]) -> list[str]:
    table = events_table(
        [{"ts": "2025-03-01T00:00:00+00:00", "source": "litellm", **row} for row in rows]
    )
    CON.register("diff_events", table)
    CON.execute("CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM diff_events")
    return sorted(row[0] for row in CON.execute(f"SELECT event_id FROM ({sql})").fetchall())


BACKEND = SentinelBackend()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(data=st.data())
def check_rule(data: st.DataObject) -> None:
    selections, condition = data.draw(rules())
    rows = data.draw(events(near_misses(selections)))
    detection = {name: render_selection(group) for name, group in selections.items()}
    detection["condition"] = render_condition(condition)
    sigma_rule = {
        "title": "differential",
        "logsource": {"product": "ai_gateway", "service": "litellm"},
        "detection": detection,
    }
    sql = BACKEND.convert(SigmaCollection.from_dicts([sigma_rule]))[0]
    expected = sorted(r["event_id"] for r in rows if evaluate(condition, selections, r))
    assert run_duckdb(sql, rows) == expected, (detection, sql)
    RUNS["cases"] += 1


def test_duckdb_matches_python_evaluator() -> None:
    check_rule()
    assert RUNS["cases"] >= min(EXAMPLES, 500)


# --- many rules in one pass, regexes sharing a prefilter ------------------------------------

PASS_RUNS = {"cases": 0, "shared": 0}
PASS_RULES = 4
ascii_tokens = st.lists(st.sampled_from("aAbBkKiIsS%_' .|("), min_size=1, max_size=4).map(
    lambda chars: ("".join(chars),)
)


@st.composite
def regex_rules(draw: Any) -> tuple[dict[str, list[Item]], Any, list[str]]:
    """A random rule with one more selection: a regex, or a list of ASCII substrings (folded
    into one), on a column the other rules of the pass search too; alone, negated, or in
    an `and`/`or` with the rest. Also returns texts near what that selection matches."""
    selections, condition = draw(rules())
    field = draw(st.sampled_from(["prompt_text", "model"]))
    if draw(st.booleans()):
        regex = draw(regexes)
        item = Item(field, "re", (regex,))
        near = [regex.removeprefix("(?i)").replace(".*", "x"), regex.upper()]
    else:
        item = Item(field, "contains", tuple(draw(st.lists(ascii_tokens, min_size=2, max_size=3))))
        near = ["y" + value[0].swapcase() for value in item.values]
    selections["rx"] = [item]
    shape = draw(st.sampled_from(["alone", "not", "and", "or", "and not"]))
    rx = ("sel", "rx")
    if shape == "alone":
        condition = rx
    elif shape == "not":
        condition = ("not", rx)
    elif shape == "and not":
        condition = ("and", condition, ("not", rx))
    else:
        condition = (shape, rx, condition)
    return selections, condition, near


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@given(data=st.data())
def check_pass(data: st.DataObject) -> None:
    """Several random rules in one scan pass (`engine.pass_sql`, where the regexes of all
    the rules on one column share a prefilter scan) match what the evaluator says, rule by
    rule, including rules that negate a regex."""
    drawn, pool = [], []
    for _ in range(PASS_RULES):
        selections, condition, near = data.draw(regex_rules())
        drawn.append((selections, condition))
        pool += near + near_misses(selections)
    rows = data.draw(events(pool))
    conditions = []
    for selections, condition in drawn:
        detection = {name: render_selection(group) for name, group in selections.items()}
        detection["condition"] = render_condition(condition)
        sql = BACKEND.convert(SigmaCollection.from_dicts([{
            "title": "differential", "detection": detection,
            "logsource": {"product": "ai_gateway", "service": "litellm"},
        }]))[0]
        conditions.append(sql.removeprefix(SELECT_PREFIX))
    table = events_table(
        [{"ts": "2025-03-01T00:00:00+00:00", "source": "litellm", **row} for row in rows]
    )
    CON.register("pass_events", table)
    relation = "(SELECT *, 'lake.parquet' AS filename FROM pass_events)"
    hits = CON.execute(pass_sql(conditions, relation)).fetchall()
    flags = len(HIT_COLUMNS) + 1
    for index, (selections, condition) in enumerate(drawn):
        expected = sorted(r["event_id"] for r in rows if evaluate(condition, selections, r))
        got = sorted(row[0] for row in hits if row[flags + index])
        assert got == expected, (index, rows, pass_sql(conditions, relation))
    PASS_RUNS["cases"] += 1
    PASS_RUNS["shared"] += bool(share_regex_scans(conditions)[1])


def test_one_pass_with_shared_regex_scans_matches_python_evaluator() -> None:
    check_pass()
    assert PASS_RUNS["cases"] >= min(EXAMPLES // 2, 250)
    assert PASS_RUNS["shared"] >= PASS_RUNS["cases"] // 10  # prefilters were exercised
