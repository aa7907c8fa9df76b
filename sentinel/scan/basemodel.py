"""Where baseline models live between scans, and how they stay tied to the watermark.

A baseline's model (`sentinel.detect.baseline_model`) aggregates the events of the
batches it has run over. It is derived state, kept outside the lake (the lake is
evidence; nothing derived lives in its partitions), under
`<workspace>/state/baselines/<baseline id>/`:

    manifest.json           {"hash": …, "deltas": [{"file": …, "lo": 0, "hi": 42}, …]}
    <hash>-<lo>-<hi>.parquet the aggregates of the batches with lo < rowid <= hi

Why Parquet files and not tables in `state.db`: a model is read by DuckDB beside the new
Parquet files in one query, as an Arrow-native columnar file (pruned by its statistics);
through SQLite every row would cross Python. Why a manifest and not the watermark's
transaction: the model is *rebuildable*, so it needs no atomic commit with the watermark:

- A scan writes the increment's delta file and a new manifest (temp file, fsync, rename)
  *before* it commits the watermark. The model is valid for a baseline whose watermark is
  `after` when its manifest has the baseline's model hash and deltas chaining from 0 to
  `after` exactly (deltas beyond `after` are a crash between the two: dropped).
- Anything else (no manifest, a torn or foreign file, another definition's hash, a gap)
  rebuilds the model once from the lake: the files of the batches up to `after`.
- Files the manifest does not name are removed. After 12 deltas the model is compacted
  into one file (the `combine` aggregation, so the result is the same rows).

Files are 0600 in 0700 directories, like the rest of the workspace. Values a model keys
on that come from prompt or response text are keyed digests (`$digest_key`), never text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from sentinel.detect.baseline_compiled import CompiledBaseline
from sentinel.detect.engine import parquet_relation
from sentinel.exceptions import SentinelError
from sentinel.scan import statefiles

MAX_DELTAS = 12
MANIFEST = "manifest.json"


class ModelError(SentinelError):
    title = "Baseline model failed"


def models_dir(root: Path) -> Path:
    """`<workspace>/state/baselines`: every baseline's model directory."""
    return root / "state" / "baselines"


@dataclass
class Model:
    """A baseline's model as of one watermark: the files to read (possibly none)."""

    directory: Path
    hash: str
    deltas: list[dict[str, Any]]

    @property
    def upto(self) -> int:
        return self.deltas[-1]["hi"] if self.deltas else 0

    @property
    def files(self) -> list[str]:
        return [str(self.directory / d["file"]) for d in self.deltas if d["file"]]


def model_params(base: CompiledBaseline, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters the model's aggregate SQL uses (never thresholds: they do not change
    the model, so tuning a threshold keeps it)."""
    every = {**base.params, **extra}
    used = set(re.findall(r"\$([a-z_0-9]+)", base.aggregate))
    return {k: v for k, v in every.items() if k in used}


def model_hash(base: CompiledBaseline, params: Mapping[str, Any]) -> str:
    text = base.aggregate + json.dumps(dict(params), default=str, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load(directory: Path, hash_: str, after: int) -> Model | None:
    """The valid model for watermark `after`, or None (rebuild). Drops unused files."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
        deltas = [
            {"file": d["file"], "lo": int(d["lo"]), "hi": int(d["hi"])}
            for d in manifest["deltas"] if int(d["hi"]) <= after
        ]
        valid = manifest["hash"] == hash_
    except (OSError, ValueError, KeyError, TypeError):
        return None
    expected = 0
    for delta in deltas:
        valid = valid and delta["lo"] == expected and (
            delta["file"] is None or statefiles.readable(directory / delta["file"]))
        expected = delta["hi"]
    if not valid or expected != after:
        return None
    model = Model(directory, hash_, deltas)
    _remove_others(model)
    return model


def _remove_others(model: Model) -> None:
    keep = {d["file"] for d in model.deltas} | {MANIFEST}
    for path in model.directory.iterdir():
        if path.name not in keep:
            path.unlink(missing_ok=True)


def relation(model: Model | None, base: CompiledBaseline, new_relation: str) -> str:
    """The model as a relation: its files, or no rows of the right shape."""
    if model is not None and model.files:
        return parquet_relation(model.files)
    return f"(SELECT * FROM ({base.aggregate.replace('{relation}', new_relation)}) LIMIT 0)"


def write_delta(
    duck: duckdb.DuckDBPyConnection,
    model: Model,
    sql: str | None,
    params: Mapping[str, Any],
    lo: int,
    hi: int,
    combine: str,
) -> Model:
    """Add the aggregates of batches `(lo, hi]` (`sql`'s rows; None: no events) and commit
    the manifest; compacts (`combine`) when the chain grows long."""
    name = None
    if sql:
        name = f"{model.hash}-{lo}-{hi}.parquet"
        _write(duck, sql, params, model.directory / name)
    grown = Model(model.directory, model.hash, [*model.deltas, {"file": name, "lo": lo, "hi": hi}])
    if len(grown.files) > MAX_DELTAS:
        grown = compact(duck, grown, combine)
    _write_manifest(grown)
    if len(grown.deltas) == 1:
        _remove_others(grown)
    return grown


def fresh(directory: Path, hash_: str) -> Model:
    """An empty model (watermark 0) in a clean directory."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in directory.iterdir():
        path.unlink(missing_ok=True)
    return Model(directory, hash_, [])


def compact(duck: duckdb.DuckDBPyConnection, model: Model, combine: str) -> Model:
    """All deltas as one file (`combine` over their union); same rows, one file."""
    name = f"{model.hash}-0-{model.upto}.parquet"
    _write(duck, combine.replace("{model}", parquet_relation(model.files)), {},
           model.directory / name)
    return Model(model.directory, model.hash, [{"file": name, "lo": 0, "hi": model.upto}])


def _write(
    duck: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any], path: Path
) -> None:
    """Query to a Parquet file, atomically (temp name, fsync, rename), owner-only."""
    try:
        table = duck.sql(sql, params=dict(params)).to_arrow_table()
    except duckdb.Error as exc:
        message = " ".join(str(exc).split())
        raise ModelError(f"baseline model query failed: {message}") from exc
    statefiles.write_parquet(path, table)


def _write_manifest(model: Model) -> None:
    body = json.dumps({"hash": model.hash, "deltas": model.deltas}, indent=1)
    statefiles.write_text(model.directory / MANIFEST, body)
