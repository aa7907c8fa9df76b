"""One pass over many rules matches exactly what each rule's own query matches."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sentinel.detect.compiler import compile_pack
from sentinel.detect.engine import (
    detection_alerts_sql,
    detection_condition,
    parquet_relation,
    pass_sql,
)
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
    for index, ids in alone.items():
        rows = con.execute(detection_alerts_sql("hits", index)).fetchall()
        assert sum(row[4] for row in rows) == len(ids)
        assert sorted(e["event_id"] for row in rows for e in row[5]) == ids
