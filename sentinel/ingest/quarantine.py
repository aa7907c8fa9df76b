"""Quarantine entries: what a rejected record leaves behind, per `[privacy] store_text`.

A rejected line is evidence too, and it may hold the very card or key the lake masks.
So an entry keeps the text only as far as the workspace keeps text in the lake:

- `full`: the raw line as read (up to 64 KiB; `raw_truncated` says when cut);
- `masked`: the raw line with every PII/secret finding replaced by its `[TYPE]`
  placeholder (JSON `\\uXXXX` escapes are decoded first, so an escaped value is found);
- `none`: no text at all.

Every entry carries file, offset, length, reason, source, and `digest`: a keyed hash
(HMAC-SHA256 under the workspace key) of the raw bytes, which proves which line was
rejected without holding it.

The quarantine is also bounded by its input. Consecutive rejected lines with the same
reason become one entry (`records` counts them, `length` covers them, the text is the
first one's: the others are in the source file, in that byte range), and a batch
writes at most `MAX_ENTRIES` entries, the rest summarised in one: a flood of garbage
lines costs a few entries, never ~200 bytes of bookkeeping per 2-byte line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from sentinel.config import Config
from sentinel.ingest.framing import Rejected

MAX_ENTRIES = 1000
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass
class Entry:
    """One quarantine line: one rejected record, or a run of them."""

    offset: int
    reason: str
    raw: str
    length: int
    records: int = 1
    truncated: bool = False


def coalesce(rejected: list[Rejected]) -> list[Entry]:
    """Merge adjacent rejections with the same reason; cap the count per batch."""
    entries: list[Entry] = []
    for item in sorted(rejected, key=lambda r: r.offset):
        length = item.length if item.length is not None else len(item.raw.encode())
        last = entries[-1] if entries else None
        # Adjacent: the next line starts right after this one's `\n` (or `\r\n`).
        if (
            last is not None and last.reason == item.reason
            and 0 <= item.offset - (last.offset + last.length) <= 2
        ):
            # The first record stands for the run (`records` counts it, `length` covers
            # it): the rest are in the source file at the offsets given.
            last.records += 1
            last.length = item.offset + length - last.offset
            continue
        entries.append(Entry(item.offset, item.reason, item.raw, length, 1, item.truncated))
    if len(entries) <= MAX_ENTRIES:
        return entries
    kept, rest = entries[: MAX_ENTRIES - 1], entries[MAX_ENTRIES - 1 :]
    reasons = Counter(e.reason for e in rest)
    summary = "; ".join(f"{count} x {reason}" for reason, count in reasons.most_common(5))
    end = max(e.offset + e.length for e in rest)
    kept.append(Entry(
        rest[0].offset,
        f"{sum(e.records for e in rest)} more rejected records up to offset {end} "
        f"(raw text not kept: more than {MAX_ENTRIES} entries in one batch): {summary}",
        "", end - rest[0].offset, sum(e.records for e in rest), True,
    ))
    return kept


def entry_fields(entries: list[Entry], config: Config, key: bytes) -> list[dict[str, Any]]:
    """The JSON fields of each entry as `store_text` allows them (see the docstring)."""
    mode = config.privacy.store_text
    shown = mask([e.raw for e in entries], config) if mode == "masked" else None
    result = []
    for number, entry in enumerate(entries):
        fields: dict[str, Any] = {
            "offset": entry.offset,
            "length": entry.length,
            "reason": entry.reason,
            "digest": hmac.new(
                key, entry.raw.encode("utf-8", "surrogatepass"), hashlib.sha256
            ).hexdigest(),
        }
        if entry.records > 1:
            fields["records"] = entry.records
        if mode == "none":
            fields["raw_omitted"] = "store_text = none"
        else:
            fields["raw"] = shown[number] if shown is not None else entry.raw
            if entry.truncated or entry.records > 1:
                fields["raw_truncated"] = True
        result.append(fields)
    return result


def mask(raws: list[str], config: Config) -> list[str]:
    """Each text with findings replaced by `[TYPE]` placeholders (JSON escapes decoded)."""
    from sentinel.pii.catalog import load_catalog
    from sentinel.pii.masking import mask_array

    if not raws:
        return []
    texts = [_ESCAPE.sub(lambda m: _unescape(m.group(1)), raw) for raw in raws]
    masked = mask_array(pa.array(texts, pa.large_string()), load_catalog(config),
                        placeholders=True)
    return [str(value) for value in masked.to_pylist()]


def _unescape(hex_digits: str) -> str:
    char = chr(int(hex_digits, 16))
    # A lone surrogate or a control character stays escaped: it is not text to scan.
    if not char.isprintable() or 0xD800 <= ord(char) <= 0xDFFF:
        return f"\\u{hex_digits}"
    return char
