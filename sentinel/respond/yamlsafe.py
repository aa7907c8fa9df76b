"""Reading a hand-written YAML file (a playbook, a baseline) as plain data plus the line
and column of every value and key, and turning pydantic errors into located problems.

Invariants:
- Anchors and aliases are refused outright, so a "billion laughs" document (aliases of
  aliases that expand exponentially) is rejected before it expands. Playbooks are
  short hand-written files and never need them; neither do baselines.
- Only the safe YAML types are built (SafeLoader's resolver): strings, numbers, booleans,
  null, lists and maps. Duplicate keys are an error, not "the last one wins".
- Every value and mapping key gets a `Location` (path, line, column), so validation
  errors point at the line to fix.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MAX_BYTES = 1024 * 1024
"""A playbook larger than this is refused before it is parsed."""

Key = tuple[str | int, ...]


@dataclass(frozen=True)
class Location:
    path: Path
    line: int
    column: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


class YamlProblem(Exception):
    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


class _NoAliasLoader(yaml.SafeLoader):
    what = "playbooks"

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise YamlProblem(
                f"YAML anchors and aliases are not allowed in {self.what} (they can expand "
                "exponentially: a 'billion laughs' bomb)", mark.line + 1, mark.column + 1,
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


_FAST: Any = getattr(yaml, "CSafeLoader", None)
"""libyaml's safe loader where PyYAML was built with it (parsing the baselines and the
playbooks in Python was a tenth of a second of every scan); else `_NoAliasLoader`."""


def _refuse_aliases(text: str, what: str) -> None:
    """`_NoAliasLoader`'s check for libyaml, on its event stream before anything is
    composed: an alias is an event there, never expanded."""
    for event in yaml.parse(text, Loader=_FAST):
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 0)
            raise YamlProblem(
                f"YAML anchors and aliases are not allowed in {what} (they can expand "
                "exponentially: a 'billion laughs' bomb)", line, column,
            )


@dataclass
class Document:
    """The data of one YAML file and where each part of it is."""

    data: Any
    lines: dict[Key, int]
    """(path of keys/indexes) → line; a key's own line under `path + ("<key>",)`."""
    columns: dict[Key, int] = field(default_factory=dict)
    """The same keys → 1-based column."""

    def line_of(self, loc: Key) -> int:
        """The line of the deepest known part of `loc` (1 if none)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line:
                return line
        return 1

    def column_of(self, loc: Key) -> int:
        """The column of the part `line_of` finds (0 when unknown)."""
        for end in range(len(loc), -1, -1):
            if self.lines.get(tuple(loc[:end])):
                return self.columns.get(tuple(loc[:end]), 0)
        return 0


def load(text: str, what: str = "playbooks") -> Document:
    """Parse `text` (one YAML document); raises YamlProblem with a line.

    `what` names the kind of file in messages ("YAML anchors … are not allowed in …").
    """
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise YamlProblem(f"file is larger than {MAX_BYTES // 1024} KiB", 1)
    loader: Any
    if _FAST is not None:  # libyaml: the same events and nodes, about ten times faster
        loader = _FAST(text)
    else:
        loader = _NoAliasLoader(text)
        loader.what = what
    try:
        if _FAST is not None:
            _refuse_aliases(text, what)
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 0)
        raise YamlProblem(f"invalid YAML: {exc.problem or exc}", line, column) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", 1) from exc
    finally:
        loader.dispose()
    if node is None:
        raise YamlProblem("the file is empty", 1)
    doc = Document(None, {})
    doc.data = _build(loader, node, (), doc)
    return doc


def _build(loader: yaml.SafeLoader, node: Node, path: Key, doc: Document) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    doc.columns[path] = node.start_mark.column + 1
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        return [_build(loader, item, (*path, i), doc) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise YamlProblem(f"keys must be text, got {key!r}", key_node.start_mark.line + 1)
            if key in result:
                raise YamlProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            doc.lines[(*path, f"<{key}>")] = key_node.start_mark.line + 1
            doc.columns[(*path, f"<{key}>")] = key_node.start_mark.column + 1
            result[key] = _build(loader, value_node, (*path, key), doc)
        return result
    raise YamlProblem(f"unsupported YAML node {node.tag}", node.start_mark.line + 1)


Problem = tuple[Key, str]
"""A validation problem: where in the document (as a `Document` key) and what is wrong."""


def pydantic_problems(
    exc: ValidationError, prefix: Key, model: type[BaseModel], root: str = "playbook"
) -> list[Problem]:
    """A pydantic error as located problems, with "did you mean" for an unknown key.

    `root` names the document in messages about its top level ("playbook: required key").
    """
    found: list[Problem] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = ".".join(str(p) for p in (*prefix, *loc)) or root
        if error["type"] == "extra_forbidden":
            key = str(loc[-1])
            allowed = _fields_at(model, loc[:-1])
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            found.append(((*prefix, *loc[:-1], f"<{key}>"), f"unknown key {key!r}{hint}"))
        elif error["type"] == "missing":
            parent = ".".join(str(p) for p in (*prefix, *loc[:-1])) or root
            found.append(((*prefix, *loc[:-1]), f"{parent}: required key {loc[-1]!r} is missing"))
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            found.append(((*prefix, *loc), f"{where}: {message}"))
    return found


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model reached by following `loc` from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", {})
        if part not in fields:
            return []
        current = _model_of(fields[part].annotation)
    return [n for n in getattr(current, "model_fields", {}) if n != "path"]


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None
