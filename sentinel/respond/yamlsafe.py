"""Reading a playbook's YAML as plain data plus the line of every value and key.

Invariants:
- Anchors and aliases are refused outright, so a "billion laughs" document (aliases of
  aliases that expand exponentially) is rejected before it expands. Playbooks are
  short hand-written files and never need them.
- Only the safe YAML types are built (SafeLoader's resolver): strings, numbers, booleans,
  null, lists and maps. Duplicate keys are an error, not "the last one wins".
- Every value and mapping key gets a `Location` (path, line, column), so validation
  errors point at the line to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
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
    def compose_node(self, parent: Node | None, index: Any) -> Node | None:  # type: ignore[override]
        event = self.peek_event()
        if isinstance(event, AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise YamlProblem(
                "YAML anchors and aliases are not allowed in playbooks (they can expand "
                "exponentially: a 'billion laughs' bomb)", mark.line + 1, mark.column + 1,
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]


@dataclass
class Document:
    """The data of one YAML file and where each part of it is."""

    data: Any
    lines: dict[Key, int]
    """(path of keys/indexes) → line; a key's own line under `path + ("<key>",)`."""

    def line_of(self, loc: Key) -> int:
        """The line of the deepest known part of `loc` (1 if none)."""
        for end in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:end]))
            if line:
                return line
        return 1


def load(text: str) -> Document:
    """Parse `text` (one YAML document); raises YamlProblem with a line."""
    if len(text.encode("utf-8", "replace")) > MAX_BYTES:
        raise YamlProblem(f"file is larger than {MAX_BYTES // 1024} KiB", 1)
    loader = _NoAliasLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(f"invalid YAML: {exc.problem or exc}", line) from exc
    except yaml.YAMLError as exc:
        raise YamlProblem(f"invalid YAML: {exc}", 1) from exc
    finally:
        loader.dispose()
    if node is None:
        raise YamlProblem("the file is empty", 1)
    lines: dict[Key, int] = {}
    data = _build(loader, node, (), lines)
    return Document(data, lines)


def _build(loader: yaml.SafeLoader, node: Node, path: Key, lines: dict[Key, int]) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, ScalarNode):
        return loader.construct_object(node, deep=True)
    if isinstance(node, SequenceNode):
        return [_build(loader, item, (*path, i), lines) for i, item in enumerate(node.value)]
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise YamlProblem(f"keys must be text, got {key!r}", key_node.start_mark.line + 1)
            if key in result:
                raise YamlProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            lines[(*path, f"<{key}>")] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, (*path, key), lines)
        return result
    raise YamlProblem(f"unsupported YAML node {node.tag}", node.start_mark.line + 1)
