"""What a `sentinel scan` process imports before it needs it: the fixed cost of every scan
from cron. Compiling rules (pySigma), ingesting, masking PII and opening incidents are
imported where they are used, not by the scan's modules."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import RunCli, cli_loading, litellm_line, write_lines

NOT_AT_IMPORT = ("sigma", "sentinel.ingest.engine", "sentinel.pii", "sentinel.respond.intake",
                 "sentinel.respond.playbook", "sentinel.scan.correlate")


def _imported_by(*modules: str) -> list[str]:
    code = (
        "import importlib, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"print('\\n'.join(sorted(m for m in sys.modules if m.startswith({NOT_AT_IMPORT!r}))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_the_scan_command_imports_no_compiler_ingest_masking_or_intake() -> None:
    assert _imported_by("sentinel.cli.scan", "sentinel.scan.runner") == []


def test_compiled_rule_taxonomy_and_problems_import_without_pysigma() -> None:
    assert _imported_by(
        "sentinel.detect.compiler", "sentinel.detect.pipeline", "sentinel.detect.inputs",
        "sentinel.detect.engine", "sentinel.scan.evaluate",
    ) == []


def test_compiling_still_finds_pysigma() -> None:
    assert "sigma.rule" in _imported_by("sentinel.detect.convert")


def test_opening_incidents_does_not_load_the_lake_reader_the_pii_engine_or_playbooks(
) -> None:
    # Only a step that renders an incident's events reads the lake (pyarrow.dataset, the
    # PII engine behind masking); the intake routes by `respond.routes`, and only a caller
    # without routes parses the playbooks (pydantic, YAML, the step models).
    code = (
        "import sys, sentinel.respond.intake\n"
        "print(sorted(m for m in sys.modules if m.startswith(("
        "'sentinel.lake', 'sentinel.pii', 'pyarrow.dataset', 'pydantic', 'yaml', "
        "'sentinel.respond.playbook', 'sentinel.respond.steps'))))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_cron_scan_with_nothing_new_and_a_kept_pack_imports_none_of_them(
    tmp_path: Path,
) -> None:
    ws = Workspace.init(tmp_path / "ws")
    found = []
    for _ in range(2):  # the first scan compiles the pack and keeps it; the second reuses it
        result, loaded = cli_loading(["-w", str(ws.root), "scan", "--format", "jsonl"],
                                     (*NOT_AT_IMPORT, "rich", "pydantic", "yaml"))
        assert result.returncode == 0, result.stderr
        found.append(loaded)
    assert "sigma" in found[0] and "pydantic" in found[0]
    assert found[1] == []


def test_a_scan_that_opens_incidents_from_kept_routes_imports_no_playbook_schema(
    workspace: Workspace, run_cli: RunCli, tmp_path: Path,
) -> None:
    """The second scan with new alerts routes its incidents by the routes the first kept:
    neither pydantic nor YAML nor the playbook and step models are imported."""
    ws = workspace
    schema = ("pydantic", "yaml", "sentinel.respond.playbook", "sentinel.respond.steps")
    found, books = [], []
    for part in range(2):  # each part's card numbers come from users not seen before
        lines = [litellm_line(i, f"pay with card 4111 1111 1111 1111 user {i}",
                              metadata={"user_api_key_alias": f"key-{i}",
                                        "user_api_key_user_id": f"user-{i}"})
                 for i in range(part * 5, part * 5 + 5)]
        run_cli("ingest", str(write_lines(tmp_path / f"gw-{part}.jsonl", lines)), check=True)
        result, loaded = cli_loading(["-w", str(ws.root), "scan", "--format", "jsonl"], schema)
        assert result.returncode in (0, 1), result.stderr
        found.append(loaded)
        with sqlite3.connect(ws.state_db) as con:
            books.append(con.execute(
                "SELECT count(*), count(DISTINCT playbook) FILTER (WHERE playbook IS NOT NULL),"
                " (SELECT count(*) FROM alerts WHERE pending_intake) FROM incidents"
            ).fetchone())
    assert set(schema) <= set(found[0])
    assert found[1] == []
    # Both scans opened incidents with a playbook, and left no alert pending.
    assert books[0][0] > 0 and books[1][0] > books[0][0]
    assert books[0][1] >= 1 and books[1][1] >= 1 and books[0][2] == books[1][2] == 0
