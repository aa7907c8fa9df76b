"""Loading a pack of Sigma rules so that one bad rule never stops the others.

`SigmaCollection.load_ruleset` gives up on the first YAML syntax error and locates
problems by file only. Here each file is parsed on its own: a YAML error becomes a
`RuleProblem` at the line the parser reports, a Sigma error at the line of the document
(or of the field / modifier the message names), and every other rule still loads.
Correlation rules are resolved against the whole pack, so a correlation may reference a
rule in another file by name or id.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from sentinel.detect.inputs import RULE_SUFFIXES, RuleProblem, files_under, rule_paths
from sentinel.detect.pipeline import Taxonomy

__all__ = [
    "RULE_SUFFIXES", "LoadedRule", "RuleFile", "RulePack", "RuleProblem", "files_under",
    "load_file", "load_rules", "rule_paths",
]

_QUOTED = re.compile(r"'([^'\n]{1,80})'")


@dataclass
class RuleFile:
    """One YAML file: its text and the line span of each document, for locating errors."""

    path: Path
    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)

    def locate(self, message: str, title: str | None = None) -> int | None:
        """The most specific line for a message: a quoted name it mentions, else the rule."""
        lines = self.text.splitlines()
        span = self._span_of(title, lines)
        first, last = span if span else (1, len(lines))
        for needle in _QUOTED.findall(message):
            for number in range(first, last + 1):
                line = lines[number - 1]
                if re.search(rf"(^|[\s|'\"{{\[,-]){re.escape(needle)}($|[\s|:'\",}}\]])", line):
                    return number
        return first if span or self.spans else None

    def _span_of(self, title: str | None, lines: list[str]) -> tuple[int, int] | None:
        if title is None:
            return self.spans[0] if len(self.spans) == 1 else None
        for first, last in self.spans:
            for number in range(first, last + 1):
                if lines[number - 1].strip() in (f"title: {title}", f"title: '{title}'"):
                    return first, last
        return None


@dataclass(frozen=True)
class LoadedRule:
    """A parsed rule (detection or correlation) and where it came from."""

    rule: SigmaRule | SigmaCorrelationRule
    file: RuleFile
    line: int | None

    @property
    def path(self) -> Path:
        return self.file.path

    @property
    def rule_id(self) -> str:
        return str(self.rule.id) if self.rule.id else (self.rule.name or self.rule.title)

    @property
    def title(self) -> str:
        return self.rule.title

    @property
    def kind(self) -> str:
        return "correlation" if isinstance(self.rule, SigmaCorrelationRule) else "detection"

    @property
    def level(self) -> str:
        level = self.rule.level
        return level.name.lower() if level is not None else ""

    @property
    def status(self) -> str:
        """`stable`, `test`, `deprecated`, …, or "" when the rule gives none."""
        return str(getattr(self.rule.status, "name", "")).lower()

    @property
    def tags(self) -> list[str]:
        return [str(tag) for tag in self.rule.tags]

    @property
    def sources(self) -> list[str]:
        """The `source` values the rule reads, in the installed sources' taxonomy."""
        return self.sources_in(Taxonomy.installed())

    @property
    def logsources(self) -> list[tuple[str | None, str | None]]:
        """The (product, service) of the rule, or of a correlation's referenced rules."""
        rules = (
            [ref.rule for ref in self.rule.referenced_rules]
            if isinstance(self.rule, SigmaCorrelationRule)
            else [self.rule]
        )
        return [
            (rule.logsource.product, rule.logsource.service)
            for rule in rules
            if isinstance(rule, SigmaRule)
        ]

    def sources_in(self, taxonomy: Taxonomy) -> list[str]:
        return taxonomy.sources_of(self.logsources)

    @property
    def is_output(self) -> bool:
        """False for rules only used as building blocks of a correlation (`generate: false`)."""
        return bool(getattr(self.rule, "_output", True))


@dataclass
class RulePack:
    rules: list[LoadedRule]
    problems: list[RuleProblem]

    @property
    def output_rules(self) -> list[LoadedRule]:
        return [rule for rule in self.rules if rule.is_output]

    def find(self, name: str) -> LoadedRule | None:
        """A rule by id, name, title or file path."""
        for loaded in self.rules:
            rule = loaded.rule
            if name in (str(rule.id), rule.name, rule.title) or _same_path(name, loaded.path):
                return loaded
        return None


def _same_path(name: str, path: Path) -> bool:
    candidate = Path(name)
    return candidate.suffix in RULE_SUFFIXES and candidate.resolve() == path.resolve()


_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML was built with it (the same safe types, about ten
times faster: parsing the pack was most of a small scan's time); else the Python one."""


def _spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for node in yaml.compose_all(text, Loader=_LOADER):
        if node is not None:
            spans.append(
                (node.start_mark.line + 1, max(node.end_mark.line, node.start_mark.line + 1))
            )
    return spans


def load_file(path: Path) -> tuple[RuleFile, SigmaCollection | None, list[RuleProblem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return RuleFile(path, ""), None, [RuleProblem(path, None, f"cannot read: {exc}")]
    rule_file = RuleFile(path, text)
    try:
        documents = list(yaml.load_all(text, Loader=_LOADER))
        rule_file.spans = _spans(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return rule_file, None, [RuleProblem(path, line, f"YAML syntax error: {problem}")]
    if not all(isinstance(doc, dict) or doc is None for doc in documents):
        return rule_file, None, [RuleProblem(path, 1, "not a Sigma rule (expected a mapping)")]
    try:
        collection = SigmaCollection.from_dicts(
            documents,
            collect_errors=True,
            source=SigmaRuleLocation(path),
            resolve_references=False,
            collect_filters=True,  # applied pack-wide by load_rules, not per file
        )
    except SigmaError as exc:  # errors outside any rule, e.g. an unknown collection action
        return rule_file, None, [RuleProblem(path, rule_file.locate(str(exc)), _message(exc))]
    return rule_file, collection, []


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def load_rules(
    inputs: Sequence[str | Path], filters: Sequence[str | Path] = ()
) -> RulePack:
    """Parse every rule file under `inputs`; problems are collected, never raised.

    Inputs are read in order, and a rule with the id of one read before replaces it: a
    workspace overrides a bundled rule by giving its copy the same id.

    Sigma filters (`filter:` documents) found under `inputs` or `filters` are applied to
    every detection rule they select (by `rules:` id/name and `logsource`), pack-wide:
    the filter's condition is ANDed onto the rule's, so a deployment tunes a rule (e.g.
    excludes its load balancer's addresses) without editing it.
    """
    loaded: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    found_filters: list[tuple[SigmaFilter, RuleFile]] = []
    for path in rule_paths([*inputs, *filters]):
        rule_file, collection, file_problems = load_file(path)
        problems.extend(file_problems)
        if collection is None:
            continue
        for sigma_filter in collection.filters:
            errors = list(getattr(sigma_filter, "errors", []))
            title = getattr(sigma_filter, "title", None)
            problems.extend(
                RuleProblem(path, rule_file.locate(_message(e), title), _message(e))
                for e in errors
            )
            if not errors:
                found_filters.append((sigma_filter, rule_file))
        for rule in collection.rules:
            errors = list(getattr(rule, "errors", []))
            title = getattr(rule, "title", None)
            if errors:
                problems.extend(
                    RuleProblem(path, rule_file.locate(_message(e), title), _message(e))
                    for e in errors
                )
                continue
            loaded.append(LoadedRule(rule, rule_file, rule_file.locate("", title)))
    loaded = _later_ids_win(loaded)
    _apply_filters(loaded, found_filters, problems)
    _resolve_references(loaded, problems)
    return RulePack(loaded, problems)


def _later_ids_win(loaded: list[LoadedRule]) -> list[LoadedRule]:
    """One rule per id: a rule read later (a workspace's, after the bundled pack) replaces
    an earlier one with the same id, in the earlier one's place. Rules without an id are
    all kept."""
    by_id: dict[str, int] = {}
    kept: list[LoadedRule] = []
    for rule in loaded:
        rule_id = str(rule.rule.id) if rule.rule.id else None
        if rule_id is not None and rule_id in by_id:
            kept[by_id[rule_id]] = rule
            continue
        if rule_id is not None:
            by_id[rule_id] = len(kept)
        kept.append(rule)
    return kept


def _apply_filters(
    loaded: list[LoadedRule],
    filters: list[tuple[SigmaFilter, RuleFile]],
    problems: list[RuleProblem],
) -> None:
    for sigma_filter, rule_file in filters:
        unknown = _unknown_filter_identifiers(sigma_filter)
        if unknown:
            name, hint = unknown
            message = f"filter condition names {name!r}, which the filter does not define{hint}"
            problems.append(RuleProblem(rule_file.path, rule_file.locate(f"'{name}'"), message))
            continue
        for item in loaded:
            if not isinstance(item.rule, SigmaRule):
                continue
            try:
                sigma_filter.apply_on_rule(item.rule)
            except SigmaError as exc:
                problems.append(
                    RuleProblem(
                        rule_file.path, rule_file.locate(_message(exc), sigma_filter.title),
                        f"filter {sigma_filter.title!r} on rule {item.rule.title!r}: "
                        + _message(exc),
                    )
                )


_FILTER_KEYWORDS = frozenset({"not", "and", "or", "all", "any", "of", "1", "them"})


def _unknown_filter_identifiers(sigma_filter: SigmaFilter) -> tuple[str, str] | None:
    """The first identifier a filter condition uses but does not define (with a hint)."""
    defined = list(sigma_filter.filter.detections)
    for condition in sigma_filter.filter.condition:
        for token in re.findall(r"[a-zA-Z*][a-zA-Z0-9*_-]*", condition):
            if token.lower() in _FILTER_KEYWORDS or "*" in token or token in defined:
                continue
            close = difflib.get_close_matches(token, defined, n=1)
            return token, f" (did you mean {close[0]!r}?)" if close else ""
    return None


def _resolve_references(loaded: list[LoadedRule], problems: list[RuleProblem]) -> None:
    """Resolve correlation references pack-wide; drop correlations that cannot resolve."""
    collection = SigmaCollection([item.rule for item in loaded], resolve_references=False)
    broken = []
    for item in loaded:
        if isinstance(item.rule, SigmaCorrelationRule):
            try:
                item.rule.resolve_rule_references(collection)
            except SigmaError as exc:
                problems.append(
                    RuleProblem(
                        item.path, item.file.locate(_message(exc), item.rule.title), _message(exc)
                    )
                )
                broken.append(item)
    for item in broken:
        loaded.remove(item)
