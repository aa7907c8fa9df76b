"""The bundled rule pack and playbooks are found through `sentinel.content`, and the wheel's
package list covers the whole tree (pyproject lists packages instead of finding them)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sentinel.content import baselines_dir, playbooks_dir, rules_dir

REPO = Path(__file__).resolve().parents[3]


def test_rules_dir_holds_the_pack():
    rules = sorted(p.relative_to(rules_dir()) for p in rules_dir().rglob("*.yml"))
    assert len(rules) > 20
    assert Path("openai/api_key_unrestricted.yml") in rules
    # Every rule ships with its examples (`sentinel rules test` needs them).
    for rule in rules:
        examples = (rules_dir() / rule).with_name(rule.name.replace(".yml", ".tests.jsonl"))
        assert examples.is_file(), examples


def test_playbooks_dir_holds_the_playbooks():
    names = {p.name for p in playbooks_dir().glob("*.yml")}
    assert "secret-in-prompt.yml" in names and len(names) >= 5


def test_baselines_dir_holds_the_baselines_beside_the_pack() -> None:
    names = {p.name for p in baselines_dir().glob("*.yml")}
    assert "gateway_key_new_client_ip.yml" in names and len(names) >= 4
    # Beside, not inside, detections/: `sigma check detections/` never reads them.
    assert not baselines_dir().is_relative_to(rules_dir())


def pyproject() -> dict[str, Any]:
    with (REPO / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["tool"]["setuptools"]


def test_every_package_of_the_tree_is_listed_for_the_wheel():
    listed = set(pyproject()["packages"])
    found = {
        ".".join(path.parent.relative_to(REPO).parts)
        for top in ("sentinel", "sigma")
        for path in (REPO / top).rglob("*.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_every_rule_folder_is_mapped_into_the_wheel():
    config = pyproject()
    listed = set(config["packages"])
    assert config["package-dir"]["sentinel.content.detections"] == "detections"
    assert config["package-dir"]["sentinel.content.playbooks"] == "playbooks"
    assert config["package-dir"]["sentinel.content.baselines"] == "baselines"
    assert "sentinel.content.baselines" in listed
    for folder in (REPO / "detections").iterdir():
        if folder.is_dir():
            package = f"sentinel.content.detections.{folder.name}"
            assert package in listed, f"add {package} to pyproject.toml (packages, package-data)"
            assert "*.jsonl" in config["package-data"][package]
