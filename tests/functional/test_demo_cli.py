"""`sentinel demo` through the real CLI: generate, ingest, summarise, say what's next."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SENTINEL = Path(sys.executable).with_name("sentinel")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SENTINEL), *args], capture_output=True, text=True, timeout=600)


def test_demo_without_ingest_writes_logs_and_hints(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = _run("--workspace", str(ws), "demo", "--no-ingest", "--events", "1500")
    assert result.returncode == 0, result.stderr
    assert (ws / "sentinel.toml").is_file()
    assert (ws / "demo-logs" / "MANIFEST.md").is_file()
    assert "1,500 inference events" in result.stdout
    assert f"sentinel --workspace {ws} ingest {ws / 'demo-logs'}" in result.stdout
    assert "hunt --type credit_card" in result.stdout


@pytest.mark.slow
def test_demo_ingests_every_record_and_finds_planted_pii(tmp_path: Path) -> None:
    pytest.importorskip("sentinel.ingest.engine")
    ws = tmp_path / "ws"
    result = _run("--quiet", "--workspace", str(ws), "demo", "--events", "1500", "--seed", "3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for source in ("litellm", "bedrock", "cloudtrail", "openai_audit"):
        assert source in out
    assert "PII/secret findings:" in out
    findings = int(out.split("PII/secret findings:")[1].split()[0].replace(",", ""))
    assert findings >= 10  # cards, SSNs, the customer record, the AWS key pair
    assert "skipped" not in result.stderr
    assert 'sql "SELECT source, count(*) FROM events GROUP BY 1"' in out
    # The same seed again: byte-identical files, exactly-once ingest adds nothing.
    again = _run("--quiet", "--workspace", str(ws), "demo", "--events", "1500", "--seed", "3")
    assert again.returncode == 0, again.stderr
    assert "Ingested 0 events" in again.stdout
