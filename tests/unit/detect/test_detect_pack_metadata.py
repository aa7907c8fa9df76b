"""The shipped rule pack's metadata: what the issue promises for every rule, checked
offline (sigma check's ATT&CK validator needs MITRE's data from the network)."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import pytest
from sigma.correlations import SigmaCorrelationRule

from sentinel.detect.compiler import compile_pack
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.rules import LoadedRule, load_rules

DETECTIONS = Path(__file__).resolve().parents[3] / "detections"
TACTICS = {
    "reconnaissance", "resource_development", "initial_access", "execution", "persistence",
    "privilege_escalation", "defense_evasion", "credential_access", "discovery",
    "lateral_movement", "collection", "command_and_control", "exfiltration", "impact",
}  # fmt: skip
PACK = load_rules([DETECTIONS])
OUTPUT = PACK.output_rules


def _ids(rules: list[LoadedRule]) -> list[str]:
    return [rule.path.name + ": " + rule.rule.title for rule in rules]


def test_the_pack_loads_and_compiles_without_problems() -> None:
    assert PACK.problems == []
    compiled, problems = compile_pack(PACK)
    assert problems == []
    assert len(compiled) == len(OUTPUT)


def test_at_least_35_rules_covering_every_builtin_source() -> None:
    assert len(OUTPUT) >= 35
    covered = {source for rule in OUTPUT for source in rule.sources}
    builtin = {s for sources in Taxonomy.installed().sources.values() for s in sources}
    assert builtin <= covered


@pytest.mark.parametrize("rule", OUTPUT, ids=_ids(OUTPUT))
def test_rule_metadata(rule: LoadedRule) -> None:
    sigma = rule.rule
    assert sigma.id is not None and uuid.UUID(str(sigma.id))
    assert sigma.description and len(sigma.description.split()) >= 8
    assert sigma.falsepositives, "falsepositives"
    assert sigma.level is not None and rule.level in {"low", "medium", "high", "critical"}
    assert sigma.author and sigma.date
    if not isinstance(sigma, SigmaCorrelationRule) and rule.level in ("high", "critical"):
        assert sigma.tags, "a high or critical rule names its ATT&CK technique"


@pytest.mark.parametrize("rule", PACK.rules, ids=_ids(PACK.rules))
def test_attack_tags_are_well_formed(rule: LoadedRule) -> None:
    for tag in rule.tags:
        namespace, _, name = tag.partition(".")
        if namespace != "attack":
            continue
        if name in TACTICS:
            continue
        base, _, sub = name.partition(".")
        assert base[:1] == "t" and base[1:].isdigit() and len(base) == 5, tag
        assert sub == "" or (sub.isdigit() and len(sub) == 3), tag


def test_ids_and_titles_are_unique() -> None:
    ids = Counter(str(rule.rule.id) for rule in PACK.rules)
    titles = Counter(rule.rule.title for rule in PACK.rules)
    assert [i for i, n in ids.items() if n > 1] == []
    assert [t for t, n in titles.items() if n > 1] == []
