"""How long loading and compiling a pack of N Sigma rules takes (target: 100 rules < 2 s).

The pack is made from the shipped `detections/` rules, copied with fresh ids and titles
until it holds N output rules (correlations and their building blocks included), so the
mix of modifiers, list columns, CIDR and window queries is the real one. Parsing and
compiling are timed separately; the best of `--repeat` runs is reported.

    .venv/bin/python bench/compile_rules.py --rules 100
"""

from __future__ import annotations

import argparse
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from sentinel.detect.compiler import compile_pack
from sentinel.detect.rules import load_rules

REPO = Path(__file__).resolve().parents[1]
_ID = re.compile(r"^id: .*$", re.M)
_NAME = re.compile(r"^(name: )(\S+)$", re.M)
_TITLE = re.compile(r"^title: ", re.M)


def build_pack(target: Path, count: int) -> int:
    """Copy the shipped rules with new ids/names until `count` output rules exist."""
    sources = sorted((REPO / "detections").rglob("*.yml"))
    written = 0
    copy = 0
    while written < count:
        for source in sources:
            text = source.read_text(encoding="utf-8")
            text = _ID.sub(lambda _: f"id: {uuid.uuid4()}", text)
            text = _NAME.sub(rf"\1\2_{copy}", text)
            text = re.sub(r"^(\s+- )(sentinel_\w+)$", rf"\1\2_{copy}", text, flags=re.M)
            text = _TITLE.sub(f"title: copy {copy} - ", text)
            (target / f"{copy:03d}_{source.name}").write_text(text, encoding="utf-8")
            written += 1
            if written >= count:
                break
        copy += 1
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    try:
        build_pack(directory, args.rules)
        best_load = best_compile = float("inf")
        compiled_count = 0
        for _ in range(args.repeat):
            started = time.perf_counter()
            pack = load_rules([directory])
            loaded = time.perf_counter()
            compiled, problems = compile_pack(pack)
            done = time.perf_counter()
            if problems:
                raise SystemExit("\n".join(str(p) for p in problems))
            best_load = min(best_load, loaded - started)
            best_compile = min(best_compile, done - loaded)
            compiled_count = len(compiled)
        total = best_load + best_compile
        print(
            f"{compiled_count} rules ({len(pack.rules)} incl. building blocks): "
            f"load {best_load:.3f} s, compile {best_compile:.3f} s, total {total:.3f} s "
            f"({total / compiled_count * 1000:.1f} ms/rule)"
        )
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main()
