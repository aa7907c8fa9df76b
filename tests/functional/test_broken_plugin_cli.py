"""The real CLI with a broken source plugin installed: a warning, and ingest still works."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import RunCli, litellm_line, write_lines
from tests.unit.sources.test_plugins import install_plugin


def test_ingest_warns_once_about_a_broken_plugin_and_loads_the_file(
    run_cli: RunCli, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(
        site, "sentinel-source-broken", "broken_vendor_source",
        "raise RuntimeError('boom at import')\n", "broken = broken_vendor_source:Source",
    )
    log = write_lines(tmp_path / "gw.jsonl", [litellm_line(i) for i in range(3)])
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    result = run_cli("ingest", str(log), env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    assert "Ingested 3 events" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "sentinel-source-broken" in warnings[0] and "boom at import" in warnings[0]
    assert "Traceback" not in result.stderr
