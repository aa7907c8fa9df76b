"""The SQL session: views (events, one per source, findings, state tables), statements in
order, lazy results, files that are not events."""

from __future__ import annotations

import sqlite3

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentinel.exceptions import QueryError
from sentinel.lake.query import connect
from sentinel.lake.session import SqlSession
from sentinel.schema import EVENT_SCHEMA
from sentinel.workspace import Workspace
from tests.unit.lake.lakefiles import event, with_email, write_events


def open_lake(ws: Workspace) -> SqlSession:
    return SqlSession(ws, reveal_reason="unit test")


def run_query(session: SqlSession, sql: str) -> pa.Table:
    return session.run(sql)[-1][0]


def rows(con: SqlSession, sql: str) -> list[dict]:  # type: ignore[type-arg]
    return run_query(con, sql).to_pylist()


def view_names(con) -> set[str]:  # type: ignore[no-untyped-def]
    return {r["name"] for r in rows(con, "SHOW TABLES")}


@pytest.fixture()
def lake(workspace: Workspace) -> Workspace:
    write_events(workspace.lake_dir, [event(i) for i in range(3)])
    write_events(
        workspace.lake_dir,
        [with_email(event(i)) for i in range(3, 5)],
        date="2025-01-25",
        batch="batch-0002",
    )
    write_events(
        workspace.lake_dir,
        [event(i, source="bedrock", vendor="anthropic") for i in range(2)],
        source="bedrock",
    )
    return workspace


def test_empty_lake_gives_typed_empty_views(workspace: Workspace) -> None:
    con = open_lake(workspace)
    events = run_query(con, "SELECT * FROM events")
    assert events.num_rows == 0
    assert events.schema.names == EVENT_SCHEMA.names
    assert events.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert events.schema.field("pii_types").type == pa.list_(pa.string())
    assert run_query(con, "SELECT * FROM findings").num_rows == 0
    assert {"events", "findings", "litellm", "bedrock", "cloudtrail", "openai_audit"} <= (
        view_names(con)
    )
    assert rows(con, "SELECT count(*) AS n FROM litellm") == [{"n": 0}]


def test_events_reads_every_committed_file_in_schema_order(lake: Workspace) -> None:
    con = open_lake(lake)
    table = run_query(con, "SELECT * FROM events ORDER BY event_id")
    assert table.num_rows == 7
    assert table.schema.names == EVENT_SCHEMA.names
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert rows(con, "SELECT current_setting('TimeZone') AS tz") == [{"tz": "UTC"}]


def test_per_source_views(lake: Workspace) -> None:
    con = open_lake(lake)
    assert rows(con, "SELECT DISTINCT source FROM litellm") == [{"source": "litellm"}]
    assert rows(con, "SELECT count(*) AS n FROM litellm") == [{"n": 5}]
    assert rows(con, "SELECT vendor, count(*) AS n FROM bedrock GROUP BY 1") == [
        {"vendor": "anthropic", "n": 2}
    ]
    assert rows(con, "SELECT count(*) AS n FROM cloudtrail") == [{"n": 0}]


def test_unknown_and_unsafe_source_directories(workspace: Workspace) -> None:
    write_events(workspace.lake_dir, [event(1, source="portkey")], source="portkey")
    write_events(workspace.lake_dir, [event(2, source="bad-name")], source="bad-name")
    write_events(workspace.lake_dir, [event(3, source="x")], source='x" AS SELECT 1; --')
    write_events(workspace.lake_dir, [event(4, source="events")], source="events")
    con = open_lake(workspace)
    assert rows(con, "SELECT event_id FROM portkey") == [{"event_id": "portkey-0001"}]
    assert "bad-name" not in view_names(con)
    # every file is still an event, whatever its directory is called
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 4}]


def test_findings_view_has_one_row_per_finding(lake: Workspace) -> None:
    con = open_lake(lake)
    found = rows(con, "SELECT * FROM findings ORDER BY event_id")
    assert [f["event_id"] for f in found] == ["litellm-0003", "litellm-0004"]
    assert list(found[0]) == [
        "event_id",
        "ts",
        "source",
        "actor_user",
        "actor_key",
        "vendor",
        "model",
        "type",
        "field",
        "start",
        "end",
        "digest",
    ]
    assert found[0]["type"] == "email"
    assert (found[0]["start"], found[0]["end"], found[0]["digest"]) == (0, 12, "d1")


def test_extra_columns_of_a_later_schema_are_ignored(workspace: Workspace) -> None:
    later = EVENT_SCHEMA.append(pa.field("risk_score", pa.float64()))
    write_events(workspace.lake_dir, [{**event(1), "risk_score": 0.9}], schema=later)
    write_events(workspace.lake_dir, [event(2)], batch="batch-0002")
    con = open_lake(workspace)
    table = run_query(con, "SELECT * FROM events")
    assert table.num_rows == 2
    assert table.schema.names == EVENT_SCHEMA.names


def test_staging_files_are_invisible(workspace: Workspace) -> None:
    write_events(workspace.lake_dir, [event(1)])
    staged = workspace.staging_dir / "source=litellm" / "date=2025-01-24"
    staged.mkdir(parents=True)
    (staged / "batch-0009.parquet").write_bytes(
        (workspace.lake_dir / "source=litellm/date=2025-01-24/batch-0001.parquet").read_bytes()
    )
    con = open_lake(workspace)
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 1}]
    with pytest.raises(QueryError, match="not allowed"):
        run_query(con, f"SELECT * FROM read_parquet('{workspace.staging_dir}/**/*.parquet')")


def test_new_sources_and_batches_appear_after_refresh(lake: Workspace) -> None:
    con = open_lake(lake)
    write_events(lake.lake_dir, [event(1, source="openai_audit")], source="openai_audit")
    write_events(lake.lake_dir, [event(9)], batch="batch-0003")
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 7}]
    con.refresh()
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 9}]
    assert rows(con, "SELECT count(*) AS n FROM openai_audit") == [{"n": 1}]


def test_errors_are_one_line(lake: Workspace) -> None:
    con = open_lake(lake)
    with pytest.raises(QueryError) as caught:
        run_query(con, "SELECT * FROM foo")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("Catalog Error: Table with name foo does not exist!")
    assert "Did you mean" in message
    assert "LINE 1" not in message


def test_vanished_files_give_a_retry_hint(lake: Workspace) -> None:
    con = open_lake(lake)
    for path in (lake.lake_dir / "source=bedrock").rglob("*.parquet"):
        path.unlink()
    with pytest.raises(QueryError, match="run the query again"):
        run_query(con, "SELECT count(*) FROM bedrock")


def test_collect_keeps_n_rows_and_counts_the_rest(lake: Workspace) -> None:
    con = open_lake(lake)
    [(table, total)] = con.run("SELECT * FROM range(5000)", limit=10)
    assert (table.num_rows, total) == (10, 5000)
    [(table, total)] = con.run("SELECT * FROM events")
    assert (table.num_rows, total) == (7, 7)


def test_statements_run_in_order_each_with_its_result(lake: Workspace) -> None:
    con = open_lake(lake)
    results = con.run("SELECT 1 AS a; SELECT 2 AS b; SELECT count(*) AS n FROM events")
    assert [t.to_pylist() for t, _ in results] == [[{"a": 1}], [{"b": 2}], [{"n": 7}]]


def test_a_refused_statement_stops_the_text_before_anything_runs(lake: Workspace) -> None:
    con = open_lake(lake)
    with pytest.raises(QueryError, match="COPY statements are not allowed"):
        list(con.execute(f"SELECT 1; COPY events TO '{lake.root}/out.csv'"))
    assert not (lake.root / "out.csv").exists()


def test_results_are_read_lazily_and_paged(lake: Workspace) -> None:
    con = open_lake(lake)
    [result] = list(con.execute("SELECT * FROM range(1000000) t(i)"))
    first = result.fetch(10)
    assert first.column("i").to_pylist() == list(range(10))
    second = result.fetch(5000)  # across DuckDB's batch boundaries
    assert second.column("i").to_pylist() == list(range(10, 5010))
    result.close()
    # a result left open does not block the next statement
    [result] = list(con.execute("SELECT 42 AS x"))
    assert result.fetch(1).to_pylist() == [{"x": 42}]


def test_an_open_result_is_closed_by_the_next_statement(lake: Workspace) -> None:
    con = open_lake(lake)
    for result in con.execute("SELECT * FROM range(100000); SELECT 7 AS seven"):
        head = result.fetch(1)  # the first result is left unfinished
    assert head.to_pylist() == [{"seven": 7}]


def test_corrupt_and_foreign_files_are_reported_not_fatal(lake: Workspace) -> None:
    bad_dir = lake.lake_dir / "source=litellm" / "date=2025-01-24"
    (bad_dir / "not-parquet.parquet").write_bytes(b"PAR1 this is not a parquet file")
    pq.write_table(pa.table({"x": [1]}), bad_dir / "foreign.parquet")
    pq.write_table(
        pa.table({"event_id": ["a"], "ts": ["yesterday"], "source": ["litellm"]}),
        bad_dir / "wrong-types.parquet",
    )
    con = open_lake(lake)
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 7}]
    assert rows(con, "SELECT count(*) AS n FROM litellm") == [{"n": 5}]
    problems = " ".join(con.problems)
    assert "not-parquet.parquet: not a readable Parquet file" in problems
    assert "foreign.parquet: not an event file" in problems
    assert "wrong-types.parquet: column 'ts' is string" in problems


def test_tables_and_schema(lake: Workspace) -> None:
    con = open_lake(lake)
    assert {"events", "findings", "litellm", "bedrock"} <= set(con.tables())
    assert not [t for t in con.tables() if t.startswith("_")]
    assert con.schema("events")[:2] == [("event_id", "VARCHAR"), ("ts", "TIMESTAMP WITH TIME ZONE")]
    assert con.schema("_sentinel_lake_events") == []
    assert con.schema("nosuch") == []


def test_state_tables_are_read_only_views(lake: Workspace) -> None:
    db = sqlite3.connect(lake.state_db)
    db.execute("CREATE TABLE notes_for_test (id INTEGER, body TEXT, who TEXT)")
    db.execute(
        "INSERT INTO notes_for_test VALUES (1, 'paid 4111 1111 1111 1111', 'ann'), (2, NULL, 'bob')"
    )
    db.commit()
    db.close()
    masked = SqlSession(lake, state_tables=("notes_for_test", "absent_table"))
    assert "notes_for_test" in masked.tables() and "absent_table" not in masked.tables()
    shown = rows(masked, "SELECT id, body, who FROM notes_for_test ORDER BY id")
    assert shown[0]["body"].startswith("paid card ****1111 ·") and shown[1]["body"] is None
    assert "4111" not in str(rows(masked, "SELECT replace(body, ' ', '') AS b FROM notes_for_test"))
    with pytest.raises(QueryError, match="not allowed"):
        masked.run("DELETE FROM notes_for_test")
    revealed = SqlSession(lake, reveal_reason="t", state_tables=("notes_for_test",))
    assert rows(revealed, "SELECT body FROM notes_for_test WHERE id = 1") == [
        {"body": "paid 4111 1111 1111 1111"}
    ]


def test_the_alerts_view_leaves_out_the_store_key(lake: Workspace) -> None:
    db = sqlite3.connect(lake.state_db)  # `sentinel init` made the store at its newest layout
    assert "alert_ref" in [row[1] for row in db.execute("PRAGMA table_info(alerts)")]
    db.close()
    columns = [name for name, _ in SqlSession(lake).schema("alerts")]
    assert "alert_ref" not in columns
    assert {"alert_id", "rule_id", "level", "first_ts", "event_count"} <= set(columns)


def test_connection_factory_is_injectable(lake: Workspace) -> None:
    made = []

    def factory() -> duckdb.DuckDBPyConnection:
        made.append(connect())
        return made[-1]

    session = SqlSession(lake, connect=factory)
    assert made and session.con is made[0]
    assert rows(session, "SELECT count(*) AS n FROM events") == [{"n": 7}]
