"""The config-mapped source's one-parse query against the per-field query it replaced.

The source used to extract every mapped path from the record on its own and read the
result through generic macros (`to_json`, `json_type`, one parse per element): ingest of
a 600 MB custom-source file spent 12 of its 14 s there. Now the single-value paths come
out of one `json_extract(record, [paths])` and a wildcard through `json_extract_string`.
This test keeps the old expressions verbatim and compares both on random JSON values:
strings with escapes and non-ASCII text, numbers, booleans, null, nested arrays and
objects, missing keys.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sentinel import duck
from sentinel.ingest.normalise import connect, normalise
from sentinel.sources.jsonl import JsonlSource

# The macros as they were before the one-parse query (reference only).
_OLD_MACROS = [
    """
    CREATE OR REPLACE MACRO old_text(v) AS
        CASE WHEN json_type(v) = 'ARRAY' THEN NULLIF(array_to_string(
                 list_transform(json_extract(v, '$[*]'), lambda e: sentinel_text(e)),
                 chr(10)), '')
             ELSE sentinel_text(v) END
    """,
    """
    CREATE OR REPLACE MACRO old_first(v) AS
        CASE WHEN json_type(v) = 'ARRAY' THEN json_extract(v, '$[0]') ELSE v END
    """,
]

FIELDS = {
    "ts": "$.t",
    "actor_user": "$.a",
    "model": "$.b.c",
    "prompt_text": "$.m[*].content",
    "response_text": "$.r[*]",
    "resource": "$.o.*",
}
WILD_TS = {"ts": "$.times[*]", "actor_user": "$.a"}

scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["", "a\nb", 'q"uote', "back\\slash", "tab\t", "é✓😀", "[1]", "null"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["content", "x", "c"]), inner, max_size=3),
    max_leaves=8,
)
records = st.dictionaries(
    st.sampled_from(["a", "b", "m", "r", "o", "times", "extra"]), values, max_size=7
)


def _old(fields: dict[str, str], texts: list[str]) -> list[dict[str, Any]]:
    con = duck.connect()
    for macro in _OLD_MACROS:
        con.execute(macro)
    con.register("t", pa.table({"n": list(range(len(texts))), "record": texts}))
    parts, params = [], []
    for column, path in fields.items():
        value = f"to_json(json_extract(record, ${len(params) + 1}))"
        params.append(path)
        expr = f"sentinel_ts(old_first({value}))" if column == "ts" else f"old_text({value})"
        parts.append(f"{expr} AS {column}")
    rows = con.execute(f"SELECT {', '.join(parts)} FROM t ORDER BY n", params)
    names = [d[0] for d in rows.description]
    return [dict(zip(names, row, strict=True)) for row in rows.fetchall()]


def _new(fields: dict[str, str], texts: list[str]) -> list[dict[str, Any]]:
    table = pa.table({"source_offset": pa.array(range(len(texts)), pa.int64()),
                      "record": pa.array(texts, pa.string())})
    events, rejected = normalise(connect(), JsonlSource("acme", fields), table, "x")
    assert rejected.num_rows == 0
    return [{c: e[c] for c in fields} for e in events.to_pylist()]


def _compare(fields: dict[str, str], items: list[dict[str, Any]]) -> None:
    texts = [json.dumps(item) for item in items]
    old = _old(fields, texts)
    # The old query's rows that normalisation accepts: the others have no usable time.
    kept = [row for row in old if row["ts"] is not None]
    assert _new(fields, [t for t, row in zip(texts, old, strict=True)
                         if row["ts"] is not None]) == kept


@settings(max_examples=60, deadline=None)
@given(st.lists(records, min_size=1, max_size=8), st.integers(0, 2**31))
@example([{"m": [{"content": "a"}, {"content": None}, {"content": [1, {"x": 2}]}],
           "r": [], "o": {"x": "y", "c": 1.5}, "a": [None, "z"], "b": {"c": [[1], "w"]}}], 0)
@example([{"m": [], "r": ["only"], "o": {}, "a": "", "b": {"c": None}}], 1)
def test_single_and_wildcard_paths_match_the_old_query(
    items: list[dict[str, Any]], epoch: int
) -> None:
    _compare(FIELDS, [{**item, "t": epoch} for item in items])
    # A time under a wildcard is the first value; as an array value, its first element.
    _compare(WILD_TS, [{**item, "times": [epoch, 5]} for item in items])
    _compare({"ts": "$.t", "actor_user": "$.a"}, [{**item, "t": [epoch]} for item in items])


def test_a_wildcard_is_asked_of_duckdb() -> None:
    source = JsonlSource("acme", FIELDS)
    assert source._wildcards == {"prompt_text", "response_text", "resource"}
    (stage,) = source.stages()
    assert stage == "json_extract(record, [$1, $2, $3]) AS _jsonl"  # ts, actor_user, model
    assert JsonlSource("acme", {"ts": "$.t[*]"}).stages() == []


def test_paths_stay_parameters() -> None:
    source = JsonlSource("acme", {"ts": "$.t", "model": "$.\"a'); DROP TABLE x; --\""})
    assert "DROP" not in source.select_list() + "".join(source.stages())
