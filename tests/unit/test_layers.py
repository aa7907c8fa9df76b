"""The import-linter contracts in pyproject.toml hold (the layers in README, Development).

`make test` runs `lint-imports` too; this test makes the contracts part of every
`pytest` run, so a change that breaks a layer fails before it lands. It runs in a
subprocess: import-linter configures logging for its process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

REPO = Path(__file__).resolve().parents[2]


def test_the_layer_contracts_are_kept() -> None:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports())"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
