"""The fixed cost of a `sentinel scan` process: a scan with nothing new, run again and again.

What every scan from cron pays before it reads any event: starting Python, importing
sentinel and its libraries, compiling the rule pack (or reading the kept compile,
`state/packs/`), parsing the baselines, opening state.db and DuckDB. A scan with nothing
new pays only that, so its wall time is the fixed cost; the increment and side benches
(`bench/scan.py`) pay it once each, on top of their DuckDB work.

Each scan runs in a fresh process (`python -m sentinel.cli.main`), `--runs` times per
case; the minimum and the median wall time are reported, with the child's CPU time
(user + system), which a loaded machine disturbs less than wall time. Cases:

* `cold`: the kept compile removed before each run (the first scan of a workspace, or
  after a rule file changed);
* `warm`: the compile kept by the previous scan (cron's steady state).

The workspace is scanned once first so that nothing is new. `--tree` runs another
checkout's sentinel (e.g. main before a change) on the same workspace; a tree without the
compile cache has one case. Sentinel's own bytecode is compiled first (`compileall`) in
the tree, as a pip install does: where PYTHONDONTWRITEBYTECODE is set (this machine) an
editable checkout otherwise recompiles every module on every start (~0.2 s).

    python bench/startup.py --workspace /var/tmp/prof-incr [--tree /tmp/before] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scan_once(tree: Path, workspace: Path) -> tuple[float, float, str]:
    """One `sentinel scan` in a fresh process: wall seconds, child CPU seconds, summary."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "sentinel.cli.main", "-w", str(workspace), "scan", "--format",
         "jsonl", "--fail-on", "critical"],
        capture_output=True, text=True, env=env, cwd=str(tree),
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(f"scan failed ({result.returncode}):\n{result.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = [line for line in result.stderr.splitlines() if line.startswith("scan ")]
    return wall, cpu, summary[-1] if summary else ""


def measure(tree: Path, workspace: Path, runs: int, cold: bool) -> dict[str, object]:
    walls, cpus, summary = [], [], ""
    load = os.getloadavg()
    for _ in range(runs):
        if cold:
            shutil.rmtree(workspace / "state" / "packs", ignore_errors=True)
        wall, cpu, summary = scan_once(tree, workspace)
        walls.append(wall)
        cpus.append(cpu)
    return {
        "wall_min": round(min(walls), 3), "wall_median": round(statistics.median(walls), 3),
        "cpu_min": round(min(cpus), 3), "cpu_median": round(statistics.median(cpus), 3),
        "summary": summary, "load": [round(x, 2) for x in (*load, *os.getloadavg())],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--tree", type=Path, default=REPO)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tree = args.tree.resolve()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "sentinel")],
                   check=True, capture_output=True)
    scan_once(tree, args.workspace)  # nothing new from here on
    cached = (tree / "sentinel" / "scan" / "packcache.py").exists()
    results: dict[str, object] = {"tree": str(tree)}
    results["cold" if cached else "no cache"] = measure(tree, args.workspace, args.runs, True)
    if cached:
        results["warm"] = measure(tree, args.workspace, args.runs, False)
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
