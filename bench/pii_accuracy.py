"""Precision and recall of the PII scanner per type, on the labelled corpus.

A finding counts as a true positive when a label of the same type overlaps its span;
a finding overlapping no label of its type is a false positive (hard negatives included);
a label no finding of its type overlaps is a false negative.

    .venv/bin/python bench/pii_accuracy.py --samples 5000

`--phones N` adds a phone-only measurement: N of the corpus's numbers (Faker's, valid per
phonenumbers, 12 locales), each in a sentence as planted (after a label, or alone when
written internationally or NANP-style), and the same numbers with no label at all, by
how they are written.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.pii_corpus import _SELF_EVIDENT_PHONE, Corpus, generate  # noqa: E402
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


def phone_recall(count: int, seed: int, show: int) -> bool:
    """Recall of `phone` on `count` numbers as planted, and on the same numbers unlabelled."""
    corpus = Corpus(seed)
    planted = [corpus.phone() for _ in range(count)]
    catalog = default_catalog()
    texts = [f"Hi team, {label}{number} if anything breaks." for number, label in planted]
    bare = [f"Hi team, {number} if anything breaks." for number, _ in planted]
    ok = True
    for title, batch in (("as planted", texts), ("no label at all", bare)):
        matches = find(pa.array(batch, pa.large_string()), catalog)
        hits: dict[int, list[tuple[int, int]]] = {}
        for row, det, start, end in zip(
            matches.rows, matches.detectors, matches.starts, matches.ends, strict=True
        ):
            if catalog.detectors[det].name == "phone":
                hits.setdefault(row, []).append((start, end))
        groups: dict[str, list[bool]] = {}
        wrong = 0
        for row, (number, label) in enumerate(planted):
            a = len("Hi team, ") + (len(label) if batch is texts else 0)
            b = a + len(number)
            spans = hits.get(row, [])
            wrong += sum(1 for s, e in spans if not (s < b and a < e))
            kind = "self-evident" if _SELF_EVIDENT_PHONE.search(number) else "national/bare"
            key = f"{kind}, labelled" if label and batch is texts else kind
            groups.setdefault(key, []).append(any(s < b and a < e for s, e in spans))
            if not groups[key][-1] and show and batch is texts:
                print(f"  FN phone: {batch[row]!r}")
        total = [hit for hits_ in groups.values() for hit in hits_]
        print(f"phone, {title}: {sum(total)}/{len(total)} found "
              f"(recall {sum(total) / len(total):.3f}), {wrong} false positives")
        for key, found in sorted(groups.items()):
            print(f"  {key:<28}{len(found):>6}  recall {sum(found) / len(found):.3f}")
        if batch is texts:
            ok &= sum(total) / len(total) >= TARGET_RECALL and wrong == 0
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show", type=int, default=0, help="print N misses per kind")
    parser.add_argument("--phones", type=int, default=0, help="also measure N phone numbers")
    args = parser.parse_args()
    ok = evaluate(args.samples, args.seed, args.show)
    if args.phones:
        print()
        ok &= phone_recall(args.phones, args.seed, args.show)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
