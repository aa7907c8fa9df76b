"""Loading and compiling a rule pack: every problem located, good rules unaffected; the
shipped pack's examples all pass and every rule has both kinds of example."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.detect.compiler import LocatedRuleError, compile_pack, compile_rule
from sentinel.detect.rules import load_rules
from sentinel.detect.testing import EXPECTATIONS, examples_path, load_cases, run_examples

REPO = Path(__file__).resolve().parents[3]
BAD_PACK = REPO / "tests" / "data" / "detect" / "bad_pack"
DETECTIONS = REPO / "detections"


@pytest.fixture(scope="module")
def bad_pack_problems() -> dict[str, tuple[int | None, str]]:
    pack = load_rules([BAD_PACK])
    compiled, problems = compile_pack(pack)
    assert [c.title for c in compiled] == ["Good rule"]
    return {p.path.name: (p.line, p.message) for p in problems}


@pytest.mark.parametrize(
    ("name", "line", "fragment"),
    [
        ("yaml_syntax_error.yml", 6, "YAML syntax error"),
        ("unknown_field.yml", 7, "unknown field 'actor_usr'"),
        ("unsupported_modifier.yml", 7, "timestamp part modifiers"),
        ("unknown_logsource.yml", 3, "unsupported logsource (product 'windows'"),
        ("unsupported_correlation.yml", 13, "value_median"),
        ("bad_condition.yml", 7, "'other'"),
    ],
)
def test_bad_rules_are_located_and_others_load(bad_pack_problems, name, line, fragment):
    assert name in bad_pack_problems
    found_line, message = bad_pack_problems[name]
    assert found_line == line
    assert fragment in message


def test_unknown_field_suggests_the_column(bad_pack_problems):
    assert "did you mean 'actor_user'" in bad_pack_problems["unknown_field.yml"][1]


def test_compile_rule_fails_fast_with_location():
    pack = load_rules([BAD_PACK / "unknown_field.yml"])
    with pytest.raises(LocatedRuleError) as info:
        compile_rule(pack.rules[0])
    assert str(info.value).startswith(f"{BAD_PACK / 'unknown_field.yml'}:7: unknown field")


def test_bad_test_case_is_located(tmp_path):
    cases = tmp_path / "rule.tests.jsonl"
    cases.write_text(
        '{"expect": "match", "event": {"ts": "2025-01-01T00:00:00Z"}}\n{"expect": "maybe"}\n'
    )
    with pytest.raises(LocatedRuleError) as info:
        load_cases(cases)
    assert info.value.problem.line == 2


def test_unknown_event_column_fails_the_case(tmp_path):
    rule = tmp_path / "r.yml"
    rule.write_text((BAD_PACK / "good_rule.yml").read_text())
    examples_path(rule).write_text(
        '{"expect": "match", "event": '
        '{"ts": "2025-01-01T00:00:00Z", "action": "api_key.created"}}\n'
        '{"expect": "nomatch", "event": {"ts": "2025-01-01T00:00:00Z", "acton": "x"}}\n'
    )
    report = run_examples([rule])
    assert [r.passed for r in report.results] == [True, False]
    assert "acton" in (report.results[1].error or "")


def test_rule_without_examples_is_a_problem(tmp_path):
    rule = tmp_path / "r.yml"
    rule.write_text((BAD_PACK / "good_rule.yml").read_text())
    report = run_examples([rule])
    assert not report.ok and "r.tests.jsonl is missing" in report.problems[0].message


def test_shipped_pack_compiles_without_problems():
    pack = load_rules([DETECTIONS])
    compiled, problems = compile_pack(pack)
    assert problems == []
    assert len(compiled) >= 10


def test_every_rule_has_matching_and_non_matching_examples():
    pack = load_rules([DETECTIONS])
    missing = []
    for loaded in pack.output_rules:
        path = examples_path(loaded.path)
        kinds = {case.expect for case in load_cases(path)} if path.exists() else set()
        if kinds != set(EXPECTATIONS):
            missing.append(f"{loaded.path.name}: {sorted(kinds)}")
    assert missing == []


def test_shipped_pack_examples_pass():
    report = run_examples([DETECTIONS])
    failures = [
        f"{r.title} / {r.case.name}: {r.error or r.matched_ids}"
        for r in report.results
        if not r.passed
    ]
    assert report.problems == [] and failures == []


def test_a_pack_of_100_rules_compiles(tmp_path):
    # Its speed is measured by bench/compile_rules.py, never asserted here (a loaded CI
    # machine would fail a timed assertion for no fault of the code).
    source = (REPO / "detections" / "ai_gateway" / "prompt_injection_phrases.yml").read_text()
    for index in range(100):
        text = source.replace(
            "id: 7c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b1105", f"id: 7c1b2a3d-4e5f-4a6b-8c7d-{index:012d}"
        )
        (tmp_path / f"rule{index}.yml").write_text(text.replace("title: ", f"title: {index} ", 1))
    compiled, problems = compile_pack(load_rules([tmp_path]))
    assert problems == [] and len(compiled) == 100
    assert len({rule.rule_id for rule in compiled}) == 100
