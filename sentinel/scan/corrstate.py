"""Where a correlation rule keeps its open bursts between scans, tied to its watermark.

A correlation's alert is a *burst*: overlapping hit windows of one group, reported once
with its first event, however long it lasts. Deciding whether the new events extend a
burst, start one, or do neither needs the recent past of every group, not the old lake
files: `sentinel.scan.correlate` keeps that past here, as derived state outside the lake
(the lake is evidence; nothing derived lives in its partitions), under
`<workspace>/state/correlations/<digest of the rule id>/`:

    manifest.json            {"rule", "hash", "upto", "settled", "newest",
                              "tail": [{"file", "newest"}, …], "frozen": file,
                              "hits": [{"file", "from"}, …]}
    manifest.prev.json       the manifest before it (see below)
    tail-<upto>-<n>.parquet  matched events (with their lake provenance) of the batches
                             up to `upto`, those with ts >= settled - timespan
    frozen-<upto>.parquet    per group, the burst of its last hit before `settled`
    hits-<upto>.parquet      the hits at or after `settled` (one row per group and
                             instant: its time and the start of its burst), from the
                             layer's `from` on

`settled` is a time before which the state no longer changes: events of later batches
older than it cannot be placed without the lake (they make the scan re-read it once).

The kept *hits* are layers: each scan recomputes the hits from its first new event on
and writes them as a new layer; a layer holds for `[from, next layer's from)` (a later
layer overrides an earlier one from its own `from` on, also with no rows: hits there may
have gone). A manifest without `hits` (written before hits were kept) is read with
`hits` None: the scan recomputes the hits from `settled` once and keeps them.

Why Parquet files and not tables in `state.db`: DuckDB reads them beside the new lake
files in one query; through SQLite every row would cross Python. Why a manifest and not
the watermark's transaction: the state is *rebuildable*, so it needs no atomic commit
with the watermark:

- A scan writes its files and the new manifest (temp file, fsync, rename; the previous
  manifest kept as `manifest.prev.json`) *before* it commits the watermark. A state is
  valid for a rule whose watermark is `after` when a manifest has the rule's hash, its
  `upto` is `after` (or earlier, with no file of the rule's sources committed between),
  and every file it names reads. A crash between the manifest and the watermark leaves
  the previous manifest, which is still valid.
- Anything else (no manifest, a torn or foreign file, another definition) makes the scan
  rebuild the state once from the lake: the files of the batches up to `upto`.
- Files that neither manifest names are removed. Tail files whose newest event is older
  than what the tail keeps are dropped; after `MAX_TAIL_FILES` the tail is rewritten as
  one file.

Files are 0600 in 0700 directories, like the rest of the workspace. A tail holds what
the lake holds for those events (ids, times, group values, provenance), no more.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from sentinel.scan import statefiles

MANIFEST = "manifest.json"
PREVIOUS = "manifest.prev.json"
MAX_TAIL_FILES = 8


def states_dir(root: Path) -> Path:
    """`<workspace>/state/correlations`: every correlation's state directory."""
    return root / "state" / "correlations"


def state_dir(root: Path, rule_id: str) -> Path:
    """A rule's directory: a digest of its id (an id may be any title, `/` included)."""
    return states_dir(root) / hashlib.sha256(rule_id.encode()).hexdigest()[:24]


@dataclass
class State:
    """A correlation's state as of batch `upto` (see the module doc)."""

    directory: Path
    rule: str
    hash: str
    upto: int = 0
    settled: datetime | None = None
    """Hits before it are summarised in `frozen`; None: nothing is (the tail is all)."""
    newest: datetime | None = None
    """The newest matched event seen."""
    tail: list[dict[str, Any]] = field(default_factory=list)
    """{"file", "newest"}: the tail's files, each with the newest event it holds."""
    frozen: str | None = None
    hits: list[dict[str, Any]] | None = field(default_factory=list)
    """{"file", "from"}: the kept hits' layers, oldest first, `from` increasing; None:
    not kept (an older manifest)."""

    @property
    def tail_files(self) -> list[str]:
        return [str(self.directory / t["file"]) for t in self.tail]

    @property
    def hit_files(self) -> list[str]:
        return [str(self.directory / h["file"]) for h in self.hits or []]

    def layers(self) -> list[tuple[str, datetime, datetime | None]]:
        """The kept hits' layers as (path, from, until): each holds for `[from, until)`."""
        hits = self.hits or []
        starts = [datetime.fromisoformat(h["from"]) for h in hits]
        return [(str(self.directory / h["file"]), start, starts[i + 1] if i + 1 < len(hits)
                 else None) for i, (h, start) in enumerate(zip(hits, starts, strict=True))]

    @property
    def frozen_file(self) -> str | None:
        return str(self.directory / self.frozen) if self.frozen else None

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "hash": self.hash, "upto": self.upto,
            "settled": _iso(self.settled), "newest": _iso(self.newest),
            "tail": self.tail, "frozen": self.frozen, "hits": self.hits,
        }


def empty(directory: Path, rule: str, hash_: str) -> State:
    """No state yet (a rebuild starts from it)."""
    return State(directory, rule, hash_)


def load(
    directory: Path, rule: str, hash_: str, after: int, quiet_since: Callable[[int], bool]
) -> State | None:
    """The valid state for watermark `after`, or None (rebuild).

    `quiet_since(upto)`: True when no batch in `(upto, after]` holds a file of the rule's
    sources (its watermark moved on without it having anything to read)."""
    for name in (MANIFEST, PREVIOUS):
        state = _read(directory / name, rule, hash_)
        if state is None or state.upto > after:
            continue
        if state.upto != after and not quiet_since(state.upto):
            continue
        files = [*state.tail_files, *state.hit_files]
        if all(statefiles.readable(Path(p)) for p in files) and (
            state.frozen_file is None or statefiles.readable(Path(state.frozen_file))
        ):
            return state
    return None


def _read(path: Path, rule: str, hash_: str) -> State | None:
    try:
        body = json.loads(path.read_text())
        if body["hash"] != hash_ or body["rule"] != rule:
            return None
        tail = [{"file": _name(t["file"]), "newest": str(t["newest"])} for t in body["tail"]]
        frozen = _name(body["frozen"]) if body["frozen"] is not None else None
        hits = None
        if body.get("hits") is not None:
            starts = [datetime.fromisoformat(str(h["from"])) for h in body["hits"]]
            if any(a >= b for a, b in zip(starts, starts[1:], strict=False)):
                raise ValueError("hit layers out of order")
            hits = [{"file": _name(h["file"]), "from": start.isoformat()}
                    for h, start in zip(body["hits"], starts, strict=True)]
        return State(path.parent, rule, hash_, int(body["upto"]), _time(body["settled"]),
                     _time(body["newest"]), tail, frozen, hits)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _name(value: Any) -> str:
    """A file name inside the state directory (a manifest cannot point elsewhere)."""
    name = str(value)
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"not a state file name: {name!r}")
    return name


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def commit(old: State | None, new: State) -> None:
    """Make `new` the current manifest and `old` (the state it was computed from, if any)
    the previous one; remove the files neither names."""
    _private(new.directory)
    kept = [new]
    if old is not None and old.upto < new.upto:
        _write_json(new.directory / PREVIOUS, old.as_json())
        kept.append(old)
    else:
        (new.directory / PREVIOUS).unlink(missing_ok=True)
    _write_json(new.directory / MANIFEST, new.as_json())
    keep = {MANIFEST, PREVIOUS}
    for state in kept:
        keep.update(t["file"] for t in state.tail)
        keep.update([state.frozen] if state.frozen else [])
        keep.update(h["file"] for h in state.hits or [])
    for path in new.directory.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def relabel(state: State, upto: int) -> State:
    """The same state at a later watermark (its sources had nothing new)."""
    return replace(state, upto=upto)


def write_table(directory: Path, name: str, table: pa.Table) -> str:
    """`table` as `directory/name`, atomically (temp name, fsync, rename), owner-only."""
    _private(directory)
    statefiles.write_parquet(directory / name, table)
    return name


def _private(directory: Path) -> None:
    """The directory and `state/correlations` above it, owner-only."""
    directory.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    directory.mkdir(exist_ok=True, mode=0o700)


def _write_json(path: Path, body: dict[str, Any]) -> None:
    statefiles.write_text(path, json.dumps(body, indent=1))
