"""The demo acceptance of the detection pack (issue 10, "Done when"): over the demo
workspace, every planted incident of the demo manifest is found by the rule (or
baseline) written for it, and no high or critical rule fires on anything that was not
planted.

The demo is written and ingested through the real CLI (a smaller run than `make run`:
the same plants, less background traffic); every rule of `detections/` then runs over
the lake with exactly the SQL the scan runs. Baselines learn from history, so their
alerts are read from the scan `sentinel demo` ran (state.db).
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sentinel.demo.manifest import DemoManifest
from sentinel.demo.world import INTRUDER_IP
from sentinel.detect.compiler import compile_pack
from sentinel.detect.rules import load_rules
from sentinel.detect.sqlmacros import install_macros
from sentinel.lake.query import open_lake
from sentinel.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]

# Planted incident kind -> the title of the rule that must find it.
EXPECTED = {
    "credit_card": "Payment card number sent to an AI model",
    "ssn": "Social security or national ID number sent to an AI model",
    "customer_record": "A full customer record sent to an AI model in one request",
    "aws_credentials": "Cloud credentials or private key sent to an AI model",
    "new_ip_off_hours": "AI gateway request from a public IP address",
    "console_brute_force": "AWS console login succeeded after failures",
    "bedrock_logging_deleted": "Bedrock invocation logging deleted or text logging turned off",
    "admin_key_created": "OpenAI API key created or updated with all or administrative "
    "permissions",
    "bedrock_first_use": "Bedrock model invoked by a principal that never used Bedrock before",
}
# Planted incidents a baseline must find as well (kind -> baseline title).
BASELINES = {
    "new_ip_off_hours": "LiteLLM virtual key used from a new client IP",
    "bedrock_first_use": "Bedrock model invoked by a principal that never used Bedrock before",
}


class _Baseline:
    """What the acceptance needs of a baseline alert's source: its level."""

    def __init__(self, level: str) -> None:
        self.level = level


def baseline_hits(ws_dir: Path) -> dict[str, Any]:
    """title -> (baseline, [{"event_ids": [...], "event_count": n}, ...]) from state.db."""
    con = sqlite3.connect(ws_dir / "state.db")
    try:
        rows = con.execute(
            "SELECT a.rule_title, a.level, a.alert_id, a.event_count, group_concat(e.event_id) "
            "FROM alerts a JOIN alert_events e USING (alert_id) WHERE a.rule_kind = 'baseline' "
            "GROUP BY a.alert_id"
        ).fetchall()
    finally:
        con.close()
    hits: dict[str, Any] = {}
    for title, level, _alert, count, ids in rows:
        entry = hits.setdefault(title, (_Baseline(level), []))
        entry[1].append({"event_ids": ids.split(","), "event_count": count})
    return hits


@pytest.fixture(scope="module")
def demo(small_demo: tuple[Path, DemoManifest]) -> tuple[DemoManifest, dict[str, Any]]:
    ws_dir, manifest = small_demo  # read only: its lake, and the alerts its scan recorded
    con = open_lake(Workspace.open(ws_dir))
    install_macros(con)
    compiled, problems = compile_pack(load_rules([REPO / "detections"]))
    assert problems == []
    hits: dict[str, Any] = {}
    for rule in compiled:
        rows = con.sql(rule.sql).to_arrow_table().to_pylist()
        hits[rule.title] = (rule, rows)
    assert not set(hits) & set(baseline_hits(ws_dir))
    hits.update(baseline_hits(ws_dir))
    events = {
        r["event_id"]: r
        for r in con.sql("SELECT event_id, ts, client_ip FROM events").to_arrow_table().to_pylist()
    }
    con.close()
    return manifest, {"hits": hits, "events": events}


def _event_ids(rows: list[dict[str, Any]]) -> list[str]:
    """The events of a rule's hits: the rows themselves, or a correlation's `event_ids`."""
    ids: list[str] = []
    for row in rows:
        ids += row["event_ids"] if "event_ids" in row else [row["event_id"]]
    return ids


def _planted(manifest: DemoManifest, event: dict[str, Any]) -> bool:
    """An event is planted when it is at a planted incident's time or from the intruder."""
    if event["client_ip"] == INTRUDER_IP:
        return True
    return any(abs(event["ts"] - inc.ts) <= timedelta(seconds=1) for inc in manifest.incidents)


def test_every_planted_incident_is_found_once(demo: tuple[DemoManifest, dict[str, Any]]) -> None:
    manifest, found = demo
    assert {inc.kind for inc in manifest.incidents} == set(EXPECTED)
    for incident in manifest.incidents:
        rule, rows = found["hits"][EXPECTED[incident.kind]]
        times = [found["events"][i]["ts"] for i in _event_ids(rows)]
        # A run of events (the 18 requests, the 15 sign-ins) starts at the incident time,
        # its first event a few seconds after it.
        start, end = incident.ts - timedelta(seconds=1), incident.ts + timedelta(hours=1)
        assert any(start <= t <= end for t in times), (incident.kind, incident.summary)
    # Correlations report one burst per incident, not one per window.
    assert len(found["hits"][EXPECTED["console_brute_force"]][1]) == 1
    brute = found["hits"][EXPECTED["console_brute_force"]][1][0]
    assert brute["event_count"] == 15
    # The simple rules find the planted events and nothing else.
    counts = {kind: sum(i.events for i in manifest.incidents if i.kind == kind)
              for kind in EXPECTED}
    new_ip = found["hits"][EXPECTED["new_ip_off_hours"]][1]
    assert len(new_ip) == counts["new_ip_off_hours"] == 18
    # The baselines find their planted stories, whole: the 18 requests from the new
    # address (one alert), ops-admin's three first Bedrock calls (one alert).
    for kind, title in BASELINES.items():
        planted = next(i for i in manifest.incidents if i.kind == kind)
        alerts = [a for a in found["hits"][title][1]
                  if any(found["events"][e]["client_ip"] == INTRUDER_IP for e in a["event_ids"])]
        assert [a["event_count"] for a in alerts] == [planted.events], kind
    cards = found["hits"][EXPECTED["credit_card"]][1]
    assert len(cards) == counts["credit_card"] + counts["customer_record"]  # its card too


def test_no_high_or_critical_alert_besides_the_planted(
    demo: tuple[DemoManifest, dict[str, Any]],
) -> None:
    manifest, found = demo
    for title, (rule, rows) in found["hits"].items():
        if rule.level not in ("high", "critical"):
            continue
        stray = [i for i in _event_ids(rows) if not _planted(manifest, found["events"][i])]
        assert stray == [], f"{title}: {len(stray)} unplanted events"
