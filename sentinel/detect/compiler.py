"""Compile loaded Sigma rules into DuckDB SQL, with errors located in the rule file.

`compile_rule` is the single operation (fails fast with a `RuleError` at `path:line`);
`compile_pack` is the bulk one (collects one problem per bad rule and compiles the rest).
A correlation rule compiles its referenced rules first, because their conditions are the
correlation's search phase.

Anything the backend cannot express exactly — a timestamp-part modifier, an unknown field,
a `value_sum` correlation, an unresolvable placeholder — is an error naming the rule file,
line and construct; a rule never compiles into a query that silently matches nothing.

This module imports no pySigma (the conversion is `sentinel.detect.convert`, imported
when a rule is compiled): a compiled rule is either a `LoadedRule` (parsed now) with its
SQL, or a `CachedRule` read back from a cached compile (`sentinel.scan.packcache`), and
a scan reads the same properties of both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel.detect.corrparts import CorrelationParts
from sentinel.detect.inputs import LocatedRuleError, RuleProblem
from sentinel.detect.pipeline import Taxonomy
from sentinel.exceptions import RuleError

if TYPE_CHECKING:
    from sigma.correlations import SigmaCorrelationRule
    from sigma.rule import SigmaRule

    from sentinel.detect.rules import LoadedRule, RulePack

__all__ = [
    "CachedRule", "CompiledRule", "LocatedRuleError", "compile_pack", "compile_rule",
]


@dataclass(frozen=True)
class CachedRule:
    """A rule as a cached compile recorded it: what a scan reads of a rule, no pySigma.

    `rule`, the Sigma object itself, is asked for only by a correlation that cuts its
    query into parts (`sentinel.scan.correlate`): it compiles the pack for real once per
    process (`recompile`, shared by the pack's rules) and returns that rule's object."""

    rule_id: str
    title: str
    level: str
    kind: str
    status: str
    tags: tuple[str, ...]
    path: Path
    line: int | None
    logsources: tuple[tuple[str | None, str | None], ...]
    is_output: bool = True
    recompile: Callable[[], Mapping[str, LoadedRule]] | None = field(
        default=None, compare=False, repr=False
    )
    cut: tuple[CorrelationParts, str] | None = field(default=None, compare=False, repr=False)
    """A correlation's query in parts and its history's `matched` select, as
    `scan.correlate.cut` made them (so a scan need not ask for `rule`)."""

    def sources_in(self, taxonomy: Taxonomy) -> list[str]:
        return taxonomy.sources_of(self.logsources)

    @property
    def sources(self) -> list[str]:
        """The `source` values the rule reads, in the installed sources' taxonomy."""
        return self.sources_in(Taxonomy.installed())

    @property
    def rule(self) -> SigmaRule | SigmaCorrelationRule:
        loaded = self.recompile().get(self.rule_id) if self.recompile is not None else None
        if loaded is None:
            raise RuleError(
                f"{self.path}: rule {self.title!r} is not in the rule files any more (they "
                "changed while the scan ran); scan again"
            )
        return loaded.rule


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to scan: its SQL and the metadata findings are reported with."""

    loaded: LoadedRule | CachedRule
    sql: str

    @property
    def rule_id(self) -> str:
        return self.loaded.rule_id

    @property
    def title(self) -> str:
        return self.loaded.title

    @property
    def level(self) -> str:
        return self.loaded.level

    @property
    def kind(self) -> str:
        return self.loaded.kind

    @property
    def path(self) -> Path:
        return self.loaded.path


def compile_rule(
    loaded: LoadedRule,
    variables: Mapping[str, Any] | None = None,
    taxonomy: Taxonomy | None = None,
) -> CompiledRule:
    """The SQL of one rule; raises LocatedRuleError located at the offending line.

    `taxonomy` (default: the installed sources) decides which sources a logsource selects.
    """
    from sentinel.detect.convert import convert_rule

    return CompiledRule(loaded, convert_rule(loaded, variables, taxonomy))


def compile_pack(
    pack: RulePack,
    variables: Mapping[str, Any] | None = None,
    *,
    output_only: bool = True,
    taxonomy: Taxonomy | None = None,
) -> tuple[list[CompiledRule], list[RuleProblem]]:
    """Compile every (output) rule of a pack; a failing rule adds a problem, never stops."""
    compiled: list[CompiledRule] = []
    problems = list(pack.problems)
    taxonomy = taxonomy or Taxonomy.installed()
    for loaded in pack.output_rules if output_only else pack.rules:
        try:
            compiled.append(compile_rule(loaded, variables, taxonomy))
        except LocatedRuleError as exc:
            problems.append(exc.problem)
    return compiled, problems
