"""Differential test: distinct-count correlations (value_count, temporal, event_count over
several rules) and value_sum (whose windows run only over the buckets that can reach its
threshold) in DuckDB against a brute-force Python reference, on random events.

The SQL computes distinct counts by an interval sweep (`sentinel.detect.correlation`);
the reference below does what Sigma says, literally: for every matched event, the set of
its group's matched events with `ts` in `[ts - timespan, ts]`, counted. Bursts and the
reported rows follow the module's output contract. Timestamps are drawn from a few
seconds so that ties, windows touching exactly at their ends and NULL values and keys
are common.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sigma.collection import SigmaCollection

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.testing import events_table
from sentinel.duck import register_macros
from tests.unit.detect.correlation_rules import BASE as CORRELATION_BASE
from tests.unit.detect.correlation_rules import KEYED, T0

BASE = CORRELATION_BASE + KEYED
RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "failed": lambda e: e["outcome"] == "failure",
    "ok": lambda e: e["outcome"] == "success",
    "keyed": lambda e: e["model"] == "gpt-4o",  # overlaps the others: events match twice
}
OPS: dict[str, Callable[[int, int], bool]] = {
    "gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt,
    "eq": operator.eq, "neq": operator.ne,
}


def reference(
    kind: str, rules: list[str], events: list[dict[str, Any]], seconds: int, op: str, count: int
) -> list[tuple[Any, ...]]:
    """(key, window_start, window_end, event_count, event_ids) per burst, by brute force."""
    matched = [
        (index, event) for event in events for index, name in enumerate(rules)
        if RULES[name](event) and event["actor_key"] is not None
    ]
    span = timedelta(seconds=seconds)
    out = []
    for key in sorted({e["actor_key"] for _, e in matched}):
        rows = [(i, e) for i, e in matched if e["actor_key"] == key]
        hits = []
        for _index, event in rows:
            window = [(i, e) for i, e in rows if event["ts"] - span <= e["ts"] <= event["ts"]]
            if kind == "value_count":
                aggregate = len({e["client_ip"] for _, e in window if e["client_ip"] is not None})
            elif kind == "temporal":
                aggregate = len({i for i, _ in window})
            elif kind == "value_sum":
                values = {e["event_id"]: e["prompt_tokens"] for _, e in window
                          if e["prompt_tokens"] is not None}
                if not values:
                    continue  # the sum of no value is NULL: never a hit
                aggregate = sum(values.values())
            else:
                aggregate = len({e["event_id"] for _, e in window})
            if OPS[op](aggregate, count):
                hits.append((event["ts"], min(e["ts"] for _, e in window)))
        bursts: list[list[datetime]] = []
        previous = None
        for ts, start in sorted(hits):
            if previous is not None and start <= previous:
                bursts[-1][1] = ts
            else:
                bursts.append([start, ts])
            previous = ts
        for start, end in bursts:
            ids = sorted({e["event_id"] for _, e in rows if start <= e["ts"] <= end})
            out.append((key, start, end, len(ids), ids))
    return sorted(out)


def correlation_sql(kind: str, rules: list[str], seconds: int, op: str, count: int) -> str:
    condition = {
        "value_count": f"condition: {{field: client_ip, {op}: {count}}}",
        "temporal": f"condition: {{{op}: {count}}}",
        "event_count": f"condition: {{{op}: {count}}}",
        "value_sum": f"condition: {{field: prompt_tokens, {op}: {count}}}",
    }[kind]
    rule = (
        f"title: differential\ncorrelation:\n  type: {kind}\n  rules: [{', '.join(rules)}]\n"
        f"  group-by: [actor_key]\n  timespan: {seconds}s\n  {condition}\n"
    )
    return str(SentinelBackend().convert(SigmaCollection.from_yaml(BASE + rule))[-1])


CON = duckdb.connect()
register_macros(CON)


def run(sql: str, events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    CON.register("t", events_table([{**e, "source": "litellm"} for e in events]))
    CON.execute("CREATE OR REPLACE TEMP VIEW events AS SELECT * FROM t")
    rows = CON.execute(sql).fetchall()
    return sorted((r[0], r[1], r[2], r[3], list(r[4])) for r in rows)


@st.composite
def scenarios(draw: Any) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(["value_count", "temporal", "event_count", "value_sum"]))
    size = {"temporal": 2, "value_sum": 1}.get(kind) or draw(st.integers(1, 3))
    rules = draw(st.lists(st.sampled_from(list(RULES)), min_size=size, max_size=size,
                          unique=True))
    if kind == "event_count" and len(rules) == 1:
        rules.append("keyed" if rules[0] != "keyed" else "ok")
    events = []
    for index in range(draw(st.integers(0, 14))):
        events.append({
            "event_id": f"e{index:02d}",
            # Whole seconds (ties) and a few fractions: a value_sum decides from sums per
            # sixteenth of its timespan, whose edges then fall between events.
            "ts": T0 + timedelta(seconds=draw(st.integers(0, 40)),
                                 microseconds=draw(st.sampled_from([0, 0, 0, 100_000, 600_000]))),
            "outcome": draw(st.sampled_from(["failure", "success", "partial"])),
            "model": draw(st.sampled_from(["gpt-4o", "o3"])),
            "actor_key": draw(st.sampled_from(["k1", "k1", "k2", None])),
            "client_ip": draw(st.sampled_from(["a", "b", "c", "d", None])),
            "prompt_tokens": draw(st.sampled_from([None, -3, 0, 1, 2, 4, 7])),
        })
    seconds = draw(st.sampled_from([1, 5, 10, 30]))
    op = draw(st.sampled_from(list(OPS)))
    if kind == "value_sum":  # sums over tokens, some negative (a refund): any threshold
        count = draw(st.integers(-4, 14))
    else:
        count = draw(st.integers(0 if op in ("lt", "lte", "neq") else 1, 4))
    return kind, rules, events, seconds, op, count


def _event(
    index: int, seconds: float, ip: str | None, outcome: str = "failure",
    tokens: int | None = None,
) -> dict[str, Any]:
    return {"event_id": f"e{index:02d}", "ts": T0 + timedelta(seconds=seconds),
            "outcome": outcome, "model": "o3", "actor_key": "k1", "client_ip": ip,
            "prompt_tokens": tokens}


def _tokens(*pairs: tuple[float, int | None]) -> list[dict[str, Any]]:
    return [_event(i, seconds, None, tokens=tokens) for i, (seconds, tokens) in enumerate(pairs)]


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@example(("value_count", ["failed"], [_event(0, 0, "a"), _event(1, 10, "b"), _event(2, 10, "c")],
          10, "gte", 3))  # windows touching at both ends, ties at the newest event
@example(("value_count", ["failed"], [_event(0, 0, "a"), _event(1, 11, "b"), _event(2, 11, "c")],
          10, "gte", 3))  # one second too far apart
@example(("value_count", ["failed"], [_event(0, 0, None), _event(1, 1, None)], 10, "lt", 1))
@example(("value_count", ["failed"], [_event(0, 0, "a"), _event(1, 5, "a"), _event(2, 12, "b"),
                                      _event(3, 16, "a")], 5, "gte", 2))  # islands of "a"
@example(("value_sum", ["failed"], _tokens((0, 5), (10, 5)), 10, "gte", 10))  # ends touch
@example(("value_sum", ["failed"], _tokens((0, 5), (11, 5)), 10, "gte", 10))
@example(("value_sum", ["failed"], _tokens((0, 7), (5, -3), (9, 7), (19, 7)), 10, "gt", 13))
@example(("value_sum", ["failed"], _tokens((0, None), (1, None)), 5, "gte", -1))
@example(("value_sum", ["failed"], _tokens(*[(s, 1) for s in range(0, 40, 3)]), 30, "gte", 10))
# A 10 s timespan is decided in pieces of 0.625 s (T0 starts one): 0.1 and 0.6 share the
# piece that the window of 10.5 s starts in, at 0.5; only 0.6 is inside it.
@example(("value_sum", ["failed"], _tokens((0.1, 10), (5, 0), (10.5, 1)), 10, "gte", 9))
@example(("value_sum", ["failed"], _tokens((0.6, 10), (10.5, 1)), 10, "gte", 11))
@example(("value_sum", ["failed"], _tokens((0.6, 10), (0.1, -4), (10.5, 1)), 10, "gt", 10))
@example(("value_sum", ["failed"], _tokens(*[(s / 2, 2) for s in range(0, 80)]), 10, "gte", 40))
@example(("value_sum", ["failed"], _tokens((5, 7), (12, None)), 10, "gte", 5))  # a bucket of
# missing values (10 s to 20 s) after one that reaches the threshold: 12 s still hits
@example(("event_count", ["failed", "keyed"],
          [{**_event(0, 9, None, "partial"), "model": "gpt-4o"},
           {**_event(1, 40, None), "model": "gpt-4o"}, {**_event(2, 40, None), "model": "gpt-4o"}],
          3, "gte", 1))  # an instant of three hits (two of one event): one burst, not two
@given(scenarios())
def test_distinct_count_correlations_match_brute_force(scenario: tuple[Any, ...]) -> None:
    kind, rules, events, seconds, op, count = scenario
    sql = correlation_sql(kind, rules, seconds, op, count)
    assert run(sql, events) == reference(kind, rules, events, seconds, op, count), sql
