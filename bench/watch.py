"""The watcher daemon end to end: latency under steady load, memory, catch-up after a burst.

Runs the real `sentinel watch` on a fresh workspace tailing one file, and a writer in
this process that appends LiteLLM lines (demo prompts, one in 50 with a card number or
an email) at a steady rate, in ticks of 50 ms. Measured:

  latency   line written -> its batch committed in state.db (the event is queryable),
            p50/p95/max over every line of the steady phase. Exact, not sampled: each
            tick's end offset and write time are kept, and each batch row records its
            end offset and commit time.
  incident  card line written -> its event linked to an incident in state.db
            (`incident_alerts.linked_at`, through `incident_events`), p50/p95/max over
            every card line of the steady phase; lines never linked are counted.
  memory    peak RSS of the daemon and its PII worker processes, sampled every 0.2 s
  burst     N lines appended at once after the steady phase: the lag (bytes not yet
            committed) when the writer is done, and the time until it is back to 0

Targets (issue 12): p95 under 5 s at 2,000 events/s, peak memory under 500 MB.

    python bench/watch.py                                  # 2,000/s for 600 s, burst 1,000,000
    python bench/watch.py --rate 2000 --seconds 120 --burst 200000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sentinel.demo.incidents import card_number, format_card
from sentinel.demo.prompts import prompt_for
from sentinel.demo.records import Call, litellm_payload, model_map_json
from sentinel.demo.world import LITELLM_MODELS, TEAMS, build_world

SENTINEL = Path(sys.executable).with_name("sentinel")
TICK = 0.05
POOL = 5000
TARGET_P95_S = 5.0
TARGET_RSS_MB = 500.0
CARD_LINE = 7
"""Pool lines `i % 50 == CARD_LINE` carry a card number (the card rule fires on them)."""


def line_pool(seed: int = 3) -> list[str]:
    """Realistic gateway lines; `{ID}` marks where each line's unique id goes."""
    rng = random.Random(seed)
    world = build_world(rng)
    maps = {m.name: model_map_json(m) for m in LITELLM_MODELS}
    users = [u for k in world.keys for u in k.users]
    key_of = {u.user_id: k for k in world.keys for u in k.users}
    pool = []
    for i in range(POOL):
        user = users[i % len(users)]
        prompt, reply = prompt_for(rng, rng.choice(TEAMS))
        if i % 50 == CARD_LINE:
            prompt += f"\n\nCard on file: {format_card(card_number(rng, 'visa'), ' ')}"
        elif i % 50 == 31:
            prompt += f"\n\nReach me at {user.user_id}@example.com"
        call = Call(datetime.now(UTC), prompt, reply, user, user.ip,
                    key=key_of[user.user_id], model=LITELLM_MODELS[i % len(LITELLM_MODELS)])
        record = json.loads(litellm_payload(rng, call, maps))
        record["id"] = "{ID}"
        pool.append(json.dumps(record))
    return pool


class Writer:
    def __init__(self, path: Path, pool: list[str]) -> None:
        self.path, self.pool = path, pool
        self.handle = path.open("a", encoding="utf-8")
        self.count = 0
        self.offset = 0
        self.ticks: list[tuple[int, float, int]] = []
        """(end offset, wall time written, lines) per tick."""
        self.cards: dict[str, float] = {}
        """event id -> wall time written, for every line that carries a card number."""

    def lines(self, n: int, cards: list[str] | None = None) -> str:
        out = []
        for _ in range(n):
            index = self.count % len(self.pool)
            event_id = f"bench-{self.count:010d}"
            out.append(self.pool[index].replace('"{ID}"', f'"{event_id}"', 1))
            if cards is not None and index % 50 == CARD_LINE:
                cards.append(event_id)
            self.count += 1
        return "\n".join(out) + "\n"

    def write(self, n: int, record: bool = True) -> None:
        cards: list[str] = []
        data = self.lines(n, cards if record else None).encode()
        self.handle.buffer.write(data)  # type: ignore[attr-defined]
        self.handle.flush()
        self.offset += len(data)
        if record:
            now = time.time()
            self.ticks.append((self.offset, now, n))
            self.cards.update(dict.fromkeys(cards, now))

    def steady(self, rate: int, seconds: float) -> None:
        per_tick = max(1, round(rate * TICK))
        start = time.monotonic()
        for tick in range(int(seconds / TICK)):
            self.write(per_tick)
            delay = start + (tick + 1) * TICK - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_mb, self.stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.is_set():
            total = 0
            for pid in self._tree():
                try:
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                except (OSError, IndexError, ValueError):
                    continue
            self.peak_mb = max(self.peak_mb, total / 2**20)
            time.sleep(0.2)

    def _tree(self) -> set[int]:
        parents = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int(
                        (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
        tree, frontier = set(), {self.pid}
        while frontier:
            tree |= frontier
            frontier = {p for p, parent in parents.items() if parent in frontier} - tree
        return tree


def committed(state_db: Path) -> list[tuple[int, float]]:
    """(end offset, commit time) of every batch, in offset order."""
    con = sqlite3.connect(state_db, timeout=30)
    try:
        rows = con.execute(
            "SELECT end_offset, committed_at FROM batches ORDER BY end_offset").fetchall()
    finally:
        con.close()
    return [(end, datetime.fromisoformat(at).timestamp()) for end, at in rows]


def latencies(ticks: list[tuple[int, float, int]], batches: list[tuple[int, float]]) -> list[float]:
    out: list[float] = []
    i = 0
    for end, written, lines in ticks:
        while i < len(batches) and batches[i][0] < end:
            i += 1
        if i == len(batches):
            break
        out.extend([batches[i][1] - written] * lines)
    return out


def incident_latencies(state_db: Path, cards: dict[str, float]) -> tuple[list[float], int]:
    """(written -> linked to an incident) per card line, and how many were never linked."""
    con = sqlite3.connect(state_db, timeout=30)
    try:
        linked = dict(con.execute(
            "SELECT e.event_id, min(a.linked_at) FROM incident_events e "
            "JOIN incident_alerts a USING (incident_id, alert_id) GROUP BY e.event_id"
        ).fetchall())
    finally:
        con.close()
    out = [
        datetime.fromisoformat(linked[event_id]).timestamp() - written
        for event_id, written in cards.items() if event_id in linked
    ]
    return sorted(out), len(cards) - len(out)


def wait_linked(state_db: Path, cards: dict[str, float], timeout: float = 120.0) -> None:
    """Wait (bounded) until every card line is linked, or nothing more gets linked."""
    deadline, missing = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        _, now_missing = incident_latencies(state_db, cards)
        if now_missing == 0 or now_missing == missing:
            return
        missing = now_missing
        time.sleep(3)


def checkpoint(state_db: Path) -> int:
    con = sqlite3.connect(state_db, timeout=30)
    try:
        row = con.execute("SELECT max(offset) FROM files").fetchone()
    finally:
        con.close()
    return int(row[0] or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="events per second")
    parser.add_argument("--seconds", type=float, default=600, help="length of the steady phase")
    parser.add_argument("--burst", type=int, default=1_000_000, help="lines appended at once")
    parser.add_argument("--batch-bytes", type=int, help="[daemon] batch_bytes (else the default)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch workspace, logs and daemon log (path on stderr)")
    args = parser.parse_args()

    load_start = list(os.getloadavg())
    scratch = Path(tempfile.mkdtemp(prefix="sentinel-watch-bench-"))
    try:
        ws, logs = scratch / "ws", scratch / "logs"
        logs.mkdir()
        subprocess.run([str(SENTINEL), "--quiet", "init", str(ws)], check=True,
                       capture_output=True)
        with (ws / "sentinel.toml").open("a") as config:
            config.write(f'\n[[watch]]\npath = "{logs}"\n')
            if args.batch_bytes:
                config.write(f"\n[daemon]\nbatch_bytes = {args.batch_bytes}\n")
        print("generating the line pool...", file=sys.stderr)
        writer = Writer(logs / "gateway.jsonl", line_pool())
        log = (scratch / "watch.log").open("w")
        daemon = subprocess.Popen([str(SENTINEL), "--workspace", str(ws), "watch"],
                                  stderr=log, stdout=subprocess.DEVNULL)
        sampler = MemorySampler(daemon.pid)
        sampler.start()
        time.sleep(3)
        print(f"steady: {args.rate}/s for {args.seconds:.0f} s...", file=sys.stderr)
        writer.steady(args.rate, args.seconds)
        steady_lines, steady_end = writer.count, writer.offset
        while checkpoint(ws / "state.db") < steady_end:
            time.sleep(0.2)
        lat = sorted(latencies(writer.ticks, committed(ws / "state.db")))
        wait_linked(ws / "state.db", writer.cards)
        incident_lat, unlinked = incident_latencies(ws / "state.db", writer.cards)
        steady_peak = sampler.peak_mb
        print(f"burst: {args.burst:,} lines...", file=sys.stderr)
        burst_start = time.monotonic()
        for _ in range(0, args.burst, 10_000):
            writer.write(min(10_000, args.burst - (writer.count - steady_lines)), record=False)
        written_s = time.monotonic() - burst_start
        lag_after_write = writer.offset - checkpoint(ws / "state.db")
        while checkpoint(ws / "state.db") < writer.offset:
            time.sleep(0.5)
        caught_up_s = time.monotonic() - burst_start
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        sampler.stop.set()
        results = {
            "load_average_start": load_start, "load_average_end": list(os.getloadavg()),
            "rate": args.rate, "seconds": args.seconds, "batch_bytes": args.batch_bytes,
            "steady_lines": steady_lines,
            "latency_p50_s": round(statistics.median(lat), 3),
            "latency_p95_s": round(lat[int(len(lat) * 0.95)], 3),
            "latency_max_s": round(lat[-1], 3),
            "card_lines": len(writer.cards), "card_lines_unlinked": unlinked,
            "incident_p50_s": round(statistics.median(incident_lat), 3) if incident_lat else None,
            "incident_p95_s": (round(incident_lat[int(len(incident_lat) * 0.95)], 3)
                               if incident_lat else None),
            "incident_max_s": round(incident_lat[-1], 3) if incident_lat else None,
            "peak_rss_steady_mb": round(steady_peak, 1),
            "peak_rss_mb": round(sampler.peak_mb, 1),
            "burst_lines": args.burst, "burst_mb": round((writer.offset - steady_end) / 2**20, 1),
            "burst_write_s": round(written_s, 1),
            "lag_after_burst_mb": round(lag_after_write / 2**20, 1),
            "burst_caught_up_s": round(caught_up_s, 1),
            "burst_events_per_s": round(args.burst / caught_up_s),
            "daemon_exit": daemon.returncode,
        }
        print(json.dumps(results, indent=2))
        p95 = results["incident_p95_s"]
        ok = p95 is not None and p95 < TARGET_P95_S and results["peak_rss_mb"] < TARGET_RSS_MB
        print(f"targets (incident p95 < {TARGET_P95_S} s, memory < {TARGET_RSS_MB:.0f} MB): "
              f"{'met' if ok else 'NOT met'}", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"kept: {scratch}", file=sys.stderr)
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
