"""Precision and recall of the PII scanner per type, on the labelled corpus.

A finding counts as a true positive when a label of the same type overlaps its span;
a finding overlapping no label of its type is a false positive (hard negatives included);
a label no finding of its type overlaps is a false negative.

    .venv/bin/python bench/pii_accuracy.py --samples 5000
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pii_corpus import generate  # noqa: E402
from sentinel.pii.catalog import default_catalog  # noqa: E402
from sentinel.pii.engine import find  # noqa: E402

STRICT = {"credit_card", "ssn", "iban", "email", "aws_access_key", "aws_secret_key",
          "openai_key", "anthropic_key", "google_api_key", "stripe_key", "slack_token",
          "github_token", "jwt", "private_key", "database_url", "generic_secret"}  # fmt: skip
TARGET_PRECISION, TARGET_RECALL = 0.99, 0.98


def evaluate(samples: int, seed: int, show: int) -> bool:
    started = time.perf_counter()
    corpus = generate(samples, seed)
    catalog = default_catalog()
    matches = find(pa.array([s.text for s in corpus], pa.large_string()), catalog)
    found: dict[int, list[tuple[str, int, int]]] = {}
    for row, det, start, end in zip(
        matches.rows, matches.detectors, matches.starts, matches.ends, strict=True
    ):
        found.setdefault(row, []).append((catalog.detectors[det].name, start, end))
    tp, fp, fn, labels = Counter(), Counter(), Counter(), Counter()
    examples: dict[str, list[str]] = {}
    for row, sample in enumerate(corpus):
        got = found.get(row, [])
        for kind, a, b in got:
            if any(k == kind and a < lb and la < b for k, la, lb in sample.labels):
                tp[kind] += 1
            else:
                fp[kind] += 1
                examples.setdefault(f"FP {kind}", []).append(sample.text[max(0, a - 25) : b + 10])
        for kind, a, b in sample.labels:
            labels[kind] += 1
            if not any(k == kind and a < fb and fa < b for k, fa, fb in got):
                fn[kind] += 1
                examples.setdefault(f"FN {kind}", []).append(sample.text[max(0, a - 25) : b + 10])
    ok = True
    print(
        f"{samples} samples, {sum(len(s.text) for s in corpus) / 1e6:.1f}M chars, "
        f"{sum(labels.values())} labels, {time.perf_counter() - started:.1f}s\n"
    )
    print(f"{'type':<20}{'labels':>8}{'found':>8}{'precision':>11}{'recall':>9}  target")
    for kind in sorted(set(labels) | set(tp) | set(fp)):
        found_n = tp[kind] + fp[kind]
        precision = tp[kind] / found_n if found_n else 1.0
        recall = (labels[kind] - fn[kind]) / labels[kind] if labels[kind] else 1.0
        strict = kind in STRICT
        met = precision >= TARGET_PRECISION and recall >= TARGET_RECALL
        ok &= met or not strict
        mark = ("ok" if met else "MISSED") if strict else "(reported)"
        print(f"{kind:<20}{labels[kind]:>8}{found_n:>8}{precision:>11.3f}{recall:>9.3f}  {mark}")
    for key, texts in sorted(examples.items()):
        for text in texts[:show]:
            print(f"  {key}: {text!r}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show", type=int, default=0, help="print N misses per kind")
    args = parser.parse_args()
    sys.exit(0 if evaluate(args.samples, args.seed, args.show) else 1)


if __name__ == "__main__":
    main()
