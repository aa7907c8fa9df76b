"""The compiled rule pack kept between scans, so a scan from cron does not compile it again.

Compiling the pack means importing pySigma and converting every rule: most of what a
scan with little or nothing new costs. The result (each rule's SQL and what a scan
reads of it, and the problems found) is kept in `state/packs/`, one file per set of rule
inputs, under a key that hashes everything the compile depends on:

* the path and content of every rule and filter file read, in reading order;
* the taxonomy (every installed and configured source's logsource) and the
  `[detect] variables`;
* sentinel's own compiler (the source of `sentinel/detect`, the schema and this module)
  and the installed pySigma, so an upgrade never reuses an older compile.

`[detect] disabled` and a rule's status are applied after the cache, as after a compile.

Invariants:
- A hit imports no pySigma: the rules come back as `CachedRule`s with their SQL. Only a
  correlation that cuts its query into parts asks for its Sigma object, and that
  compiles the pack for real, once per process.
- A missing, damaged, truncated or foreign file, or one of another key, is a miss: the
  pack is compiled and the file rewritten, silently. The file carries the SHA-256 of its
  body, so a body that is not the one written is never half-read. A file that cannot
  be written costs the next scan a compile, nothing else.
- The file is written atomically and owner-only (`statefiles`). It is as trusted as the
  rule files themselves: whoever can write `state/` can also write `detections/` or
  `sentinel.toml`. It is data (JSON), never code.
- `sentinel rules test`, `rules convert` and `sigma check` always compile for real.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sentinel import __version__
from sentinel.detect.compiler import CachedRule, CompiledRule
from sentinel.detect.inputs import RuleProblem, rule_paths
from sentinel.detect.pipeline import Taxonomy
from sentinel.scan import statefiles

if TYPE_CHECKING:
    from sentinel.detect.rules import LoadedRule

FORMAT = 1
"""Bumped when the file's layout changes."""

KEEP = 8
"""Cached packs kept per workspace (one per set of rule inputs, e.g. per `--rules`)."""

_PACKAGE = Path(__file__).resolve().parent.parent
_CODE = (*sorted((_PACKAGE / "detect").glob("*.py")), _PACKAGE / "schema.py", Path(__file__))


@dataclass(frozen=True)
class PackInputs:
    """What one compile reads: the rule and filter files and the settings it applies."""

    files: list[Path]
    taxonomy: Taxonomy
    variables: dict[str, list[str]]

    def key(self) -> str:
        """The hash of everything the compile's result depends on (module docstring)."""
        digest = hashlib.sha256()
        digest.update(f"{FORMAT}\0{_code_version()}\0".encode())
        for path in self.files:
            digest.update(f"{path}\0{_file_digest(path)}\0".encode())
        table = sorted((p, s or "", list(names)) for (p, s), names in self.taxonomy.sources.items())
        digest.update(json.dumps([table, self.variables], sort_keys=True).encode())
        return digest.hexdigest()

    def slot(self) -> str:
        """The file name for this set of inputs (their paths, not their content)."""
        names = "\0".join(str(path) for path in self.files)
        return hashlib.sha256(names.encode()).hexdigest()[:16] + ".json"


def pack_inputs(
    inputs: Sequence[Path], filters: Sequence[Path], taxonomy: Taxonomy,
    variables: Mapping[str, Sequence[str]],
) -> PackInputs:
    """The files `load_rules(inputs, filters)` reads, in its order, and the settings."""
    return PackInputs(
        rule_paths([*inputs, *filters]), taxonomy,
        {name: list(values) for name, values in variables.items()},
    )


def packs_dir(root: Path) -> Path:
    return root / "state" / "packs"


def compiled_pack(
    root: Path, inputs: PackInputs, compile_now: Callable[[], tuple[list[CompiledRule],
                                                                   list[RuleProblem]]],
) -> tuple[list[CompiledRule], list[RuleProblem]]:
    """The pack compiled from `inputs`: read from the workspace's cache when it holds this
    key, else `compile_now()`, which is then kept for the next scan."""
    path = packs_dir(root) / inputs.slot()
    key = inputs.key()
    recompile = _Recompile(compile_now)
    cached = read(path, key, recompile)
    if cached is not None:
        return cached
    compiled, problems = recompile.run()
    write(path, key, compiled, problems)
    return compiled, problems


class _Recompile:
    """The real compile, run at most once per scan, for a miss or when a cached
    correlation is asked for its Sigma object."""

    def __init__(
        self, compile_now: Callable[[], tuple[list[CompiledRule], list[RuleProblem]]]
    ) -> None:
        self._compile_now = compile_now
        self._done: tuple[list[CompiledRule], list[RuleProblem]] | None = None

    def run(self) -> tuple[list[CompiledRule], list[RuleProblem]]:
        if self._done is None:
            self._done = self._compile_now()
        return self._done

    def loaded(self) -> dict[str, LoadedRule]:
        from sentinel.detect.rules import LoadedRule

        return {
            rule.rule_id: rule.loaded for rule in self.run()[0]
            if isinstance(rule.loaded, LoadedRule)
        }


def read(
    path: Path, key: str, recompile: _Recompile | None = None
) -> tuple[list[CompiledRule], list[RuleProblem]] | None:
    """The pack cached at `path` under `key`; None when it is missing, damaged or other."""
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
            body = handle.read()
        if not (isinstance(header, dict) and header.get("format") == FORMAT
                and header.get("key") == key
                and header.get("sha256") == hashlib.sha256(body).hexdigest()):
            return None
        data = json.loads(body)
        loader = recompile.loaded if recompile is not None else None
        rules = [_rule(item, loader) for item in data["rules"]]
        problems = [
            RuleProblem(Path(_text(p["path"])), _line(p["line"]), _text(p["message"]))
            for p in data["problems"]
        ]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None  # a cache that cannot be read is a miss, never an error
    return rules, problems


def write(
    path: Path, key: str, compiled: Sequence[CompiledRule], problems: Sequence[RuleProblem]
) -> None:
    """Keep a compile at `path` under `key` (atomically); a failure only costs a compile."""
    body = json.dumps({
        "rules": [_entry(rule) for rule in compiled],
        "problems": [
            {"path": str(p.path), "line": p.line, "message": p.message} for p in problems
        ],
    }).encode()
    header = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        statefiles.write_text(path, json.dumps(header) + "\n" + body.decode())
        _prune(path.parent)
    except OSError:
        pass  # read-only state/ or a full disk: the next scan compiles again


def _entry(rule: CompiledRule) -> dict[str, Any]:
    loaded = rule.loaded
    return {
        "rule_id": loaded.rule_id, "title": loaded.title, "level": loaded.level,
        "kind": loaded.kind, "status": loaded.status, "tags": list(loaded.tags),
        "path": str(loaded.path), "line": loaded.line,
        "logsources": [list(pair) for pair in loaded.logsources],
        "is_output": loaded.is_output, "sql": rule.sql,
    }


def _rule(item: dict[str, Any], loader: Callable[[], Mapping[str, LoadedRule]] | None
          ) -> CompiledRule:
    kind = _text(item["kind"])
    if kind not in ("detection", "correlation"):
        raise ValueError(f"unknown rule kind {kind!r}")
    cached = CachedRule(
        rule_id=_text(item["rule_id"]), title=_text(item["title"]), level=_text(item["level"]),
        kind=kind, status=_text(item["status"]),
        tags=tuple(_text(tag) for tag in item["tags"]),
        path=Path(_text(item["path"])), line=_line(item["line"]),
        logsources=tuple((_optional(p), _optional(s)) for p, s in item["logsources"]),
        is_output=bool(item["is_output"]), recompile=loader,
    )
    return CompiledRule(cached, _text(item["sql"]))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _line(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected a line number, found {type(value).__name__}")


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:  # the compile reports it; its error is part of the key
        return f"unreadable: {exc.strerror}"


_VERSION: list[str] = []


def _code_version() -> str:
    """sentinel's compiler source and pySigma's installed version, hashed once."""
    if not _VERSION:
        digest = hashlib.sha256(__version__.encode())
        for path in _CODE:
            digest.update(f"\0{path.name}\0{_file_digest(path)}".encode())
        digest.update("\0".join(_pysigma_dists()).encode())
        _VERSION.append(digest.hexdigest())
    return _VERSION[0]


def _pysigma_dists() -> list[str]:
    """The installed pySigma's distribution folders (name and version), found without
    importing it (`importlib.metadata` would scan every installed package)."""
    from importlib.util import find_spec

    spec = find_spec("sigma")
    places = list(spec.submodule_search_locations or []) if spec is not None else []
    return sorted(
        found.name for place in places if os.path.isdir(place)
        for found in Path(place).parent.glob("[pP][yY][sS]igma-*.dist-info")
    )


def _prune(directory: Path) -> None:
    """Keep the KEEP most recently written packs (one per set of inputs)."""
    packs = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in packs[KEEP:]:
        stale.unlink(missing_ok=True)
