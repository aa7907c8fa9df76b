"""Normalisation throughput per source, measured against DuckDB's own floor in one run.

`bench/ingest.py` times the whole CLI; this bench isolates the stages a source owns, so
an optimisation of one source's SQL shows up undiluted. For each source it generates N
records (demo generator, prompts of 200–2,000 characters) into a temporary JSON-lines
file, then times, batch by batch exactly as `sentinel ingest` does (`batch_bytes`
batches, PII scan excluded):

  frame      framing.read_lines: file bytes -> Arrow record column
  unwrap     framing.unwrap: envelope / array expansion (a pass-through for plain lines)
  normalise  normalise.normalise: the source's SQL, casts, type checks, split
  write      lake.writer.write_staging: Parquet per (source, date), fsynced

and, on the same file, the floor: DuckDB alone converting it,
`COPY (SELECT * FROM read_json(FILE)) TO 'x.parquet'`. The target is ingest within 2x of
that floor (ratio <= 2.0).

    python bench/normalise_speed.py                     # 100,000 records per source
    python bench/normalise_speed.py --records 1000000 --sources litellm
    python bench/normalise_speed.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from sentinel.buffers import BufferPools
from sentinel.demo.prompts import prompt_for
from sentinel.demo.records import Call, bedrock_record, litellm_payload, model_map_json
from sentinel.demo.world import (
    AWS_ACCOUNT,
    BEDROCK_MODEL_WEIGHTS,
    BEDROCK_MODELS,
    BEDROCK_REGIONS,
    LITELLM_MODEL_WEIGHTS,
    LITELLM_MODELS,
    TEAMS,
    build_world,
)
from sentinel.ingest import framing, unwrap
from sentinel.ingest.normalise import connect, normalise
from sentinel.lake.writer import write_staging
from sentinel.sources import get_source

BUFFERS = BufferPools()

BATCH_BYTES = 64 * 1024 * 1024
MAX_LINE_BYTES = 8 * 1024 * 1024
PROMPT_POOL = 2000
TARGET_RATIO = 2.0


@dataclass
class Timing:
    source: str
    records: int
    mb: float
    floor_s: float
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return sum(self.stages.values())

    @property
    def ratio(self) -> float:
        return self.total_s / self.floor_s


def _litellm_lines(rng: random.Random, n: int) -> Callable[[int], str]:
    world = build_world(rng)
    pool = [prompt_for(rng, rng.choice(TEAMS)) for _ in range(PROMPT_POOL)]
    maps = {m.name: model_map_json(m) for m in LITELLM_MODELS}
    users = [u for k in world.keys for u in k.users]
    key_of = {u.user_id: k for k in world.keys for u in k.users}
    models = rng.choices(LITELLM_MODELS, LITELLM_MODEL_WEIGHTS, k=n)
    start, step = datetime(2026, 11, 1, tzinfo=UTC), timedelta(days=3) / n

    def line(i: int) -> str:
        user = users[i % len(users)]
        prompt, reply = pool[rng.randrange(PROMPT_POOL)]
        call = Call(start + step * i, prompt, reply, user, user.ip, key=key_of[user.user_id],
                    model=models[i], stream=i % 3 == 0, failed=i % 50 == 0)
        return litellm_payload(rng, call, maps)

    return line


def _bedrock_lines(rng: random.Random, n: int) -> Callable[[int], str]:
    pool = [prompt_for(rng, rng.choice(TEAMS)) for _ in range(PROMPT_POOL)]
    start, step = datetime(2026, 11, 1, tzinfo=UTC), timedelta(days=3) / n
    arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/app-role/i-0a1b2c3d4e5f60718"

    def line(i: int) -> str:
        model_id, family = rng.choices(BEDROCK_MODELS, BEDROCK_MODEL_WEIGHTS)[0]
        op = (("InvokeModel", "InvokeModelWithResponseStream", "Converse")[i % 3]
              if family == "anthropic" else "Converse")
        prompt, reply = pool[rng.randrange(PROMPT_POOL)]
        call = Call((start + step * i).replace(microsecond=0), prompt, reply, None,
                    "10.40.1.20", region=BEDROCK_REGIONS[i % 3], identity_arn=arn,
                    bedrock_model=model_id, operation=op,
                    system="You are terse." if i % 4 == 0 else None,
                    done_marker=i % 40 == 0)
        return json.dumps(bedrock_record(rng, call))

    return line


GENERATORS = {"litellm": _litellm_lines, "bedrock": _bedrock_lines}


def generate(source: str, path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    line = GENERATORS[source](rng, n)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        for i in range(n):
            out.write(line(i))
            out.write("\n")


def duckdb_floor(path: Path, workdir: Path) -> float:
    """DuckDB alone: the JSON-lines file to Parquet, nothing else."""
    target = workdir / "floor.parquet"
    con = duckdb.connect(":memory:")
    started = time.perf_counter()
    con.execute(
        f"COPY (SELECT * FROM read_json('{path}', format = 'newline_delimited')) "
        f"TO '{target}' (FORMAT parquet)"
    )
    seconds = time.perf_counter() - started
    con.close()
    target.unlink(missing_ok=True)
    return seconds


def run_ingest(source_name: str, path: Path, workdir: Path) -> tuple[dict[str, float], int]:
    """The engine's per-batch pipeline (PII scan excluded); seconds per stage, events."""
    source = get_source(source_name)
    con = connect()
    staging = workdir / "staging"
    staging.mkdir(exist_ok=True)
    stages = dict.fromkeys(("frame", "unwrap", "normalise", "write"), 0.0)
    events_total = 0
    with path.open("rb") as stream:
        chunks = framing.read_lines(stream, 0, BATCH_BYTES, MAX_LINE_BYTES, BUFFERS)
        number = 0
        while True:
            t0 = time.perf_counter()
            chunk = next(chunks, None)
            t1 = time.perf_counter()
            stages["frame"] += t1 - t0
            if chunk is None:
                break
            records = unwrap.unwrap(con, chunk.records, source.envelope_paths, False)
            t2 = time.perf_counter()
            events, rejected = normalise(con, source, records, str(path))
            t3 = time.perf_counter()
            write_staging(events, staging, f"bench{number:05d}")
            t4 = time.perf_counter()
            stages["unwrap"] += t2 - t1
            stages["normalise"] += t3 - t2
            stages["write"] += t4 - t3
            if rejected.num_rows:
                raise SystemExit(f"{source_name}: {rejected.num_rows} records rejected, e.g. "
                                 f"{rejected.column('reason')[0]}")
            events_total += events.num_rows
            number += 1
    con.close()
    for part in staging.iterdir():
        part.unlink()
    return stages, events_total


def bench(source: str, records: int, workdir: Path) -> Timing:
    path = workdir / f"{source}.jsonl"
    started = time.perf_counter()
    generate(source, path, records)
    mb = path.stat().st_size / 1e6
    print(f"{source}: generated {records:,} records, {mb:,.1f} MB "
          f"in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    with path.open("rb") as warm:  # warm the page cache for both contenders
        while warm.read(BATCH_BYTES):
            pass
    floor = duckdb_floor(path, workdir)
    stages, events = run_ingest(source, path, workdir)
    if events != records:
        raise SystemExit(f"{source}: {events:,} events from {records:,} records")
    path.unlink()
    return Timing(source, records, mb, floor, stages)


def report(timings: list[Timing]) -> list[str]:
    lines = [
        "| source | MB | floor MB/s | ingest MB/s | records/s | ratio | frame | unwrap "
        "| normalise | write |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for t in timings:
        s = t.stages
        lines.append(
            f"| {t.source} | {t.mb:,.0f} | {t.mb / t.floor_s:,.1f} | {t.mb / t.total_s:,.1f} "
            f"| {t.records / t.total_s:,.0f} | {t.ratio:.2f}x | {s['frame']:.2f}s "
            f"| {s['unwrap']:.2f}s | {s['normalise']:.2f}s | {s['write']:.2f}s |"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"peak RSS of this process: {peak:,.0f} MB")
    for t in timings:
        verdict = "OK" if t.ratio <= TARGET_RATIO else "MISSED"
        lines.append(f"{t.source}: ingest / duckdb floor = {t.ratio:.2f}x "
                     f"(target <= {TARGET_RATIO:.1f}x): {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--sources", nargs="+", default=list(GENERATORS),
                        choices=list(GENERATORS))
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sentinel-normbench-") as tmp:
        timings = [bench(source, args.records, Path(tmp)) for source in args.sources]
    lines = report(timings)
    print("\n".join(lines))
    if args.json:
        payload = [asdict(t) | {"total_s": t.total_s, "ratio": t.ratio} for t in timings]
        args.json.write_text(json.dumps({"timings": payload, "report": lines}, indent=2))


if __name__ == "__main__":
    main()
