"""Scanner throughput: MB/s of prompt text, against a Python `re` loop and Presidio.

Events are tiled from the labelled corpus (Faker prose in many locales, code, log lines)
in batches the size the ingest engine hands over. Two mixes: `realistic` (PII or a
secret in ~2% of prompts, a look-alike in ~5%) and `adversarial` (5% and 35%: every
third prompt holds an order number, UUID, hash, bad card or timestamp that the scanner
must look at and reject). Measured in the same run:

* sentinel: `sentinel.pii.engine.find` over each batch (what `scan_events` adds to
  ingest besides building the Arrow columns, timed separately as "scan_events"), as
  wall MB/s and as MB per CPU-second of all threads (`time.process_time`), which a
  machine shared with other jobs changes far less;
* a straightforward per-record Python loop: every catalog pattern with `re.finditer`,
  then the same validators, on a sample, in MB per CPU-second;
* Microsoft Presidio's `AnalyzerEngine` with its pattern recognizers only (no NLP
  model), on a smaller sample, in MB per CPU-second; skipped with a message when
  presidio is not installed. Both single-threaded, so compared with sentinel's CPU rate.

    .venv/bin/python bench/pii_speed.py --events 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pii_corpus import generate  # noqa: E402
from sentinel.config import Config  # noqa: E402
from sentinel.pii.catalog import default_catalog  # noqa: E402
from sentinel.pii.engine import find as _find  # noqa: E402
from sentinel.pii.pool import ScanPool  # noqa: E402
from sentinel.pii.scanner import scan_events  # noqa: E402
from sentinel.schema import EVENT_SCHEMA  # noqa: E402

POOL = ScanPool()
"""The threads and worker processes every scan here uses (a Runtime's, in sentinel)."""


def find(batch: pa.Array, catalog: object) -> list:  # type: ignore[type-arg]
    return _find(batch, catalog, pool=POOL)  # type: ignore[arg-type,return-value]

BATCH = 100_000
MIXES = {"realistic": (0.02, 0.05), "adversarial": (0.05, 0.35)}


def corpus(
    events: int,
    pool: int,
    seed: int,
    pii_rate: float = 0.05,
    negative_rate: float = 0.35,
    distinct: bool = False,
) -> list[pa.Array]:
    texts = [s.text for s in generate(pool, seed, pii_rate, negative_rate)]
    batches = []
    for start in range(0, events, BATCH):
        rows = [texts[(start + i) * 7919 % pool] for i in range(min(BATCH, events - start))]
        if distinct:
            rows = [f"{text}{_tag(i)}" for i, text in enumerate(rows)]
        batches.append(pa.array(rows, pa.string()))
    return batches


def _tag(i: int) -> str:
    """A suffix unique to row `i` of a batch, lowercase letters only (no digits, no PII)."""
    letters = []
    for _ in range(4):
        i, r = divmod(i, 26)
        letters.append(chr(97 + r))
    return " (ref " + "".join(letters) + ")"


def bench_sentinel(batches: list[pa.Array]) -> tuple[float, float, int, float]:
    """(wall MB/s, MB per CPU-second over all threads and workers, findings, start-up s).

    The first batch is scanned once before timing: it starts the worker processes
    (`sentinel.pii.workers`), whose start-up is reported on its own.
    """
    catalog = default_catalog()
    started = time.perf_counter()
    find(batches[0], catalog)  # warm-up: compile, thread pool, worker processes
    startup = time.perf_counter() - started
    total = sum(b.nbytes - 4 * (len(b) + 1) for b in batches)  # text bytes, not offsets
    found = 0
    started, cpu = time.perf_counter(), _cpu_seconds()
    for batch in batches:
        found += len(find(batch, catalog))
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return total / wall / 1e6, total / cpu / 1e6, found, startup


def _cpu_seconds() -> float:
    """CPU time of this process and of its running scan workers (Linux: from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = time.process_time()
    for worker in POOL.workers._workers:
        try:
            fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def bench_scan_events(batch: pa.Array) -> float:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    n = len(batch)
    columns = {f.name: pa.nulls(n, f.type) for f in EVENT_SCHEMA}
    columns.update(
        event_id=pa.array([str(i) for i in range(n)]),
        ts=pa.array([now] * n, EVENT_SCHEMA.field("ts").type),
        ingested_at=pa.array([now] * n, EVENT_SCHEMA.field("ingested_at").type),
        source=pa.array(["bench"] * n),
        prompt_text=batch,
        raw=pc.binary_join_element_wise('{"prompt": "', batch, '"}', ""),
    )
    table = pa.table(columns, schema=EVENT_SCHEMA)
    started = time.perf_counter()
    scan_events(table, Config(), b"k" * 32, POOL)
    return (batch.nbytes - 4 * (n + 1)) / (time.perf_counter() - started) / 1e6


def bench_python_loop(texts: list[str]) -> float:
    """MB per CPU-second (single-threaded, so about its wall rate on an idle core)."""
    catalog = default_catalog()
    started = time.process_time()
    for text in texts:
        for compiled, check in zip(catalog.compiled, catalog.checks, strict=True):
            for m in compiled.finditer(text):
                value = m.group("v") if "v" in compiled.groupindex else m.group(0)
                if check is not None:
                    check(value)
    size = sum(len(t.encode()) for t in texts)
    return size / (time.process_time() - started) / 1e6


def bench_presidio(texts: list[str]) -> float | None:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine
    except ImportError:
        return None

    class NoNlp(NlpEngine):  # pattern recognizers only: no spaCy model is loaded
        def load(self) -> None: ...
        def is_loaded(self) -> bool:
            return True

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            return NlpArtifacts([], [], [], [], None, language)  # type: ignore[arg-type]

        def process_batch(self, texts, language, **kwargs):  # type: ignore[no-untyped-def]
            return [(t, self.process_text(t, language)) for t in texts]

        def is_stopword(self, word: str, language: str) -> bool:
            return False

        def is_punct(self, word: str, language: str) -> bool:
            return False

        def get_supported_entities(self) -> list[str]:
            return []

        def get_supported_languages(self) -> list[str]:
            return ["en"]

    registry = RecognizerRegistry()
    registry.load_predefined_recognizers()
    registry.recognizers = [
        r for r in registry.recognizers if type(r).__name__ not in ("SpacyRecognizer",)
    ]
    engine = AnalyzerEngine(registry=registry, nlp_engine=NoNlp(), supported_languages=["en"])
    started = time.process_time()
    for text in texts:
        engine.analyze(text=text, language="en")
    size = sum(len(t.encode()) for t in texts)
    return size / (time.process_time() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--pool",
        type=int,
        help="distinct prompts to tile (default 20,000; with --distinct, one batch: 100,000)",
    )
    parser.add_argument("--loop-sample", type=int, default=5_000)
    parser.add_argument("--presidio-sample", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mix", choices=sorted(MIXES), default="realistic")
    parser.add_argument(
        "--distinct",
        action="store_true",
        help="no prompt repeats within a batch (a pool of a whole batch, plus a per-row "
        "suffix), so neither the per-batch dedup nor the verdict memo is helped by tiling",
    )
    parser.add_argument("--engine-only", action="store_true", help="skip the comparisons")
    parser.add_argument("--json", action="store_true", help="one JSON line of results")
    args = parser.parse_args()
    if args.pool is None:
        args.pool = BATCH if args.distinct else 20_000
    batches = corpus(args.events, args.pool, args.seed, *MIXES[args.mix], distinct=args.distinct)
    text_mb = sum(b.nbytes - 4 * (len(b) + 1) for b in batches) / 1e6
    rate, cpu_rate, found, startup = bench_sentinel(batches)
    scan_rate = bench_scan_events(batches[0])
    if args.engine_only:
        args.loop_sample = args.presidio_sample = 0
    sample = batches[0].slice(0, args.loop_sample).to_pylist()
    loop_rate = bench_python_loop(sample) if sample else float("nan")
    presidio_rate = bench_presidio(sample[: args.presidio_sample]) if sample else None
    result = {
        "events": args.events,
        "mix": args.mix,
        "distinct": args.distinct,
        "text_mb": round(text_mb, 1),
        "findings": found,
        "sentinel_mb_s": round(rate, 1),
        "sentinel_mb_per_cpu_s": round(cpu_rate, 1),
        "scan_processes": 1 + len(POOL.workers._workers),
        "first_batch_s": round(startup, 2),
        "scan_events_mb_s": round(scan_rate, 1),
        "python_loop_mb_s": round(loop_rate, 2),
        "presidio_mb_s": None if presidio_rate is None else round(presidio_rate, 3),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{args.events:,} events ({args.mix}), {text_mb:,.0f} MB of prompt text, {found:,} findings"
    )
    print(
        f"  sentinel engine        {rate:10.1f} MB/s wall, {cpu_rate:.1f} MB per CPU-second "
        f"({1 + len(POOL.workers._workers)} processes; first batch, starting them: {startup:.2f} s)"
    )
    print(f"  scan_events (1 batch)  {scan_rate:10.1f} MB/s  (findings columns, digests, raw)")
    print(
        f"  python re loop         {loop_rate:10.2f} MB/CPU-s  "
        f"({cpu_rate / loop_rate:,.0f}x more CPU per MB than sentinel)"
    )
    if presidio_rate is None:
        print("  presidio               skipped: presidio-analyzer not installed")
    else:
        print(
            f"  presidio (patterns)    {presidio_rate:10.3f} MB/CPU-s  "
            f"({cpu_rate / presidio_rate:,.0f}x more CPU per MB than sentinel)"
        )


if __name__ == "__main__":
    main()
