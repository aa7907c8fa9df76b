"""Run a rule's example events through its compiled SQL in DuckDB.

Every rule file `foo.yml` in `detections/` has a sibling `foo.tests.jsonl`; each line is
one case:

    {"name": "card in prompt", "expect": "match", "events": [{...}, ...]}
    {"name": "plain prompt", "expect": "nomatch", "event": {...}}

`events` (or a single `event`) are normalised schema-column dicts, plus an optional
`raw` object (stored as its JSON text). `ts` is required; `event_id` defaults to
`<case>-<n>`, `ingested_at` to `ts`, `source` to the rule's first log source. Unknown
keys are an error (a typo must not make a case pass). A case may pin the exact matching
events with `"ids": [...]` and target one rule of a multi-rule file with `"rule": "<id>"`.

The events become a real Arrow table with `sentinel.schema.EVENT_SCHEMA`, registered as
the `events` view of a fresh in-memory DuckDB, so the SQL that runs is exactly the SQL a
scan runs. A case *matches* when the query returns at least one event (for correlations:
one burst), and with `ids` when the returned event ids equal them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sentinel.detect.compiler import CompiledRule, LocatedRuleError, compile_rule
from sentinel.detect.pipeline import Taxonomy
from sentinel.detect.rules import LoadedRule, RuleProblem, load_rules
from sentinel.duck import register_macros as install_macros
from sentinel.schema import EVENT_SCHEMA

TESTS_SUFFIX = ".tests.jsonl"
EXPECTATIONS = ("match", "nomatch")
_TIMESTAMPS = {f.name for f in EVENT_SCHEMA if pa.types.is_timestamp(f.type)}


@dataclass(frozen=True)
class RuleCase:
    name: str
    expect: str
    events: list[dict[str, Any]]
    path: Path
    line: int
    ids: list[str] | None = None
    rule: str | None = None


@dataclass(frozen=True)
class CaseResult:
    rule_id: str
    title: str
    case: RuleCase
    matched_ids: list[str]
    error: str | None = None

    @property
    def passed(self) -> bool:
        if self.error is not None:
            return False
        if self.case.ids is not None:
            return sorted(self.matched_ids) == sorted(self.case.ids)
        return bool(self.matched_ids) == (self.case.expect == "match")


@dataclass
class ExampleReport:
    results: list[CaseResult] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(result.passed for result in self.results)


def examples_path(rule_path: Path) -> Path:
    return rule_path.with_name(rule_path.name.rsplit(".", 1)[0] + TESTS_SUFFIX)


def load_cases(path: Path) -> list[RuleCase]:
    """The cases of one `*.tests.jsonl` file; raises LocatedRuleError at the bad line."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            cases.append(_case(data, path, number))
        except (ValueError, TypeError, KeyError) as exc:
            raise LocatedRuleError(RuleProblem(path, number, f"bad test case: {exc}")) from exc
    return cases


def _case(data: Any, path: Path, line: int) -> RuleCase:
    if not isinstance(data, dict):
        raise TypeError("a case is a JSON object")
    unknown = set(data) - {"name", "expect", "events", "event", "ids", "rule"}
    if unknown:
        raise KeyError(f"unknown keys {sorted(unknown)}")
    expect = data.get("expect")
    if expect not in EXPECTATIONS:
        raise ValueError(f"'expect' must be one of {EXPECTATIONS}")
    events = data["events"] if "events" in data else [data["event"]]
    if not events or not all(isinstance(event, dict) for event in events):
        raise TypeError("'events' must be a non-empty list of objects")
    return RuleCase(
        name=str(data.get("name", f"line {line}")),
        expect=expect,
        events=events,
        path=path,
        line=line,
        ids=data.get("ids"),
        rule=data.get("rule"),
    )


def events_table(events: Sequence[Mapping[str, Any]], default_source: str = "test") -> pa.Table:
    """An Arrow table with the event schema from normalised dicts (missing columns null)."""
    rows = []
    for index, event in enumerate(events):
        unknown = set(event) - set(EVENT_SCHEMA.names)
        if unknown:
            raise KeyError(f"event {index}: unknown columns {sorted(unknown)}")
        if "ts" not in event:
            raise KeyError(f"event {index}: 'ts' is required")
        row = dict(event)
        for name in _TIMESTAMPS & row.keys():
            if isinstance(row[name], str):
                row[name] = datetime.fromisoformat(row[name])
        row.setdefault("event_id", f"e{index}")
        row.setdefault("ingested_at", row["ts"])
        row.setdefault("source", default_source)
        if isinstance(row.get("raw"), dict | list):
            row["raw"] = json.dumps(row["raw"])
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def run_sql(sql: str, table: pa.Table) -> list[str]:
    """Run a compiled query over `table` as the `events` view; the matching event ids."""
    con = duckdb.connect()
    try:
        install_macros(con)
        con.register("events_table", table)
        con.execute("CREATE VIEW events AS SELECT * FROM events_table")
        cursor = con.execute(sql)
        columns = [d[0] for d in cursor.description or []]
        rows = cursor.fetchall()
    finally:
        con.close()
    if "event_ids" in columns and "event_id" not in columns:
        position = columns.index("event_ids")
        return sorted({event_id for row in rows for event_id in row[position]})
    position = columns.index("event_id")
    return [row[position] for row in rows]


def run_case(compiled: CompiledRule, case: RuleCase) -> CaseResult:
    sources = compiled.loaded.sources
    try:
        events = [
            {"event_id": f"{_slug(case.name)}-{i}", **event} for i, event in enumerate(case.events)
        ]
        table = events_table(events, sources[0] if sources else "test")
        matched = run_sql(compiled.sql, table)
    except (KeyError, ValueError, TypeError, pa.ArrowException, duckdb.Error) as exc:
        return CaseResult(
            compiled.rule_id, compiled.title, case, [], f"{type(exc).__name__}: {exc}"
        )
    return CaseResult(compiled.rule_id, compiled.title, case, matched)


def _slug(name: str) -> str:
    return "-".join(name.lower().split())[:40] or "case"


def _applies(case: RuleCase, loaded: LoadedRule) -> bool:
    return case.rule is None or case.rule in (loaded.rule_id, loaded.rule.name, loaded.rule.title)


def run_examples(
    inputs: Sequence[str | Path],
    variables: Mapping[str, Any] | None = None,
    taxonomy: Taxonomy | None = None,
) -> ExampleReport:
    """Load, compile and run the examples of every output rule under `inputs`
    (`taxonomy`: which sources a logsource selects; default the installed sources)."""
    pack = load_rules(inputs)
    report = ExampleReport(problems=list(pack.problems))
    for loaded in pack.output_rules:
        path = examples_path(loaded.path)
        try:
            compiled = compile_rule(loaded, variables, taxonomy)
            if not path.exists():
                message = f"no examples: {path.name} is missing"
                raise LocatedRuleError(RuleProblem(loaded.path, loaded.line, message))
            cases = [case for case in load_cases(path) if _applies(case, loaded)]
        except LocatedRuleError as exc:
            report.problems.append(exc.problem)
            continue
        kinds = {case.expect for case in cases}
        if kinds != set(EXPECTATIONS):
            missing = ", ".join(sorted(set(EXPECTATIONS) - kinds))
            report.problems.append(
                RuleProblem(
                    loaded.path, loaded.line, f"examples lack a {missing!s} case in {path.name}"
                )
            )
        report.results.extend(run_case(compiled, case) for case in cases)
    return report
