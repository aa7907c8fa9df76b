"""One pass over many rules matches exactly what each rule's own query matches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sentinel.detect.compiler import compile_pack
from sentinel.detect.engine import (
    alert_groups_sql,
    detection_condition,
    iso_sql,
    links_sql,
    numbered_hits_sql,
    parquet_relation,
    pass_sql,
    rule_hits_sql,
)
from sentinel.detect.folding import MAX_ALTERNATION, share_regex_scans, substrings_sql
from sentinel.detect.rules import load_rules
from sentinel.detect.sqlmacros import install_macros
from sentinel.detect.testing import events_table, load_cases

REPO = Path(__file__).resolve().parents[3]


def pack_examples() -> tuple[list, pa.Table]:
    pack = load_rules([REPO / "detections"])
    compiled, problems = compile_pack(pack)
    assert not problems
    detections = [rule for rule in compiled if rule.kind == "detection"]
    events = []
    for rule in detections:
        cases = load_cases(rule.path.with_name(rule.path.stem + ".tests.jsonl"))
        for n, case in enumerate(cases):
            for m, event in enumerate(case.events):
                source = rule.loaded.sources[0]
                events.append({"source": source, **event, "event_id": f"{rule.path.stem}-{n}-{m}"})
    return detections, events_table(events)


def test_pass_equals_each_rule_alone(tmp_path: Path) -> None:
    detections, table = pack_examples()
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    con = duckdb.connect()
    install_macros(con)
    con.register("events_table", table)
    con.execute("CREATE VIEW events AS SELECT * FROM events_table")
    alone = {
        index: sorted(row[0] for row in con.execute(
            f"SELECT event_id FROM ({rule.sql})").fetchall())
        for index, rule in enumerate(detections)
    }
    conditions = [detection_condition(rule) for rule in detections]
    con.execute(
        "CREATE TABLE hits AS " + pass_sql(conditions, parquet_relation([str(path)]))
    )
    together = {
        index: sorted(row[0] for row in con.execute(
            f"SELECT event_id FROM hits WHERE r{index}").fetchall())
        for index in range(len(detections))
    }
    assert together == alone
    assert any(together.values())  # the examples do match something
    hits = con.execute("SELECT count(*) FROM hits").fetchone()[0]
    assert hits == len({e for ids in alone.values() for e in ids})
    # Alerts group one rule's hits by principal and day, and keep every event.
    con.execute("CREATE TABLE rule_hits AS " + rule_hits_sql("hits", len(detections)))
    con.execute("CREATE TABLE alerts AS " + alert_groups_sql("rule_hits"))
    groups = con.execute("SELECT * FROM alerts ORDER BY alert_no").fetchall()
    con.execute("CREATE TABLE numbered AS " + numbered_hits_sql("rule_hits", "alerts", 10))
    for index, ids in alone.items():
        mine = [row for row in groups if row[1] == index]
        assert sum(row[7] for row in mine) == len(ids)
        numbered = con.execute(
            "SELECT event_id FROM numbered WHERE rule = ?", [index]
        ).fetchall()
        assert sorted(row[0] for row in numbered) == ids


HITS = pa.table({
    "event_id": ["e3", "e1", "e2", "e4", "e5", "e6"],
    "ts": pa.array([datetime(2026, 11, 2, 9, 0, 0, 500, tzinfo=UTC)] * 3
                   + [datetime(2026, 11, 2, 23, 59, 59, tzinfo=UTC),
                      datetime(2026, 11, 3, 0, 0, tzinfo=UTC),
                      datetime(2026, 11, 2, 10, tzinfo=UTC)], pa.timestamp("us", "UTC")),
    "source": ["litellm"] * 6,
    "source_file": ["/logs/a.jsonl"] * 6,
    "source_offset": [30, 10, 20, 40, 50, 60],
    "actor_key": ["k1", "k1", "k1", "k1", "k1", None],
    "actor_user": [None, None, None, None, None, None],
    "client_ip": [None, None, None, None, None, None],
    "lake_file": ["/ws/lake/events/source=litellm/date=2026-11-02/b-1.parquet"] * 5
                 + ["/elsewhere/x.parquet"],
    "r0": [True, True, True, True, True, True],
    "r1": [False, True, False, False, False, True],
})


def test_alerts_are_numbered_by_rule_principal_and_day_and_linked_with_a_cap() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("hits", HITS)
    con.execute("CREATE TABLE rule_hits AS " + rule_hits_sql("hits", 2))
    con.execute("CREATE TABLE alerts AS " + alert_groups_sql("rule_hits"))
    groups = con.execute("SELECT * FROM alerts ORDER BY alert_no").fetchall()
    summary = [(rule, field, value, count, first)
               for _, rule, field, value, _, _, _, count, first in groups]
    # Rule 0: k1 on the 2nd (4 events, the first by (ts, event_id) is e1), no principal on
    # the 2nd, k1 on the 3rd; rule 1: k1 and no principal on the 2nd.
    assert summary == [
        (0, "actor_key", "k1", 4, "e1"), (0, None, None, 1, "e6"),
        (0, "actor_key", "k1", 1, "e5"), (1, "actor_key", "k1", 1, "e1"),
        (1, None, None, 1, "e6"),
    ]
    con.register("numbers", pa.table({
        "alert_no": pa.array([groups[0][0], groups[1][0]], pa.int64()),
        "alert_id": ["A1", "A2"], "rule_id": ["r", "r"],
    }))
    con.execute("CREATE TABLE numbered AS " + numbered_hits_sql("rule_hits", "alerts", 3))
    links = con.execute(
        links_sql("numbered", "numbers", 3) + " ORDER BY alert_id, ts, event_id",
        {"lake": "/ws/lake/events/"},
    ).fetchall()
    assert links == [
        ("r", "A1", "e1", "2026-11-02T09:00:00.000500+00:00", "litellm", "/logs/a.jsonl", 10,
         "source=litellm/date=2026-11-02/b-1.parquet", "b-1"),
        ("r", "A1", "e2", "2026-11-02T09:00:00.000500+00:00", "litellm", "/logs/a.jsonl", 20,
         "source=litellm/date=2026-11-02/b-1.parquet", "b-1"),
        ("r", "A1", "e3", "2026-11-02T09:00:00.000500+00:00", "litellm", "/logs/a.jsonl", 30,
         "source=litellm/date=2026-11-02/b-1.parquet", "b-1"),
        ("r", "A2", "e6", "2026-11-02T10:00:00+00:00", "litellm", "/logs/a.jsonl", 60,
         "/elsewhere/x.parquet", "x"),
    ]  # A1 holds 4 events, capped at the first 3


@settings(deadline=None)  # a DuckDB connection per example: slow on a loaded machine
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
@example(datetime(2026, 11, 2))
@example(datetime(2026, 11, 2, 0, 0, 0, 1))
def test_iso_sql_writes_what_python_writes(value: datetime) -> None:
    value = value.replace(tzinfo=UTC)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    written = con.execute(f"SELECT {iso_sql('$1::TIMESTAMPTZ')}", [value]).fetchone()[0]
    assert written == value.isoformat()
    assert value + timedelta(0) == datetime.fromisoformat(written)


def test_shared_regex_scans_rewrite_only_real_comparisons() -> None:
    regex = 'coalesce(regexp_matches("prompt_text", \'{}\'), false)'
    in_literal = "contains(\"model\", 'coalesce(regexp_matches(\"prompt_text\", ''a''), false)')"
    conditions = [regex.format("a"), f"NOT {regex.format('b|c')} AND {in_literal}",
                  regex.format("it''s"), 'coalesce(regexp_matches("model", \'lone\'), false)']
    rewritten, prefilters = share_regex_scans(conditions)
    assert prefilters == [(
        "sentinel_prefilter0",
        "regexp_matches(\"prompt_text\", '(?:a)|(?:b|c)|(?:it''s)')",
    )]
    guarded = "coalesce(CASE WHEN sentinel_prefilter0 THEN regexp_matches(\"prompt_text\", '{}') " \
              "ELSE false END, false)"
    assert rewritten[0] == guarded.format("a")
    assert rewritten[1] == f"NOT {guarded.format('b|c')} AND {in_literal}"  # literal untouched
    assert rewritten[2] == guarded.format("it''s")
    assert rewritten[3] == conditions[3]  # a column with one pattern has nothing to share


def test_shared_regex_scans_split_a_long_alternation() -> None:
    patterns = [f"p{i}" + "x" * 1500 for i in range(5)]
    conditions = [f"coalesce(regexp_matches(\"prompt_text\", '{p}'), false)" for p in patterns]
    rewritten, prefilters = share_regex_scans(conditions)
    assert len(prefilters) == 2  # two of two patterns; the fifth alone is left unguarded
    assert rewritten[4] == conditions[4]
    assert all(len(sql) < MAX_ALTERNATION + 100 for _, sql in prefilters)
    con = duckdb.connect()
    computed = ", ".join(f"{sql} AS {alias}" for alias, sql in prefilters)
    for text in [patterns[4], patterns[0] + "!", "none"]:
        row = con.execute(
            f"SELECT {', '.join(rewritten)} FROM (SELECT *, {computed} FROM "
            "(SELECT ? AS prompt_text))", [text],
        ).fetchone()
        assert list(row) == [p in text for p in patterns]


def test_folded_substrings_match_as_lower_does_even_where_re2_merges_classes() -> None:
    # `[aA]|[sS]` is merged by RE2 into one class with every Unicode variant of s (`ſ`).
    con = duckdb.connect()
    texts = ["\u017f", "x\u017f", "S", "xs", "\u212a", "K", "i", "\u0130", "b", "xa"]
    for literals in (["a", "s"], ["s", "k"], ["xs", "xa"], ["s"], ["k", "b"], ["i", "s"]):
        for text in texts:
            folded = con.execute(f"SELECT {substrings_sql('?', literals)}", [text]).fetchone()[0]
            expected = any(v in text.lower().replace("\u0130", "i") for v in literals)
            assert folded is expected, (literals, text)
