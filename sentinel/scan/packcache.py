"""The compiled rule pack kept between scans, so a scan from cron does not compile it again.

Compiling the pack means importing pySigma and converting every rule, and the baselines
importing pydantic and parsing their YAML: most of what a scan with little or nothing
new costs. The result (each rule's and baseline's SQL and what a scan reads of it, and
the problems found) is kept in `state/packs/`, one file per kind and set of inputs,
under a key that hashes everything the compile depends on:

* the path and content of every rule and filter file read (or baseline file), in
  reading order;
* the taxonomy (every installed and configured source's logsource) and the
  `[detect] variables` (for baselines: `[detect] disabled`);
* sentinel's own compiler (the source of `sentinel/detect`, the config reader, the YAML
  reader, the schema and this module) and the installed pySigma, so an upgrade never
  reuses an older compile.

A rule's `[detect] disabled` and status are applied after the cache, as after a compile.

Invariants:
- A hit imports no pySigma and no pydantic: the rules come back as `CachedRule`s, the
  baselines with a `CachedBaseline`, with their SQL; a correlation also with its query
  in parts (`scan.correlate.cut`, made and checked against its SQL when the compile was
  kept). Only a correlation kept without them asks for its Sigma object, and that
  compiles the pack for real, once per process. A baseline parameter JSON cannot carry
  exactly is never kept.
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
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sentinel import __version__
from sentinel.detect.baseline_compiled import (
    BaselineFacts,
    CachedBaseline,
    CompiledBaseline,
    facts_of,
)
from sentinel.detect.compiler import CachedRule, CompiledRule
from sentinel.detect.corrparts import CorrelationParts
from sentinel.detect.inputs import BaselineProblem, RuleProblem, rule_paths
from sentinel.detect.pipeline import Taxonomy
from sentinel.exceptions import SentinelError
from sentinel.scan import statefiles

if TYPE_CHECKING:
    from sentinel.detect.rules import LoadedRule

FORMAT = 3
"""Bumped when the file's layout changes."""

KEEP = 8
"""Cached packs kept per workspace and kind (one per set of inputs, e.g. per `--rules`)."""

KINDS = ("rules-", "baselines-", "playbooks-")
"""The files kept: a rule pack, the baselines, the playbooks' routes (`scan.routecache`)."""

T = TypeVar("T")

_PACKAGE = Path(__file__).resolve().parent.parent
_CODE = (
    *sorted((_PACKAGE / "detect").glob("*.py")), *sorted((_PACKAGE / "config").glob("*.py")),
    _PACKAGE / "respond" / "yamlsafe.py", _PACKAGE / "schema.py", Path(__file__),
    _PACKAGE / "scan" / "correlate.py",  # a correlation's kept parts name its tables
)


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
            digest.update(f"{path}\0{file_digest(path)}\0".encode())
        table = sorted((p, s or "", list(names)) for (p, s), names in self.taxonomy.sources.items())
        digest.update(json.dumps([table, self.variables], sort_keys=True).encode())
        return digest.hexdigest()

    def slot(self, kind: str) -> str:
        """The file name for this kind and set of inputs (their paths, not their content)."""
        return slot_name(kind, self.files)


def slot_name(kind: str, paths: Sequence[Path]) -> str:
    """A kept file's name in `packs_dir`: its kind and a hash of the paths it was made
    from (not their content: one file per kind and set of inputs, rewritten on change)."""
    names = "\0".join(str(path) for path in paths)
    return f"{kind}-{hashlib.sha256(names.encode()).hexdigest()[:16]}.json"


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
    recompile = _Recompile(compile_now)
    return _kept(
        packs_dir(root) / inputs.slot("rules"), inputs.key(), recompile.run, _entry,
        lambda item: _rule(item, recompile.loaded),
    )


def compiled_baselines(
    root: Path, inputs: PackInputs,
    compile_now: Callable[[], tuple[list[CompiledBaseline], list[RuleProblem]]],
) -> tuple[list[CompiledBaseline], list[RuleProblem]]:
    """The baselines compiled from `inputs` (their files), kept like the rule pack."""
    return _kept(packs_dir(root) / inputs.slot("baselines"), inputs.key(), compile_now,
                 _baseline_entry, _baseline)


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


def _kept(
    path: Path, key: str, compile_now: Callable[[], tuple[list[T], list[RuleProblem]]],
    encode: Callable[[T], dict[str, Any]], decode: Callable[[Any], T],
) -> tuple[list[T], list[RuleProblem]]:
    cached = read(path, key, decode)
    if cached is not None:
        return cached
    compiled, problems = compile_now()
    try:
        items = [encode(item) for item in compiled]
    except (TypeError, ValueError):
        return compiled, problems  # a value JSON cannot carry: compiled every time
    write(path, key, items, problems)
    return compiled, problems


def read(
    path: Path, key: str, decode: Callable[[Any], T]
) -> tuple[list[T], list[RuleProblem]] | None:
    """What is kept at `path` under `key`; None when it is missing, damaged or other."""
    try:
        with path.open("rb") as handle:
            header = json.loads(handle.readline())
            body = handle.read()
        if not (isinstance(header, dict) and header.get("format") == FORMAT
                and header.get("key") == key
                and header.get("sha256") == hashlib.sha256(body).hexdigest()):
            return None
        data = json.loads(body)
        items = [decode(item) for item in data["items"]]
        problems = [_problem(p) for p in data["problems"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None  # a cache that cannot be read is a miss, never an error
    return items, problems


def write(
    path: Path, key: str, items: Sequence[dict[str, Any]], problems: Sequence[RuleProblem]
) -> None:
    """Keep a compile at `path` under `key` (atomically); a failure only costs a compile."""
    try:
        body = json.dumps({"items": list(items), "problems": [
            {"path": str(p.path), "line": p.line, "message": p.message,
             "column": getattr(p, "column", None), "baseline": isinstance(p, BaselineProblem)}
            for p in problems
        ]}).encode()
    except (TypeError, ValueError):
        return  # a value JSON cannot carry: never kept, compiled every time
    header = {"format": FORMAT, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        statefiles.write_text(path, json.dumps(header) + "\n" + body.decode())
        _prune(path.parent, path.name.split("-", 1)[0])
    except OSError:
        pass  # read-only state/ or a full disk: the next scan compiles again


def _problem(item: dict[str, Any]) -> RuleProblem:
    path, line, message = Path(as_text(item["path"])), _line(item["line"]), as_text(item["message"])
    if item["baseline"] is True:
        return BaselineProblem(path, line, message, _line(item["column"]))
    return RuleProblem(path, line, message)


def _entry(rule: CompiledRule) -> dict[str, Any]:
    loaded = rule.loaded
    entry: dict[str, Any] = {
        "rule_id": loaded.rule_id, "title": loaded.title, "level": loaded.level,
        "kind": loaded.kind, "status": loaded.status, "tags": list(loaded.tags),
        "path": str(loaded.path), "line": loaded.line,
        "logsources": [list(pair) for pair in loaded.logsources],
        "is_output": loaded.is_output, "sql": rule.sql,
    }
    if loaded.kind == "correlation":
        from sentinel.scan import correlate  # written after a real compile: pySigma is here

        try:
            parts, old_matched = correlate.cut(rule)
        except SentinelError:  # kept without: the scan that needs it reports it
            return entry
        entry["cut"] = {
            "matched": parts.matched, "decide": list(parts.decide), "group": list(parts.group),
            "seconds": parts.seconds, "old_matched": old_matched,
        }
    return entry


def _cut(item: Any) -> tuple[CorrelationParts, str] | None:
    """A correlation's parts as `_entry` kept them (checked there against its SQL)."""
    if item is None:
        return None
    seconds = item["seconds"]
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise TypeError("expected a timespan in seconds")
    parts = CorrelationParts(
        matched=as_text(item["matched"]), decide=tuple(as_text(cte) for cte in item["decide"]),
        group=tuple(as_text(name) for name in item["group"]), seconds=seconds,
    )
    return parts, as_text(item["old_matched"])


def _rule(item: Any, loader: Callable[[], Mapping[str, LoadedRule]] | None) -> CompiledRule:
    kind = as_text(item["kind"])
    if kind not in ("detection", "correlation"):
        raise ValueError(f"unknown rule kind {kind!r}")
    cached = CachedRule(
        rule_id=as_text(item["rule_id"]), title=as_text(item["title"]),
        level=as_text(item["level"]), kind=kind, status=as_text(item["status"]),
        tags=tuple(as_text(tag) for tag in item["tags"]),
        path=Path(as_text(item["path"])), line=_line(item["line"]),
        logsources=tuple((_optional(p), _optional(s)) for p, s in item["logsources"]),
        is_output=bool(item["is_output"]), recompile=loader,
        cut=_cut(item.get("cut")) if kind == "correlation" else None,
    )
    return CompiledRule(cached, as_text(item["sql"]))


def _baseline_entry(base: CompiledBaseline) -> dict[str, Any]:
    facts = facts_of(base.loaded)
    return {
        "facts": {
            "id": facts.id, "title": facts.title, "level": facts.level, "kind": facts.kind,
            "status": facts.status, "by": list(facts.by), "tags": list(facts.tags),
            "learning": facts.learning,
            "min_history_window": _encode(facts.min_history_window),
        },
        "template": base.template, "sources": list(base.sources),
        "params": {name: _encode(value) for name, value in base.params.items()},
        "aggregate": base.aggregate, "combine": base.combine, "decide": base.decide,
        "lookback": _encode(base.lookback),
    }


def _baseline(item: Any) -> CompiledBaseline:
    facts = item["facts"]
    window = _decode(facts["min_history_window"])
    lookback = _decode(item["lookback"])
    if not isinstance(window, timedelta) or not isinstance(lookback, timedelta):
        raise TypeError("expected durations")
    spec = BaselineFacts(
        id=as_text(facts["id"]), title=as_text(facts["title"]), level=as_text(facts["level"]),
        kind=as_text(facts["kind"]), status=as_text(facts["status"]),
        by=tuple(as_text(name) for name in facts["by"]),
        tags=tuple(as_text(tag) for tag in facts["tags"]), learning=as_text(facts["learning"]),
        min_history_window=window,
    )
    return CompiledBaseline(
        CachedBaseline(spec), as_text(item["template"]),
        {as_text(name): _decode(value) for name, value in item["params"].items()},
        tuple(as_text(source) for source in item["sources"]),
        aggregate=as_text(item["aggregate"]), combine=as_text(item["combine"]),
        decide=as_text(item["decide"]), lookback=lookback,
    )


_PLAIN = (str, int, float, bool, type(None))


def _encode(value: Any) -> Any:
    """A parameter as JSON that decodes to an equal value of the same type."""
    if isinstance(value, timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, _PLAIN):
        return {"value": value}
    if isinstance(value, list) and all(isinstance(v, _PLAIN) for v in value):
        return {"value": value}
    raise TypeError(f"a baseline parameter of type {type(value).__name__} is not kept")


def _decode(item: Any) -> Any:
    if set(item) == {"timedelta"}:
        days, seconds, micro = item["timedelta"]
        if not all(isinstance(n, int) for n in (days, seconds, micro)):
            raise TypeError("expected a duration")
        return timedelta(days=days, seconds=seconds, microseconds=micro)
    if set(item) == {"value"}:
        value = item["value"]
        if isinstance(value, _PLAIN) or (
            isinstance(value, list) and all(isinstance(v, _PLAIN) for v in value)
        ):
            return value
    raise ValueError("not a kept parameter")


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else as_text(value)


def _line(value: Any) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected a line number, found {type(value).__name__}")


def file_digest(path: Path) -> str:
    """A file's SHA-256, or why it cannot be read (a key that reads it changes either way)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:  # the compile reports it; its error is part of the key
        return f"unreadable: {exc.strerror}"


_VERSION: list[str] = []


def _code_version() -> str:
    """sentinel's compiler source and pySigma's installed version, hashed once."""
    if not _VERSION:
        _VERSION.append(code_version(_CODE, *_pysigma_dists()))
    return _VERSION[0]


def code_version(paths: Sequence[Path], *more: str) -> str:
    """A hash of sentinel's version, of the name (within the package) and content of each
    of `paths` (the source a kept file depends on) and of `more`."""
    digest = hashlib.sha256(__version__.encode())
    for path in paths:
        name = path.relative_to(_PACKAGE) if path.is_relative_to(_PACKAGE) else path.name
        digest.update(f"\0{name}\0{file_digest(path)}".encode())
    digest.update("\0".join(more).encode())
    return digest.hexdigest()


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


def _prune(directory: Path, kind: str) -> None:
    """Keep the KEEP most recently written files of a kind (one per set of inputs)."""
    packs = sorted(directory.glob(f"{kind}-*.json"), key=lambda p: p.stat().st_mtime,
                   reverse=True)
    others = [p for p in directory.glob("*.json") if not p.name.startswith(KINDS)]
    for stale in [*packs[KEEP:], *others]:  # others: an older layout's files
        stale.unlink(missing_ok=True)
