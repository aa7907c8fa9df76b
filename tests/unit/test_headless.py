"""The headless core never imports Textual: `sentinel scan` from cron must not pay for
the TUI (STYLE.md rule 1)."""

from __future__ import annotations

import subprocess
import sys

HEADLESS = [
    "sentinel.cli.main",
    "sentinel.cli.commands",
    "sentinel.ingest.engine",
    "sentinel.lake.query",
    "sentinel.lake.session",
    "sentinel.pii.scanner",
    "sentinel.detect.rules",
]


def test_core_modules_do_not_import_textual() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {HEADLESS!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
