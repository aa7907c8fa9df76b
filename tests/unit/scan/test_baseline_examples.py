"""Baseline examples: every bundled baseline ships a case that alerts and one that stays
quiet, and they pass (through the full query and through the model); a wrong expectation
or a misspelt column is reported at the example's line."""

from __future__ import annotations

from pathlib import Path

from sentinel.content import baselines_dir
from sentinel.detect.baseline import load_baselines, parse
from sentinel.detect.pipeline import Taxonomy
from sentinel.scan.baseline_examples import check_examples

EXAMPLE = """\
id: new-ip
title: new client IP
kind: first_seen
logsource: {product: ai_gateway, service: litellm}
by: [actor_key]
value: client_ip
learning: 7d
min_history: 3d
examples:
  - name: a known address
    history: [{event: {actor_key: k1, client_ip: 10.0.0.5}}]
    new: [{event: {actor_key: k1, client_ip: 10.0.0.5}, day: 8}]
    alerts: 0
  - name: a new address
    history: [{event: {actor_key: k1, client_ip: 10.0.0.5}}]
    new: [{event: {actor_key: k1, client_ip: 203.0.113.9}, day: 8}]
    alerts: {alerts}
"""


def test_every_bundled_baseline_has_passing_examples_both_ways() -> None:
    pack = load_baselines([baselines_dir()])
    assert pack.baselines and not pack.problems
    taxonomy = Taxonomy.installed()
    for item in pack.baselines:
        expected = [e.alerts for e in item.spec.examples]
        assert any(expected) and 0 in expected, item.spec.id
        sources = taxonomy.select(item.spec.logsource.product, item.spec.logsource.service)
        assert sources
        assert check_examples(item, tuple(sources)) == [], item.spec.id


def test_a_wrong_expectation_is_located_at_its_example(tmp_path: Path) -> None:
    loaded, problems = parse(EXAMPLE.replace("{alerts}", "1"), tmp_path / "b.yml")
    assert loaded is not None and not problems
    assert check_examples(loaded, ("litellm",)) == []
    loaded, _ = parse(EXAMPLE.replace("{alerts}", "0"), tmp_path / "b.yml")
    assert loaded is not None
    found = check_examples(loaded, ("litellm",))
    assert [(p.line, p.message) for p in found] == [
        (14, "example 'a new address': expected 0 alert(s), the baseline gave 1 (and 1 "
             "from its model)")
    ]


def test_an_example_column_is_checked(tmp_path: Path) -> None:
    text = EXAMPLE.replace("{alerts}", "1").replace("client_ip: 203", "clientip: 203")
    _, problems = parse(text, tmp_path / "b.yml")
    assert [(p.line, p.message) for p in problems] == [
        (16, "unknown column 'clientip' (did you mean 'client_ip'?); baselines name event "
             "schema columns")
    ]
