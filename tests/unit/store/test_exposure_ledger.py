"""The exposure ledger: types × vendor, model, key, team, user from the lake; never values."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import make_alert

from sentinel.ingest.engine import ingest_paths
from sentinel.store import incidents, ledger
from sentinel.workspace import Workspace
from tests.conftest import litellm_line, write_lines

CARD = "4111 1111 1111 1111"
OTHER_CARD = "5500 0000 0000 0004"


def lake_with_cards(workspace: Workspace, tmp_path: Path) -> None:
    lines = [
        litellm_line(0, f"refund card {CARD}"),
        litellm_line(1, f"refund card {CARD} again, and {OTHER_CARD}"),
        litellm_line(2, "no pii here"),
        litellm_line(3, f"unrelated {OTHER_CARD}", model="claude-3-haiku"),
        litellm_line(4, "SSN 123-45-6789", model="gpt-4o"),
    ]
    ingest_paths(workspace, [write_lines(tmp_path / "gw.jsonl", lines)])


def test_ledger_counts_types_per_vendor_without_values(
    workspace: Workspace, con: sqlite3.Connection, tmp_path: Path
) -> None:
    lake_with_cards(workspace, tmp_path)
    ids = ("chatcmpl-00000000", "chatcmpl-00000001", "chatcmpl-00000002", "chatcmpl-00000004")
    alert = make_alert("a1", events=ids, event_ts=None)
    incidents.open_or_update(con, alert)
    table = ledger.exposure(workspace, con, 1)
    assert tuple(table.column_names) == ledger.LEDGER_COLUMNS
    rows = [(r["pii_type"], r["actor_user"], r["events"], r["findings"], r["distinct_values"])
            for r in table.to_pylist()]
    # One row per type and who (u0, u1, u4: the test records' users), one value twice.
    assert rows == [("credit_card", "u0", 1, 1, 1), ("credit_card", "u1", 1, 2, 2),
                    ("ssn", "u4", 1, 1, 1)]
    card = table.to_pylist()[1]
    assert card["vendor"] == "openai" and card["model"] == "gpt-4o"
    assert card["actor_key"] == "team-a-key"
    assert table.to_pylist()[0]["digests"][0] in card["digests"]  # the same card, hunted
    # The values, written any way, are nowhere (not a 4-digit fragment: the digests are
    # random hex per workspace and held "6789" once, failing the test by chance).
    text = str(table.to_pylist())
    for value in (CARD, OTHER_CARD, "123-45-6789"):
        for written in (value, value.replace(" ", "").replace("-", "")):
            assert written not in text


def test_ledger_of_an_incident_without_pii_is_empty(
    workspace: Workspace, con: sqlite3.Connection, tmp_path: Path
) -> None:
    lake_with_cards(workspace, tmp_path)
    incidents.open_or_update(con, make_alert("a1", events=("chatcmpl-00000002",)))
    assert ledger.exposure(workspace, con, 1).num_rows == 0
    incidents.open_or_update(con, make_alert("a2", rule="r2", events=("' OR 1=1 --",)))
    assert isinstance(ledger.exposure(workspace, con, 2), pa.Table)
    assert ledger.exposure(workspace, con, 2).num_rows == 0


@pytest.mark.parametrize("recorded", [False, True], ids=["given", "recorded-by-a-scan"])
def test_related_incidents_share_an_address_user_or_key(
    workspace: Workspace, con: sqlite3.Connection, tmp_path: Path, recorded: bool
) -> None:
    lake_with_cards(workspace, tmp_path)
    ts = "2025-01-24T09:20:46+00:00"

    def link(alert: incidents.Alert) -> None:
        if recorded:  # as a scan hands it over: events in alert_events, linked by reference
            from sentinel.store import alerts as alert_store

            if not con.execute("SELECT 1 FROM scans").fetchone():
                alert_store.begin_scan(con, "s1")
            alert_store.commit_rule(con, "s1", alert.rule_id,
                                    [alert_store.AlertRecord(alert)], batch_seq=None)
            alert = incidents.Alert(**{**alert.__dict__, "events": ()})
        incidents.open_or_update(con, alert)

    link(make_alert("a1", events=("chatcmpl-00000000",), first=ts))
    link(make_alert("a2", rule="r2", events=("chatcmpl-00000003",), first=ts))
    link(make_alert("a3", rule="r3", events=("chatcmpl-00000001",),
                    first="2025-02-24T09:20:46+00:00"))
    if recorded:
        assert con.execute("SELECT count(*) FROM incident_event_rows").fetchone()[0] == 0
    related = ledger.related_incidents(workspace, con, 1)
    # Same key (team-a-key) within a day: incident 2; incident 3 is a month away.
    assert related == [
        {"incident_id": 2, "title": "r2 fired", "shared": ["actor_key team-a-key"]}
    ]
