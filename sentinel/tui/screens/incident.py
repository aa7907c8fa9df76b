"""One incident: summary, exposure ledger, evidence events, timeline, activity picture.

Everything from the lake is masked before it reaches a widget (`sentinel.tui.data`). An
event opens in its own view; revealing it asks for a reason, which the timeline records
before the clear text is read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from sentinel.exceptions import SentinelError
from sentinel.store import incidents as store
from sentinel.tui import cells, data
from sentinel.tui.safe import body, plain, title_bar
from sentinel.tui.screens.prompt import AskText
from sentinel.tui.screens.triage import TRIAGE_BINDINGS, TriageScreen

BARS = " ▁▂▃▄▅▆▇█"


def bar_line(values: list[int], marks: list[bool], style: str) -> Text:
    """Values as block characters; marked positions (the incident window) highlighted."""
    top = max(values, default=0) or 1
    line = Text()
    for value, marked in zip(values, marks, strict=True):
        char = BARS[min(len(BARS) - 1, round(value / top * (len(BARS) - 1)))] if value else "·"
        line.append(char, style=("reverse " if marked else "") + style)
    return line


def activity_picture(
    points: list[tuple[datetime, int, int]], case: store.Incident, width: int = 96
) -> Text:
    """Requests and findings per hour of the principal; the incident window in reverse."""
    if not points:
        return Text("No per-hour activity for this principal in the lake.", style="dim")
    points = points[-width:]
    start, end = store.parse_ts(case.first_seen), store.parse_ts(case.last_seen)
    marks = [
        start.replace(minute=0, second=0, microsecond=0) <= hour <= end for hour, _, _ in points
    ]
    picture = Text()
    picture.append(f"requests/h (max {max(p[1] for p in points)})\n", style="bold")
    picture.append_text(bar_line([p[1] for p in points], marks, "green"))
    picture.append(f"\nPII findings/h (max {max(p[2] for p in points)})\n", style="bold")
    picture.append_text(bar_line([p[2] for p in points], marks, "red"))
    first, last = points[0][0], points[-1][0]
    picture.append(
        f"\n{first:%m-%d %H:00} … {last:%m-%d %H:00} UTC · reversed: the incident window",
        style="dim",
    )
    return picture


def fill_table(table: DataTable[Any], rows: pa.Table | list[dict[str, Any]]) -> None:
    records = rows.to_pylist() if isinstance(rows, pa.Table) else rows
    names = rows.column_names if isinstance(rows, pa.Table) else list(records[0]) if records else []
    table.clear(columns=True)
    if not names:
        return
    table.add_columns(*names)
    for record in records:
        table.add_row(*(plain(record[name], 60) for name in names))


class IncidentScreen(TriageScreen):
    """The detail of one incident, in tabs."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("p", "playbook", "Playbook"),
        *TRIAGE_BINDINGS,
    ]

    class Loaded(Message):
        """The incident's data arrived from the workers."""

        def __init__(self, part: str, value: Any) -> None:
            super().__init__()
            self.part = part
            self.value = value

    def __init__(self, incident_id: int) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.case: store.Incident | None = None

    def compose(self) -> ComposeResult:
        yield Static(title_bar("Incident", self.app), classes="titlebar")
        with TabbedContent(initial="summary"):
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static(id="facts")
                yield Static(id="activity")
                yield Static(Text("Related incidents of the same principal", style="bold"))
                yield DataTable(id="related", cursor_type="row")
            with TabPane("Exposure", id="exposure"):
                yield DataTable(id="ledger", cursor_type="row")
            with TabPane("Events", id="events"):
                yield DataTable(id="evidence", cursor_type="row")
            with TabPane("Timeline", id="timeline"):
                yield DataTable(id="entries", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="incident")
    def load(self) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        lake = self.app.lake  # type: ignore[attr-defined]
        try:
            case = data.incident(ws, self.incident_id)
        except SentinelError as exc:
            self.post_message(self.Loaded("error", exc))
            return
        self.post_message(self.Loaded("case", case))
        self.post_message(self.Loaded("timeline", data.timeline(ws, self.incident_id)))
        self.post_message(self.Loaded("related", data.related(ws, case)))
        for part, loader in (
            ("activity", lambda: data.activity(lake, case)),
            ("events", lambda: data.linked_events(ws, lake, self.incident_id)),
            ("ledger", lambda: data.ledger(ws, lake, self.incident_id)),
        ):
            try:
                self.post_message(self.Loaded(part, loader()))
            except SentinelError as exc:
                self.post_message(self.Loaded("error", exc))

    def on_incident_screen_loaded(self, message: Loaded) -> None:
        handler = getattr(self, f"_show_{message.part}")
        try:
            handler(message.value)
        except NoMatches:  # the worker finished after the screen closed: nothing to show
            return

    def _show_error(self, exc: SentinelError) -> None:
        self.notify(f"{exc.title}: {exc.message}", severity="error")

    def _show_case(self, case: store.Incident) -> None:
        self.case = case
        facts = Text()
        facts.append(f"#{case.incident_id} ", style="bold")
        facts.append_text(plain(case.title, 200, "bold"))
        facts.append("\n")
        rows = [
            ("severity", cells.severity(case.severity)),
            ("status", Text(case.status)),
            ("principal", plain(case.group_key or "—", 200)),
            ("rules", plain(", ".join(case.rules), 200)),
            ("seen", Text(f"{case.first_seen} → {case.last_seen}")),
            ("age", cells.age(case.first_seen, data.now())),
            ("alerts / events", Text(f"{case.alert_count} / {case.event_count}")),
            ("assignee", plain(case.assignee or "—", 80)),
            ("playbook", plain(case.playbook or "—", 80)),
        ]
        if case.recurrence_of:
            rows.append(("recurrence of", Text(f"#{case.recurrence_of}")))
        for label, value in rows:
            facts.append(f"{label:>16}  ", style="dim")
            facts.append_text(value)
            facts.append("\n")
        self.query_one("#facts", Static).update(facts)

    def _show_timeline(self, entries: list[Any]) -> None:
        table = self.query_one("#entries", DataTable)
        table.clear(columns=True)
        table.add_columns("seq", "time", "actor", "action", "detail")
        for entry in entries:
            table.add_row(
                Text(str(entry.seq)), Text(entry.ts[:19]), plain(entry.actor, 30),
                Text(entry.action), plain(entry.detail, 120),
            )

    def _show_related(self, cases: list[store.Incident]) -> None:
        table = self.query_one("#related", DataTable)
        table.clear(columns=True)
        table.add_columns("#", "sev", "status", "title", "first seen")
        for case in cases:
            table.add_row(
                Text(str(case.incident_id)), Text(case.severity), Text(case.status),
                plain(case.title, 60), Text(case.first_seen[:16]), key=str(case.incident_id),
            )

    def _show_events(self, table: pa.Table) -> None:
        fill_table(self.query_one("#evidence", DataTable), table)
        self.event_ids = table.column("event_id").to_pylist() if table.num_rows else []

    def _show_ledger(self, table: pa.Table) -> None:
        fill_table(self.query_one("#ledger", DataTable), table.drop_columns(["digests"])
                   if "digests" in table.column_names else table)

    def _show_activity(self, points: list[tuple[datetime, int, int]]) -> None:
        if self.case is not None:
            self.query_one("#activity", Static).update(activity_picture(points, self.case))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "evidence":
            event_id = self.event_ids[event.cursor_row]
            self.app.push_screen(EventScreen(self.incident_id, event_id))
        elif event.data_table.id == "related" and event.row_key.value is not None:
            self.app.open_incident(int(event.row_key.value))  # type: ignore[attr-defined]

    def action_playbook(self) -> None:
        self.app.open_playbook(self.incident_id)  # type: ignore[attr-defined]

    def triage_target(self) -> int | None:
        return self.incident_id

    def triaged(self) -> None:
        if self.is_attached:
            self.load()


class EventScreen(Screen[None]):
    """One event's prompt and response, masked; `v` reveals after asking why."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("v", "reveal", "Reveal (audited)"),
    ]

    class Loaded(Message):
        def __init__(self, event: dict[str, Any], revealed: bool) -> None:
            super().__init__()
            self.event = event
            self.revealed = revealed

    def __init__(self, incident_id: int, event_id: str) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.event_id = event_id

    def compose(self) -> ComposeResult:
        yield Static(title_bar("Incident", self.app), classes="titlebar")
        with VerticalScroll():
            yield Static(id="meta")
            yield Static(Text("Prompt", style="bold underline"))
            yield Static(id="prompt")
            yield Static(Text("Response", style="bold underline"))
            yield Static(id="response")
        yield Footer()

    def on_mount(self) -> None:
        self.load(None)

    @work(thread=True, exclusive=True)
    def load(self, reason: str | None) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            if reason is None:
                event = data.event_text(self.app.lake, self.event_id)  # type: ignore[attr-defined]
            else:
                event = data.reveal_event(ws, self.incident_id, self.event_id, reason)
        except SentinelError as exc:
            self.app.call_from_thread(self.notify, f"{exc.title}: {exc.message}",
                                      severity="error")
            return
        self.post_message(self.Loaded(event, reason is not None))

    def on_event_screen_loaded(self, message: Loaded) -> None:
        if not self.query("#prompt"):  # the screen closed before the event came
            return
        event = message.event
        meta = Text()
        if message.revealed:
            meta.append("REVEALED — recorded in the incident timeline\n", style="bold red")
        for key in ("event_id", "ts", "source", "actor_user", "actor_key", "client_ip",
                    "vendor", "model", "pii_types"):
            meta.append(f"{key:>11}  ", style="dim")
            meta.append_text(plain(event.get(key), 200))
            meta.append("\n")
        self.query_one("#meta", Static).update(meta)
        self.query_one("#prompt", Static).update(body(event.get("prompt_text")))
        self.query_one("#response", Static).update(body(event.get("response_text")))

    def action_reveal(self) -> None:
        def done(reason: str | None) -> None:
            if reason:
                self.load(reason)

        self.app.push_screen(AskText("Why reveal this event? (recorded in the timeline)"), done)
