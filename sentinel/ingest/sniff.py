"""Sniffing: from the first bytes of a file, its framing, a sample record, or "not a log".

Decisions are taken on the (decompressed) head of the file and never on one line alone:
a torn first line (the file was copied mid-write, or rotated by copytruncate) or a first
line that is a JSON array must not turn a JSON-lines file into a "document". A UTF-8
byte-order mark is skipped, and so are runs of NUL bytes at the start of a line (the hole
that copytruncate leaves when the writer keeps its offset): they are not "binary".
Python's `json` is only ever given one line or the head, and a RecursionError (a record
nested 1,000 levels deep) counts as "does not parse", never as a crash.
"""

from __future__ import annotations

import json
import re

import duckdb

from sentinel.exceptions import SourceError
from sentinel.ingest.framing import Chunk

BOM = b"\xef\xbb\xbf"
SNIFF_LINES = 100
_LINE_START_NULS = re.compile(rb"(?:^|(?<=\n))\x00+")
# Control bytes that never occur in JSON text (whitespace and escapes aside).
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_ENVELOPE_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$")


def clean_head(head: bytes) -> bytes:
    """`head` without a byte-order mark and without NUL runs at the start of lines."""
    if head.startswith(BOM):
        head = head[len(BOM) :]
    if b"\x00" in head:
        head = _LINE_START_NULS.sub(b"", head)
    return head


def is_binary(head: bytes) -> bool:
    """True when the first 8 KiB (cleaned) hold bytes no JSON text contains.

    Control characters other than whitespace cannot appear raw in JSON; NUL runs at line
    starts were removed by `clean_head`, so a NUL left is inside a line (UTF-16, images).
    """
    return _BINARY.search(clean_head(head)[:8192]) is not None


PYTHON_SAMPLE_BYTES = 1024 * 1024
"""Documents up to this size are sampled in Python rather than by a DuckDB query."""


def _object(value: object) -> object | None:
    """A record as the DuckDB query gives it: an object or array, else nothing."""
    return value if isinstance(value, dict | list) else None


def parses(line: bytes) -> object | None:
    """The JSON object or array `line` holds, or None (not JSON, or nested too deep)."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict | list) else None


def complete_lines(head: bytes) -> list[bytes]:
    """The non-blank lines of `head` that end before its last byte (the last may be cut)."""
    lines = head.split(b"\n")[:-1][:SNIFF_LINES]
    return [line for line in lines if line.strip()]


def detect_framing(head: bytes) -> str:
    """'lines' or 'document', from the cleaned head of the (decompressed) content.

    JSON lines when the first line is a whole JSON value, or when at least half of the
    complete lines of the head are (a torn or damaged first line); a pretty-printed
    document has almost no line that is JSON on its own. A compact array alone in its
    file, or one longer than the head, is a document. Any other head with no complete
    line (one long line) is read as lines, each bad line being quarantined on its own.
    """
    text = head.lstrip(b" \t\r\n")
    lines = complete_lines(text)
    if not lines:
        # One line longer than the head: an array export is a document (up to
        # max_document_bytes), anything else a line (up to max_line_bytes).
        return "document" if text.startswith(b"[") else "lines"
    first = parses(lines[0])
    if first is not None:
        # A compact JSON array alone in its file is an export: a document, so that its
        # records are numbered by index rather than all sharing one line's offset.
        alone = len(lines) == 1 and not text.split(b"\n", 1)[1].strip()
        return "document" if isinstance(first, list) and alone else "lines"
    whole = sum(1 for line in lines if parses(line) is not None)
    if len(lines) >= 2 and whole * 2 >= len(lines):
        return "lines"
    return "document" if text.startswith((b"{", b"[")) and len(lines) >= 2 else "lines"


def sample_record(head: bytes, framing: str, envelope_paths: tuple[str, ...]) -> object | None:
    """The first record of a file, parsed in Python, to recognise its source."""
    text = head.lstrip(b" \t\r\n")
    if framing == "document":
        value = parses(text)
    else:
        value = None
        # The first line that parses: a damaged first line must not hide the format.
        for line in text.split(b"\n")[:SNIFF_LINES]:
            if line.strip():
                value = parses(line)
                if value is not None:
                    break
    return None if value is None else _first_record(value, envelope_paths)


def document_sample(
    con: duckdb.DuckDBPyConnection, chunk: Chunk, envelope_paths: tuple[str, ...]
) -> object | None:
    """The first record of a document already read, extracted by DuckDB (a large
    document is never parsed whole in Python)."""
    if chunk.records.num_rows == 0:
        return None
    for path in envelope_paths:
        if not _ENVELOPE_PATH.match(path):
            raise SourceError(f"envelope path {path!r} must look like $.key or $.a.b")
    if chunk.bytes_read <= PYTHON_SAMPLE_BYTES:
        # A small document (an S3-sync tree's one-object file) is parsed here: a DuckDB
        # query costs more to bind than the whole file costs to parse.
        value = parses(str(chunk.records.column("record")[0].as_py()).encode())
        return None if value is None else _object(_first_record(value, envelope_paths))
    branches = " ".join(
        f"WHEN json_type(d, '{path}') = 'ARRAY' THEN json_extract(d, '{path}[0]')"
        for path in envelope_paths
    )
    con.register("_sentinel_doc", chunk.records)
    try:
        rows = con.execute(
            f"""
            WITH doc AS (
                SELECT CASE WHEN json_valid(record) THEN record::JSON END AS d FROM _sentinel_doc
            )
            SELECT CAST(CASE WHEN json_type(d) = 'ARRAY' THEN json_extract(d, '$[0]')
                             {branches} ELSE d END AS VARCHAR)
            FROM doc
            """
        ).fetchall()
    finally:
        con.unregister("_sentinel_doc")
    if not rows or rows[0][0] is None:
        return None
    return parses(rows[0][0].encode())


def _first_record(value: object, envelope_paths: tuple[str, ...]) -> object | None:
    if isinstance(value, list):
        return value[0] if value else None
    if isinstance(value, dict):
        for path in envelope_paths:
            inner: object = value
            for key in path.split(".")[1:]:
                inner = inner.get(key) if isinstance(inner, dict) else None
            if isinstance(inner, list):
                return inner[0] if inner else None
    return value
