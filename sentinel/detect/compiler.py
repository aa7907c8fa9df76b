"""Compile loaded Sigma rules into DuckDB SQL, with errors located in the rule file.

`compile_rule` is the single operation (fails fast with a `RuleError` at `path:line`);
`compile_pack` is the bulk one (collects one problem per bad rule and compiles the rest).
A correlation rule compiles its referenced rules first, because their conditions are the
correlation's search phase.

Anything the backend cannot express exactly — a timestamp-part modifier, an unknown field,
a `value_sum` correlation, an unresolvable placeholder — is an error naming the rule file,
line and construct; a rule never compiles into a query that silently matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline
from sigma.rule import SigmaRule

from sentinel.detect.backend import SentinelBackend
from sentinel.detect.pipeline import Taxonomy, sentinel_pipeline
from sentinel.detect.rules import LoadedRule, RulePack, RuleProblem
from sentinel.exceptions import Location, RuleError


@dataclass(frozen=True)
class CompiledRule:
    """A rule ready to scan: its SQL and the metadata findings are reported with."""

    loaded: LoadedRule
    sql: str

    @property
    def rule_id(self) -> str:
        return self.loaded.rule_id

    @property
    def title(self) -> str:
        return self.loaded.rule.title

    @property
    def level(self) -> str:
        return self.loaded.level

    @property
    def kind(self) -> str:
        return self.loaded.kind

    @property
    def path(self) -> Path:
        return self.loaded.path


def _backend(variables: Mapping[str, Any] | None, taxonomy: Taxonomy | None) -> SentinelBackend:
    overrides = ProcessingPipeline(vars=dict(variables)) if variables else None
    backend = SentinelBackend(overrides)
    if taxonomy is not None:  # the workspace's sources (configured ones included)
        pipeline = sentinel_pipeline(taxonomy=taxonomy)
        backend.backend_processing_pipeline = pipeline  # type: ignore[misc]
    backend.init_processing_pipeline()
    return backend


def _problem(
    loaded: LoadedRule, exc: Exception, rule: SigmaRule | SigmaCorrelationRule
) -> RuleProblem:
    message = str(exc.args[0]) if exc.args else str(exc)
    message = message.split(" (while ", 1)[0]
    owner = loaded
    if rule is not loaded.rule:  # the error is in a referenced rule, maybe in another file
        message = f"in referenced rule {rule.title!r}: {message}"
    return RuleProblem(owner.path, owner.file.locate(message, rule.title), message)


def _convert(backend: SentinelBackend, rule: SigmaRule | SigmaCorrelationRule) -> list[str]:
    if isinstance(rule, SigmaCorrelationRule):
        for reference in rule.referenced_rules:
            if isinstance(reference.rule, SigmaRule | SigmaCorrelationRule):
                try:
                    _convert(backend, reference.rule)
                except (SigmaError, NotImplementedError, TypeError, ValueError) as exc:
                    raise _Located(reference.rule, exc) from exc
        return list(backend.convert_correlation_rule(rule))
    result = backend.convert_rule(rule)
    if not result:  # building-block rules (referenced, generate: false) return no output
        result = list(rule.get_conversion_result())
        if result:
            result = [backend.finalize_query_default(rule, result[0], 0, None)]  # type: ignore[arg-type]
    return result


class _Located(Exception):
    def __init__(self, rule: SigmaRule | SigmaCorrelationRule, cause: Exception) -> None:
        super().__init__(*cause.args)
        self.rule = rule


class LocatedRuleError(RuleError):
    """A rule error with its location (`problem`), so bulk operations can collect it."""

    def __init__(self, problem: RuleProblem) -> None:
        super().__init__(problem.message, location=Location(problem.path, problem.line))
        self.problem = problem


def compile_rule(
    loaded: LoadedRule,
    variables: Mapping[str, Any] | None = None,
    taxonomy: Taxonomy | None = None,
) -> CompiledRule:
    """The SQL of one rule; raises LocatedRuleError located at the offending line.

    `taxonomy` (default: the installed sources) decides which sources a logsource selects.
    """
    backend = _backend(variables, taxonomy)
    try:
        queries = _convert(backend, loaded.rule)
    except _Located as exc:
        raise LocatedRuleError(_problem(loaded, exc, exc.rule)) from exc
    except (SigmaError, NotImplementedError, TypeError, ValueError) as exc:
        raise LocatedRuleError(_problem(loaded, exc, loaded.rule)) from exc
    if len(queries) != 1:
        message = f"expected one query, the rule produced {len(queries)}"
        raise LocatedRuleError(RuleProblem(loaded.path, loaded.line, message))
    return CompiledRule(loaded, queries[0])


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
