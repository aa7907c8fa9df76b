"""The import-linter contracts in pyproject.toml hold (the layers in README, Development).

`make test` runs `lint-imports` too; this test makes the contracts part of every
`pytest` run, so a change that breaks a layer fails before it lands.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

importlinter_cli = pytest.importorskip("importlinter.cli")

REPO = Path(__file__).resolve().parents[2]


def test_the_layer_contracts_are_kept(capsys: pytest.CaptureFixture[str]) -> None:
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        code = importlinter_cli.lint_imports(config_filename=str(REPO / "pyproject.toml"))
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 broken" in out
