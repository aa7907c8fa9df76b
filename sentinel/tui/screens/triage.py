"""Single-key triage, the same keys on every screen that shows one incident at a time.

The queue acts on its highlighted incident, the detail screen on the one it shows; both
bind `TRIAGE_BINDINGS` and inherit the actions from `TriageScreen`, so a responder's
`a`, `g`, `c`, `r`, `x` and `n` mean the same thing wherever they are. Every action goes
through `SentinelApp.triage` (the store's triage functions, which the CLI calls too), so
each one lands in the incident's timeline.
"""

from __future__ import annotations

from collections.abc import Callable

from textual.binding import Binding
from textual.screen import Screen

from sentinel.tui.screens.prompt import AskText

TRIAGE_BINDINGS = [
    Binding("a", "status('acknowledged')", "Ack"),
    Binding("g", "assign", "Assign"),
    Binding("c", "status('contained')", "Contain"),
    Binding("r", "status('resolved')", "Resolve"),
    Binding("x", "status('false_positive')", "False pos."),
    Binding("n", "note", "Note"),
]


class TriageScreen(Screen[None]):
    """A screen that triages one incident at a time (`triage_target`) by single keys."""

    def triage_target(self) -> int | None:
        """The incident the keys act on (None: nothing selected)."""
        raise NotImplementedError

    def triaged(self) -> None:
        """Called once an action committed (the detail screen reads the incident again)."""

    def _send(self, incident_id: int, action: str, value: str) -> None:
        then: Callable[[], None] = self.triaged
        self.app.triage(incident_id, action, value, then)  # type: ignore[attr-defined]

    def action_status(self, status: str) -> None:
        incident_id = self.triage_target()
        if incident_id is not None:
            self._send(incident_id, "status", status)

    def action_assign(self) -> None:
        incident_id = self.triage_target()
        if incident_id is None:
            return

        def done(who: str | None) -> None:
            if who:
                self._send(incident_id, "assign", who)

        self.app.push_screen(AskText(f"Assign incident {incident_id} to:", "name"), done)

    def action_note(self) -> None:
        incident_id = self.triage_target()
        if incident_id is None:
            return

        def done(text: str | None) -> None:
            if text:
                self._send(incident_id, "note", text)

        self.app.push_screen(AskText(f"Note on incident {incident_id}:"), done)
