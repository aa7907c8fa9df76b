"""Playbooks: the shipped ones load; bad ones are rejected with file, line and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.content import playbooks_dir, rules_dir
from sentinel.exceptions import PlaybookError
from sentinel.respond import params
from sentinel.respond.playbook import choose, load_file, load_playbooks, parse
from sentinel.respond.steps import STEP_KINDS, QueryStep

DATA = Path(__file__).resolve().parents[2] / "data" / "respond"


def problem(name: str) -> str:
    with pytest.raises(PlaybookError) as info:
        load_file(DATA / name)
    return info.value.message


def test_unknown_step_kind() -> None:
    assert problem("unknown_step_kind.yml") == (
        f"{DATA / 'unknown_step_kind.yml'}:9: unknown step kind 'pager'; one of "
        "manual, approval, query, notify, command"
    )


def test_sql_parameter_not_bound_from_the_incident() -> None:
    message = problem("unbound_sql_parameter.yml")
    assert message.startswith(
        f"{DATA / 'unbound_sql_parameter.yml'}:7: :modle is not an incident field "
        "(did you mean 'model'?)"
    )


def test_yaml_bomb_is_refused_before_it_expands() -> None:
    assert problem("yaml_bomb.yml") == (
        f"{DATA / 'yaml_bomb.yml'}:3: YAML anchors and aliases are not allowed in playbooks "
        "(they can expand exponentially: a 'billion laughs' bomb)"
    )


def test_deadline_with_a_bad_unit() -> None:
    assert problem("deadline_bad_unit.yml") == (
        f"{DATA / 'deadline_bad_unit.yml'}:5: deadlines.0.due: '72y from detection': "
        "unknown unit 'y'; use one of s, m, h, d, w"
    )


def test_misspelt_keys_get_a_did_you_mean_each() -> None:
    path = DATA / "misspelt_key.yml"
    assert problem("misspelt_key.yml").splitlines() == [
        f"{path}:5: unknown key 'min_severty' (did you mean 'min_severity'?)",
        f"{path}:11: unknown key 'checklst' (did you mean 'checklist'?)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ntitle: t\nsteps: []\n", "a playbook needs at least one step"),
        ("- a\n- b\n", "a playbook is a mapping"),
        ("name: x\ntitle: t\nsteps:\n  - id: a\n    kind: manual\n    title: A\n"
         "    instructions: i\n    after: [b]\n", "'after: b' is not an earlier step"),
        ("name: x\ntitle: t\nsteps:\n  - {id: a, kind: query, title: A, sql: 'SELECT $1'}\n",
         "parameter '$1': write :field_name instead"),
        ("name: x\ntitle: t\nsteps:\n  - {id: a, kind: command, title: A, argv: ['x', '{ip}']}\n",
         "{ip} is not an incident field"),
        ("name: x\nname: y\n", "duplicate key 'name'"),
        ("name: x\ntitle: t\nsteps:\n  - {id: a, kind: manual, title: A}\n",
         "steps.0: required key 'instructions' is missing"),
        ("name: x\ntitle: [unclosed\n", "invalid YAML"),
    ],
)
def test_other_bad_playbooks(text: str, expected: str, tmp_path: Path) -> None:
    with pytest.raises(PlaybookError, match=None) as info:
        parse(text, tmp_path / "p.yml")
    assert expected in info.value.message
    assert info.value.message.startswith(f"{tmp_path / 'p.yml'}:")


def test_the_shipped_playbooks_load_and_cover_the_five_plans() -> None:
    books = load_playbooks()
    assert set(books) == {
        "customer-pii-to-vendor", "secret-in-prompt", "suspicious-access", "logging-disabled",
        "bulk-customer-data",
    }
    for book in books.values():
        assert Path(book.path).parent == playbooks_dir()
        assert book.description and all(s.title for s in book.steps)
    kinds = {s.kind for b in books.values() for s in b.steps}
    assert kinds == set(STEP_KINDS)


def test_a_bulk_load_reports_every_bad_file(tmp_path: Path, workspace) -> None:  # type: ignore[no-untyped-def]
    books_dir = workspace.root / "books"
    books_dir.mkdir()
    for name in ("unknown_step_kind.yml", "deadline_bad_unit.yml"):
        (books_dir / name).write_text((DATA / name).read_text())
    workspace.config_path.write_text('[incidents]\nplaybooks = "books"\n')
    from sentinel.workspace import Workspace

    with pytest.raises(PlaybookError) as info:
        load_playbooks(Workspace.open(workspace.root))
    assert len(info.value.message.splitlines()) == 2
    assert "2 playbook problem(s)" == info.value.title


@pytest.mark.parametrize(
    ("title", "tags", "severity", "expected"),
    [
        ("Payment card number sent to an AI model", ["attack.t1567"], "high",
         "customer-pii-to-vendor"),
        ("Cloud credentials or private key sent", ["attack.t1552.001"], "critical",
         "secret-in-prompt"),
        ("AWS console login succeeded after failures", ["attack.t1110.001"], "high",
         "suspicious-access"),
        ("Bedrock invocation logging or guardrail deleted", ["attack.t1562.008"], "high",
         "logging-disabled"),
        ("Full customer record in one prompt", ["attack.t1567"], "high", "bulk-customer-data"),
        ("Payment card number sent to an AI model", ["attack.t1567"], "low", None),
        ("Something else", ["attack.t9999"], "critical", None),
    ],
)
def test_choose_the_most_specific_playbook(
    title: str, tags: list[str], severity: str, expected: str | None
) -> None:
    chosen = choose(load_playbooks(), "some-rule-id", title, tags, severity)
    assert (chosen.name if chosen else None) == expected


@pytest.mark.parametrize(
    ("sql", "named", "raw"),
    [
        ("SELECT * FROM events WHERE actor_key = :actor_key", ["actor_key"], []),
        ("SELECT ':not_a_param', \":nor_this\" -- :nor\n/* :this */", [], []),
        ("SELECT ts::DATE FROM events WHERE ts >= :first_seen::TIMESTAMP", ["first_seen"], []),
        ("SELECT $1, ?, $name", [], ["$1", "?", "$name"]),
        ("SELECT x FROM t WHERE a=:a AND b IN (SELECT unnest(:b))", ["a", "b"], []),
    ],
)
def test_sql_parameters_are_found_outside_text(sql: str, named: list[str], raw: list[str]) -> None:
    found = list(params.sql_parameters(sql))
    assert [n for k, n in found if k == "named"] == named
    assert [n for k, n in found if k == "raw"] == raw


def test_to_duckdb_rewrites_only_parameters() -> None:
    sql = "SELECT ':x', a::INT FROM t WHERE b = :actor_key"
    assert params.to_duckdb(sql) == "SELECT ':x', a::INT FROM t WHERE b = $actor_key"


def test_templates_render_fields_only() -> None:
    assert params.template_fields("{a} {{b}} {c}") == ["a", "c"]
    assert params.render("{a} {{b}} {c.__class__}", {"a": 1}) == "1 {b} "
    assert QueryStep.model_fields["max_rows"].default == 200


def test_every_high_or_critical_rule_of_the_pack_gets_a_playbook() -> None:
    import yaml

    books = load_playbooks()
    missing = []
    for path in sorted(rules_dir().rglob("*.yml")):
        for rule in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(rule, dict) or rule.get("level") not in ("high", "critical"):
                continue
            chosen = choose(books, str(rule.get("id")), str(rule.get("title")),
                            list(rule.get("tags") or []), str(rule["level"]))
            if chosen is None:
                missing.append(f"{path.name}: {rule.get('title')}")
    assert not missing


def test_every_baseline_at_medium_or_above_gets_a_playbook() -> None:
    from sentinel.content import baselines_dir
    from sentinel.detect.baseline import load_baselines

    books = load_playbooks()
    pack = load_baselines([baselines_dir()])
    assert pack.problems == [] and pack.baselines
    missing = [
        item.spec.id for item in pack.baselines
        if item.level in ("medium", "high", "critical")
        and choose(books, item.rule_id, item.title, item.tags, item.level) is None
    ]
    assert not missing
