"""Issue 3 end to end: the planted demo leaks are found where they are, can be hunted by
value, and never appear in clear outside the lake and quarantine unless revealed."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sentinel.demo import generate
from sentinel.demo.manifest import DemoManifest
from sentinel.ingest.engine import ingest_paths
from sentinel.workspace import Workspace
from tests.conftest import RunCli

# Which finding types each planted incident must produce (values in the same order).
EXPECTED = {
    "credit_card": ["credit_card"],
    "ssn": ["ssn"],
    "aws_credentials": ["aws_access_key", "aws_secret_key"],
}
CUSTOMER_RECORD_TYPES = {
    "margaret.okonkwo@mailbox.example": "email",
    "+1 (503) 555-0182": "phone",
    "1979-04-23": "date_of_birth",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, DemoManifest]:
    ws = Workspace.init(tmp_path_factory.mktemp("leak") / "ws")
    manifest = generate(ws.demo_dir, events=3000)
    report = ingest_paths(ws, [ws.demo_dir])
    assert report.quarantined == 0
    return ws, manifest


def planted_secrets(manifest: DemoManifest) -> list[str]:
    """Every planted PII/secret value (not the IPs and key ids, which are identifiers)."""
    values = []
    for incident in manifest.incidents:
        if incident.kind in EXPECTED or incident.kind == "customer_record":
            values += [v for v in incident.values if v not in ("Margaret Okonkwo",)
                       and "Street" not in v]
    return values


def forms(value: str) -> list[str]:
    """A value as written and with separators removed (how a careless export shows it)."""
    digits = re.sub(r"[\s\-()+]", "", value)
    return sorted({value, digits} - {""})


def findings_for(ws: Workspace, file: str) -> list[tuple[str, str, str, int, int]]:
    files = [str(p) for p in ws.lake_dir.rglob("*.parquet")]
    con = duckdb.connect()
    return con.execute(
        """
        SELECT f.type, f.field, CASE f.field WHEN 'prompt_text' THEN prompt_text
                                             ELSE response_text END, f.start, f."end"
        FROM (SELECT *, unnest(pii_findings) AS f FROM read_parquet($files))
        WHERE source_file LIKE '%' || $file
        """,
        {"files": files, "file": file},
    ).fetchall()


def test_planted_values_are_found_with_types_and_positions(
    demo: tuple[Workspace, DemoManifest],
) -> None:
    ws, manifest = demo
    for incident in manifest.incidents:
        if incident.kind in EXPECTED:
            expected = list(zip(EXPECTED[incident.kind], incident.values, strict=True))
        elif incident.kind == "customer_record":
            expected = [(t, v) for v, t in CUSTOMER_RECORD_TYPES.items()]
            expected.append(("credit_card", incident.values[-1]))
        else:
            continue
        found = findings_for(ws, incident.file)
        for finding_type, value in expected:
            spans = [text[start:end] for t, _field, text, start, end in found
                     if t == finding_type]
            assert value in spans, (incident.kind, finding_type, value, found)


def test_hunt_by_value_finds_the_planted_card(
    demo: tuple[Workspace, DemoManifest], run_cli: RunCli
) -> None:
    ws, manifest = demo
    card = next(i for i in manifest.incidents if i.kind == "credit_card").values[0]
    digits = re.sub(r"\D", "", card)
    result = run_cli("--workspace", str(ws.root), "hunt", "--value", digits, "--format", "json",
                     check=True)
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert rows and all(r["type"] == "credit_card" for r in rows)
    assert card not in result.stdout and digits not in result.stdout


def test_nothing_outside_the_lake_holds_a_planted_value(
    demo: tuple[Workspace, DemoManifest], run_cli: RunCli, tmp_path: Path
) -> None:
    ws, manifest = demo
    values = planted_secrets(manifest)
    assert len(values) >= 8
    outputs = []
    for args in (
        ("sql", "SELECT * FROM events WHERE pii_count > 0"),
        ("sql", "--format", "json", "SELECT * FROM events WHERE pii_count > 0"),
        ("sql", "--format", "csv", "--output", str(tmp_path / "export.csv"),
         "SELECT prompt_text, raw FROM events WHERE pii_count > 0"),
        ("sql", "--format", "parquet", "--output", str(tmp_path / "export.parquet"),
         "SELECT prompt_text, response_text, raw FROM events WHERE pii_count > 0"),
        ("hunt", "--type", "credit_card", "--format", "json"),
        ("hunt", "--type", "aws_secret_key"),
    ):
        result = run_cli("--workspace", str(ws.root), *args, check=True)
        outputs += [result.stdout, result.stderr]
    files = [tmp_path / "export.csv", ws.root / "state.db", *ws.logs_dir.rglob("*"),
             *ws.root.glob("state.db-*"), ws.demo_dir / "MANIFEST.md"]
    blobs = [p.read_bytes().decode("utf-8", "replace") for p in files if p.is_file()]
    exported = pq.read_table(tmp_path / "export.parquet")
    blobs += [str(v) for column in exported.columns for v in column.to_pylist()]
    for value in values:
        for form in forms(value):
            for blob in outputs + blobs:
                assert form not in blob, f"planted value leaked: {form[:4]}…"


def test_reveal_needs_a_reason_and_is_audited(
    demo: tuple[Workspace, DemoManifest], run_cli: RunCli
) -> None:
    ws, manifest = demo
    card = next(i for i in manifest.incidents if i.kind == "credit_card").values[0]
    query = "SELECT prompt_text FROM events WHERE list_contains(pii_types, 'credit_card')"
    refused = run_cli("--workspace", str(ws.root), "sql", "--reveal", query)
    assert refused.returncode == 2
    revealed = run_cli("--workspace", str(ws.root), "sql", "--reveal", "--reason",
                       "INC-42 card leak scoping", "--format", "json", query, check=True)
    assert card in revealed.stdout
    con = sqlite3.connect(ws.state_db)
    actions = con.execute("SELECT action, detail FROM audit").fetchall()
    assert any(a == "reveal" and "INC-42 card leak scoping" in d for a, d in actions)
    assert all(card not in d for _, d in actions)


def test_masked_store_text_keeps_no_value_in_any_lake_file(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.config_path.write_text('[privacy]\nstore_text = "masked"\n')
    manifest = generate(ws.demo_dir, events=1500)
    ingest_paths(Workspace.open(ws.root), [ws.demo_dir])
    values = planted_secrets(manifest)
    seen_placeholder = False
    for path in ws.lake_dir.rglob("*.parquet"):
        table = pq.read_table(path)
        for name in table.column_names:
            column = table.column(name)
            if not pa.types.is_string(column.type):
                continue
            text = "\n".join(v for v in column.to_pylist() if v)
            seen_placeholder |= "[CREDIT_CARD]" in text
            for value in values:
                for form in forms(value):
                    assert form not in text, f"{path.name}:{name} keeps a planted value"
    assert seen_placeholder
