"""`sentinel hunt` on a real workspace: values found by digest, output masked, reveals audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq

from sentinel.config import Config
from sentinel.pii.scanner import scan_events
from sentinel.schema import EVENT_SCHEMA
from sentinel.store import audit
from sentinel.store.db import open_db
from sentinel.workspace import Workspace

CARD = "4111 1111 1111 1111"


def _event(i: int, prompt: str, actor: str, vendor: str, day: int = 1) -> dict[str, object]:
    ts = datetime(2025, 1, day, 12, i, tzinfo=UTC)
    row: dict[str, object] = {name: None for name in EVENT_SCHEMA.names}
    row.update(
        event_id=f"ev-{i}", ts=ts, ingested_at=ts, source="test", kind="inference",
        actor_user=actor, vendor=vendor, model="gpt-4o", prompt_text=prompt,
        raw=json.dumps({"messages": [{"role": "user", "content": prompt}]}),
    )
    return row


def _lake(ws: Workspace) -> None:
    rows = [
        _event(0, f"charge card {CARD} now", "alice", "openai"),
        _event(1, "retry with 4111-1111-1111-1111 please", "bob", "anthropic"),
        _event(2, "nothing sensitive here", "carol", "openai"),
        _event(3, "mail dave@example.com about 5500 0000 0000 0004", "dave", "openai"),
    ]
    table = scan_events(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), Config(), ws.secret_key())
    target = ws.lake_dir / "source=test" / "date=2025-01-01"
    target.mkdir(parents=True)
    pq.write_table(table, target / "b1.parquet")


def test_hunt_value_finds_every_format_of_the_card_masked(workspace, run_cli) -> None:
    _lake(workspace)
    result = run_cli("hunt", "--value", "4111-1111-1111-1111", "--format", "json", check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["event_id"], r["actor_user"], r["vendor"]) for r in rows] == [
        ("ev-0", "alice", "openai"),
        ("ev-1", "bob", "anthropic"),
    ]
    # The same card in two formats: one hint, one keyed tag, and the tag `sentinel sql`
    # shows for that card too.
    values = {r["value"] for r in rows}
    assert len(values) == 1 and values.pop().startswith("card ****1111 ·")
    shown = run_cli("sql", "SELECT prompt_text FROM events WHERE event_id = 'ev-0'",
                    "--format", "json", check=True).stdout
    assert rows[0]["value"] in shown
    assert "4111 1111 1111 1111" not in result.stdout
    assert "4111-1111-1111-1111" not in result.stdout


def test_hunt_type_lists_findings_since(workspace, run_cli) -> None:
    _lake(workspace)
    result = run_cli("hunt", "--type", "credit_card", "--since", "2024-12-31", "--format",
                     "json", check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    hints = sorted(r["value"].split(" ·")[0] for r in rows)
    assert hints == ["card ****0004", "card ****1111", "card ****1111"]
    tags = {r["value"]: r["digest"][:4] for r in rows}
    assert all(value.endswith(" ·" + tag) for value, tag in tags.items())
    assert len(tags) == 2  # two different cards read apart
    later = run_cli("hunt", "--type", "credit_card", "--since", "2025-02-01", "--format", "json",
                    check=True)
    assert later.stdout.strip() == ""
    table = run_cli("hunt", "--type", "email", check=True)
    assert "d***@example.com" in table.stdout and "dave@example.com" not in table.stdout


def test_hunt_reveal_needs_reason_and_is_audited(workspace, run_cli) -> None:
    _lake(workspace)
    refused = run_cli("hunt", "--value", CARD, "--reveal")
    assert refused.returncode == 2 and "--reason" in refused.stderr
    shown = run_cli("hunt", "--value", CARD, "--reveal", "--reason", "INC-7 scoping",
                    "--format", "json", check=True)
    assert CARD in shown.stdout
    con = open_db(workspace.state_db)
    try:
        rows = con.execute("SELECT action, detail FROM audit").fetchall()
        assert audit.verify(con) == []
    finally:
        con.close()
    reveal = [json.loads(d) for a, d in rows if a == "reveal"]
    assert reveal and reveal[-1]["reason"] == "INC-7 scoping"
    assert "4111" not in json.dumps(reveal) or "****1111" in json.dumps(reveal)
    assert CARD not in json.dumps(reveal)


def test_hunt_usage_errors(workspace, run_cli) -> None:
    assert run_cli("hunt").returncode == 2
    assert run_cli("hunt", "--type", "credit_crad").returncode == 2
    bad_since = run_cli("hunt", "--type", "credit_card", "--since", "yesterday")
    assert bad_since.returncode != 0 and "since" in bad_since.stderr


def test_hunt_table_leaves_machine_columns_out_unless_wide(workspace, run_cli) -> None:
    _lake(workspace)
    narrow = run_cli("hunt", "--type", "credit_card", env={"COLUMNS": "200"}, check=True).stdout
    assert "digest" not in narrow and "card ****1111" in narrow
    wide = run_cli("hunt", "--type", "credit_card", "--wide", env={"COLUMNS": "400"}, check=True)
    assert "digest" in wide.stdout
    as_json = run_cli("hunt", "--type", "credit_card", "--format", "json", check=True).stdout
    assert '"digest"' in as_json  # machine formats keep every column


def test_hunt_since_out_of_range_is_a_usage_error(workspace, run_cli) -> None:
    for since in ("99999999999d", "9999999w", "yesterday"):
        result = run_cli("hunt", "--type", "credit_card", "--since", since)
        assert result.returncode == 2, result.stderr
        assert "Invalid value for '--since'" in result.stderr
        assert "Traceback" not in result.stderr


def test_hunt_prints_no_warning(workspace, run_cli) -> None:
    """DuckDB warned on every hunt (Arrow output from a DB-API cursor): the cause is gone."""
    _lake(workspace)
    for args in (("--type", "credit_card"), ("--value", CARD)):
        result = run_cli("hunt", *args, env={"PYTHONWARNINGS": "error"}, check=True)
        assert "Warning" not in result.stderr and "card ****1111" in result.stdout
