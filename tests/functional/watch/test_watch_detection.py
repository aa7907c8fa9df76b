"""Detection on arrival: a line written to a watched file becomes an incident in seconds."""

from __future__ import annotations

import signal
from pathlib import Path

from sentinel.workspace import Workspace
from tests.conftest import litellm_line
from tests.functional.watch.watchd import (
    Start,
    configure,
    lake_count,
    query,
    status,
    wait_for,
)

CARD = "4111 1111 1111 1111"
CARD_RULE = "Payment card number sent to an AI model"


def add(path: Path, *records: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(record + "\n" for record in records))


def scanned_everything(ws: Workspace) -> bool:
    """The newest committed batch is covered by a finished scan."""
    newest = query(ws, "SELECT coalesce(max(rowid), 0) FROM batches")[0][0]
    covered = query(
        ws, "SELECT coalesce(max(batch_seq), 0) FROM scans WHERE finished_at IS NOT NULL"
    )[0][0]
    return isinstance(newest, int) and isinstance(covered, int) and covered >= newest > 0


def test_a_card_written_to_a_watched_file_opens_an_incident_once(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    add(log, *(litellm_line(i) for i in range(5)))  # nothing to see
    watch = daemon()
    wait_for(lambda: lake_count(workspace) == 5 and scanned_everything(workspace),
             what="the quiet lines scanned")
    assert query(workspace, "SELECT count(*) FROM incidents")[0][0] == 0

    card_line = litellm_line(5, prompt=f"please charge card {CARD} for the renewal")
    add(log, card_line)
    incidents = wait_for(
        lambda: query(workspace, "SELECT incident_id, severity, title FROM incidents"),
        timeout=30, what="an incident for the card",
    )
    assert incidents == [(1, "high", CARD_RULE)]
    linked = query(workspace, "SELECT event_id FROM incident_events WHERE incident_id = 1")
    assert linked == [("chatcmpl-00000005",)]
    result = status(workspace)
    assert result.returncode == 0, result.stderr
    shown = result.stdout
    assert "1 open incidents" in shown and CARD_RULE in shown and "#1 high" in shown
    assert CARD not in shown and CARD not in watch.log  # never spread in clear
    assert "detect.alerts" in watch.log

    # The same line flushed again (a writer that retries) is a second event with the same
    # id: the scan runs over it, and the alert and incident stay one.
    add(log, card_line)
    wait_for(lambda: lake_count(workspace) == 7 and scanned_everything(workspace),
             what="the repeated line scanned")
    assert query(workspace, "SELECT count(*) FROM alerts")[0][0] == 1
    assert query(workspace, "SELECT count(*), sum(alert_count) FROM incidents")[0] == (1, 1)
    assert watch.stop() == 0

    daemon()  # a restart scans nothing twice
    add(log, litellm_line(6))
    wait_for(lambda: lake_count(workspace) == 8 and scanned_everything(workspace),
             what="the line after the restart scanned")
    assert query(workspace, "SELECT count(*) FROM alerts")[0][0] == 1


def test_sighup_applies_a_new_detect_config_and_keeps_it_on_a_bad_edit(
    workspace: Workspace, daemon: Start, logs: Path
) -> None:
    configure(workspace, f'path = "{logs}"')
    log = logs / "gw.jsonl"
    watch = daemon()
    add(log, litellm_line(0, prompt=f"card {CARD}"))
    wait_for(lambda: query(workspace, "SELECT count(*) FROM incidents")[0][0] == 1,
             what="the first card's incident")
    config = workspace.config_path.read_text()
    workspace.config_path.write_text(config + f'\n[detect]\ndisabled = ["{CARD_RULE}"]\n')
    # Not applied before SIGHUP: the daemon runs on the config it has.
    add(log, litellm_line(1, prompt=f"card {CARD}"))
    wait_for(lambda: query(workspace, "SELECT count(*) FROM alerts")[0][0] == 2,
             what="the second card's alert (rule still enabled)")
    watch.signal(signal.SIGHUP)
    wait_for(lambda: watch.log.count("config.reloaded") == 1, what="the reload")
    add(log, litellm_line(2, prompt=f"card {CARD}"))
    wait_for(lambda: lake_count(workspace) == 3 and scanned_everything(workspace),
             what="the third card scanned")
    assert query(workspace, "SELECT count(*) FROM alerts")[0][0] == 2  # rule disabled

    workspace.config_path.write_text(config + "\n[detect]\ndisabld = []\n")
    watch.signal(signal.SIGHUP)
    wait_for(lambda: "config.invalid" in watch.log, what="the rejected edit")
    add(log, litellm_line(3, prompt=f"card {CARD}"))
    wait_for(lambda: lake_count(workspace) == 4 and scanned_everything(workspace),
             what="the fourth card scanned")
    assert query(workspace, "SELECT count(*) FROM alerts")[0][0] == 2  # still disabled
    assert watch.stop() == 0
