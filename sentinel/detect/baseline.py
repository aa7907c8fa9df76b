"""Baselines for unusual access: the YAML format, how it is loaded and validated.

A baseline learns what is usual for each principal (a key, a user, a team, a source) from
the lake's own history and alerts on what departs from it. One YAML document per file,
kept in `baselines/` beside `detections/` (so `sigma check detections/` never reads it):

    id: gateway-key-new-client-ip        # unique, lowercase slug; the alert's rule id
    title: LiteLLM virtual key used from a new client IP
    description: Why it matters, in a sentence or two.
    level: medium                        # informational | low | medium | high | critical
    tags: [attack.initial_access, attack.t1078]
    falsepositives: [A laptop key taken to a new office]
    kind: first_seen                     # first_seen | volume | hours | silence
    logsource: {product: ai_gateway, service: litellm}   # as in Sigma rules
    where: {kind: inference}             # optional: column: value | [values] | null
                                         #   | {not: value | [values] | null} | {present: bool}
    by: [actor_key]                      # the principal: 1 to 3 event columns
    value: client_ip                     # first_seen: the column whose new values alert
    learning: 14d                        # history read before the new events
    min_history: 7d                      # a principal younger than this never alerts

and per kind (`sentinel.detect.baseline_sql` says what each computes):

    volume:  measure: requests | tokens | cost; min_hours: 24;
             threshold: {mad: 6, ratio: 3, min_value: 50}
    hours:   tolerance: 1 (hours either side); max_days: 0; min_days: 5; min_events: 3;
             timezone: UTC (the IANA zone whose days and hours count)
    silence: min_gap: 6h; min_expected: 20; while_active: false

Invariants:
- Loading collects every problem of every file (bulk load), each located at
  `path:line:column` with "did you mean" for a misspelt key, kind or column; one bad file
  never hides the others, and a bad baseline is never run.
- Every column a baseline names (`by`, `value`, `where`) is checked against the event
  schema here, so the SQL compiler only ever quotes names from the schema's column list.
  Values in `where` are data: they reach DuckDB as bound parameters, never as SQL text.
"""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentinel.config import parse_duration
from sentinel.detect.baseline_names import SpecNames
from sentinel.detect.inputs import (
    BASELINE_SUFFIXES,
    BaselineProblem,
    RuleProblem,
    files_under,
)
from sentinel.exceptions import Location, RuleError
from sentinel.respond import yamlsafe
from sentinel.schema import EVENT_SCHEMA

Level = Literal["informational", "low", "medium", "high", "critical"]
Measure = Literal["requests", "tokens", "cost"]

COLUMNS: tuple[str, ...] = tuple(
    name for name in EVENT_SCHEMA.names if name not in ("raw", "pii_findings")
)
"""Event columns a baseline may name (struct lists and the raw record are left out)."""
LIST_COLUMNS = frozenset(f.name for f in EVENT_SCHEMA if str(f.type).startswith("list"))
TEXT_COLUMNS = frozenset(f.name for f in EVENT_SCHEMA if str(f.type) == "string")
WHERE_OPERATORS = ("not", "present")
PROMPT_COLUMNS = frozenset({"prompt_text", "response_text"})
"""Text users wrote or models returned: never a principal, and a baseline model keeps
values of these columns as keyed digests only (`sentinel.detect.baseline_model`)."""


class BaselineError(RuleError):
    title = "Baseline error"


class Logsource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    product: str
    service: str | None = None


def _duration(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration: write it as 7d, 36h or 2w")
    parse_duration(value)
    return value


class HistoryExample(BaseModel):
    """Generated history: `per_hour` copies of `event` at each of `hours` (UTC; `all`: the
    24) on each of `days` days (day 0 is a Monday), weekends included unless `weekdays`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: dict[str, Any]
    days: int = Field(default=8, ge=1, le=60)
    hours: list[int] | Literal["all"] = Field(default_factory=lambda: list(range(9, 17)))
    per_hour: int = Field(default=1, ge=1, le=100)
    weekdays: bool = False


class NewExample(BaseModel):
    """`count` copies of `event` on `day` (counted from the history's day 0) at `time`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event: dict[str, Any]
    day: int = Field(ge=0, le=90)
    time: str = Field(default="12:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    count: int = Field(default=1, ge=1, le=1000)


class Example(BaseModel):
    """A worked case `sentinel baselines check` runs: history, new events, alerts expected."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    history: list[HistoryExample] = Field(min_length=1)
    new: list[NewExample] = Field(default_factory=list)
    alerts: int = Field(ge=0)


class Baseline(BaseModel):
    """What every kind has; a kind adds its own fields (see `BASELINE_KINDS`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind_name: ClassVar[str] = ""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Unique; the rule id.")
    title: str
    description: str = ""
    level: Level = "medium"
    status: Literal["stable", "test", "experimental", "deprecated"] = "experimental"
    tags: list[str] = Field(default_factory=list)
    falsepositives: list[str] = Field(default_factory=list)
    kind: str
    logsource: Logsource
    where: dict[str, Any] = Field(default_factory=dict)
    by: list[str] = Field(min_length=1, max_length=3)
    learning: str = "14d"
    min_history: str | None = None
    """How long before an alerting event the principal must have been seen (within the
    learning window, so shorter than it). Default: half the learning window."""
    examples: list[Example] = Field(default_factory=list)
    """Worked cases (`sentinel baselines check` runs them; the scan ignores them)."""

    @field_validator("learning", "min_history", mode="before")
    @classmethod
    def _check_duration(cls, value: Any) -> Any:
        return value if value is None else _duration(value)

    @property
    def learning_window(self) -> timedelta:
        return parse_duration(self.learning)

    @property
    def min_history_window(self) -> timedelta:
        if self.min_history:
            return parse_duration(self.min_history)
        return self.learning_window / 2

    @property
    def rule_id(self) -> str:
        return self.id

    def problems(self) -> list[yamlsafe.Problem]:
        """Checks across fields: columns exist, windows are consistent."""
        found: list[yamlsafe.Problem] = []
        for index, name in enumerate(self.by):
            found += _column_problem(name, ("by", index), text_only=True)
            if name in PROMPT_COLUMNS:
                found.append((("by", index), f"column {name!r} cannot be a principal: a "
                              "principal is who or where (a key, user, team, address)"))
        for name, condition in self.where.items():
            found += _column_problem(name, ("where", f"<{name}>"))
            found += _where_problems(name, condition)
        for index, example in enumerate(self.examples):
            events = [("history", i, h.event) for i, h in enumerate(example.history)]
            events += [("new", i, n.event) for i, n in enumerate(example.new)]
            for part, i, event in events:
                for name in event:
                    found += _column_problem(name, ("examples", index, part, i, "event", name))
        if self.min_history_window >= self.learning_window:
            found.append((("min_history",), f"min_history ({self.min_history}) must be shorter "
                          f"than the learning window ({self.learning}) it is measured in"))
        if self.learning_window < timedelta(hours=1):
            found.append((("learning",), "the learning window must be at least 1h"))
        return found


class FirstSeen(Baseline):
    """A value never seen for the principal within the learning window (or a first event)."""

    kind_name: ClassVar[str] = "first_seen"
    value: str | None = None
    """None: the principal's first event matching `where` at all (e.g. a first Bedrock call)."""

    def problems(self) -> list[yamlsafe.Problem]:
        found = super().problems()
        if self.value is not None:
            found += _column_problem(self.value, ("value",))
        return found


class VolumeThreshold(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mad: float = Field(default=6.0, ge=0, description="Robust z: MADs above the median.")
    ratio: float = Field(default=3.0, ge=1, description="At least this times the median.")
    min_value: float = Field(default=0.0, ge=0, description="And at least this much.")


class Volume(Baseline):
    """An hour's requests/tokens/cost far above the principal's own trailing hours."""

    kind_name: ClassVar[str] = "volume"
    measure: Measure = "requests"
    min_hours: int = Field(default=24, ge=1, description="Active hours of history needed.")
    threshold: VolumeThreshold = Field(default_factory=VolumeThreshold)


class Hours(Baseline):
    """Activity at an hour of the day at which the principal is not usually active."""

    kind_name: ClassVar[str] = "hours"
    tolerance: int = Field(default=1, ge=0, le=6, description="Hours either side that count.")
    max_days: int = Field(default=0, ge=0, description="Usual: active then on more days.")
    min_days: int = Field(default=5, ge=1, description="Active days of history needed.")
    min_events: int = Field(default=1, ge=1, description="Unusual events in a day to alert.")
    timezone: str = "UTC"
    """The IANA time zone whose days and hours count (`Europe/Berlin`): a team's 9-to-5 is
    local, and daylight saving moves it in UTC. Whole-hour offsets only."""

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        return check_timezone(value)


class Silence(Baseline):
    """A principal that logs steadily goes quiet for longer than usual (an evidence gap)."""

    kind_name: ClassVar[str] = "silence"
    min_gap: str = "6h"
    min_expected: float = Field(default=20.0, gt=0)
    """Events the quiet hours would usually hold (each hour of day's 10th percentile)."""
    while_active: bool = False
    """Count an hour as quiet only when the principal's other events go on (bodies stop
    arriving while requests continue)."""

    @field_validator("min_gap", mode="before")
    @classmethod
    def _check_gap(cls, value: Any) -> Any:
        return _duration(value)

    @property
    def gap(self) -> timedelta:
        return parse_duration(self.min_gap)

    def problems(self) -> list[yamlsafe.Problem]:
        found = super().problems()
        if self.gap < timedelta(hours=1):
            found.append((("min_gap",), "min_gap must be at least 1h (hours are the unit)"))
        return found


def check_timezone(name: str) -> str:
    """An IANA zone whose offset from UTC is a whole number of hours all year (a model
    counts hours in UTC buckets, each of which must be one local hour)."""
    try:
        zone = zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        close = difflib.get_close_matches(name, sorted(zoneinfo.available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown time zone {name!r}{hint}; an IANA name such as "
                         "'Europe/Berlin' or 'UTC'") from exc
    for month in range(1, 13):
        offset = datetime(2026, month, 15, tzinfo=zone).utcoffset() or timedelta(0)
        if offset.total_seconds() % 3600:
            raise ValueError(f"time zone {name!r} is {offset} from UTC: hours baselines "
                             "need a whole-hour offset")
    return name


BASELINE_KINDS: dict[str, type[Baseline]] = {
    cls.kind_name: cls for cls in (FirstSeen, Volume, Hours, Silence)
}


def _column_problem(
    name: Any, loc: yamlsafe.Key, text_only: bool = False
) -> list[yamlsafe.Problem]:
    if not isinstance(name, str) or name not in COLUMNS:
        close = difflib.get_close_matches(str(name), COLUMNS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return [(loc, f"unknown column {name!r}{hint}; baselines name event schema columns")]
    if text_only and name not in TEXT_COLUMNS:
        return [(loc, f"column {name!r} cannot be a principal: use a text column")]
    return []


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _where_problems(name: str, condition: Any) -> list[yamlsafe.Problem]:
    loc = ("where", name)
    if isinstance(condition, dict):
        if len(condition) != 1 or next(iter(condition)) not in WHERE_OPERATORS:
            keys = ", ".join(map(str, condition)) or "nothing"
            close = difflib.get_close_matches(next(iter(condition), ""), WHERE_OPERATORS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return [(loc, f"where.{name}: one of {', '.join(WHERE_OPERATORS)} expected, got "
                     f"{keys}{hint}")]
        operator, operand = next(iter(condition.items()))
        if operator == "present" and not isinstance(operand, bool):
            return [(loc, f"where.{name}.present must be true or false")]
        condition = operand if operator == "not" else None
    if isinstance(condition, list):
        if not condition or not all(_scalar(v) and v is not None for v in condition):
            return [(loc, f"where.{name}: a list holds one or more plain values (text, numbers)")]
    elif not _scalar(condition):
        return [(loc, f"where.{name}: expected a value, a list of values or null")]
    return []


@dataclass(frozen=True)
class LoadedBaseline(SpecNames):
    """A valid baseline and where it came from (for locating later problems)."""

    spec: Baseline
    path: Path
    doc: yamlsafe.Document

    def problem(self, loc: yamlsafe.Key, message: str) -> BaselineProblem:
        return BaselineProblem(
            self.path, self.doc.line_of(loc), message, self.doc.column_of(loc) or None
        )


@dataclass
class BaselinePack:
    baselines: list[LoadedBaseline]
    problems: list[RuleProblem]

    def find(self, name: str) -> LoadedBaseline | None:
        for item in self.baselines:
            if name in (item.spec.id, item.spec.title):
                return item
        return None


def parse(text: str, path: Path) -> tuple[LoadedBaseline | None, list[BaselineProblem]]:
    """One baseline file: the baseline, or every problem found in it."""
    try:
        doc = yamlsafe.load(text, what="baselines")
    except yamlsafe.YamlProblem as exc:
        return None, [BaselineProblem(path, exc.line, exc.message, exc.column or None)]
    if not isinstance(doc.data, dict):
        return None, [BaselineProblem(path, 1, "a baseline is a mapping (id:, kind:, by:, …)", 1)]
    kind = doc.data.get("kind")
    cls = BASELINE_KINDS.get(kind) if isinstance(kind, str) else None
    problems: list[yamlsafe.Problem] = []
    spec: Baseline | None = None
    if cls is None:
        loc: yamlsafe.Key = ("kind",) if "kind" in doc.data else ()
        if kind is None:
            message = f"required key 'kind' is missing; one of {', '.join(BASELINE_KINDS)}"
        else:
            close = difflib.get_close_matches(str(kind), BASELINE_KINDS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            message = f"unknown kind {kind!r}{hint}; one of {', '.join(BASELINE_KINDS)}"
        problems.append((loc, message))
        cls = Baseline  # still report the other keys' problems
    try:
        spec = cls.model_validate(doc.data)
    except ValidationError as exc:
        problems += [
            p for p in yamlsafe.pydantic_problems(exc, (), cls, root="baseline")
            if not (cls is Baseline and p[0][-1:] in (("<kind>",), ("kind",)))
            and not (cls is Baseline and "unknown key" in p[1])
        ]
    if spec is not None and cls is not Baseline:
        problems += spec.problems()
    if problems or spec is None:
        located = sorted(
            {BaselineProblem(path, doc.line_of(loc), msg, doc.column_of(loc) or None)
             for loc, msg in problems},
            key=lambda p: (p.line or 0, p.column or 0, p.message),
        )
        return None, located
    return LoadedBaseline(spec, path, doc), []


def baseline_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Baseline files under the given files and directories, sorted."""
    return files_under(inputs, BASELINE_SUFFIXES)


def load_baselines(inputs: Sequence[str | Path]) -> BaselinePack:
    """Every baseline under `inputs`; problems are collected, never raised.

    Inputs are in override order: a baseline with the id of one from an earlier input
    replaces it (a workspace tunes a bundled baseline by copying it); the same id twice
    within one input is a problem.
    """
    pack = BaselinePack([], [])
    by_id: dict[str, LoadedBaseline] = {}
    for item in inputs:
        seen: dict[str, Path] = {}
        for path in baseline_paths([item]):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                pack.problems.append(BaselineProblem(path, None, f"cannot read: {exc}"))
                continue
            loaded, problems = parse(text, path)
            pack.problems.extend(problems)
            if loaded is None:
                continue
            if loaded.spec.id in seen:
                pack.problems.append(loaded.problem(
                    ("id",), f"baseline id {loaded.spec.id!r} is also used by "
                    f"{seen[loaded.spec.id]}"
                ))
                continue
            seen[loaded.spec.id] = path
            by_id[loaded.spec.id] = loaded
    pack.baselines = list(by_id.values())
    return pack


def load_file(path: Path) -> LoadedBaseline:
    """One baseline; BaselineError located at its first problem (all of them listed)."""
    pack = load_baselines([path])
    if len(pack.problems) == 1:
        first = pack.problems[0]
        column = first.column if isinstance(first, BaselineProblem) else None
        raise BaselineError(first.message, location=Location(first.path, first.line, column))
    if pack.problems:
        raise BaselineError("\n".join(str(p) for p in pack.problems),
                            title=f"{len(pack.problems)} baseline problems")
    return pack.baselines[0]
