"""The incident queue: what needs a responder now, live as the daemon and scans write.

The queue reloads when an incident changed (`data.queue_version`: one PRAGMA per poll,
two maxima when another process committed). Single keys act on the highlighted incident
through `sentinel.store.triage`, the functions the CLI uses, so each action is a timeline
entry.
The table is textual-fastdatatable over the filtered, sorted rows (`grid.RowsBackend`):
cells are built for the rows on screen only, so 10,000 incidents list at once.

The vendor column is not in state.db but in the lake (the vendor of each linked event).
It is looked up for the rows drawn, in a worker, once per incident and event count: a
screenful of recent incidents reads a few days' partitions, where all 10,000 at startup
would scan the whole lake and slow every screen opened meanwhile. Until then the cell is
empty. The text filter matches vendors too, so the first time one is typed (and for
incidents that arrive or grow while one is set) every incident's vendors are looked up,
in one worker (one DuckDB join, about 3 s over 10,000,000 events); the filter line says
so until they are in, and the queue refilters when they arrive.
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
from textual.widgets import Footer, Input, Static
from textual_fastdatatable import DataTable

from sentinel.exceptions import SentinelError
from sentinel.store import incidents as store
from sentinel.tui import cells, data
from sentinel.tui.grid import RowsBackend, rows_changed
from sentinel.tui.safe import plain, title_bar
from sentinel.tui.screens.triage import TRIAGE_BINDINGS, TriageScreen

COLUMNS = ("#", "sev", "status", "age", "deadline", "title", "vendor", "principal", "alerts",
           "events", "assignee")
"""What needs acting on first comes first: at 80 columns the deadline is still on screen,
at 120 the vendor (short) before the principal (an ARN can take the rest of the line)."""
CUT = {"title": 48, "principal": 32, "vendor": 24, "assignee": 20}
"""Characters a text column shows at most."""
STATUS_FILTERS = ("open", "all", *store.STATUSES)
SORTS = ("newest", "severity", "deadline", "age")
POLL_SECONDS = 1.0


def deadline_cell(row: data.QueueRow, now: datetime) -> Text:
    return cells.time_left(row.deadline, now)


class IncidentsScreen(TriageScreen):
    """The live incident queue with filters, sorting and single-key triage."""

    BINDINGS = [
        Binding("enter", "open", "Open"),
        *TRIAGE_BINDINGS,
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
        """The queue was (re)read from the store (`deadlines`: with its deadlines)."""

        def __init__(self, rows: list[data.QueueRow], deadlines: bool = False) -> None:
            super().__init__()
            self.rows = rows
            self.deadlines = deadlines

    class VendorsFound(Message):
        """The vendors of the incidents `asked` were read from the lake (`found`; empty
        when the lookup failed)."""

        def __init__(self, asked: set[int], found: dict[int, tuple[int, str]]) -> None:
            super().__init__()
            self.asked = asked
            self.found = found

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[data.QueueRow] = []
        """Every incident as last read; the table shows `shown`, a filtered, sorted view."""
        self.shown: list[data.QueueRow] = []
        self._version: data.QueueVersion | None = None
        self.vendors: dict[int, tuple[int, str]] = {}
        """Per incident: its event count when its vendors were read, and the vendors."""
        self.vendors_read = False
        """The first vendor lookup arrived (the column is filled)."""
        self._vendors_wanted: dict[int, int] = {}
        """Incidents drawn without their vendors (id → event count), for the next lookup."""
        self._vendors_asked: set[int] = set()
        """Incidents whose vendors a worker is reading."""
        self._now = data.now()

    def compose(self) -> ComposeResult:
        yield Static(title_bar("Incidents", self.app), classes="titlebar")
        yield Static(id="counts")
        with Horizontal(id="filters"):
            yield Input(placeholder="/ filter: title, principal, vendor, rule, assignee",
                        id="filter")
            yield Static(id="filter-state")
        yield DataTable(id="queue", backend=RowsBackend(COLUMNS, self._cells),
                        cursor_type="row", zebra_stripes=True, render_markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#queue", DataTable)
        self._show_filter_state()
        table.focus()
        self.reload()
        self.set_interval(POLL_SECONDS, self.poll)

    @work(thread=True, exclusive=True, group="queue")
    def reload(self) -> None:
        """The incidents; their deadlines follow once the list is on screen."""
        app = self.app
        # The version first: a commit landing while the queue is read is read again.
        self._version = app.poll_version()  # type: ignore[attr-defined]
        self.post_message(self.Loaded(data.queue(app.workspace)))  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="deadlines")
    def load_deadlines(self, rows: list[data.QueueRow]) -> None:
        # A second step, started by the first one's arrival: the playbooks' YAML and the
        # progress queries never compete with drawing the list for the interpreter.
        app = self.app
        books = app.playbooks.load()  # type: ignore[attr-defined]
        if any(row.incident.playbook in books for row in rows):
            rows = data.with_deadlines(app.workspace, rows, books)  # type: ignore[attr-defined]
            self.post_message(self.Loaded(rows, deadlines=True))

    def _want_vendor(self, case: data.QueueCase) -> None:
        """Ask for the vendors of a drawn incident, unless known for its event count."""
        known = self.vendors.get(case.incident_id)
        if known is not None and known[0] == case.event_count:
            return
        if not self._vendors_wanted:
            self.call_after_refresh(self._look_up_vendors)
        self._vendors_wanted[case.incident_id] = case.event_count

    def _want_every_vendor(self) -> None:
        """The text filter matches vendors: look up those of every incident, not only the
        drawn ones (each still once per event count)."""
        for row in self.rows:
            self._want_vendor(row.incident)
        self._show_filter_state()

    def _look_up_vendors(self) -> None:
        wanted, self._vendors_wanted = self._vendors_wanted, {}
        for incident_id, count in wanted.items():  # asked once per event count
            self.vendors[incident_id] = (count, self.vendors.get(incident_id, (0, ""))[1])
        self._vendors_asked.update(wanted)
        self.load_vendors(wanted)

    @work(thread=True, group="vendors")
    def load_vendors(self, stale: dict[int, int]) -> None:
        """The vendors of incidents drawn (id → event count), from the lake."""
        app = self.app
        try:
            found = data.vendors(app.workspace, app.lake, list(stale))  # type: ignore[attr-defined]
        except SentinelError as exc:
            app.call_from_thread(self.notify, f"{exc.title}: {exc.message}", severity="error")
            self.post_message(self.VendorsFound(set(stale), {}))
            return
        self.post_message(self.VendorsFound(set(stale), {
            incident: (count, found.get(incident, "")) for incident, count in stale.items()
        }))

    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        version = self.app.poll_version()  # type: ignore[attr-defined]
        if version != self._version:
            self.reload()

    def on_incidents_screen_loaded(self, message: Loaded) -> None:
        self.rows = message.rows
        if self.text_filter:  # new or grown incidents: their vendors too, for the filter
            self._want_every_vendor()
        self.refresh_table()
        if not message.deadlines:
            self.load_deadlines(message.rows)

    def on_incidents_screen_vendors_found(self, message: VendorsFound) -> None:
        self.vendors.update(message.found)
        self._vendors_asked -= message.asked
        self.vendors_read = True
        self._show_filter_state()
        self.refresh_table()

    def vendor(self, row: data.QueueRow) -> str:
        return self.vendors.get(row.incident.incident_id, (0, ""))[1]

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
            if needle and needle not in " ".join(
                [case.title, case.group_key, case.rule_id, case.assignee or "", self.vendor(row)]
            ).lower():
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
        self._now = data.now()
        self.shown = self.shown_rows()
        backend = table.backend
        assert isinstance(backend, RowsBackend)
        backend.rows = self.shown
        backend.widths = self._widths(self.shown)
        rows_changed(table)
        ids = [row.incident.incident_id for row in self.shown]
        if selected in ids:
            table.move_cursor(row=ids.index(selected))
        self._show_counts()

    def _cells(self, row: data.QueueRow) -> list[Text]:
        """One queue row as drawn (called for the rows on screen only)."""
        case = row.incident
        self._want_vendor(case)
        return [
            Text(str(case.incident_id)),
            cells.severity(case.severity),
            Text(case.status),
            cells.age(case.first_seen, self._now),
            deadline_cell(row, self._now),
            plain(case.title, CUT["title"]),
            plain(self.vendor(row), CUT["vendor"]),
            plain(row.principal, CUT["principal"]),
            Text(str(case.alert_count), justify="right"),
            Text(str(case.event_count), justify="right"),
            plain(case.assignee or "", CUT["assignee"]),
        ]

    def _widths(self, rows: list[data.QueueRow]) -> list[int]:
        """Column widths from plain lengths (no cell is built to measure it)."""
        def widest(values: list[int], cut: int = 1000) -> int:
            return min(cut, max(values, default=0))

        cases = [row.incident for row in rows]
        return [
            widest([len(str(c.incident_id)) for c in cases]),
            widest([len(c.severity) for c in cases]),
            widest([len(c.status) for c in cases]),
            4,
            12,
            widest([len(c.title) for c in cases], CUT["title"]),
            widest([len(self.vendor(row)) for row in rows], CUT["vendor"]),
            widest([len(row.principal) for row in rows], CUT["principal"]),
            widest([len(str(c.alert_count)) for c in cases]),
            widest([len(str(c.event_count)) for c in cases]),
            widest([len(c.assignee or "") for c in cases], CUT["assignee"]),
        ]

    def _show_counts(self) -> None:
        counts = data.severity_counts(self.rows)
        line = Text("open: ")
        for level in reversed(store.SEVERITIES):
            line.append(f"{level} {counts[level]}  ", style=cells.SEVERITY_STYLE.get(level, ""))
        line.append(f"· {len(self.shown)} shown of {len(self.rows)}", style="dim")
        self.query_one("#counts", Static).update(line)

    def _show_filter_state(self) -> None:
        state = Text(f"status {self.status_filter} · ≥ {self.min_severity} · sort {self.sort}")
        if self.text_filter and (self._vendors_asked or self._vendors_wanted):
            state.append(" · reading vendors…", style="yellow")
        self.query_one("#filter-state", Static).update(state)

    def selected_id(self) -> int | None:
        table = self.query_one("#queue", DataTable)
        if not self.shown or not 0 <= table.cursor_row < len(self.shown):
            return None
        return self.shown[table.cursor_row].incident.incident_id

    def on_input_changed(self, event: Input.Changed) -> None:
        self.text_filter = event.value

    def on_input_submitted(self, _event: Input.Submitted) -> None:
        self.query_one("#queue", DataTable).focus()

    def watch_text_filter(self) -> None:
        if self.is_mounted:
            if self.text_filter:
                self._want_every_vendor()
            self._show_filter_state()
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

    def triage_target(self) -> int | None:
        return self.selected_id()
