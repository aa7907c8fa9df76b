"""Correlation state against the whole history: the same alerts, increment after increment.

A workspace receives random events batch by batch (some held back into later batches:
late arrivals, some later than the state's allowance) and is scanned after each batch
by the real scan, whose correlations read only the new files and their state
(`sentinel.scan.correlate`). The reference does not use that code: it runs the rule's
compiled query over *every* event in the lake, keeps the bursts that end at or after the
first new matched event, and records them as the store would (an alert id already
recorded is ignored). After every scan the workspace's alerts and linked events must be
exactly the reference's. On the way: the rule changes (its state is rebuilt), the state
is damaged (rebuilt), its kept hits alone are damaged (rebuilt), its manifest loses the
kept hits (an older format: recomputed from `settled` and kept again), and a `--since`
rescan runs (state untouched, later increments still agree). Late events within the
allowance land before the newest hits kept, so the kept hits from there on must go.
"""

from __future__ import annotations

import json
import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sentinel.detect.compiler import CompiledRule
from sentinel.detect.sqlmacros import install_macros
from sentinel.scan import correlate, corrstate, statefiles
from sentinel.scan.runner import compile_rules, run_scan
from sentinel.store import alerts as alert_store
from sentinel.store.alerts import alert_id_for
from sentinel.workspace import Workspace
from tests.unit.detect.correlation_rules import BASE, KEYED, T0
from tests.unit.scan.history import make_event
from tests.unit.scan.test_baseline_models import commit_batch

RULE_ID = "0c0c0c0c-0000-4000-8000-00000000c0de"
KINDS = ("event_count", "event_count2", "value_count", "temporal", "temporal_ordered",
         "value_sum", "value_avg")


def correlation_yaml(
    kind: str, seconds: int, count: int, group: tuple[str, ...] = ("actor_key",)
) -> str:
    rules, condition = {
        "event_count": ("[failed]", f"{{gte: {count}}}"),
        "event_count2": ("[failed, keyed]", f"{{gte: {count}}}"),
        "value_count": ("[failed]", f"{{field: client_ip, gte: {count}}}"),
        "temporal": ("[failed, ok]", "{gte: 2}"),
        "temporal_ordered": ("[failed, ok]", None),
        "value_sum": ("[keyed]", f"{{field: prompt_tokens, gte: {count * 3}}}"),
        "value_avg": ("[keyed]", f"{{field: prompt_tokens, gt: {count}}}"),
    }[kind]
    kind = kind.removesuffix("2")
    by = f"  group-by: [{', '.join(group)}]\n" if group else ""
    text = (f"title: differential\nid: {RULE_ID}\ncorrelation:\n  type: {kind}\n"
            f"  rules: {rules}\n{by}  timespan: {seconds}s\n")
    return text + (f"  condition: {condition}\n" if condition else "")


def write_rules(
    directory: Path, kind: str, seconds: int, count: int,
    group: tuple[str, ...] = ("actor_key",),
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "base.yml").write_text(BASE + KEYED.removesuffix("---\n"))
    (directory / "correlation.yml").write_text(correlation_yaml(kind, seconds, count, group))


def events(rng: random.Random, n: int, spread: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(make_event(
            i, T0 + timedelta(seconds=rng.randint(0, spread)),
            rng.choice(["k1", "k1", "k2", "k3"]),
            outcome=rng.choice(["failure", "failure", "success", "partial"]),
            model=rng.choice(["gpt-4o", "o3"]),
            client_ip=rng.choice(["a", "b", "c", None]),
            prompt_tokens=rng.choice([None, -2, 0, 1, 3, 5, 8]),
            source_file=f"/logs/gateway-{i % 3}.jsonl", source_offset=i * 100,
        ))
    return sorted(rows, key=lambda r: (r["ts"], r["event_id"]))


class Reference:
    """The store as the whole-history evaluation would leave it: alert id -> row, events."""

    def __init__(self, group: tuple[str, ...] = ("actor_key",)) -> None:
        self.alerts: dict[str, tuple[Any, ...]] = {}
        self.links: dict[str, list[tuple[Any, ...]]] = {}
        self.group = group

    def scan(self, ws: Workspace, rule: CompiledRule, new: list[dict[str, Any]],
             since: datetime | None = None) -> list[tuple[Any, ...]]:
        """Record the bursts reaching the first new matched event (`new`'s, or from `since`);
        returns them all (recorded before or not), as the scan's records."""
        duck = duckdb.connect()
        duck.execute("SET TimeZone = 'UTC'")
        install_macros(duck)
        files = sorted(str(p) for p in ws.lake_dir.rglob("*.parquet"))
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        duck.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet([{listed}], "
                     "union_by_name = true)")
        sql = rule.sql
        matched = sql.split("matched AS (\n    ", 1)[1].split("\n),\n", 1)[0]
        ids = [r["event_id"] for r in new]
        if since is not None:
            low = duck.execute(f"SELECT min(ts) FROM ({matched}) WHERE ts >= ?",
                               [since]).fetchall()[0][0]
        else:
            low = duck.execute(f"SELECT min(ts) FROM ({matched}) WHERE list_contains(?, "
                               "event_id)", [ids]).fetchall()[0][0]
        times = dict(duck.execute("SELECT event_id, ts FROM events").fetchall())
        where = {
            row[0]: (row[1].isoformat(), *row[2:5], str(Path(row[5]).relative_to(ws.lake_dir)))
            for row in duck.execute(
                f"SELECT event_id, ts, source, source_file, source_offset, filename FROM "
                f"read_parquet([{listed}], filename = true)").fetchall()
        }
        rows = duck.execute(sql).fetchall()
        duck.close()
        if low is None:
            return []
        found = []
        for row in rows:
            keys, (start, end, count, event_ids) = row[:len(self.group)], row[len(self.group):]
            if end < low:
                continue
            ordered = sorted(event_ids, key=lambda e: (times[e], e))
            group_key = ", ".join(f"{k}={v}" for k, v in zip(self.group, keys, strict=True))
            alert_id = alert_id_for(RULE_ID, group_key, ordered[0], start.isoformat())
            found.append((alert_id, group_key, start.isoformat(), end.isoformat(), count))
            if alert_id not in self.alerts:
                self.alerts[alert_id] = (group_key, start.isoformat(), end.isoformat(), count)
                self.links[alert_id] = sorted((e, *where[e]) for e in ordered)
        return sorted(found)


def recorded(
    ws: Workspace,
) -> tuple[dict[str, tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]:
    con = sqlite3.connect(ws.state_db)
    try:
        alerts = {
            row[0]: tuple(row[1:]) for row in con.execute(
                "SELECT alert_id, group_key, first_ts, last_ts, event_count FROM alerts "
                "WHERE rule_id = ?", (RULE_ID,))
        }
        links: dict[str, list[tuple[Any, ...]]] = {a: [] for a in alerts}
        for alert_id, *link in con.execute(
            "SELECT alert_id, event_id, ts, source, source_file, source_offset, lake_file "
            "FROM alert_events WHERE alert_id IN (SELECT alert_id FROM alerts WHERE "
            "rule_id = ?) ORDER BY event_id", (RULE_ID,)
        ):
            links[alert_id].append(tuple(link))
    finally:
        con.close()
    return alerts, links


def scan(
    ws: Workspace, rules: Path, since: datetime | None = None
) -> tuple[str, list[tuple[Any, ...]]]:
    """Scan; how the correlation was decided (its `--stats` note) and the records it gave
    the store (new or not: a burst going on is given again, and ignored)."""
    pack = compile_rules(ws, [rules])
    assert not pack[1], [str(p) for p in pack[1]]
    given: list[tuple[Any, ...]] = []
    commit = alert_store.commit_rule

    def spy(con: Any, scan_id: str, rule_id: str, records: Any, **kwargs: Any) -> Any:
        if rule_id == RULE_ID:
            given.extend((r.alert.alert_id, r.alert.group_key, r.alert.first_ts,
                          r.alert.last_ts, r.alert.event_count) for r in records)
        return commit(con, scan_id, rule_id, records, **kwargs)

    alert_store.commit_rule = spy  # type: ignore[assignment]
    try:
        report = run_scan(ws, compiled_pack=pack, since=since, open_incidents=False,
                          baselines_too=False)
    finally:
        alert_store.commit_rule = commit  # type: ignore[assignment]
    return next(s.shared for s in report.stats if s.rule_id == RULE_ID), sorted(given)


def correlation(ws: Workspace, rules: Path) -> CompiledRule:
    return next(r for r in compile_rules(ws, [rules])[0] if r.rule_id == RULE_ID)


def damage(ws: Workspace, pattern: str = "*.parquet") -> int:
    paths = list(corrstate.states_dir(ws.root).rglob(pattern))
    for path in paths:
        path.write_bytes(path.read_bytes()[:30])
    return len(paths)


def forget_hits(ws: Workspace) -> None:
    """Make every manifest one written before hits were kept (no `hits`)."""
    for path in corrstate.states_dir(ws.root).rglob("manifest*.json"):
        body = json.loads(path.read_text())
        body.pop("hits", None)
        path.write_text(json.dumps(body))


@st.composite
def scenarios(draw: Any) -> dict[str, Any]:
    return {
        "kind": draw(st.sampled_from(KINDS)),
        "seconds": draw(st.sampled_from([3, 10, 30])),
        "count": draw(st.integers(1, 4)),
        "seed": draw(st.integers(0, 10_000)),
        "lateness": draw(st.sampled_from([0, 5, 20, 1000])),
        "batches": draw(st.integers(3, 7)),
        "late": draw(st.sampled_from([0.0, 0.1, 0.3])),
        "group": draw(st.sampled_from([("actor_key",), ("actor_key",), (), ("actor_key",
                                                                           "model")])),
    }


@settings(max_examples=8, deadline=None, database=None, phases=[Phase.explicit,
          Phase.generate], suppress_health_check=[HealthCheck.function_scoped_fixture])
@example({"kind": "value_sum", "seconds": 30, "count": 2, "seed": 1, "lateness": 5,
          "batches": 6, "late": 0.1, "planted": True})
@example({"kind": "event_count", "seconds": 10, "count": 3, "seed": 2, "lateness": 0,
          "batches": 5, "late": 0.3, "planted": True})
@example({"kind": "temporal_ordered", "seconds": 30, "count": 1, "seed": 3, "lateness": 20,
          "batches": 5, "late": 0.1, "planted": True})
@example({"kind": "value_count", "seconds": 30, "count": 2, "seed": 4, "lateness": 5,
          "batches": 6, "late": 0.1, "planted": True, "group": ()})
@example({"kind": "event_count2", "seconds": 10, "count": 2, "seed": 5, "lateness": 5,
          "batches": 6, "late": 0.1, "planted": True, "group": ("actor_key", "model")})
@example({"kind": "temporal_ordered", "seconds": 10, "count": 3, "seed": 492, "lateness": 0,
          "batches": 7, "late": 0.3})  # a batch whose events are all held back
@example({"kind": "event_count2", "seconds": 3, "count": 1, "seed": 3399, "lateness": 20,
          "batches": 5, "late": 0.1, "group": ("actor_key", "model")})  # one event, two rules
@example({"kind": "value_avg", "seconds": 3, "count": 2, "seed": 58, "lateness": 1000,
          "batches": 5, "late": 0.3, "group": ("actor_key", "model")})  # no hits to damage
@example({"kind": "value_avg", "seconds": 30, "count": 3, "seed": 6, "lateness": 1000,
          "batches": 7, "late": 0.3, "planted": True})  # late events within the allowance
@example({"kind": "value_sum", "seconds": 10, "count": 2, "seed": 7, "lateness": 1000,
          "batches": 7, "late": 0.3, "planted": True, "group": ()})  # change kept hits
@given(scenario=scenarios())
def test_the_state_gives_the_alerts_of_the_whole_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
    scenario: dict[str, Any],
) -> None:
    check_history(tmp_path_factory, monkeypatch, scenario)


@pytest.mark.parametrize("kind", ["value_avg", "value_sum", "event_count2", "temporal_ordered"])
def test_kept_hits_give_way_to_late_events(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Many increments, each with events held back from the one before (late, but within
    the allowance): each recomputes the hits from its first new event on and keeps the
    ones before it, which the late events must not leave standing where they changed."""
    ways = check_history(tmp_path_factory, monkeypatch, {
        "kind": kind, "seconds": 20, "count": 2, "seed": 11, "lateness": 1000,
        "batches": 12, "late": 0.3, "planted": True, "disrupt": False})
    assert list(ways.values()).count(STATE) == len(ways) - 1, ways


@pytest.mark.parametrize("few", [0, 1000])
def test_events_join_their_bursts_either_way(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    """Events are counted and linked into their bursts by an ASOF join, or by a hash join
    when a group has few bursts: both give the whole history's alerts."""
    monkeypatch.setattr(correlate, "FEW_BURSTS", few)
    for kind, group in (("value_sum", ("actor_key",)), ("event_count2", ())):
        check_history(tmp_path_factory, monkeypatch, {
            "kind": kind, "seconds": 10, "count": 2, "seed": 13, "lateness": 20,
            "batches": 6, "late": 0.1, "planted": True, "group": group})


def check_history(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
    scenario: dict[str, Any],
) -> dict[int, str]:
    tmp = tmp_path_factory.mktemp("corr")
    monkeypatch.setattr(correlate, "LATENESS", timedelta(seconds=scenario["lateness"]))
    ws = Workspace.init(tmp / "ws")
    rules = tmp / "rules"
    group = scenario.get("group", ("actor_key",))
    write_rules(rules, scenario["kind"], scenario["seconds"], scenario["count"], group)
    rng = random.Random(scenario["seed"])
    rows = events(rng, 90, 240)
    cuts = sorted(rng.sample(range(1, len(rows)), scenario["batches"] - 1))
    parts = [rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)]
    reference = Reference(group)
    held: list[dict[str, Any]] = []
    ways: dict[int, str] = {}
    hits_damaged = False
    for step, part in enumerate(parts):
        last = step == len(parts) - 1
        keep = part if last else [r for r in part if rng.random() >= scenario["late"]]
        batch = held + keep
        held = [r for r in part if r not in keep]
        if not batch:
            continue  # everything held back: no batch
        commit_batch(ws, batch, f"b{step:03d}")
        disrupt = scenario.get("disrupt", True)
        if step == 2 and disrupt:  # another timespan and threshold: rebuilt from the lake
            write_rules(rules, scenario["kind"], scenario["seconds"] + 2, scenario["count"] + 1,
                        group)
        if step == 3 and disrupt:
            damage(ws)
        if step == 4 and disrupt:  # only the kept hits damaged: rebuilt too
            hits_damaged = damage(ws, "hits-*.parquet") > 0  # none: no `settled` yet
        if step == 5 and disrupt:  # the format before hits were kept: hits from `settled`
            forget_hits(ws)
        how, given = scan(ws, rules)
        expected = reference.scan(ws, correlation(ws, rules), batch)
        assert given == expected, f"step {step}: {how}"
        assert recorded(ws) == (reference.alerts, reference.links), f"step {step}: {how}"
        ways[step] = how
        if step == 1 and disrupt:  # a --since rescan: the whole history decides, the state is left
            since = T0 + timedelta(seconds=rng.randint(0, 240))
            given = scan(ws, rules, since=since)[1]
            assert given == reference.scan(ws, correlation(ws, rules), [], since=since)
            assert recorded(ws) == (reference.alerts, reference.links), "since"
    # The comparison was not of nothing, and the state decided where it can: in order,
    # with nothing late, the second scan reads only its new files.
    assert reference.alerts or not scenario.get("planted")
    first, rebuilt = sorted(ways)[0], "whole history read (no state"
    if not scenario.get("disrupt", True):
        return ways
    assert ways[first].startswith(rebuilt), ways
    if scenario["late"] == 0:
        assert ways[1] == STATE, ways
    assert ways.get(2, rebuilt).startswith(rebuilt), ways  # another definition
    assert ways.get(3, rebuilt).startswith(rebuilt), ways  # damaged
    if hits_damaged:
        assert ways.get(4, rebuilt).startswith(rebuilt), ways  # kept hits damaged
    if scenario["late"] == 0 and 5 in ways:
        assert ways[5] == STATE, ways
    return ways


STATE = "from the new files and its state"


def test_an_increment_opens_only_its_new_files_and_keeps_its_state_private(
    tmp_path: Path,
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    rules = tmp_path / "rules"
    write_rules(rules, "event_count", 30, 3)
    rows = events(random.Random(5), 120, 240)
    for step, (a, b) in enumerate(((0, 60), (60, 90), (90, 120))):
        commit_batch(ws, rows[a:b], f"b{step:03d}")
        pack = compile_rules(ws, [rules])
        report = run_scan(ws, compiled_pack=pack, open_incidents=False, baselines_too=False)
        stat = next(s for s in report.stats if s.rule_id == RULE_ID)
        assert stat.shared == (STATE if step else
                               "whole history read (no state of this definition at its watermark)")
        assert report.files_read == 1  # each batch is one day of one source: one file
    directory = corrstate.state_dir(ws.root, RULE_ID)
    assert directory.stat().st_mode & 0o777 == 0o700
    files = list(directory.iterdir())
    assert any(p.name.startswith("tail-") for p in files)
    assert any(p.name.startswith("hits-") for p in files)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in files)
    again = run_scan(ws, compiled_pack=compile_rules(ws, [rules]), open_incidents=False,
                     baselines_too=False)
    assert again.files_read == 0 and not again.alerts  # nothing new: nothing opened


def test_a_kept_connection_loses_the_scans_links(tmp_path: Path) -> None:
    """The watcher keeps its DuckDB between scans; a scan's event links must not stay on
    it (the next scan would record them again, and they hold lake provenance)."""
    from sentinel.scan.runner import connect

    ws = Workspace.init(tmp_path / "ws")
    rules = tmp_path / "rules"
    write_rules(rules, "event_count", 30, 1)
    commit_batch(ws, events(random.Random(5), 40, 60), "b000")
    duck = connect(ws)
    try:
        report = run_scan(ws, compiled_pack=compile_rules(ws, [rules]), duck=duck,
                          open_incidents=False, baselines_too=False)
        assert report.alerts
        tables = {row[0] for row in duck.execute("SELECT table_name FROM duckdb_tables()")
                  .fetchall()}
        assert "scan_links" not in tables
    finally:
        duck.close()


def test_a_late_event_that_ends_every_hit_after_it_removes_the_kept_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A late event (within the allowance) turns the kept hit after it into no hit, and
    the recomputation from it finds none: the empty layer must still override the kept
    hits from there on, or the next increment joins a burst that no longer reaches it."""
    monkeypatch.setattr(correlate, "LATENESS", timedelta(seconds=1000))
    ws = Workspace.init(tmp_path / "ws")
    rules = tmp_path / "rules"
    write_rules(rules, "value_avg", 10, 4)  # average prompt_tokens > 4 within 10 s

    def at(n: int, seconds: int, tokens: int) -> dict[str, Any]:
        return make_event(n, T0 + timedelta(seconds=seconds), "k1", prompt_tokens=tokens)

    reference = Reference()
    batches = [
        [at(1, -8, 8), at(2, 0, 8)],  # hits at -8 and 0: one burst from -8
        [at(3, -1, -30)],  # late: the window at 0 averages below 4, no hit from -1 on
        [at(4, 5, 100)],  # a hit at 5 whose window starts at -1: a burst of its own
    ]
    for step, batch in enumerate(batches):
        commit_batch(ws, batch, f"b{step:03d}")
        how, given = scan(ws, rules)
        assert how == (STATE if step else
                       "whole history read (no state of this definition at its watermark)")
        assert given == reference.scan(ws, correlation(ws, rules), batch), f"step {step}"
        assert recorded(ws) == (reference.alerts, reference.links), f"step {step}"
    assert sorted(a[:2] for a in reference.alerts.values()) == [
        ("actor_key=k1", (T0 - timedelta(seconds=8)).isoformat()),
        ("actor_key=k1", (T0 - timedelta(seconds=1)).isoformat()),
    ]


LAYER_TIME = "2025-03-01T10:00:00+00:00"


@pytest.mark.parametrize("hits", [
    [{"file": "hits-2.parquet", "from": "2025-03-01T10:00:10+00:00"},
     {"file": "hits-3.parquet", "from": "2025-03-01T10:00:05+00:00"}],  # out of order
    [{"file": "hits-2.parquet", "from": LAYER_TIME},
     {"file": "hits-3.parquet", "from": LAYER_TIME}],  # two layers from one time
    [{"file": "../hits-2.parquet", "from": LAYER_TIME}],  # outside its directory
    [{"file": "hits-9.parquet", "from": LAYER_TIME}],  # missing
    [{"file": "torn.parquet", "from": LAYER_TIME}],  # unreadable
    [{"file": "hits-2.parquet"}],  # no time
    [{"file": "hits-2.parquet", "from": "yesterday"}],
])
def test_kept_hits_that_cannot_be_trusted_are_no_state(
    tmp_path: Path, hits: list[dict[str, str]]
) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    for name in ("hits-2.parquet", "hits-3.parquet"):
        statefiles.write_parquet(directory / name, pa.table({"ts": pa.array([], pa.int64())}))
    (directory / "torn.parquet").write_bytes(b"PAR1")
    body = corrstate.State(directory, "rule", "hash", upto=3).as_json()
    good = [{"file": "hits-2.parquet", "from": LAYER_TIME},
            {"file": "hits-3.parquet", "from": "2025-03-01T10:00:05+00:00"}]
    (directory / corrstate.MANIFEST).write_text(json.dumps(body | {"hits": good}))
    state = corrstate.load(directory, "rule", "hash", 3, lambda upto: True)
    assert state is not None and [p for p, _, _ in state.layers()] == [
        str(directory / "hits-2.parquet"), str(directory / "hits-3.parquet")]
    (directory / corrstate.MANIFEST).write_text(json.dumps(body | {"hits": hits}))
    assert corrstate.load(directory, "rule", "hash", 3, lambda upto: True) is None


def failed(n: int, seconds: int) -> dict[str, Any]:
    """Event `n`: a failure of key k1 at `seconds` after T0 (the `failed` rule matches)."""
    return make_event(n, T0 + timedelta(seconds=seconds), "k1", outcome="failure")


def test_a_state_rebuilt_without_new_matches_keeps_its_bursts_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild whose new files match nothing has no `settled` (its tail is the whole
    history, no hits kept): the next increment must decide from all of it, or a burst
    going on since long before its first new event starts anew there."""
    monkeypatch.setattr(correlate, "LATENESS", timedelta(seconds=0))
    ws = Workspace.init(tmp_path / "ws")
    rules = tmp_path / "rules"
    write_rules(rules, "event_count", 10, 2)  # two failures of a key within 10 s

    reference = Reference()
    batches = [
        [failed(n, 5 * n) for n in range(9)],  # one burst from 0 to 40
        [make_event(20, T0 + timedelta(seconds=41), "k1")],  # damaged, nothing matches
        [failed(21, 45)],  # the burst goes on (its window starts at 35)
    ]
    for step, batch in enumerate(batches):
        commit_batch(ws, batch, f"b{step:03d}")
        if step == 1:
            damage(ws)
        given = scan(ws, rules)[1]
        assert given == reference.scan(ws, correlation(ws, rules), batch), f"step {step}"
        assert recorded(ws) == (reference.alerts, reference.links), f"step {step}"
    assert len(reference.alerts) == 1  # one burst, from 0 to 45


def test_a_kept_burst_that_started_before_settled_is_counted_from_its_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tail is read from the first new event's window on, not from `settled -
    timespan`, except for what a burst going on needs: here a burst whose first hit is
    kept (after `settled`) but whose window starts before `settled` (not frozen), so its
    count starts there, earlier than the decision reads."""
    monkeypatch.setattr(correlate, "LATENESS", timedelta(seconds=3))
    ws = Workspace.init(tmp_path / "ws")
    rules = tmp_path / "rules"
    write_rules(rules, "event_count", 10, 2)  # two failures of a key within 10 s

    reference = Reference()
    batches = [
        [failed(1, 0)],  # no hit; settled -3
        [failed(2, 5)],  # a hit at 5 (window from 0), kept; settled 2
        [failed(3, 12)],  # a hit at 12: the burst from 0 goes on (decided from 2 on)
    ]
    for step, batch in enumerate(batches):
        commit_batch(ws, batch, f"b{step:03d}")
        how, given = scan(ws, rules)
        assert how == (STATE if step else
                       "whole history read (no state of this definition at its watermark)")
        assert given == reference.scan(ws, correlation(ws, rules), batch), f"step {step}"
        assert recorded(ws) == (reference.alerts, reference.links), f"step {step}"
    assert len(reference.alerts) == 1  # one burst, given again as it goes on
    assert [g[2:] for g in given] == [
        (T0.isoformat(), (T0 + timedelta(seconds=12)).isoformat(), 3)]
