"""Correlation rules compile to window queries; each type is run on a small event table."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest
from sigma.collection import SigmaCollection

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.testing import events_table
from sentinel.duck import register_macros as install_macros
from tests.unit.detect.correlation_rules import BASE, T0


def correlate(correlation: str) -> str:
    queries = SentinelBackend().convert(SigmaCollection.from_yaml(BASE + correlation))
    assert queries[-1].startswith("WITH ")  # an unreferenced building block may come first
    return str(queries[-1])


def ev(
    seconds: int, outcome: str = "failure", key: str | None = "k1", ip: str = "10.0.0.1"
) -> dict:
    return {
        "ts": T0 + timedelta(seconds=seconds),
        "outcome": outcome,
        "actor_key": key,
        "client_ip": ip,
    }


def execute(sql: str, events: list[dict]) -> list[dict]:
    rows = [{"event_id": f"e{i}", "source": "litellm", **event} for i, event in enumerate(events)]
    con = duckdb.connect()
    install_macros(con)
    con.register("t", events_table(rows))
    con.execute("CREATE VIEW events AS SELECT * FROM t")
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


EVENT_COUNT = """\
title: burst
correlation:
  type: event_count
  rules: [failed]
  group-by: [actor_key]
  timespan: 1m
  condition: {gte: 3}
"""


def test_event_count_sql_shape():
    sql = correlate(EVENT_COUNT)
    assert sql.startswith("WITH matched AS (")
    assert "count(*) OVER w AS aggregate" in sql
    assert 'PARTITION BY "actor_key" ORDER BY ts RANGE BETWEEN INTERVAL 60 SECOND PRECEDING' in sql
    assert "hits AS (SELECT * FROM windows WHERE aggregate >= 3)" in sql
    assert '"actor_key" IS NOT NULL' in sql


def test_event_count_one_row_per_burst_with_event_ids():
    events = [
        ev(0),
        ev(20),
        ev(40),
        ev(55),
        ev(300),
        ev(310),
        ev(320),
        ev(10, key="k2"),
        ev(15, "success"),
    ]
    rows = execute(correlate(EVENT_COUNT), events)
    assert [(r["actor_key"], r["event_count"], r["event_ids"]) for r in rows] == [
        ("k1", 4, ["e0", "e1", "e2", "e3"]),
        ("k1", 3, ["e4", "e5", "e6"]),
    ]
    assert rows[0]["window_start"] == T0 and rows[0]["window_end"] == T0 + timedelta(seconds=55)


def test_event_count_window_is_inclusive_and_bounded():
    rows = execute(correlate(EVENT_COUNT), [ev(0), ev(30), ev(60)])
    assert len(rows) == 1
    assert execute(correlate(EVENT_COUNT), [ev(0), ev(30), ev(61)]) == []


def test_event_count_null_group_is_not_a_group():
    assert (
        execute(correlate(EVENT_COUNT), [ev(0, key=None), ev(1, key=None), ev(2, key=None)]) == []
    )


def test_event_count_without_group_by():
    sql = correlate(EVENT_COUNT.replace("  group-by: [actor_key]\n", ""))
    rows = execute(sql, [ev(0, key="a"), ev(1, key="b"), ev(2, key=None)])
    assert [r["event_ids"] for r in rows] == [["e0", "e1", "e2"]]


VALUE_COUNT = """\
title: many ips
correlation:
  type: value_count
  rules: [failed, ok]
  group-by: [actor_key]
  timespan: 10m
  condition: {field: client_ip, gte: 3}
"""


def test_value_count_counts_distinct_values():
    sql = correlate(VALUE_COUNT)
    assert "OVER w AS aggregate" not in sql  # an interval sweep, not a per-row distinct frame
    assert "value AS distinct_value" in sql
    same = [ev(i * 10, ip="10.0.0.1") for i in range(5)]
    assert execute(sql, same) == []
    spread = [ev(0, ip="10.0.0.1"), ev(60, "success", ip="10.0.0.2"), ev(120, ip="10.0.0.3")]
    rows = execute(sql, spread)
    assert [(r["actor_key"], r["event_ids"]) for r in rows] == [("k1", ["e0", "e1", "e2"])]
    assert execute(sql, [ev(0, ip="a"), ev(60, ip="b"), ev(1200, ip="c")]) == []


TEMPORAL = """\
title: fail and succeed
correlation:
  type: temporal
  rules: [failed, ok]
  group-by: [actor_key]
  timespan: 5m
"""


def test_temporal_needs_every_rule_in_any_order():
    sql = correlate(TEMPORAL)
    assert "rule_index AS distinct_value" in sql and "aggregate >= 2" in sql
    assert len(execute(sql, [ev(0, "success"), ev(100)])) == 1  # success first is fine
    assert execute(sql, [ev(0), ev(100)]) == []
    assert execute(sql, [ev(0), ev(400, "success")]) == []
    assert execute(sql, [ev(0), ev(100, "success", key="k2")]) == []


TEMPORAL_ORDERED = TEMPORAL.replace("type: temporal", "type: temporal_ordered")


def test_temporal_ordered_needs_the_order():
    sql = correlate(TEMPORAL_ORDERED)
    assert "chain1 AS" in sql
    rows = execute(sql, [ev(0), ev(30), ev(60, "success")])
    assert [r["event_ids"] for r in rows] == [["e0", "e1", "e2"]]
    assert execute(sql, [ev(0, "success"), ev(100)]) == []
    assert execute(sql, [ev(0), ev(400, "success")]) == []
    assert execute(sql, [ev(0, key="k2"), ev(100, "success")]) == []


def test_temporal_ordered_three_steps():
    base = (
        BASE
        + """\
title: third
name: third
logsource: {product: ai_gateway, service: litellm}
detection:
  sel: {outcome: partial}
  condition: sel
---
title: seq
correlation:
  type: temporal_ordered
  rules: [failed, ok, third]
  group-by: [actor_key]
  timespan: 5m
"""
    )
    sql = SentinelBackend().convert(SigmaCollection.from_yaml(base))[-1]
    assert len(execute(sql, [ev(0), ev(10, "success"), ev(20, "partial")])) == 1
    assert execute(sql, [ev(0), ev(10, "partial"), ev(20, "success")]) == []


def test_aliases_group_different_fields():
    sql = correlate("""\
title: alias
correlation:
  type: temporal
  rules: [failed, ok]
  aliases:
    who:
      failed: actor_key
      ok: actor_user
  group-by: [who]
  timespan: 5m
""")
    events = [ev(0, key="bob"), {**ev(10, "success", key=None), "actor_user": "bob"}]
    rows = execute(sql, events)
    assert [(r["who"], r["event_ids"]) for r in rows] == [("bob", ["e0", "e1"])]


def spend(seconds: int, cost: float | None, key: str = "k1") -> dict:
    return {**ev(seconds, key=key), "cost_usd": cost, "prompt_tokens": 7}


def test_value_sum_fires_when_a_key_burns_spend_within_the_timespan():
    sql = correlate("""\
title: spend
correlation:
  type: value_sum
  rules: [failed]
  group-by: [actor_key]
  timespan: 10m
  condition: {field: cost_usd, gte: 10}
""")
    events = [
        spend(0, 4.0), spend(60, 3.0), spend(120, 3.5),  # k1: 10.5 within 2 minutes
        spend(0, 9.0, key="k2"), spend(1200, 9.0, key="k2"),  # k2: 9 + 9, 20 minutes apart
        spend(30, None, key="k3"), spend(40, 50.0, key="k3"),  # a NULL cost adds nothing
    ]
    rows = execute(sql, events)
    assert [(r["actor_key"], r["event_ids"]) for r in rows] == [
        ("k1", ["e0", "e1", "e2"]), ("k3", ["e5", "e6"])  # the burst lists its matched events
    ]


def test_value_avg_over_a_text_field_is_numeric():
    sql = correlate("""\
title: avg
correlation:
  type: value_avg
  rules: [failed]
  group-by: [actor_key]
  timespan: 1h
  condition: {field: raw.usage.total, gt: 1000}
""")
    events = [
        {**ev(0), "raw": {"usage": {"total": "1500"}}},
        {**ev(10), "raw": {"usage": {"total": "900"}}},   # mean 1200 > 1000
        {**ev(0, key="k2"), "raw": {"usage": {"total": "800"}}},
        {**ev(5, key="k2"), "raw": {"usage": {"total": "lots"}}},  # not a number: ignored
    ]
    rows = execute(sql, events)
    assert [(r["actor_key"], r["event_count"]) for r in rows] == [("k1", 2)]


@pytest.mark.parametrize("kind", ["value_percentile", "value_median"])
def test_unsupported_correlation_types_raise(kind):
    from sigma.exceptions import SigmaError

    rule = f"""\
title: sum
correlation:
  type: {kind}
  rules: [failed]
  group-by: [actor_key]
  timespan: 5m
  condition: {{field: cost_usd, gte: 10}}
"""
    with pytest.raises((SigmaError, NotImplementedError)):
        correlate(rule)
