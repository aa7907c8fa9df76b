"""Ingest throughput and memory, measured against floors taken on the same file.

An events/s figure means little on its own: disks, CPUs and load differ. So this bench
measures, on one generated LiteLLM JSON-lines file and in one run:

  cat      `cat FILE > /dev/null`: the cost of reading the bytes at all
  duckdb   DuckDB alone converting the file to Parquet, no normalisation:
           COPY (SELECT * FROM read_json(FILE)) TO 'x.parquet'
  ingest   `sentinel ingest` (real CLI, fresh workspace, --quiet), PII scan on
  ingest   the same with `[pii] scan = false` in sentinel.toml

and reports each one's time, events/s, MB/s and peak RSS (all of its processes).
Targets: ingest without the PII scan within 2x of the DuckDB conversion, and peak
memory under 1.5 GB at 1,000,000 events.

    python bench/ingest.py                      # 1,000,000 events
    python bench/ingest.py --events 200000 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sentinel.demo.incidents import card_number, format_card
from sentinel.demo.prompts import prompt_for
from sentinel.demo.records import Call, litellm_payload, model_map_json
from sentinel.demo.world import LITELLM_MODEL_WEIGHTS, LITELLM_MODELS, TEAMS, build_world

SENTINEL = Path(sys.executable).with_name("sentinel")
TARGET_RATIO = 2.0
TARGET_RSS_MB = 1536
PROMPT_POOL = 4000
CARD_EVERY = 1000


@dataclass
class Result:
    name: str
    seconds: float
    events_per_s: float
    mb_per_s: float
    peak_rss_mb: float | None


def generate(path: Path, events: int, seed: int = 1) -> None:
    """`events` StandardLoggingPayload lines with 200–2,000-character prompts.

    Prompts come from a pool built with the demo's prompt generator (so the PII scanner
    sees realistic text); one prompt in CARD_EVERY carries a Luhn-valid card number.
    """
    from datetime import UTC, datetime, timedelta

    rng = random.Random(seed)
    world = build_world(rng)
    pool = [prompt_for(rng, rng.choice(TEAMS)) for _ in range(PROMPT_POOL)]
    maps = {m.name: model_map_json(m) for m in LITELLM_MODELS}
    start = datetime(2026, 11, 1, tzinfo=UTC)
    step = timedelta(days=14) / events
    users = [u for k in world.keys for u in k.users]
    key_of = {u.user_id: k for k in world.keys for u in k.users}
    with path.open("w", encoding="utf-8", buffering=1 << 20) as out:
        models = rng.choices(LITELLM_MODELS, LITELLM_MODEL_WEIGHTS, k=events)
        for i in range(events):
            user = users[i % len(users)]
            prompt, reply = pool[rng.randrange(PROMPT_POOL)]
            if i % CARD_EVERY == CARD_EVERY // 2:
                prompt = f"{prompt}\n\nCard on file: {format_card(card_number(rng, 'visa'), ' ')}"
            call = Call(start + step * i, prompt, reply, user, user.ip,
                        key=key_of[user.user_id], model=models[i], stream=i % 3 == 0)
            out.write(litellm_payload(rng, call, maps))
            out.write("\n")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Time `cmd` in a helper process; its peak RSS, all of its processes together.

    The peak is the larger of two readings. ru_maxrss (RUSAGE_CHILDREN, taken in a
    helper process so that an earlier, bigger command cannot leak into it) is exact but
    per process; the sum over the command's process tree (the PII scan's worker
    processes count too) is sampled from /proc every 20 ms, where there is a /proc.
    """
    helper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(json.loads(sys.argv[1]), capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': p.returncode, 's': s, 'rss': r, 'out': p.stdout,"
        " 'err': p.stderr}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", helper, json.dumps(cmd)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = [0.0]
    sampler = threading.Thread(target=_sample_tree_rss, args=(proc, peak), daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"bench helper failed:\n{stderr}")
    result = json.loads(stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result['rc']}):\n{result['err']}")
    return result["s"], max(result["rss"], peak[0]), result["out"]


def _sample_tree_rss(proc: subprocess.Popen[str], peak: list[float]) -> None:
    """Keep `peak[0]` at the largest RSS sum (MB) of `proc`'s descendants seen so far."""
    if not Path("/proc/self/stat").exists():
        return
    page = os.sysconf("SC_PAGE_SIZE")
    while proc.poll() is None:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
            rss[int(entry.name)] = int(fields[21]) * page
        tree, frontier = set(), {proc.pid}
        while frontier:
            tree |= frontier
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
        tree.discard(proc.pid)  # the helper itself is not the command
        peak[0] = max(peak[0], sum(rss.get(pid, 0) for pid in tree) / 2**20)
        time.sleep(0.02)


def bench(events: int, workdir: Path) -> tuple[list[Result], dict[str, object]]:
    data = workdir / "litellm-bench.jsonl"
    if not data.exists() or data.stat().st_size == 0:
        print(f"generating {events:,} events into {data} ...", file=sys.stderr)
        t = time.perf_counter()
        generate(data, events)
        print(f"  {time.perf_counter() - t:.1f}s", file=sys.stderr)
    size_mb = data.stat().st_size / 1e6
    results: list[Result] = []

    def record(name: str, seconds: float, rss: float | None) -> None:
        results.append(Result(name, round(seconds, 2), round(events / seconds),
                              round(size_mb / seconds, 1), None if rss is None else round(rss)))
        print(f"  {name:<28} {seconds:8.2f}s", file=sys.stderr)

    subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)  # warm cache
    seconds, rss, _ = measure(["sh", "-c", f"cat '{data}' > /dev/null"])
    record("cat > /dev/null", seconds, None)
    parquet = workdir / "duckdb.parquet"
    sql = (f"COPY (SELECT * FROM read_json('{data}', format='newline_delimited')) "
           f"TO '{parquet}' (FORMAT parquet)")
    seconds, rss, _ = measure([sys.executable, "-c", f"import duckdb; duckdb.sql({sql!r})"])
    record("duckdb read_json -> parquet", seconds, rss)
    parquet.unlink(missing_ok=True)

    ingested: dict[str, object] = {}
    for name, scan in (("sentinel ingest (PII off)", False), ("sentinel ingest (PII on)", True)):
        ws = workdir / ("ws-scan" if scan else "ws-noscan")
        shutil.rmtree(ws, ignore_errors=True)
        subprocess.run([str(SENTINEL), "--quiet", "--workspace", str(ws), "init"],
                       check=True, stdout=subprocess.DEVNULL)
        if not scan:
            (ws / "sentinel.toml").write_text("[pii]\nscan = false\n")
        seconds, rss, out = measure([str(SENTINEL), "--quiet", "--workspace", str(ws),
                                     "ingest", "--format", "json", str(data)])
        report = json.loads(out)
        if report["events"] != events:
            raise SystemExit(f"{name}: ingested {report['events']:,} of {events:,} events")
        ingested[name] = {"events": report["events"], "pii_findings": report["pii_findings"],
                          "quarantined": report["quarantined"]}
        record(name, seconds, rss)
        shutil.rmtree(ws, ignore_errors=True)
    meta: dict[str, object] = {
        "events": events, "file_mb": round(size_mb, 1), "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2), "ingest": ingested,
    }
    return results, meta


def verdict(results: list[Result]) -> list[str]:
    by = {r.name: r for r in results}
    duck, off = by["duckdb read_json -> parquet"], by["sentinel ingest (PII off)"]
    ratio = off.seconds / duck.seconds
    peak = max(r.peak_rss_mb or 0 for r in results if r.name.startswith("sentinel"))
    return [
        f"ingest (PII off) / duckdb = {ratio:.2f}x (target <= {TARGET_RATIO:.1f}x): "
        + ("OK" if ratio <= TARGET_RATIO else "MISSED"),
        f"peak ingest RSS = {peak:,.0f} MB (target < {TARGET_RSS_MB:,} MB): "
        + ("OK" if peak < TARGET_RSS_MB else "MISSED"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, help="keep the data file here (reused)")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    tmp = None
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="sentinel-bench-")
        workdir = Path(tmp.name)
    try:
        results, meta = bench(args.events, workdir)
    finally:
        if tmp:
            tmp.cleanup()
    print(f"{meta['events']:,} LiteLLM events, {meta['file_mb']} MB, {meta['cpus']} CPUs, "
          f"load {meta['load_avg_1m']}")
    print(f"| {'step':<28} | {'seconds':>8} | {'events/s':>10} | {'MB/s':>7} "
          f"| {'peak RSS MB':>11} |")
    print(f"|{'-' * 30}|{'-' * 9}:|{'-' * 11}:|{'-' * 8}:|{'-' * 12}:|")
    for r in results:
        rss = "" if r.peak_rss_mb is None else f"{r.peak_rss_mb:,.0f}"
        print(f"| {r.name:<28} | {r.seconds:>8.2f} | {r.events_per_s:>10,} | {r.mb_per_s:>7} "
              f"| {rss:>11} |")
    for line in verdict(results):
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "results": [asdict(r) for r in results],
                                         "verdict": verdict(results)}, indent=2))


if __name__ == "__main__":
    main()
