"""Many small files: an S3-sync-style tree of one-object JSON files, by `ingest` and by `watch`.

Writes N LiteLLM records, one per file (half compact on one line without a newline,
half pretty-printed), under `AWSLogs/<day>/<hour>/`, then measures on fresh workspaces:

  ingest   `sentinel ingest TREE`: wall time and files/s
  watch    `sentinel watch` started on the tree: time until every event is committed
           (files/s), polling `state.db`

    python bench/small_files.py                    # 5,000 files
    python bench/small_files.py --files 1000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SENTINEL = Path(sys.executable).with_name("sentinel")


def record(i: int) -> dict[str, object]:
    """A LiteLLM StandardLoggingPayload record (the shape the gateway's S3 logger writes)."""
    start = 1737710446.0 + i
    return {
        "id": f"chatcmpl-{i:08d}", "call_type": "acompletion", "status": "success",
        "startTime": start, "endTime": start + 1.2, "model": "gpt-4o",
        "custom_llm_provider": "openai", "api_base": "https://api.openai.com/v1",
        "response_cost": 0.0021, "prompt_tokens": 120, "completion_tokens": 40,
        "metadata": {"user_api_key_alias": f"team-{i % 7}", "user_api_key_user_id": f"u{i % 50}",
                     "user_api_key_team_alias": "support", "requester_ip_address": "10.0.0.7"},
        "messages": [{"role": "user", "content": f"Summarise ticket {i} for the customer"}],
        "response": {"choices": [{"message": {"role": "assistant", "content": "Done."}}]},
    }


def write_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / "AWSLogs" / f"2025-01-{i % 3 + 1:02d}" / f"{i % 24:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(record(i), indent=2) if i % 2 else json.dumps(record(i))
        (folder / f"obj{i:06d}.json").write_text(text)


def fresh_workspace(scratch: Path, name: str) -> Path:
    ws = scratch / name
    subprocess.run([str(SENTINEL), "--quiet", "init", str(ws)], check=True, capture_output=True)
    return ws


def committed_events(state_db: Path) -> int:
    if not state_db.exists():
        return 0
    con = sqlite3.connect(state_db, timeout=30)
    try:
        return int(con.execute("SELECT coalesce(sum(events), 0) FROM batches").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def bench_ingest(scratch: Path, tree: Path, files: int) -> dict[str, float]:
    ws = fresh_workspace(scratch, "ws-ingest")
    started = time.monotonic()
    result = subprocess.run(
        [str(SENTINEL), "--workspace", str(ws), "--quiet", "ingest", "--format", "json",
         str(tree)], capture_output=True, text=True, check=False,
    )
    seconds = time.monotonic() - started
    events = json.loads(result.stdout)["events"] if result.stdout else 0
    return {"seconds": round(seconds, 1), "events": events,
            "files_per_s": round(files / seconds, 1)}


def bench_watch(scratch: Path, tree: Path, files: int, timeout: float) -> dict[str, float]:
    ws = fresh_workspace(scratch, "ws-watch")
    with (ws / "sentinel.toml").open("a") as config:
        config.write(f'\n[[watch]]\npath = "{tree}"\n')
    log = (scratch / "watch.log").open("w")
    started = time.monotonic()
    daemon = subprocess.Popen([str(SENTINEL), "--workspace", str(ws), "watch"],
                              stderr=log, stdout=subprocess.DEVNULL)
    try:
        while committed_events(ws / "state.db") < files:
            if time.monotonic() - started > timeout or daemon.poll() is not None:
                break
            time.sleep(0.5)
        seconds = time.monotonic() - started
        events = committed_events(ws / "state.db")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    return {"seconds": round(seconds, 1), "events": events,
            "files_per_s": round(events / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=1800, help="give up on watch after")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    load_start = list(os.getloadavg())
    scratch = Path(tempfile.mkdtemp(prefix="sentinel-small-files-"))
    try:
        tree = scratch / "bucket"
        write_tree(tree, args.files)
        results: dict[str, object] = {"files": args.files, "load_average_start": load_start}
        if not args.skip_ingest:
            print("sentinel ingest...", file=sys.stderr)
            results["ingest"] = bench_ingest(scratch, tree, args.files)
        print("sentinel watch...", file=sys.stderr)
        results["watch"] = bench_watch(scratch, tree, args.files, args.timeout)
        results["load_average_end"] = list(os.getloadavg())
        print(json.dumps(results, indent=2))
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
