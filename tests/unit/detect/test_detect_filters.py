"""Sigma filters (meta-rules) tune rules pack-wide without editing them; the SQL is run."""

from __future__ import annotations

from pathlib import Path

from sentinel.detect.compiler import compile_pack
from sentinel.detect.rules import load_rules
from sentinel.detect.testing import events_table, run_sql

RULE = """\
title: Request from a public address
id: 7a000000-0000-4000-8000-000000000001
name: public_request
status: test
logsource: {product: ai_gateway}
detection:
  sel: {client_ip|cidr: 0.0.0.0/0}
  private: {client_ip|cidr: [10.0.0.0/8, 192.168.0.0/16]}
  condition: sel and not private
level: medium
"""
OTHER = """\
title: Audit event
id: 7a000000-0000-4000-8000-000000000002
status: test
logsource: {product: openai, service: audit}
detection:
  sel: {client_ip|cidr: 0.0.0.0/0}
  condition: sel
level: low
"""
FILTER = """\
title: Our load balancers are not the public
id: 7a000000-0000-4000-8000-0000000000f1
status: test
logsource: {product: ai_gateway}
filter:
  rules: [public_request]
  selection:
    client_ip|cidr: 203.0.113.0/28
  condition: not selection
"""
EVENTS = [
    {"event_id": "lb", "ts": "2026-01-01T00:00:00+00:00", "client_ip": "203.0.113.5"},
    {"event_id": "out", "ts": "2026-01-01T00:00:00+00:00", "client_ip": "198.51.100.7"},
    {"event_id": "in", "ts": "2026-01-01T00:00:00+00:00", "client_ip": "10.1.1.1"},
]


def matches(rules: Path, filters: list[Path], source: str = "litellm") -> dict[str, list[str]]:
    compiled, problems = compile_pack(load_rules([rules], filters))
    assert problems == []
    table = events_table([{**e, "source": source} for e in EVENTS])
    return {rule.title: run_sql(rule.sql, table) for rule in compiled}


def test_filter_in_a_workspace_folder_excludes_the_load_balancer(tmp_path: Path) -> None:
    rules = tmp_path / "detections"
    rules.mkdir()
    (rules / "public.yml").write_text(RULE)
    assert matches(rules, [])["Request from a public address"] == ["lb", "out"]
    folder = tmp_path / "filters"
    folder.mkdir()
    (folder / "lb.yml").write_text(FILTER)
    assert matches(rules, [folder])["Request from a public address"] == ["out"]


def test_filter_beside_the_rules_applies_only_to_its_rules(tmp_path: Path) -> None:
    (tmp_path / "public.yml").write_text(RULE)
    (tmp_path / "audit.yml").write_text(OTHER)
    (tmp_path / "lb_filter.yml").write_text(FILTER.replace("rules: [public_request]",
                                                           "rules: any"))
    found = matches(tmp_path, [])
    assert found["Request from a public address"] == ["out"]
    table = events_table([{**e, "source": "openai_audit"} for e in EVENTS])
    compiled, _ = compile_pack(load_rules([tmp_path]))
    audit = next(rule for rule in compiled if rule.title == "Audit event")
    assert run_sql(audit.sql, table) == ["lb", "out", "in"]  # other logsource: untouched


def test_a_broken_filter_is_located(tmp_path: Path) -> None:
    (tmp_path / "public.yml").write_text(RULE)
    (tmp_path / "bad_filter.yml").write_text(FILTER.replace("condition: not selection",
                                                            "condition: not selecton"))
    pack = load_rules([tmp_path])
    compiled, problems = compile_pack(pack)
    assert [str(p).split("/")[-1] for p in problems] == [
        "bad_filter.yml:9: filter condition names 'selecton', which the filter does not "
        "define (did you mean 'selection'?)"
    ]
    assert [rule.title for rule in compiled] == ["Request from a public address"]
