"""Where each demo record lands on disk, and how each file format is written.

The layout copies what each product really delivers: LiteLLM JSON lines per day and a
SpendLogs JSON-array export; Bedrock invocation logs as gzipped JSON lines under
`AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`; CloudTrail as
gzipped `{"Records": [...]}` objects under `AWSLogs/<account>/CloudTrail/<region>/…`;
OpenAI audit events as JSON lines plus one API list page.

Output must be byte-identical for a seed, so gzip headers carry no timestamp or file
name (`mtime=0`), object names derive from a hash of their content key, not from a
clock, and every JSON document is serialised with a fixed key order.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sentinel.demo.world import AWS_ACCOUNT

SPEND_EXPORT = "litellm/spend_logs_export.json"
OPENAI_LINES = "openai_audit/audit_logs.jsonl"
OPENAI_PAGE = "openai_audit/audit_logs_page.json"


def _tag(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]


def litellm_path(ts: datetime) -> str:
    return f"litellm/litellm-proxy-{ts:%Y-%m-%d}.jsonl"


def bedrock_path(ts: datetime, region: str) -> str:
    # One object per region and day (Bedrock itself delivers many smaller objects).
    prefix = f"bedrock/AWSLogs/{AWS_ACCOUNT}/BedrockModelInvocationLogs/{region}"
    return f"{prefix}/{ts:%Y/%m/%d}/00/{ts:%Y%m%dT000000Z}_{_tag(region, str(ts.date()))}.json.gz"


def cloudtrail_path(ts: datetime, region: str) -> str:
    # One object per region and day (CloudTrail itself delivers about every 5 minutes;
    # fewer, larger objects keep `make run` quick and still exercise multi-MB documents).
    prefix = f"cloudtrail/AWSLogs/{AWS_ACCOUNT}/CloudTrail/{region}/{ts:%Y/%m/%d}"
    stamp = f"{ts:%Y%m%d}T0000Z"
    name = f"{AWS_ACCOUNT}_CloudTrail_{region}_{stamp}_{_tag(region, stamp)}"
    return f"{prefix}/{name}.json.gz"


def path_for(source: str, ts: datetime, region: str) -> str:
    """The file a record of `source` at `ts` (in `region`) belongs to."""
    if source == "litellm":
        return litellm_path(ts)
    if source == "litellm_spendlogs":
        return SPEND_EXPORT
    if source == "bedrock":
        return bedrock_path(ts, region)
    if source == "cloudtrail":
        return cloudtrail_path(ts, region)
    if source == "openai_audit":
        return OPENAI_LINES
    raise ValueError(f"unknown demo source {source!r}")


def _open_for_write(root: Path, rel: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_lines(root: Path, rel: str, lines: Iterable[str], compress: bool = False) -> int:
    """Write pre-serialised JSON lines (newline-terminated); returns the line count."""
    items = list(lines)
    data = ("\n".join(items) + "\n").encode() if items else b""
    _write_bytes(_open_for_write(root, rel), _gzip_bytes(data) if compress else data)
    return len(items)


def write_cloudtrail(root: Path, rel: str, records: list[dict[str, Any]]) -> int:
    """A CloudTrail S3 object: one compact `{"Records": [...]}` document, gzipped."""
    data = json.dumps({"Records": records}, separators=(",", ":")).encode()
    _write_bytes(_open_for_write(root, rel), _gzip_bytes(data))
    return len(records)


def write_json_array(root: Path, rel: str, rows: list[dict[str, Any]]) -> int:
    """A database export: one pretty-printed JSON array."""
    data = (json.dumps(rows, indent=2) + "\n").encode()
    _write_bytes(_open_for_write(root, rel), data)
    return len(rows)


def write_list_page(root: Path, rel: str, events: list[dict[str, Any]]) -> int:
    """One page of `GET /organization/audit_logs`, newest first, as the API returns it."""
    data = sorted(events, key=lambda e: e["effective_at"], reverse=True)
    page = {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": False,
    }
    _write_bytes(_open_for_write(root, rel), (json.dumps(page, indent=2) + "\n").encode())
    return len(data)
