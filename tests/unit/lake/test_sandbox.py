"""The sandbox: every known way of writing, reading outside the lake or reaching the
unmasked data from a query is refused, and the lake is byte-for-byte unchanged after."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import pytest

from sentinel.exceptions import QueryError
from sentinel.lake.session import SqlSession
from sentinel.workspace import Workspace
from tests.unit.lake.lakefiles import event, with_email, write_events


@pytest.fixture()
def lake(workspace: Workspace) -> Workspace:
    write_events(workspace.lake_dir, [event(i) for i in range(3)])
    write_events(
        workspace.lake_dir,
        [with_email(event(9, prompt_text="bob@example.com wrote"))],
        batch="batch-0002",
    )
    return workspace


def snapshot(root: Path) -> dict[str, str]:
    """Every file under the workspace with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith("state.db")
    }


BATCH = "source=litellm/date=2025-01-24/batch-0001.parquet"
BYPASSES = [
    "COPY events TO '{root}/out.csv'",
    "COPY (SELECT 1) TO '{lake}/source=litellm/date=2025-01-24/forged.parquet' (FORMAT parquet)",
    "COPY (SELECT * FROM events LIMIT 1) TO '{lake}/" + BATCH + "' (FORMAT parquet)",
    "COPY (SELECT 'junk') TO '{lake}/source=litellm/date=2025-01-24/junk.parquet' (FORMAT csv)",
    "PREPARE p AS COPY (SELECT 1) TO '{lake}/source=litellm/date=2025-01-24/p.parquet'",
    "PREPARE p AS SELECT 1; EXECUTE p",
    "EXECUTE p",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{lake}/source=litellm/date=2025-01-24/e.parquet'",
    "EXPLAIN COPY (SELECT 1) TO '{root}/e.csv'",
    "/* hi */ EXPLAIN ANALYZE -- there\n COPY (SELECT 1) TO '{root}/e.csv'",
    "explain analyze select 1; copy (select 1) to '{root}/e.csv'",
    "EXPLAIN PREPARE q AS SELECT 1",
    "EXPORT DATABASE '{root}/export'",
    "ATTACH '{root}/state.db' AS s (TYPE sqlite)",
    "ATTACH ':memory:' AS m",
    "DETACH memory",
    "INSTALL httpfs",
    "LOAD httpfs",
    "LOAD json",
    "SET enable_external_access = true",
    "SET threads = 1",
    "RESET lock_configuration",
    "PRAGMA show_tables",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "CREATE TABLE t AS SELECT 1",
    "CREATE OR REPLACE VIEW events AS SELECT 1 AS x",
    "CREATE MACRO m(x) AS x",
    "DROP VIEW events",
    "INSERT INTO events SELECT * FROM events",
    "CHECKPOINT",
    "VACUUM",
    "USE memory",
    "PIVOT events ON source",
    "SELECT * FROM read_parquet('{lake}/*/*/*.parquet')",
    "SELECT * FROM read_csv('{root}/state.db')",
    "SELECT * FROM read_text('{root}/secret.key')",
    "SELECT * FROM read_blob('{root}/secret.key')",
    "SELECT content FROM read_text('{root}/sentinel.toml')",
    "SELECT * FROM '{root}/secret.key'",
    "SELECT * FROM \"{root}/state.db\"",
    "SELECT * FROM glob('{root}/*')",
    "SELECT * FROM glob('.tmp/*')",
    "SELECT * FROM read_text('.tmp/*')",
    "SELECT * FROM sniff_csv('{root}/secret.key')",
    "SELECT * FROM parquet_metadata('{lake}/" + BATCH + "')",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{root}/q.csv''')",
    "SELECT * FROM query_table('_sentinel_lake_events')",
    "SELECT * FROM duckdb_settings()",
    "SELECT prompt_text FROM _sentinel_lake_events",
    "SELECT prompt_text FROM \"_SENTINEL_LAKE_EVENTS\"",
    "SELECT prompt_text FROM memory.main._sentinel_lake_events",
    "SELECT prompt_text FROM events JOIN _sentinel_lake_litellm USING (event_id)",
    "SELECT (SELECT max(prompt_text) FROM _sentinel_lake_events) AS p",
    "WITH x AS (SELECT * FROM _sentinel_lake_events) SELECT prompt_text FROM x",
    "DESCRIBE SELECT prompt_text FROM _sentinel_lake_events",
    "SUMMARIZE _sentinel_lake_events",
    "SHOW _sentinel_lake_events",
    "SHOW \"_sentinel_lake_events\"",
    "DESCRIBE _sentinel_state_alerts",
    "SELECT _sentinel_mask('a')",
    "SELECT * FROM other_catalog.main.events",
]


@pytest.mark.parametrize("sql", BYPASSES)
def test_bypasses_are_refused_and_change_nothing(lake: Workspace, sql: str) -> None:
    before = snapshot(lake.root)
    session = SqlSession(lake)
    with pytest.raises(QueryError, match="not allowed|not a view|path|Catalog Error|Parser"):
        session.run(sql.format(root=lake.root, lake=lake.lake_dir))
    assert snapshot(lake.root) == before
    assert not list(Path.cwd().glob("*.csv"))


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{root}/direct.csv'",
        "COPY (SELECT * FROM events) TO '{lake}/" + BATCH + "' (FORMAT parquet)",
        "SELECT * FROM read_text('{root}/secret.key')",
        "SELECT * FROM read_parquet('{lake}/" + BATCH + "')",
        "ATTACH '{root}/state.db' AS s",
        "SELECT * FROM glob('/*')",
        "SET disabled_filesystems = ''",
    ],
)
def test_the_connection_itself_has_no_file_system(lake: Workspace, sql: str) -> None:
    """The second wall alone: even a statement the checker never sees cannot reach a file."""
    before = snapshot(lake.root)
    session = SqlSession(lake)
    with pytest.raises(duckdb.Error, match="disabled|locked|Permission"):
        session.con.execute(sql.format(root=lake.root, lake=lake.lake_dir)).fetchall()
    assert snapshot(lake.root) == before


def test_no_directory_is_allowed_and_no_temp_directory(lake: Workspace) -> None:
    session = SqlSession(lake)
    [(table, _)] = session.run(
        "SELECT current_setting('allowed_directories') AS dirs, "
        "current_setting('temp_directory') AS tmp"
    )
    assert table.to_pylist() == [{"dirs": [], "tmp": ""}]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM events",
        "FROM events SELECT event_id LIMIT 1",
        "WITH x AS (SELECT * FROM events) SELECT count(*) FROM x",
        "WITH _mine AS (SELECT 1 AS a) SELECT a FROM _mine",
        "VALUES (1), (2)",
        "SELECT 1 UNION ALL SELECT 2",
        "DESCRIBE events",
        "DESCRIBE SELECT event_id FROM events",
        "SHOW TABLES",
        "SHOW events",
        "SUMMARIZE events",
        "SUMMARIZE SELECT pii_count FROM events",
        "EXPLAIN SELECT * FROM events",
        "EXPLAIN ANALYZE SELECT count(*) FROM events",
        "/* why */ EXPLAIN SELECT 1",
        "SELECT * FROM range(3)",
        "SELECT * FROM generate_series(1, 3)",
        "SELECT * FROM information_schema.tables",
        "SELECT view_name FROM duckdb_views()",
        "SELECT unnest(pii_types) FROM events",
        "SELECT e.event_id, f.type FROM events e JOIN findings f USING (event_id)",
        "SELECT * FROM litellm WHERE ts > now() - INTERVAL 100 YEAR",
        "SELECT sentinel_ipv4('10.0.0.1')",
    ],
)
def test_reads_are_allowed(lake: Workspace, sql: str) -> None:
    session = SqlSession(lake)
    [(table, _)] = session.run(sql)
    assert table.num_columns >= 1
