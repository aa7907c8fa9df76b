"""`sentinel sources` through the real CLI, and the taxonomy table of detections/README.md
kept in step with what is installed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def sentinel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args], capture_output=True, text=True, timeout=120
    )


def test_lists_builtins_and_the_workspace_mappings(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert sentinel("--workspace", str(ws), "init").returncode == 0
    config = ws / "sentinel.toml"
    config.write_text(config.read_text() + """
[sources.portkey]
match = "$.portkey_request_id"
[sources.portkey.fields]
ts = "$.created_at"
[sources.vendorlog.fields]
ts = "$.t"
[sources.vendorlog.logsource]
product = "acme"
service = "audit"
""")
    result = sentinel("--workspace", str(ws), "sources", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["portkey"] | {"description": ""} == {
        "name": "portkey", "product": "ai_gateway", "service": "portkey", "origin": "config",
        "description": ""}
    assert (rows["vendorlog"]["product"], rows["vendorlog"]["service"]) == ("acme", "audit")
    assert rows["anthropic_activity"]["origin"] == "built-in"
    table = sentinel("--workspace", str(ws), "sources")
    assert table.stdout.splitlines()[0].split() == [
        "source", "product", "service", "origin", "description"]
    assert re.search(r"^portkey\s+ai_gateway\s+portkey\s+config\s", table.stdout, re.M)


def test_works_without_a_workspace(tmp_path: Path) -> None:
    result = sentinel("--workspace", str(tmp_path / "none"), "sources")
    assert result.returncode == 0, result.stderr
    assert "anthropic_activity" in result.stdout
    assert not (tmp_path / "none").exists()


def test_detections_readme_lists_every_installed_source() -> None:
    readme = (REPO / "detections" / "README.md").read_text(encoding="utf-8")
    documented = dict(re.findall(
        r"^\| `([a-z_]+)`\s*\| `product: ([a-z_]+)` \+ `service: [a-z_]+`", readme, re.M))
    services = dict(re.findall(
        r"^\| `([a-z_]+)`\s*\| `product: [a-z_]+` \+ `service: ([a-z_]+)`", readme, re.M))
    result = sentinel("--workspace", str(REPO / "no-such-workspace"), "sources", "--format", "json")
    installed = [json.loads(line) for line in result.stdout.splitlines()]
    for row in installed:
        if row["origin"] == "built-in":
            assert documented.get(row["name"]) == row["product"], row["name"]
            assert services.get(row["name"]) == row["service"], row["name"]
