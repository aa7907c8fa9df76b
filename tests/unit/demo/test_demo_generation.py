"""The demo is deterministic, the right size, and shaped like the real formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.demo import DemoManifest, generate

Reader = Callable[[Path], list[dict[str, Any]]]
SAMPLES = Path(__file__).parents[3].parent / "shared" / "samples"


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    generate(tmp_path / "a", seed=11, events=1_500)
    generate(tmp_path / "b", seed=11, events=1_500)
    generate(tmp_path / "c", seed=12, events=1_500)
    a, b, c = _tree(tmp_path / "a"), _tree(tmp_path / "b"), _tree(tmp_path / "c")
    assert a == b
    assert a != c


def test_end_option_moves_the_window(tmp_path: Path) -> None:
    m = generate(tmp_path, events=1_000, end=datetime(2025, 3, 1, tzinfo=UTC))
    assert m.start == datetime(2025, 2, 15, tzinfo=UTC)
    assert all(i.ts.year == 2025 for i in m.incidents)


def test_full_size_counts(full_demo: DemoManifest, records_of: Reader) -> None:
    m = full_demo
    assert m.inference_events == 50_000
    assert (m.users, m.keys, m.teams) == (40, 15, 5)
    litellm = [r for f in m.files if f.path.endswith(".jsonl") and f.source == "litellm"
               for r in records_of(m.out_dir / f.path)]
    aliases = {r["metadata"]["user_api_key_alias"] for r in litellm}
    teams = {r["metadata"]["user_api_key_team_alias"] for r in litellm}
    users = {r["end_user"] for r in litellm if r["end_user"]}
    days = {datetime.fromtimestamp(r["startTime"], UTC).date() for r in litellm}
    assert len(aliases) == 15 and len(teams) == 5
    assert 38 <= len(users) <= 40
    assert len(days) == 14
    assert min(days) == m.start.date() and max(days) < m.end.date()
    bedrock = sum(f.events for f in m.files if f.source == "bedrock")
    assert 12_000 < bedrock < 16_000
    assert m.counts["cloudtrail"] > bedrock  # one management event per Bedrock call, plus
    assert m.counts["openai_audit"] > 20
    lengths = [len(r["messages"][-1]["content"]) for r in litellm[:5000]]
    assert min(lengths) >= 150 and max(lengths) <= 2000
    assert len({r["messages"][-1]["content"] for r in litellm[:5000]}) > 4900


def test_every_file_parses_as_its_format(small_demo: DemoManifest, records_of: Reader) -> None:
    for f in small_demo.files:
        path = small_demo.out_dir / f.path
        records = records_of(path)
        assert len(records) == f.events, f.path
        assert all(isinstance(r, dict) for r in records), f.path
        if f.path.endswith(".gz"):
            assert path.read_bytes()[:2] == b"\x1f\x8b"
        if "CloudTrail" in f.path:
            import gzip

            assert json.loads(gzip.decompress(path.read_bytes())).keys() == {"Records"}
    page = json.loads((small_demo.out_dir / "openai_audit/audit_logs_page.json").read_text())
    assert page["object"] == "list" and page["has_more"] is False
    assert page["first_id"] == page["data"][0]["id"]


def test_spend_logs_export_encodes_json_in_strings(
    small_demo: DemoManifest, records_of: Reader
) -> None:
    rows = records_of(small_demo.out_dir / "litellm/spend_logs_export.json")
    assert rows
    for row in rows:
        for name in ("metadata", "messages", "response", "proxy_server_request"):
            assert isinstance(row[name], str)
            json.loads(row[name])
        assert json.loads(row["metadata"])["user_api_key_alias"]


def test_bedrock_covers_every_operation_and_done_marker(
    full_demo: DemoManifest, records_of: Reader
) -> None:
    ops: set[str] = set()
    done = 0
    for f in full_demo.files:
        if f.source != "bedrock":
            continue
        for r in records_of(full_demo.out_dir / f.path):
            ops.add(r["operation"])
            out = r["output"]["outputBodyJson"]
            if isinstance(out, list) and out[-1] == "[DONE]":
                done += 1
    assert ops == {"InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream"}
    assert done >= 3


def test_key_fields_never_hold_a_raw_key(small_demo: DemoManifest) -> None:
    text = "".join(
        (small_demo.out_dir / f.path).read_text() for f in small_demo.files
        if not f.path.endswith(".gz")
    )
    assert '"sk-' not in text


def _keys(record: dict[str, Any]) -> set[str]:
    return set(record)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared log samples not found")
def test_field_names_mirror_the_real_samples(small_demo: DemoManifest, records_of: Reader) -> None:
    out = small_demo.out_dir
    slp = json.loads((SAMPLES / "litellm/standard_logging_payload.json").read_text())
    ours = records_of(out / next(f.path for f in small_demo.files if f.path.endswith(".jsonl")))
    assert _keys(slp) <= _keys(ours[0])
    assert _keys(slp["metadata"]) <= _keys(ours[0]["metadata"])
    spend = json.loads((SAMPLES / "litellm/spend_logs_payload.json").read_text())
    assert _keys(spend) == _keys(records_of(out / "litellm/spend_logs_export.json")[0])
    bedrock_sample = json.loads((SAMPLES / "bedrock/test-aws-bedrock.log").open().readline())
    bedrock = records_of(out / next(f.path for f in small_demo.files if f.source == "bedrock"))
    assert _keys(bedrock_sample) == _keys(bedrock[0])
    assert _keys(bedrock_sample["input"]) == _keys(bedrock[0]["input"])
    login = json.loads((SAMPLES / "cloudtrail/test-console-login-json.log").open().readline())
    trail = [r for f in small_demo.files if f.source == "cloudtrail"
             for r in records_of(out / f.path) if r["eventName"] == "ConsoleLogin"]
    assert _keys(login) <= _keys(trail[0])
    audit = json.loads((SAMPLES / "openai_audit/audit_log_examples.jsonl").read_text()
                       .splitlines()[1])
    ours_audit = records_of(out / "openai_audit/audit_logs.jsonl")[0]
    assert {"id", "type", "effective_at", "actor"} <= _keys(ours_audit)
    assert _keys(audit["actor"]["session"]) <= _keys(ours_audit["actor"]["session"])
