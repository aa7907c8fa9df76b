"""The incident queue: what needs a responder now, live as the daemon and scans write.

The queue reloads when SQLite's `data_version` changes (another process committed), which
costs one PRAGMA per poll. Single keys act on the highlighted incident through
`sentinel.store.triage`, the functions the CLI uses, so each action is a timeline entry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from sentinel.exceptions import SentinelError
from sentinel.store import incidents as store
from sentinel.tui import cells, data
from sentinel.tui.safe import plain, title_bar
from sentinel.tui.screens.prompt import AskText

STATUS_FILTERS = ("open", "all", *store.STATUSES)
SORTS = ("newest", "severity", "deadline", "age")
POLL_SECONDS = 1.0


def deadline_cell(row: data.QueueRow, now: datetime) -> Text:
    return cells.time_left(row.deadline, now)


class IncidentsScreen(Screen[None]):
    """The live incident queue with filters, sorting and single-key triage."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        Binding("a", "status('acknowledged')", "Ack"),
        Binding("g", "assign", "Assign"),
        Binding("c", "status('contained')", "Contain"),
        Binding("r", "status('resolved')", "Resolve"),
        Binding("x", "status('false_positive')", "False pos."),
        Binding("n", "note", "Note"),
        Binding("f", "cycle_status", "Status filter"),
        Binding("v", "cycle_severity", "Min severity"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("slash", "focus_filter", "Search"),
    ]

    status_filter: reactive[str] = reactive("open")
    """Which incidents are listed: `open`, `all` or one status."""
    min_severity: reactive[str] = reactive("informational")
    sort: reactive[str] = reactive("newest")
    text_filter: reactive[str] = reactive("")

    class Loaded(Message):
        """The queue was (re)read from the store."""

        def __init__(self, rows: list[data.QueueRow]) -> None:
            super().__init__()
            self.rows = rows

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[data.QueueRow] = []
        self._version: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(title_bar("Incidents", self.app), classes="titlebar")
        yield Static(id="counts")
        with Horizontal(id="filters"):
            yield Input(placeholder="/ filter: title, principal, rule, assignee", id="filter")
            yield Static(id="filter-state")
        yield DataTable(id="queue", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        table.add_columns("#", "sev", "status", "title", "principal", "alerts", "events",
                          "age", "deadline", "assignee")
        self._show_filter_state()
        table.focus()
        self.reload()
        self.set_interval(POLL_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="queue")
    def reload(self) -> None:
        rows = data.queue(self.app.workspace)  # type: ignore[attr-defined]
        self.post_message(self.Loaded(rows))

    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        version = self.app.poll_version()  # type: ignore[attr-defined]
        if version != self._version:
            self._version = version
            self.reload()

    def on_incidents_screen_loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        self.refresh_table()

    def shown_rows(self) -> list[data.QueueRow]:
        rank = store.severity_rank(self.min_severity)
        needle = self.text_filter.lower()
        shown = []
        for row in self.rows:
            case = row.incident
            if self.status_filter == "open" and not case.is_open:
                continue
            if self.status_filter not in ("open", "all") and case.status != self.status_filter:
                continue
            if store.severity_rank(case.severity) < rank:
                continue
            haystack = " ".join(
                [case.title, case.group_key, case.rule_id, case.assignee or ""]
            ).lower()
            if needle and needle not in haystack:
                continue
            shown.append(row)
        now = data.now()
        far = timedelta(days=36500)
        keys = {
            "newest": lambda r: -r.incident.incident_id,
            "severity": lambda r: (-store.severity_rank(r.incident.severity),
                                   -r.incident.incident_id),
            "deadline": lambda r: (r.time_left(now) or far, -r.incident.incident_id),
            "age": lambda r: -r.age(now).total_seconds(),
        }
        return sorted(shown, key=keys[self.sort])

    def refresh_table(self) -> None:
        table = self.query_one("#queue", DataTable)
        selected = self.selected_id()
        table.clear()
        now = data.now()
        for row in self.shown_rows():
            case = row.incident
            table.add_row(
                Text(str(case.incident_id)),
                cells.severity(case.severity),
                Text(case.status),
                plain(case.title, 60),
                plain(row.principal, 40),
                Text(str(case.alert_count), justify="right"),
                Text(str(case.event_count), justify="right"),
                cells.age(case, now),
                deadline_cell(row, now),
                plain(case.assignee or "", 20),
                key=str(case.incident_id),
            )
        if selected is not None and str(selected) in table.rows:
            table.move_cursor(row=table.get_row_index(str(selected)))
        self._show_counts()

    def _show_counts(self) -> None:
        counts = data.severity_counts(self.rows)
        line = Text("open: ")
        for level in reversed(store.SEVERITIES):
            line.append(f"{level} {counts[level]}  ", style=cells.SEVERITY_STYLE.get(level, ""))
        line.append(f"· {len(self.shown_rows())} shown of {len(self.rows)}", style="dim")
        self.query_one("#counts", Static).update(line)

    def _show_filter_state(self) -> None:
        self.query_one("#filter-state", Static).update(
            Text(f"status {self.status_filter} · ≥ {self.min_severity} · sort {self.sort}")
        )

    def selected_id(self) -> int | None:
        table = self.query_one("#queue", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value is not None else None

    def on_input_changed(self, event: Input.Changed) -> None:
        self.text_filter = event.value

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one("#queue", DataTable).focus()

    def watch_text_filter(self) -> None:
        if self.is_mounted:
            self.refresh_table()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def _cycle(self, values: tuple[str, ...], current: str) -> str:
        return values[(values.index(current) + 1) % len(values)]

    def action_cycle_status(self) -> None:
        self.status_filter = self._cycle(STATUS_FILTERS, self.status_filter)
        self._show_filter_state()
        self.refresh_table()

    def action_cycle_severity(self) -> None:
        self.min_severity = self._cycle(store.SEVERITIES, self.min_severity)
        self._show_filter_state()
        self.refresh_table()

    def action_cycle_sort(self) -> None:
        self.sort = self._cycle(SORTS, self.sort)
        self._show_filter_state()
        self.refresh_table()

    def action_open(self) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.app.open_incident(incident_id)  # type: ignore[attr-defined]

    def on_data_table_row_selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_status(self, status: str) -> None:
        incident_id = self.selected_id()
        if incident_id is not None:
            self.app.triage(incident_id, "status", status)  # type: ignore[attr-defined]

    def action_assign(self) -> None:
        incident_id = self.selected_id()
        if incident_id is None:
            return

        def done(who: str | None) -> None:
            if who:
                self.app.triage(incident_id, "assign", who)  # type: ignore[attr-defined]

        self.app.push_screen(AskText(f"Assign incident {incident_id} to:", "name"), done)

    def action_note(self) -> None:
        incident_id = self.selected_id()
        if incident_id is None:
            return

        def done(text: str | None) -> None:
            if text:
                self.app.triage(incident_id, "note", text)  # type: ignore[attr-defined]

        self.app.push_screen(AskText(f"Note on incident {incident_id}:"), done)


def triage_error(exc: SentinelError) -> str:
    return f"{exc.title}: {exc.message}"
