"""Shared fixtures: a fresh workspace, the real CLI, and generated log lines."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.demo import generate
from sentinel.demo.manifest import DemoManifest
from sentinel.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.init(tmp_path / "ws")


def litellm_line(i: int, prompt: str = "Summarise ticket", **extra: object) -> str:
    """One StandardLoggingPayload record as a JSON line (what the proxy's callback writes)."""
    record = {
        "id": f"chatcmpl-{i:08d}",
        "call_type": "acompletion",
        "status": "success",
        "startTime": 1737710446.0 + i,
        "endTime": 1737710447.5 + i,
        "model": "gpt-4o",
        "custom_llm_provider": "openai",
        "response_cost": 0.0002,
        "prompt_tokens": 10,
        "completion_tokens": 20,
        "metadata": {"user_api_key_alias": "team-a-key", "user_api_key_user_id": f"u{i % 7}"},
        "messages": [{"role": "user", "content": f"{prompt} #{i}"}],
        "response": {"choices": [{"message": {"role": "assistant", "content": "ok"}}]},
    }
    record.update(extra)
    return json.dumps(record)


def write_lines(path: Path, lines: list[str], newline_at_end: bool = True) -> Path:
    path.write_text("\n".join(lines) + ("\n" if newline_at_end else ""), encoding="utf-8")
    return path


RunCli = Callable[..., subprocess.CompletedProcess[str]]


def cli_ok(run: RunCli, *args: str) -> str:
    """Run a command that must succeed without a traceback; its stdout."""
    result = run(*args)
    assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


DEMO_EVENTS = 1000
"""The size of the shared small demo: every plant of `make run`, less background traffic."""


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoManifest]:
    """A demo workspace written, ingested and scanned by the real CLI (`sentinel demo`), and
    the manifest of what it planted. Shared by the session: tests may read its lake, and
    may write its state.db only where they own the cases they touch."""
    ws_dir = tmp_path_factory.mktemp("demo") / "ws"
    result = subprocess.run(
        [sys.executable, "-m", "sentinel", "--quiet", "--workspace", str(ws_dir), "demo",
         "--events", str(DEMO_EVENTS)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    # The generator is deterministic: the same seed and size give the CLI's manifest.
    return ws_dir, generate(tmp_path_factory.mktemp("manifest"), seed=7, events=DEMO_EVENTS)


@pytest.fixture()
def run_cli(workspace: Workspace) -> RunCli:
    """Run the real `sentinel` CLI in a subprocess against the test workspace."""

    def run(*args: str, check: bool = False, stdin: str | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **(env or {})}
        result = subprocess.run(
            [sys.executable, "-m", "sentinel", "--workspace", str(workspace.root), *args],
            capture_output=True, text=True, input=stdin, env=full_env, timeout=300,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    return run


def cli_loading(
    args: list[str], prefixes: tuple[str, ...]
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """`sentinel *args` in a fresh interpreter, as from cron, and the modules it had loaded
    at exit that are one of `prefixes` or inside one (sorted): what a command pays for."""
    code = (
        "import atexit, sys\n"
        f"wanted = {prefixes!r}\n"
        "atexit.register(lambda: print('MODULES', sorted(m for m in sys.modules if any("
        "m == p or m.startswith(p + '.') for p in wanted)), file=sys.stderr))\n"
        "from sentinel.cli.main import main\n"
        f"sys.argv = ['sentinel', *{list(args)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    reported = [line for line in result.stderr.splitlines() if line.startswith("MODULES ")]
    assert reported, result.stderr
    return result, ast.literal_eval(reported[-1].removeprefix("MODULES "))
