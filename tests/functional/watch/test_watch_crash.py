"""The crash test: SIGKILL the daemon 20+ times while files grow and rotate; lose nothing.

A writer thread appends numbered events to several files and rotates them by
rename-and-create (to unique names, as dated rotation does) while the daemon is killed
with SIGKILL at random moments and restarted. At the end the lake must hold every
event exactly once, and `sentinel audit verify` must find the chain intact.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import Start, configure, lake_ids, wait_for

FILES = 3
KILLS = 20


class Writer(threading.Thread):
    """Appends events round-robin over `FILES` logs, rotating each every `rotate` lines."""

    def __init__(self, logs: Path, total: int, rotate: int = 500) -> None:
        super().__init__(daemon=True)
        self.logs, self.total, self.rotate = logs, total, rotate
        self.written = 0
        self.rotations = 0
        self.halt = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        handles = [(self.logs / f"app{n}.log").open("a", encoding="utf-8") for n in range(FILES)]
        counts = [0] * FILES
        while self.written < self.total and not self.halt.is_set():
            n = rng.randrange(FILES)
            burst = min(rng.randint(1, 40), self.total - self.written)
            lines = "".join(litellm_line(self.written + i) + "\n" for i in range(burst))
            handles[n].write(lines)
            handles[n].flush()
            self.written += burst
            counts[n] += burst
            if counts[n] >= self.rotate:
                # rename-and-create: the application writes a last line to the old file
                # through its open handle, then reopens the name.
                self.rotations += 1
                os.rename(self.logs / f"app{n}.log", self.logs / f"app{n}.log.{self.rotations}")
                handles[n].close()
                handles[n] = (self.logs / f"app{n}.log").open("a", encoding="utf-8")
                counts[n] = 0
            time.sleep(rng.uniform(0.0, 0.14))
        for handle in handles:
            handle.close()


def test_sigkill_at_random_moments_loses_and_duplicates_nothing(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(
        workspace, f'path = "{logs}"',
        daemon="[daemon]\nbatch_bytes = 262144\nbatch_seconds = 0.1\nidle_timeout = 2\n"
        "rescan_interval = 1\n",
    )
    total = 9_000
    writer = Writer(logs, total)
    writer.start()
    rng = random.Random(11)
    kills = 0
    try:
        while kills < KILLS:
            watch = daemon()
            time.sleep(rng.uniform(0.05, 0.6))
            watch.kill()
            kills += 1
    finally:
        if kills < KILLS:
            writer.halt.set()
        writer.join(60)
    assert writer.written == total and writer.rotations >= 10, writer.rotations
    final = daemon()

    def all_there() -> bool:
        ids = lake_ids(workspace)
        assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated events"
        return len(ids) == total

    wait_for(all_there, timeout=120, what=f"all {total} events")
    assert sorted(lake_ids(workspace)) == sorted(f"chatcmpl-{i:08d}" for i in range(total))
    assert final.stop() == 0
    verified = subprocess.run(
        [sys.executable, "-m", "sentinel", "--workspace", str(workspace.root), "audit", "verify"],
        capture_output=True, text=True, timeout=120,
    )
    assert verified.returncode == 0 and verified.stdout.startswith("ok:"), verified
