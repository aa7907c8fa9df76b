"""Posting JSON to a webhook with a timeout and bounded retries; never raises.

A notification that cannot be delivered must not stop a responder working through a
playbook: the result says what happened and the runner records it. A 5xx answer, a
timeout or a refused connection is retried (with a short, growing pause); a 4xx answer
is final, since sending the same body again will not change it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

BACKOFF = 0.2
"""Seconds before the first retry; doubled for each further one."""


@dataclass(frozen=True)
class PostResult:
    ok: bool
    attempts: int
    status: int | None = None
    error: str = ""


def post_json(url: str, body: dict[str, Any], *, timeout: float, retries: int) -> PostResult:
    """POST `body` as JSON to `url`; at most `1 + retries` attempts of `timeout` seconds."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    status: int | None = None
    error = ""
    for attempt in range(1, retries + 2):
        request = urllib.request.Request(
            url, data=data, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "sentinel-playbook"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status = int(response.status)
                return PostResult(True, attempt, status)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500:
                return PostResult(False, attempt, status, error)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            status, error = None, f"{type(reason).__name__}: {reason}"
        if attempt <= retries:
            time.sleep(BACKOFF * 2 ** (attempt - 1))
    return PostResult(False, retries + 1, status, error)
