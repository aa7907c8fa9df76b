"""Baseline models against the full re-read: the same alerts, increment after increment.

Two workspaces receive the same batches (generated traffic with planted anomalies for
every kind, split at random points, some events arriving late in a later batch). One
scans its baselines with models (the new files + the model), the other re-reads the
whole lookback from the lake each time. After every increment both must have recorded
exactly the same alerts (ids, counts, linked events, detail). On the way: a baseline's
definition changes (another model hash: rebuilt from the lake), a model file is damaged
(rebuilt), and a `--since` rescan runs (models untouched, later increments still agree).
"""

from __future__ import annotations

import json
import random
import sqlite3
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sentinel.detect.baseline import parse
from sentinel.detect.baseline_sql import CompiledBaseline, compile_baseline
from sentinel.lake.writer import write_staging
from sentinel.scan import basemodel
from sentinel.scan.baselines import run_baselines
from sentinel.scan.lakefiles import newest_seq
from sentinel.scan.report import ScanReport
from sentinel.scan.runner import connect
from sentinel.schema import EVENT_SCHEMA
from sentinel.store import alerts as alert_store
from sentinel.store.db import open_db
from sentinel.workspace import Workspace
from tests.unit.scan.history import MONDAY, Traffic, history, make_event
from tests.unit.scan.test_baseline_kinds import FIRST_SEEN, HOURS, SILENCE, VOLUME

DAY_15 = MONDAY + timedelta(days=15)
KINDS = {
    "first_seen": FIRST_SEEN,
    "first_seen_prompt": FIRST_SEEN.replace("id: new-ip", "id: new-prompt").replace(
        "value: client_ip", "value: prompt_text"),
    "first_event": FIRST_SEEN.replace("id: new-ip", "id: first-event").replace(
        "value: client_ip\n", "").replace("where: {kind: inference}", "where: {model: o3}"),
    "volume": VOLUME,
    "cost": VOLUME.replace("id: volume", "id: cost").replace("measure: requests",
                                                             "measure: cost")
    .replace("min_value: 20", "min_value: 0.05"),
    "hours": HOURS,
    "hours_ny": HOURS.replace("id: hours", "id: hours-ny") + "timezone: America/New_York\n",
    "silence": SILENCE,
    "silence_bodies": SILENCE.replace("id: silence", "id: bodies").replace(
        "min_expected: 20", "min_expected: 5\nwhile_active: true").replace(
        "by: [actor_key]", "by: [actor_key]\nwhere: {prompt_text: {present: true}}"),
}


def traffic(seed: int) -> list[dict[str, Any]]:
    """Three weeks of three keys, and one anomaly per kind after day 15."""
    rows = history(Traffic(seed=seed, ips={"k1": ("10.1.0.1", "10.1.0.2"), "k2": ("10.2.0.1",)}))
    rng = random.Random(seed)
    n = 900_000
    for i in range(5):  # a new address, at 3 a.m., with a new prompt and model
        rows.append(make_event(n + i, DAY_15 + timedelta(hours=3, minutes=i), "k1",
                               client_ip="203.0.113.7", prompt_text=f"new {i}", model="o3",
                               cost_usd=0.5))
    for i in range(200):  # a burst
        rows.append(make_event(n + 10 + i, DAY_15 + timedelta(days=1, hours=22, seconds=i),
                               "k2", cost_usd=0.01 * (i % 7)))
    stop = DAY_15 + timedelta(days=2, hours=11)  # k3 goes quiet; k1 loses its bodies
    rows = [r for r in rows if not (r["actor_key"] == "k3" and r["ts"] >= stop)]
    for row in rows:
        if row["actor_key"] == "k1" and row["ts"] >= stop:
            row["prompt_text"] = ""
        if rng.random() < 0.02:
            row["cost_usd"] = rng.random() / 3
    return sorted(rows, key=lambda r: (r["ts"], r["event_id"]))


def commit_batch(ws: Workspace, rows: list[dict[str, Any]], batch_id: str) -> None:
    """Commit `rows` into the lake as one batch, as ingest does (file, then batch row)."""
    table = pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
    final = []
    for staged, relative in write_staging(table, ws.staging_dir, batch_id):
        target = ws.lake_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (ws.staging_dir / staged).rename(target)
        final.append([staged, str(target.relative_to(ws.root))])
    con = sqlite3.connect(ws.state_db)
    con.execute(
        "INSERT OR IGNORE INTO files (file_id, path, device, inode, fingerprint, "
        "fingerprint_len, first_seen, updated_at) VALUES (1, 'gen', 0, 0, 'x', 1, '', '')"
    )
    con.execute(
        "INSERT INTO batches (batch_id, file_id, start_offset, end_offset, outputs, pending, "
        "events, quarantined, committed_at) VALUES (?, 1, 0, 0, ?, 0, ?, 0, '')",
        (batch_id, json.dumps(final), len(rows)),
    )
    con.commit()
    con.close()


def compiled(texts: dict[str, str], tmp: Path) -> list[CompiledBaseline]:
    result = []
    for name, text in texts.items():
        loaded, problems = parse(textwrap.dedent(text), tmp / f"{name}.yml")
        assert loaded is not None, [str(p) for p in problems]
        result.append(compile_baseline(loaded, ("litellm",)))
    return result


def scan(ws: Workspace, bases: list[CompiledBaseline], *, models: bool,
         since: Any = None) -> set[str]:
    con = open_db(ws.state_db)
    duck = connect(ws)
    try:
        report = ScanReport(f"s{random.random()}", newest_seq(con))
        alert_store.begin_scan(con, report.scan_id)
        run_baselines(ws, con, duck, bases, since=since, report=report, opened=set(),
                      use_models=models)
        return {a.alert_id for a in report.alerts}
    finally:
        duck.close()
        con.close()


def recorded(ws: Workspace) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(ws.state_db)
    try:
        alerts = con.execute(
            "SELECT alert_id, rule_id, group_key, first_ts, last_ts, event_count, detail "
            "FROM alerts ORDER BY alert_id").fetchall()
        events = con.execute(
            "SELECT alert_id, event_id, ts, lake_file FROM alert_events "
            "ORDER BY alert_id, event_id").fetchall()
    finally:
        con.close()
    return alerts + events


def damage(ws: Workspace) -> None:
    """Truncate every model's newest Parquet file (as a full disk or a crash might)."""
    for directory in basemodel.models_dir(ws.root).iterdir():
        files = sorted(directory.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        if files:
            files[-1].write_bytes(files[-1].read_bytes()[:40])


@settings(max_examples=2, deadline=None, derandomize=True, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), cuts=st.integers(3, 6), late=st.floats(0.0, 0.05))
def test_models_give_the_alerts_of_a_full_reread(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cuts: int, late: float
) -> None:
    tmp = tmp_path_factory.mktemp("models")
    with_model = Workspace.init(tmp / "model")
    full = Workspace.init(tmp / "full")
    # One digest key for both: a new prompt's alert names it by its keyed digest.
    (full.root / "secret.key").write_bytes((with_model.root / "secret.key").read_bytes())
    bases = compiled(KINDS, tmp)
    rows = traffic(seed)
    rng = random.Random(seed)
    # Batches: everything before day 12, then increments cut at random points after it;
    # a few events of each increment are held back into the next one (late arrivals).
    first = next(i for i, r in enumerate(rows) if r["ts"] >= MONDAY + timedelta(days=12))
    points = sorted(rng.sample(range(first + 1, len(rows) - 1), cuts))
    parts = [rows[a:b] for a, b in zip([0, first, *points], [first, *points, len(rows)],
                                       strict=True)]
    held: list[dict[str, Any]] = []
    found = 0
    for step, part in enumerate(parts):
        keep = [r for r in part if rng.random() >= late] if step < len(parts) - 1 else part
        batch = held + keep
        held = [r for r in part if r not in keep]
        for ws in (with_model, full):
            commit_batch(ws, batch, f"b{step:03d}")
        if step == 3:  # changed definitions: another measure rebuilds the model from the
            # lake, once; another learning window keeps it (it holds the whole history)
            bases = compiled({**KINDS, "volume": VOLUME.replace("requests", "tokens"),
                              "first_seen": FIRST_SEEN.replace("7d", "6d")}, tmp)
        if step == 4:
            damage(with_model)
        scan(with_model, bases, models=True)
        scan(full, bases, models=False)
        assert recorded(with_model) == recorded(full), f"step {step}"
        if step == 2:  # a --since rescan leaves the models as they are
            for ws, models in ((with_model, True), (full, False)):
                scan(ws, bases, models=models, since=DAY_15)
            assert recorded(with_model) == recorded(full)
    found = len(recorded(full))
    assert found > 10  # the planted anomalies fired: the comparison was not of nothing


def test_a_model_keeps_prompt_values_as_digests_only(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    rows = traffic(7)
    for row in rows[::40]:
        row["prompt_text"] = "my card is 4111 1111 1111 1111"
    commit_batch(ws, rows[: len(rows) // 2], "b1")
    commit_batch(ws, rows[len(rows) // 2:], "b2")
    bases = compiled({"prompt": KINDS["first_seen_prompt"]}, tmp_path)
    scan(ws, bases, models=True)
    files = list(basemodel.models_dir(ws.root).rglob("*.parquet"))
    assert files
    for file in files:
        table = pq.read_table(file)
        values = {v for v in table.column("value").to_pylist() if v is not None}
        assert values and all(len(v) == 64 and int(v, 16) >= 0 for v in values)
        text = json.dumps(table.to_pylist(), default=str)
        assert "4111" not in text and "hello" not in text
        assert oct(file.stat().st_mode & 0o777) == "0o600"


def test_a_scan_with_nothing_new_reads_no_model_and_an_increment_no_old_file(
    tmp_path: Path,
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    rows = traffic(3)
    cut = len(rows) - 300
    commit_batch(ws, rows[:cut], "b1")
    bases = compiled(KINDS, tmp_path)
    scan(ws, bases, models=True)
    commit_batch(ws, rows[cut:], "b2")
    con = open_db(ws.state_db)
    duck = connect(ws)
    try:
        report = ScanReport("inc", newest_seq(con))
        alert_store.begin_scan(con, report.scan_id)
        opened: set[str] = set()
        run_baselines(ws, con, duck, bases, since=None, report=report, opened=opened)
        new_files = {str(ws.root / f) for (o,) in con.execute(
            "SELECT outputs FROM batches WHERE batch_id = 'b2'") for _, f in json.loads(o)}
        assert opened == new_files  # the increment's own files, and no old one
        report = ScanReport("again", newest_seq(con))
        opened = set()
        run_baselines(ws, con, duck, bases, since=None, report=report, opened=opened)
        assert opened == set() and all(s.files_read == 0 for s in report.stats)
    finally:
        duck.close()
        con.close()


def test_the_scan_connection_takes_its_limits_from_the_config(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    with ws.config_path.open("a", encoding="utf-8") as fh:
        fh.write('\n[scan]\nmemory_limit = "300MB"\nthreads = 1\n')
    duck = connect(ws)
    try:
        limit, threads = duck.execute(
            "SELECT current_setting('memory_limit'), current_setting('threads')").fetchall()[0]
        assert limit.replace(" ", "").startswith(("286", "300")) and threads == 1
        with pytest.raises(Exception, match="locked"):
            duck.execute("SET memory_limit = '20GB'")
    finally:
        duck.close()


def test_silence_of_a_source_with_nothing_new_decides_from_its_model(tmp_path: Path) -> None:
    """A source that went quiet sends no new file at all: the model alone holds its
    history, the other sources' new events say how long the quiet has lasted."""
    rows = [r for r in traffic(5) if r["ts"] < DAY_15 + timedelta(days=3)]
    for row in rows:
        if row["actor_key"] == "k2":
            row["source"] = "bedrock"
    stop = DAY_15 + timedelta(hours=10)
    old = [r for r in rows if r["ts"] < stop]
    new = [r for r in rows if r["ts"] >= stop and r["source"] == "litellm"]
    text = SILENCE.replace("logsource: {product: ai_gateway}",
                           "logsource: {product: ai_gateway, service: bedrock}")
    loaded, _ = parse(textwrap.dedent(text), tmp_path / "s.yml")
    assert loaded is not None
    bases = [compile_baseline(loaded, ("bedrock",))]
    found = []
    for name, models in (("model", True), ("full", False)):
        ws = Workspace.init(tmp_path / name)
        commit_batch(ws, old, "b1")
        scan(ws, bases, models=models)
        commit_batch(ws, new, "b2")
        scan(ws, bases, models=models)
        found.append(recorded(ws))
    assert found[0] == found[1]
    assert [a[2] for a in found[0] if len(a) == 7] == ["actor_key=k2"]


@pytest.mark.parametrize("models", [False, True], ids=["full", "model"])
def test_an_alert_on_a_new_prompt_names_it_by_digest_only(tmp_path: Path, models: bool) -> None:
    """A first_seen over prompt text alerts with the prompt's keyed digest as its subject:
    the text itself (here a card number) is never written into the alert's detail."""
    ws = Workspace.init(tmp_path / "ws")
    rows = traffic(3)
    for row in rows:
        if row["event_id"].endswith("900000"):
            row["prompt_text"] = "my card is 4111 1111 1111 1111"
    cut = len(rows) - 400
    commit_batch(ws, rows[:cut], "b1")
    bases = compiled({"prompt": KINDS["first_seen_prompt"]}, tmp_path)
    scan(ws, bases, models=models)
    commit_batch(ws, rows[cut:], "b2")
    scan(ws, bases, models=models)
    con = sqlite3.connect(ws.state_db)
    details = [json.loads(d) for (d,) in con.execute(
        "SELECT detail FROM alerts WHERE rule_id = 'new-prompt'")]
    dump = "\n".join(con.iterdump())
    con.close()
    assert details, "the planted new prompts fired"
    assert all(len(d["value"]) == 64 and int(d["value"], 16) >= 0 for d in details), details
    assert "4111" not in dump and "new 1" not in dump
