"""The compiled pack kept between scans (`sentinel.scan.packcache`): a hit gives exactly
what a compile gives, without pySigma; any change to what the compile reads is a miss;
a damaged or foreign file is a silent miss."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.detect.compiler import CachedRule, CompiledRule
from sentinel.detect.rules import LoadedRule
from sentinel.scan import packcache
from sentinel.scan.runner import compile_rules
from sentinel.workspace import Workspace

RULE = """\
title: Prompt mentions Project Falcon
id: 7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70
status: experimental
logsource: {product: ai_gateway}
detection:
  sel: {prompt_text|contains: falcon}
  condition: sel
level: medium
tags: [attack.exfiltration]
---
title: Falcon burst
id: 7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c71
status: test
level: high
correlation:
  type: event_count
  rules: [7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70]
  group-by: [actor_key]
  timespan: 1h
  condition: {gte: 5}
"""
BROKEN = """\
title: Unknown field
id: 7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c72
logsource: {product: ai_gateway}
detection:
  sel: {no_such_column: x}
  condition: sel
"""
FILTER = """\
title: Not the lab key
filter:
  rules: [7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70]
  selection: {actor_key: lab-key}
  condition: not selection
logsource: {product: ai_gateway}
"""


def _workspace(tmp_path: Path, bundled: bool) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    if not bundled:  # the workspace's rules alone: quicker to compile
        ws = _reopen(ws, "[detect]\nbundled = false\n")
    (ws.root / "detections").mkdir()
    (ws.root / "detections" / "falcon.yml").write_text(RULE)
    (ws.root / "detections" / "broken.yml").write_text(BROKEN)
    return ws


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return _workspace(tmp_path, bundled=False)


@pytest.fixture()
def full_ws(tmp_path: Path) -> Workspace:
    return _workspace(tmp_path, bundled=True)


def _reopen(ws: Workspace, toml: str = "") -> Workspace:
    """The workspace with `toml` added to its config; keys of an existing table join it."""
    text = ws.config_path.read_text()
    for table in ("[detect]\n",):
        if toml.startswith(table) and f"\n{table}" in text:
            text, toml = text.replace(f"\n{table}", f"\n{toml}", 1), ""
    ws.config_path.write_text(text + "\n" + toml)
    return Workspace.open(ws.root)


def _facts(rule: CompiledRule, ws: Workspace) -> tuple[object, ...]:
    loaded = rule.loaded
    _, _, taxonomy = compile_rules(ws, None, cache=False)
    return (rule.rule_id, rule.title, rule.level, rule.kind, loaded.status, tuple(loaded.tags),
            str(rule.path), loaded.line, loaded.is_output, tuple(loaded.sources_in(taxonomy)),
            rule.sql)


def _packs(ws: Workspace) -> list[Path]:
    return sorted(packcache.packs_dir(ws.root).glob("rules-*.json"))


def test_a_hit_gives_what_a_compile_gives_for_the_whole_pack(full_ws: Workspace) -> None:
    ws = full_ws
    fresh, fresh_problems, _ = compile_rules(ws, None, cache=False)
    assert _packs(ws) == []  # cache=False neither reads nor writes
    first, first_problems, _ = compile_rules(ws, None)  # a miss: compiles and keeps it
    again, problems, _ = compile_rules(ws, None)  # a hit
    assert all(isinstance(r.loaded, LoadedRule) for r in first)
    assert all(isinstance(r.loaded, CachedRule) for r in again)
    assert len(fresh) > 40  # the bundled pack and the workspace's rules
    assert [_facts(r, ws) for r in again] == [_facts(r, ws) for r in fresh]
    assert [str(p) for p in problems] == [str(p) for p in fresh_problems]
    assert any("no_such_column" in str(p) and "broken.yml" in str(p) for p in problems)
    assert first_problems == fresh_problems
    assert len(_packs(ws)) == 1 and oct(_packs(ws)[0].stat().st_mode & 0o777) == "0o600"


def test_a_cached_correlation_compiles_its_sigma_object_when_asked(ws: Workspace) -> None:
    compile_rules(ws, None)
    rules, _, _ = compile_rules(ws, None)
    burst = next(r for r in rules if r.title == "Falcon burst")
    assert isinstance(burst.loaded, CachedRule)
    sigma = burst.loaded.rule  # what scan/correlate cuts the correlation with
    assert sigma.title == "Falcon burst" and type(sigma).__name__ == "SigmaCorrelationRule"


def test_a_hit_imports_no_pysigma(ws: Workspace) -> None:
    compile_rules(ws, None)
    code = (
        "import sys\n"
        "from sentinel.scan.runner import compile_rules\n"
        "from sentinel.workspace import Workspace\n"
        f"rules, problems, _ = compile_rules(Workspace.open({str(ws.root)!r}), None)\n"
        "print(len(rules), len(problems), type(rules[0].loaded).__name__)\n"
        "print(sorted(m for m in sys.modules if m == 'sigma' or m.startswith('sigma.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    counts, modules = result.stdout.splitlines()
    assert counts.endswith(" 1 CachedRule") and modules == "[]"


def _sql_of(ws: Workspace, title: str) -> tuple[str, str]:
    rules, _, _ = compile_rules(ws, None)
    rule = next(r for r in rules if r.title == title)
    return type(rule.loaded).__name__, rule.sql


def test_an_edited_rule_file_is_compiled_again(ws: Workspace) -> None:
    compile_rules(ws, None)
    path = ws.root / "detections" / "falcon.yml"
    path.write_text(RULE.replace("falcon}", "osprey}", 1))
    kind, sql = _sql_of(ws, "Falcon burst")  # its search is the edited rule's condition
    assert kind == "LoadedRule" and "osprey" in sql and "falcon" not in sql
    assert _sql_of(ws, "Falcon burst") == ("CachedRule", sql)


def test_a_new_filter_is_compiled_in(ws: Workspace) -> None:
    compile_rules(ws, None)
    (ws.root / "tuning").mkdir()
    (ws.root / "tuning" / "lab.yml").write_text(FILTER)
    kind, sql = _sql_of(_reopen(ws, '[detect]\nfilters = ["tuning"]\n'), "Falcon burst")
    assert kind == "LoadedRule" and "lab-key" in sql


def test_changed_variables_and_sources_are_compiled_again(ws: Workspace) -> None:
    (ws.root / "detections" / "models.yml").write_text(
        RULE.split("---")[0].replace("7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c70",
                                     "7c9a3e10-4b2d-4f6a-8e1c-2d3f4a5b6c79")
        .replace("Prompt mentions Project Falcon", "Model outside the list")
        .replace("{prompt_text|contains: falcon}", "{model|expand: '%allowed_ai_models%'}")
    )
    compile_rules(ws, None)
    ws = _reopen(ws, '[detect.variables]\nallowed_ai_models = ["only-this-model"]\n')
    kind, sql = _sql_of(ws, "Model outside the list")
    assert kind == "LoadedRule" and "only-this-model" in sql
    assert _sql_of(ws, "Model outside the list")[0] == "CachedRule"
    # A configured source with the gateway product: every ai_gateway rule reads it too.
    ws = _reopen(ws, '[sources.portkey]\nmatch = "$.portkey_id"\n'
                     '[sources.portkey.fields]\nts = "$.created_at"\n')
    kind, sql = _sql_of(ws, "Falcon burst")
    assert kind == "LoadedRule" and "'portkey'" in sql


def test_another_compiler_version_is_compiled_again(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    compile_rules(ws, None)
    assert _sql_of(ws, "Falcon burst")[0] == "CachedRule"
    monkeypatch.setattr(packcache, "_VERSION", ["another sentinel or pySigma"])
    assert _sql_of(ws, "Falcon burst")[0] == "LoadedRule"


def test_the_code_version_covers_the_compiler_sources() -> None:
    names = {path.name for path in packcache._CODE}
    assert {"compiler.py", "convert.py", "backend.py", "transforms.py", "rules.py",
            "correlation.py", "schema.py", "packcache.py"} <= names
    assert any(name.startswith("pysigma-") for name in packcache._pysigma_dists())


def test_the_code_version_changes_with_a_source_files_content_name_or_more(
    tmp_path: Path,
) -> None:
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text("x = 1\n")
    two.write_text("x = 1\n")
    first = packcache.code_version([one])
    assert packcache.code_version([one]) == first
    assert packcache.code_version([two]) != first  # another file, the same content
    assert packcache.code_version([one], "pysigma-1.0") != first
    one.write_text("x = 2\n")
    assert packcache.code_version([one]) != first


def _damage(path: Path, how: str) -> None:
    text = path.read_bytes()
    header, body = text.split(b"\n", 1)
    if how == "truncated":
        path.write_bytes(text[: len(text) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "binary":
        path.write_bytes(os.urandom(4096))
    elif how == "body edited":  # valid JSON, but not the body the header's digest is of
        path.write_bytes(header + b"\n" + body.replace(b"falcon", b"hawk"))
    elif how == "foreign":  # well-formed, with a matching digest, but not a pack
        meta = json.loads(header)
        other = json.dumps({"rules": "yes", "problems": 3}).encode()
        import hashlib

        meta["sha256"] = hashlib.sha256(other).hexdigest()
        path.write_bytes(json.dumps(meta).encode() + b"\n" + other)
    elif how == "deep":
        path.write_bytes(b"[" * 200_000 + b"\n" + b"]" * 200_000)
    elif how == "directory":
        path.unlink()
        path.mkdir()


@pytest.mark.parametrize(
    "how", ["truncated", "empty", "binary", "body edited", "foreign", "deep", "directory"]
)
def test_a_damaged_cache_is_compiled_again_silently(ws: Workspace, how: str) -> None:
    ws = _reopen(ws, '[detect]\nrules = ["more"]\n')
    (ws.root / "more").mkdir()
    (ws.root / "more" / "copy.yml").write_text(RULE.replace("6c7", "6d7"))
    fresh, _, _ = compile_rules(ws, None, cache=False)
    compile_rules(ws, None)
    [path] = _packs(ws)
    _damage(path, how)
    rules, problems, _ = compile_rules(ws, None)
    assert [_facts(r, ws) for r in rules] == [_facts(r, ws) for r in fresh]
    assert all(isinstance(r.loaded, LoadedRule) for r in rules)
    if how != "directory":  # rewritten whole: the next scan hits again
        assert all(isinstance(r.loaded, CachedRule) for r in compile_rules(ws, None)[0])


def test_an_unwritable_state_folder_costs_only_a_compile(ws: Workspace) -> None:
    packcache.packs_dir(ws.root).parent.mkdir(parents=True, exist_ok=True)
    packcache.packs_dir(ws.root).write_text("not a folder")
    rules, _, _ = compile_rules(ws, None)
    assert all(isinstance(r.loaded, LoadedRule) for r in rules)


def test_each_set_of_rule_inputs_keeps_its_own_pack_and_few_are_kept(ws: Workspace) -> None:
    compile_rules(ws, None)
    only = ws.root / "detections" / "falcon.yml"
    compile_rules(ws, [only])
    assert len(_packs(ws)) == 2
    assert isinstance(compile_rules(ws, None)[0][0].loaded, CachedRule)
    assert [r.title for r in compile_rules(ws, [only])[0]] == ["Falcon burst"]
    for n in range(packcache.KEEP + 3):
        copy = ws.root / f"copy{n}.yml"
        copy.write_text(RULE)
        compile_rules(ws, [copy])
    assert len(_packs(ws)) == packcache.KEEP


BASELINE = """\
id: falcon-key-new-ip
title: Falcon key from a new IP
level: medium
tags: [attack.initial_access]
kind: first_seen
logsource: {product: ai_gateway}
where: {kind: inference, model: [gpt-4o, o3]}
by: [actor_key]
value: client_ip
learning: 10d
min_history: 3d
"""


def _baselines(ws: Workspace, cache: bool = True) -> tuple[list[object], list[str], list[str]]:
    from sentinel.scan.baselines import baseline_hash, compile_baselines

    _, _, taxonomy = compile_rules(ws, None, cache=False)
    compiled, problems = compile_baselines(ws, taxonomy, cache=cache)
    facts = [
        (b.rule_id, b.title, b.level, b.loaded.kind, tuple(b.loaded.spec.by),
         tuple(b.loaded.spec.tags), b.loaded.spec.learning, b.loaded.spec.min_history_window,
         b.template, b.params, b.sources, b.aggregate, b.combine, b.decide, b.lookback,
         baseline_hash(b))
        for b in compiled
    ]
    return facts, [str(p) for p in problems], [type(b.loaded).__name__ for b in compiled]


def test_kept_baselines_give_what_a_compile_gives(full_ws: Workspace) -> None:
    ws = full_ws
    (ws.root / "baselines").mkdir()
    (ws.root / "baselines" / "falcon.yml").write_text(BASELINE)
    (ws.root / "baselines" / "bad.yml").write_text(BASELINE.replace("first_seen", "first_sen"))
    fresh, fresh_problems, kinds = _baselines(ws, cache=False)
    assert set(kinds) == {"LoadedBaseline"} and len(fresh) >= 6
    assert any("did you mean 'first_seen'" in p and "bad.yml:5:" in p for p in fresh_problems)
    _baselines(ws)  # kept
    kept, problems, kinds = _baselines(ws)
    assert set(kinds) == {"CachedBaseline"}
    assert kept == fresh and problems == fresh_problems

    (ws.root / "baselines" / "falcon.yml").write_text(BASELINE.replace("10d", "12d"))
    edited, _, kinds = _baselines(ws)
    assert set(kinds) == {"LoadedBaseline"} and edited != fresh
    ws = _reopen(ws, '[detect]\ndisabled = ["falcon-key-new-ip"]\n')
    assert "falcon-key-new-ip" not in [f[0] for f in _baselines(ws)[0]]


def test_a_scan_from_kept_compiles_imports_no_pydantic_nor_yaml(full_ws: Workspace) -> None:
    from sentinel.scan.baselines import compile_baselines

    _, _, taxonomy = compile_rules(full_ws, None)
    compile_baselines(full_ws, taxonomy)
    code = (
        "import sys\n"
        "from sentinel.scan.runner import compile_rules\n"
        "from sentinel.scan.baselines import compile_baselines\n"
        "from sentinel.workspace import Workspace\n"
        f"ws = Workspace.open({str(full_ws.root)!r})\n"
        "rules, _, taxonomy = compile_rules(ws, None)\n"
        "bases, _ = compile_baselines(ws, taxonomy)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sigma', 'pydantic', 'yaml'}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_damaged_baselines_file_is_compiled_again(ws: Workspace) -> None:
    (ws.root / "baselines").mkdir()
    (ws.root / "baselines" / "falcon.yml").write_text(BASELINE)
    fresh = _baselines(ws, cache=False)[0]
    _baselines(ws)
    [path] = packcache.packs_dir(ws.root).glob("baselines-*.json")
    _damage(path, "body edited")
    again, _, kinds = _baselines(ws)
    assert again == fresh and kinds == ["LoadedBaseline"]


def test_a_parameter_json_cannot_carry_exactly_is_never_kept() -> None:
    from datetime import date, timedelta

    for value in (timedelta(days=14, microseconds=5), 0.1, 3, True, None, "x", ["a", 2]):
        decoded = packcache._decode(json.loads(json.dumps(packcache._encode(value))))
        assert decoded == value and type(decoded) is type(value)
    with pytest.raises(TypeError):
        packcache._encode(date(2026, 1, 1))


def test_a_compile_that_cannot_be_kept_is_returned_and_not_written(tmp_path: Path) -> None:
    def refuse(item: int) -> dict[str, object]:
        raise TypeError("not kept")

    inputs = packcache.PackInputs([], packcache.Taxonomy(), {})
    path = tmp_path / "baselines-x.json"
    kept = packcache._kept(path, inputs.key(), lambda: ([1, 2], []), refuse, int)
    assert kept == ([1, 2], []) and not path.exists()


def test_kept_correlations_carry_the_parts_a_fresh_cut_gives(full_ws: Workspace) -> None:
    from sentinel.scan import correlate

    ws = full_ws
    fresh, _, _ = compile_rules(ws, None, cache=False)
    compile_rules(ws, None)
    again, _, _ = compile_rules(ws, None)
    kept = {r.rule_id: r for r in again if r.kind == "correlation"}
    assert len(kept) >= 8
    for rule in fresh:
        if rule.kind != "correlation":
            continue
        cached = kept[rule.rule_id].loaded
        assert isinstance(cached, CachedRule) and cached.cut is not None, rule.title
        assert correlate.cut(kept[rule.rule_id]) == correlate.cut(rule), rule.title


def test_a_damaged_kept_cut_is_a_miss(ws: Workspace) -> None:
    compile_rules(ws, None)
    path = _packs(ws)[0]
    header, body = path.read_text().split("\n", 1)
    data = json.loads(body)
    burst = next(r for r in data["items"] if r["kind"] == "correlation")
    burst["cut"]["seconds"] = "3600"  # the wrong type, and the file's digest made to fit
    body = json.dumps(data)
    meta = json.loads(header)
    meta["sha256"] = hashlib.sha256(body.encode()).hexdigest()
    path.write_text(json.dumps(meta) + "\n" + body)
    rules, _, _ = compile_rules(ws, None)
    assert all(isinstance(r.loaded, LoadedRule) for r in rules)  # compiled again


def test_a_scan_of_new_events_from_a_kept_pack_cuts_no_correlation_again(
    tmp_path: Path,
) -> None:
    """The bundled correlations read the new LiteLLM events from their kept parts: the
    second scan runs them (it imports scan.correlate) without pySigma."""
    from tests.conftest import cli_loading, litellm_line, write_lines

    ws = Workspace.init(tmp_path / "ws")
    found = []
    for part in range(2):  # the first scan compiles and keeps the pack; the second reuses it
        logs = write_lines(tmp_path / f"litellm-{part}.jsonl",
                           [litellm_line(i) for i in range(part * 40, part * 40 + 40)])
        ingest = subprocess.run(
            [sys.executable, "-m", "sentinel.cli.main", "-q", "-w", str(ws.root), "ingest",
             str(logs)], capture_output=True, text=True)
        assert ingest.returncode == 0, ingest.stderr
        result, loaded = cli_loading(
            ["-w", str(ws.root), "scan", "--format", "jsonl", "--stats"],
            ("sigma", "sentinel.scan.correlate"))
        assert result.returncode in (0, 1), result.stderr
        assert "from the new files and its state" in result.stderr or part == 0
        found.append([name for name in loaded if name in ("sigma", "sentinel.scan.correlate")])
    assert found[0] == ["sentinel.scan.correlate", "sigma"]
    assert found[1] == ["sentinel.scan.correlate"]
