"""The notify step's webhook against a real local HTTP server: ok, slow, 500, unreachable."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sentinel.config import WebhookConfig
from sentinel.respond import webhook
from sentinel.respond.steps import NotifyStep, StepContext


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Hook.received.append((self.path, body))
        if self.path == "/slow":
            time.sleep(1.0)
        status = 500 if self.path == "/fail" else 404 if self.path == "/gone" else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    Hook.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "BACKOFF", 0.01)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


def notify(url: str, fmt: str = "json", timeout: float = 2.0, retries: int = 2) -> Any:
    step = NotifyStep(
        id="page", kind="notify", title="Page", webhook="oncall",
        message="Incident {incident_id}: card 4111 1111 1111 1111 seen for {actor_user}",
    )
    ctx = StepContext(
        values={"incident_id": 7, "title": "Card", "severity": "high", "status": "new",
                "rule_id": "r", "group_key": "k", "actor_user": "jane@example.com"},
        lake=lambda: None,  # type: ignore[arg-type,return-value]
        webhooks={"oncall": WebhookConfig("oncall", url, fmt, timeout, retries)},
    )
    return step.execute(ctx)


def test_success_posts_masked_json(server: str) -> None:
    outcome = notify(server + "/ok")
    assert outcome.state == "done" and outcome.detail["attempts"] == 1
    path, body = Hook.received[0]
    assert path == "/ok" and body["incident_id"] == "7" and body["severity"] == "high"
    assert "4111 1111 1111 1111" not in json.dumps(body) and "card ****1111" in body["message"]
    assert "jane@example.com" not in body["message"]


def test_slack_format_is_a_text_message(server: str) -> None:
    assert notify(server + "/ok", fmt="slack").state == "done"
    assert set(Hook.received[0][1]) == {"text"}


def test_slow_server_times_out_and_is_recorded(server: str) -> None:
    started = time.monotonic()
    outcome = notify(server + "/slow", timeout=0.2, retries=1)
    assert outcome.state == "failed" and outcome.detail["attempts"] == 2
    assert "timed out" in outcome.detail["error"]
    assert time.monotonic() - started < 2.5


def test_500_is_retried_then_recorded(server: str) -> None:
    outcome = notify(server + "/fail", retries=2)
    assert outcome.state == "failed"
    assert outcome.detail == {
        "webhook": "oncall", "attempts": 3, "status": 500,
        "error": "HTTP 500 Internal Server Error",
    }
    assert len(Hook.received) == 3


def test_4xx_is_not_retried(server: str) -> None:
    outcome = notify(server + "/gone", retries=3)
    assert outcome.state == "failed" and outcome.detail["attempts"] == 1


def test_unreachable_is_recorded() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    outcome = notify(f"http://127.0.0.1:{port}/x", retries=1)
    assert outcome.state == "failed" and outcome.detail["attempts"] == 2
    assert "refused" in outcome.detail["error"].lower()


def test_unconfigured_webhook_is_a_recorded_failure() -> None:
    step = NotifyStep(id="p", kind="notify", title="P", webhook="nope", message="m")
    ctx = StepContext(values={}, lake=lambda: None, webhooks={})  # type: ignore[arg-type,return-value]
    outcome = step.execute(ctx)
    assert outcome.state == "failed" and "[incidents.webhooks.nope]" in outcome.detail["error"]
