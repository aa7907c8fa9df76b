"""The lake views: events, one per source, findings; empty lake; what a query may not do."""

from __future__ import annotations

import pyarrow as pa
import pytest

from sentinel.exceptions import QueryError
from sentinel.lake.query import open_lake, refresh_views, run_query
from sentinel.schema import EVENT_SCHEMA
from sentinel.workspace import Workspace
from tests.unit.lake.lakefiles import event, with_email, write_events


def rows(con, sql: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return run_query(con, sql).table.to_pylist()


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
    events = run_query(con, "SELECT * FROM events").table
    assert events.num_rows == 0
    assert events.schema.names == EVENT_SCHEMA.names
    assert events.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert events.schema.field("pii_types").type == pa.list_(pa.string())
    assert run_query(con, "SELECT * FROM findings").table.num_rows == 0
    assert {"events", "findings", "litellm", "bedrock", "cloudtrail", "openai_audit"} <= (
        view_names(con)
    )
    assert rows(con, "SELECT count(*) AS n FROM litellm") == [{"n": 0}]


def test_events_reads_every_committed_file_in_schema_order(lake: Workspace) -> None:
    con = open_lake(lake)
    table = run_query(con, "SELECT * FROM events ORDER BY event_id").table
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
    table = run_query(con, "SELECT * FROM events").table
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
    with pytest.raises(QueryError, match="Permission Error"):
        run_query(con, f"SELECT * FROM read_parquet('{workspace.staging_dir}/**/*.parquet')")


def test_new_sources_appear_after_refresh(workspace: Workspace) -> None:
    con = open_lake(workspace)
    write_events(workspace.lake_dir, [event(1, source="openai_audit")], source="openai_audit")
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 0}]
    refresh_views(con, workspace)
    assert rows(con, "SELECT count(*) AS n FROM events") == [{"n": 1}]
    assert rows(con, "SELECT count(*) AS n FROM openai_audit") == [{"n": 1}]


def test_new_batches_of_a_known_source_appear_without_refresh(lake: Workspace) -> None:
    con = open_lake(lake)
    write_events(lake.lake_dir, [event(9)], batch="batch-0003")
    assert rows(con, "SELECT count(*) AS n FROM litellm") == [{"n": 6}]


@pytest.mark.parametrize(
    "sql",
    [
        "COPY events TO '{root}/out.csv'",
        "COPY (SELECT 1) TO '{lake}/source=litellm/date=2025-01-24/evil.parquet'",
        "EXPORT DATABASE '{root}/export'",
        "ATTACH '{root}/state.db' AS s",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT 1; COPY events TO '{root}/out.csv'",
    ],
)
def test_statements_that_write_or_load_are_refused(lake: Workspace, sql: str) -> None:
    before = sorted(p.name for p in lake.lake_dir.rglob("*"))
    con = open_lake(lake)
    with pytest.raises(QueryError, match="not allowed"):
        run_query(con, sql.format(root=lake.root, lake=lake.lake_dir))
    assert sorted(p.name for p in lake.lake_dir.rglob("*")) == before
    assert not (lake.root / "out.csv").exists()


@pytest.mark.parametrize("target", ["secret.key", "sentinel.toml"])
def test_files_outside_the_lake_cannot_be_read(lake: Workspace, target: str) -> None:
    con = open_lake(lake)
    with pytest.raises(QueryError, match="Permission Error"):
        run_query(con, f"SELECT * FROM read_text('{lake.root / target}')")


def test_configuration_is_locked(lake: Workspace) -> None:
    con = open_lake(lake)
    with pytest.raises(QueryError, match="locked"):
        run_query(con, "SET enable_external_access = true")


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


def test_limit_keeps_n_rows_and_counts_the_rest(lake: Workspace) -> None:
    con = open_lake(lake)
    result = run_query(con, "SELECT * FROM range(5000)", limit=10)
    assert result.table.num_rows == 10
    assert (result.total_rows, result.more_rows) == (5000, 4990)
    unlimited = run_query(con, "SELECT * FROM events")
    assert (unlimited.table.num_rows, unlimited.more_rows) == (7, 0)


def test_last_statement_gives_the_result(lake: Workspace) -> None:
    con = open_lake(lake)
    result = run_query(
        con, "CREATE TEMP TABLE t AS SELECT actor_user FROM events; SELECT count(*) AS n FROM t"
    )
    assert result.table.to_pylist() == [{"n": 7}]
