"""The playbook schema, how playbooks are loaded and validated, and which one a case gets.

A playbook is a YAML file:

    name: secret-in-prompt            # unique; what `incidents show` names
    title: A secret was pasted into a prompt
    description: When to use it, in a sentence or two.
    applies_to:                       # which incidents get it
      rules: [<rule id>, …]           # exact rule ids
      titles: ["*secret*", …]         # rule titles, glob, case-insensitive
      tags: [attack.t1552*, …]        # rule tags, glob
      min_severity: medium
    priority: 0                       # breaks ties between equally specific matches
    deadlines:
      - label: GDPR Art. 33 notification
        due: 72h from detection       # s/m/h/d/w from detection|first_seen|acknowledged
        step: decide-notification     # optional: finishing it meets the deadline
    steps:                            # in order; kinds in `steps.STEP_KINDS`
      - id: scope
        kind: query
        …

Invariants:
- Loading collects every problem of every file (bulk load) and raises one
  `PlaybookError` listing them as `path:line: message`, with "did you mean" for a
  misspelt key, step kind, field or step id.
- The built-in playbooks (the repository's `playbooks/`) and the workspace's
  (`[incidents] playbooks = "dir"`) are found by `playbook_dirs` alone, so moving the
  built-ins into package data changes one function. A workspace playbook replaces a
  built-in of the same name.
- Choosing is deterministic: rule id match beats title match beats tag match, then
  `priority`, then name. It is written once, in `respond.routes`: a playbook scores as
  its `route()`, the light view the incident intake works with.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sentinel.config import DURATION_UNITS, parse_duration
from sentinel.exceptions import PlaybookError
from sentinel.respond import yamlsafe
from sentinel.respond.routes import Route, choose, playbook_dirs, playbook_files
from sentinel.respond.steps import STEP_KINDS, Step
from sentinel.store.incidents import SEVERITIES
from sentinel.workspace import Workspace

DEADLINE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s+from\s+([a-z_]+)\s*$")
DEADLINE_STARTS = ("detection", "first_seen", "acknowledged")
Severity = Literal["informational", "low", "medium", "high", "critical"]


class AppliesTo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[str] = Field(default_factory=list, description="Rule ids.")
    titles: list[str] = Field(default_factory=list, description="Rule title globs.")
    tags: list[str] = Field(default_factory=list, description="Rule tag globs.")
    min_severity: Severity = "informational"


class Deadline(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str = Field(description='e.g. "GDPR Art. 33 notification".')
    due: str = Field(description='"72h from detection" (s, m, h, d or w; detection, …).')
    step: str | None = Field(default=None, description="Finishing this step meets it.")

    @field_validator("due")
    @classmethod
    def _parse(cls, value: str) -> str:
        cls.split_due(value)
        return value

    @staticmethod
    def split_due(value: str) -> tuple[timedelta, str]:
        match = DEADLINE.match(value)
        if not match:
            raise ValueError(f"{value!r}: write it as '72h from detection'")
        amount, unit, start = match.groups()
        if unit not in DURATION_UNITS:
            raise ValueError(
                f"{value!r}: unknown unit {unit!r}; use one of {', '.join(DURATION_UNITS)}"
            )
        if start not in DEADLINE_STARTS:
            raise ValueError(f"{value!r}: 'from' must be one of {', '.join(DEADLINE_STARTS)}")
        return parse_duration(amount + unit), start


class Playbook(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Unique name.")
    title: str
    description: str = ""
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    priority: int = 0
    deadlines: list[Deadline] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    path: str = Field(default="", exclude=True)
    """Where it was loaded from (set by the loader, not written in YAML)."""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        close = difflib.get_close_matches(step_id, [s.id for s in self.steps], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PlaybookError(f"playbook {self.name} has no step {step_id!r}{hint}")

    def route(self) -> Route:
        """What the intake needs of it (`respond.routes`): name, priority, applies_to."""
        rule = self.applies_to
        return Route(self.name, self.priority, tuple(rule.rules), tuple(rule.titles),
                     tuple(rule.tags), rule.min_severity)

    def match_score(self, rule_id: str, title: str, tags: Sequence[str], severity: str) -> int:
        """0 when it does not apply; otherwise higher is more specific (its route's score)."""
        return self.route().match_score(rule_id, title, tags, severity)


@dataclass(frozen=True)
class DeadlineState:
    label: str
    due_at: datetime | None
    """None while its start (e.g. acknowledgement) has not happened."""
    met: bool


def load_playbooks(ws: Workspace | None = None) -> dict[str, Playbook]:
    """Every playbook by name; one PlaybookError listing all problems if any file is bad."""
    books: dict[str, Playbook] = {}
    problems: list[str] = []
    for directory in playbook_dirs(ws):
        seen: dict[str, Path] = {}
        for path in playbook_files(directory):
            try:
                book = load_file(path)
            except PlaybookError as exc:
                problems.append(exc.message)
                continue
            if book.name in seen:
                problems.append(f"{path}:1: playbook name {book.name!r} is also {seen[book.name]}")
            seen[book.name] = path
            books[book.name] = book
    if problems:
        raise PlaybookError("\n".join(problems), title=f"{len(problems)} playbook problem(s)")
    return books


def load_file(path: Path) -> Playbook:
    """One playbook; PlaybookError with every problem as `path:line: message`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlaybookError(f"{path}:1: cannot read: {exc}") from exc
    return parse(text, path)


def parse(text: str, path: Path) -> Playbook:
    try:
        doc = yamlsafe.load(text)
    except yamlsafe.YamlProblem as exc:
        raise PlaybookError(f"{path}:{exc.line}: {exc.message}") from exc
    problems: list[tuple[tuple[str | int, ...], str]] = []
    data = doc.data
    if not isinstance(data, dict):
        raise PlaybookError(f"{path}:1: a playbook is a mapping (name:, title:, steps:, …)")
    raw_steps = data.get("steps", [])
    steps: list[Step] = []
    if not isinstance(raw_steps, list):
        problems.append((("steps",), "steps must be a list"))
        raw_steps = []
    for index, raw in enumerate(raw_steps):
        step = _parse_step(raw, ("steps", index), problems)
        if step is not None:
            steps.append(step)
    book: Playbook | None = None
    try:
        book = Playbook.model_validate({**data, "steps": [], "path": str(path)})
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, (), Playbook))
    if book is not None and not problems:
        book = book.model_copy(update={"steps": steps})
        problems.extend(_cross_checks(book))
    if problems:
        lines = sorted({(_line(doc, loc), msg) for loc, msg in problems})
        raise PlaybookError("\n".join(f"{path}:{line}: {msg}" for line, msg in lines))
    assert book is not None
    return book


def _parse_step(
    raw: Any, loc: tuple[str | int, ...], problems: list[tuple[tuple[str | int, ...], str]]
) -> Step | None:
    if not isinstance(raw, dict):
        problems.append((loc, "each step is a mapping with id, kind and title"))
        return None
    kind = raw.get("kind")
    cls = STEP_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        close = difflib.get_close_matches(str(kind), STEP_KINDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(
            ((*loc, "kind"), f"unknown step kind {kind!r}{hint}; one of {', '.join(STEP_KINDS)}")
        )
        return None
    try:
        step = cls.model_validate(raw)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, loc, cls))
        return None
    problems.extend(((*loc, *where), message) for where, message in step.problems())
    return step


def _cross_checks(book: Playbook) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    earlier: list[str] = []
    for index, step in enumerate(book.steps):
        if step.id in earlier:
            found.append((("steps", index, "id"), f"step id {step.id!r} is used twice"))
        for gate in step.after:
            if gate not in earlier:
                close = difflib.get_close_matches(gate, earlier, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                found.append(
                    (("steps", index, "after"), f"'after: {gate}' is not an earlier step{hint}")
                )
        earlier.append(step.id)
    for index, deadline in enumerate(book.deadlines):
        if deadline.step and deadline.step not in earlier:
            close = difflib.get_close_matches(deadline.step, earlier, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append((("deadlines", index, "step"), f"no step {deadline.step!r}{hint}"))
    if not book.steps:
        found.append((("steps",), "a playbook needs at least one step"))
    return found


_pydantic_problems = yamlsafe.pydantic_problems


def _line(doc: yamlsafe.Document, loc: tuple[str | int, ...]) -> int:
    return doc.line_of(loc)


def routes_of(books: dict[str, Playbook]) -> dict[str, Route]:
    """The intake's view of these playbooks (`respond.routes`), by name."""
    return {name: book.route() for name, book in books.items()}


__all__ = ["SEVERITIES", "Playbook", "choose", "load_playbooks", "playbook_dirs", "routes_of"]
