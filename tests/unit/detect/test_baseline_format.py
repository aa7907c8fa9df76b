"""The baseline format: the shipped baselines load, and every mistake in a baseline file
is reported at path:line:column with what is wrong (and "did you mean" where it can)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.content import baselines_dir
from sentinel.detect.baseline import (
    BASELINE_KINDS,
    BaselineError,
    BaselineProblem,
    load_baselines,
    load_file,
    parse,
)
from sentinel.detect.baseline_sql import compile_baseline
from sentinel.detect.pipeline import Taxonomy

DATA = Path(__file__).resolve().parents[2] / "data" / "detect"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("baseline_bad_kind.yml",
         ["3:7: unknown kind 'first-seen' (did you mean 'first_seen'?); one of first_seen, "
          "volume, hours, silence"]),
        ("baseline_unknown_key.yml", ["7:1: unknown key 'learnig' (did you mean 'learning'?)"]),
        ("baseline_missing_by.yml", ["1:1: baseline: required key 'by' is missing"]),
        ("baseline_wrong_type.yml",
         ["6:12: min_hours: Input should be a valid integer, unable to parse string as an "
          "integer",
          "9:10: threshold.ratio: Input should be a valid number, unable to parse string as "
          "a number"]),
        ("baseline_unknown_column.yml",
         ["5:6: unknown column 'actor_kye' (did you mean 'actor_key'?); baselines name event "
          "schema columns",
          "8:3: unknown column 'modle' (did you mean 'model'?); baselines name event schema "
          "columns",
          "9:11: where.vendor: one of not, present expected, got nto (did you mean 'not'?)",
          "11:14: min_history (7d) must be shorter than the learning window (7d) it is "
          "measured in"]),
        ("baseline_yaml_bomb.yml",
         ["2:8: YAML anchors and aliases are not allowed in baselines (they can expand "
          "exponentially: a 'billion laughs' bomb)"]),
    ],
)
def test_bad_baselines_are_located(name: str, expected: list[str]) -> None:
    pack = load_baselines([DATA / name])
    assert pack.baselines == []
    assert [str(p) for p in pack.problems] == [f"{DATA / name}:{e}" for e in expected]
    assert all(isinstance(p, BaselineProblem) and p.line and p.column for p in pack.problems)


def test_one_bad_file_never_hides_the_others(tmp_path: Path) -> None:
    good = (baselines_dir() / "gateway_key_new_client_ip.yml").read_text(encoding="utf-8")
    (tmp_path / "a.yml").write_text(good)
    (tmp_path / "b.yml").write_text(good)  # the same id twice
    (tmp_path / "c.yml").write_text("id: [unclosed\n")
    pack = load_baselines([tmp_path])
    assert [b.path.name for b in pack.baselines] == ["a.yml"]
    messages = [str(p) for p in pack.problems]
    assert messages[0].startswith(f"{tmp_path / 'b.yml'}:1:5: baseline id ")
    assert messages[1].startswith(f"{tmp_path / 'c.yml'}:2:1: invalid YAML")


def test_a_single_load_raises_with_a_structured_location(tmp_path: Path) -> None:
    path = DATA / "baseline_unknown_key.yml"
    with pytest.raises(BaselineError) as info:
        load_file(path)
    location = info.value.location
    assert location is not None and (location.line, location.column) == (7, 1)
    assert info.value.detail == "unknown key 'learnig' (did you mean 'learning'?)"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{model: [gpt-4o, [nested]]}", "where.model: a list holds one or more plain values"),
        ("{model: {present: maybe}}", "where.model.present must be true or false"),
        ("{model: {not: x, present: true}}", "where.model: one of not, present expected"),
        ("{raw: x}", "unknown column 'raw'"),
    ],
)
def test_where_conditions_are_checked(where: str, message: str, tmp_path: Path) -> None:
    text = (f"id: w\ntitle: t\nkind: first_seen\nlogsource: {{product: ai_gateway}}\n"
            f"by: [actor_key]\nwhere: {where}\n")
    loaded, problems = parse(text, tmp_path / "w.yml")
    assert loaded is None
    assert any(message in str(p) and str(p).startswith(f"{tmp_path / 'w.yml'}:6:")
               for p in problems), problems


def test_a_principal_must_be_a_text_column(tmp_path: Path) -> None:
    text = ("id: w\ntitle: t\nkind: hours\nlogsource: {product: ai_gateway}\n"
            "by: [actor_key, prompt_tokens]\n")
    _, problems = parse(text, tmp_path / "w.yml")
    assert [p.message for p in problems] == [
        "column 'prompt_tokens' cannot be a principal: use a text column"
    ]
    assert (problems[0].line, problems[0].column) == (5, 17)
    _, problems = parse(text.replace("prompt_tokens", "prompt_text"), tmp_path / "w.yml")
    assert [p.message for p in problems] == [
        "column 'prompt_text' cannot be a principal: a principal is who or where (a key, "
        "user, team, address)"
    ]


def test_the_shipped_baselines_load_compile_and_cover_every_kind() -> None:
    pack = load_baselines([baselines_dir()])
    assert pack.problems == []
    assert {b.kind for b in pack.baselines} == set(BASELINE_KINDS)
    taxonomy = Taxonomy.installed()
    for item in pack.baselines:
        spec = item.spec
        sources = taxonomy.select(spec.logsource.product, spec.logsource.service)
        assert sources, spec.id
        compiled = compile_baseline(item, tuple(sources))
        assert "{relation}" in compiled.template
        assert spec.description and len(spec.description.split()) >= 8 and spec.falsepositives
        if spec.level in ("high", "critical"):
            assert any(tag.startswith("attack.t") for tag in spec.tags), spec.id


def test_where_values_are_bound_never_formatted(tmp_path: Path) -> None:
    hostile = "x' OR 1=1; DROP TABLE events; --"
    text = ("id: w\ntitle: t\nkind: first_seen\nlogsource: {product: ai_gateway}\n"
            f'by: [actor_key]\nwhere: {{model: "{hostile}", vendor: [a, "b\'c"]}}\n')
    loaded, problems = parse(text, tmp_path / "w.yml")
    assert loaded is not None, problems
    compiled = compile_baseline(loaded, ("litellm",))
    assert hostile not in compiled.template and "b'c" not in compiled.template
    assert hostile in compiled.params.values()


@pytest.mark.parametrize(
    ("zone", "message"),
    [
        ("Europe/Berln", "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        ("Asia/Kolkata", "time zone 'Asia/Kolkata' is 5:30:00 from UTC: hours baselines need "
         "a whole-hour offset"),
    ],
)
def test_an_hours_time_zone_is_checked(zone: str, message: str, tmp_path: Path) -> None:
    text = ("id: w\ntitle: t\nkind: hours\nlogsource: {product: ai_gateway}\n"
            f"by: [actor_key]\ntimezone: {zone}\n")
    _, problems = parse(text, tmp_path / "w.yml")
    assert len(problems) == 1 and message in problems[0].message
    assert problems[0].line == 6
