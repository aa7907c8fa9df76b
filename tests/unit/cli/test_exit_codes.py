"""Exit codes come from the error type, in one place; no traceback for an expected error."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sentinel.cli.exits import exit_code
from sentinel.cli.main import SentinelGroup
from sentinel.exceptions import (
    ConfigError,
    Location,
    QueryError,
    SentinelError,
    SourceError,
    StoreError,
    UsageError,
    WorkspaceError,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("x"), 2),
        (WorkspaceError("x"), 2),
        (UsageError("x"), 2),
        (click.UsageError("x"), 2),
        (StoreError("x"), 3),
        (QueryError("x"), 3),
        (SourceError("x"), 3),
        (SentinelError("x"), 3),
        (RuntimeError("x"), 3),
        (KeyboardInterrupt(), 130),
    ],
)
def test_exit_code_by_error_type(error: BaseException, code: int) -> None:
    assert exit_code(error) == code


def group_raising(error: BaseException) -> click.Group:
    @click.group(cls=SentinelGroup)
    def top() -> None:
        pass

    @top.command()
    def boom() -> None:
        raise error

    return top


def run(error: BaseException, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(group_raising(error), ["boom"], env=env)
    return result.exit_code, result.output


def test_an_expected_error_is_one_line_with_its_location() -> None:
    error = ConfigError("unknown key 'scna'", location=Location(Path("/ws/sentinel.toml"), 4, 1))
    code, output = run(error)
    assert code == 2
    assert output == "Configuration error: /ws/sentinel.toml:4:1: unknown key 'scna'\n"


def test_an_unexpected_exception_is_one_line_and_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTINEL_DEBUG", raising=False)
    code, output = run(ZeroDivisionError("division by zero"))
    assert code == 3
    assert "Internal error: ZeroDivisionError: division by zero" in output
    assert "SENTINEL_DEBUG=1" in output and "Traceback" not in output


def test_the_traceback_is_shown_on_request() -> None:
    code, output = run(ZeroDivisionError("division by zero"), env={"SENTINEL_DEBUG": "1"})
    assert code == 3 and "Traceback" in output


def test_click_usage_errors_keep_their_code() -> None:
    code, output = run(click.UsageError("--output needs a QUERY"))
    assert code == 2 and "--output needs a QUERY" in output and "Internal error" not in output


def test_location_renders_what_is_known() -> None:
    assert str(Location("a.yml")) == "a.yml"
    assert str(Location("a.yml", 3)) == "a.yml:3"
    assert str(Location("a.yml", 3, 7)) == "a.yml:3:7"
    error = SentinelError("bad", location=Location("a.yml", 3))
    assert str(error) == "a.yml:3: bad" == error.message and error.detail == "bad"
    assert error.location is not None and error.location.line == 3


def test_a_config_error_carries_its_location_as_data(tmp_path: Path) -> None:
    from sentinel.config import load_config

    path = tmp_path / "sentinel.toml"
    path.write_text("[ingest]\nbatch_bytes = 1\n\n[pii]\n  scna = true\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.location == Location(path, 5, 3)
    assert caught.value.detail.startswith("unknown key 'scna' in [pii]")
    assert f"{path}:5:3: unknown key" in caught.value.message
    path.write_text("[ingest\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.location is not None and caught.value.location.line == 1


def test_a_rule_error_carries_its_location_as_data(tmp_path: Path) -> None:
    from sentinel.detect.compiler import LocatedRuleError
    from sentinel.detect.rules import RuleProblem

    error = LocatedRuleError(RuleProblem(tmp_path / "r.yml", 7, "unknown field 'usr'"))
    assert error.location == Location(tmp_path / "r.yml", 7)
    assert str(error) == f"{tmp_path / 'r.yml'}:7: unknown field 'usr'"
