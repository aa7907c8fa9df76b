"""What a rule pack is read from, and the located problem its loaders report.

Kept apart from the loaders (`sentinel.detect.rules`, `sentinel.detect.baseline`) because
it imports neither pySigma nor pydantic: a scan that reuses a compiled pack
(`sentinel.scan.packcache`) lists and reports with these, and never pays for the
libraries that parse and compile rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sentinel.exceptions import Location, RuleError

RULE_SUFFIXES = (".yml", ".yaml")
BASELINE_SUFFIXES = (".yml", ".yaml")


@dataclass(frozen=True)
class RuleProblem:
    """Something wrong with one rule or file, at `path:line`."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class BaselineProblem(RuleProblem):
    """A problem in a baseline file, at `path:line:column`."""

    column: int | None = None

    def __str__(self) -> str:
        where = str(Location(self.path, self.line, self.column))
        return f"{where}: {self.message}"


class LocatedRuleError(RuleError):
    """A rule error with its location (`problem`), so bulk operations can collect it."""

    def __init__(self, problem: RuleProblem) -> None:
        super().__init__(problem.message, location=Location(problem.path, problem.line))
        self.problem = problem


def files_under(inputs: Iterable[str | Path], suffixes: Iterable[str]) -> list[Path]:
    """Files with one of `suffixes` under the given directories (sorted), and the given
    files themselves, in input order; a file reached twice is listed once."""
    wanted = set(suffixes)
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(p for p in sorted(path.rglob("*")) if p.suffix in wanted)
        else:
            paths.append(path)
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def rule_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Rule files under the given files and directories, sorted for stable output."""
    return files_under(inputs, RULE_SUFFIXES)
