"""An incident's playbook as a checklist: state of each step, deadlines, instructions.

Every action goes through `sentinel.respond.runner`, the functions `sentinel playbook`
calls, so gates, approver rules and the timeline behave exactly as on the CLI. Steps that
reach outside the workspace (a webhook, a local command) run only after a confirmation
that shows what will be sent or run.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Markdown, Static

from sentinel.exceptions import SentinelError
from sentinel.respond import runner
from sentinel.respond.playbook import Playbook
from sentinel.respond.steps import ApprovalStep, CommandStep, NotifyStep, Step
from sentinel.store import progress
from sentinel.tui import cells, data
from sentinel.tui.safe import plain, title_bar
from sentinel.tui.screens.prompt import AskText, Confirm

STATE_STYLE = {
    "done": "green", "approved": "green", "skipped": "dim", "failed": "bold red",
    "requested": "yellow",
}


class PlaybookScreen(Screen[None]):
    """Step list on the left, the highlighted step's instructions and evidence on the right."""

    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "run_step", "Run step"),
        Binding("d", "finish('done')", "Done"),
        Binding("k", "finish('skipped')", "Skip"),
        Binding("A", "approve", "Approve"),
    ]

    class Loaded(Message):
        """The playbook and the incident's progress were read."""

        def __init__(self, book: Playbook | None, states: dict[str, progress.StepState],
                     deadlines: list[Any], evidence: list[progress.EvidenceRow],
                     error: str | None = None) -> None:
            super().__init__()
            self.book = book
            self.states = states
            self.deadlines = deadlines
            self.evidence = evidence
            self.error = error

    def __init__(self, incident_id: int) -> None:
        super().__init__()
        self.incident_id = incident_id
        self.book: Playbook | None = None
        self.states: dict[str, progress.StepState] = {}
        self.evidence: list[progress.EvidenceRow] = []

    def compose(self) -> ComposeResult:
        yield Static(title_bar(f"Playbook · incident {self.incident_id}", self.app),
                     classes="titlebar")
        yield Static(id="deadlines")
        with Horizontal():
            yield DataTable(id="steps", cursor_type="row")
            with VerticalScroll(id="step-detail"):
                yield Static(id="step-head")
                yield Markdown(id="instructions")
                yield Static(id="step-evidence")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#steps", DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="playbook")
    def load(self) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            with data.state(ws) as con:
                book = runner.playbook_for(ws, con, self.incident_id)
                states = progress.states(con, self.incident_id)
                deadlines = runner.deadlines(con, book, self.incident_id)
                evidence = progress.evidence_of(con, [self.incident_id])
        except SentinelError as exc:
            self.post_message(self.Loaded(None, {}, [], [], f"{exc.title}: {exc.message}"))
            return
        self.post_message(self.Loaded(book, states, deadlines, evidence))

    def on_playbook_screen_loaded(self, message: Loaded) -> None:
        if not self.query("#steps"):  # the screen closed before its playbook came
            return
        if message.error is not None or message.book is None:
            self.query_one("#deadlines", Static).update(plain(message.error, 500, "bold red"))
            return
        self.book, self.states, self.evidence = message.book, message.states, message.evidence
        self._show_deadlines(message.deadlines)
        table = self.query_one("#steps", DataTable)
        row = table.cursor_row if table.row_count else 0
        # The state before the title: at 80 columns the list is half the screen, and what
        # is done or waiting is what a responder scans it for.
        lines = []
        for number, step in enumerate(self.book.steps, start=1):
            current = self.states.get(step.id)
            state = current.state if current else "todo"
            gates = runner.blocking(step, self.states)
            lines.append([
                Text(str(number)), Text(state, style=STATE_STYLE.get(state, "")),
                plain(step.title, 40), Text(step.kind), plain(", ".join(gates), 30, "dim"),
            ])
        cells.fill(table, ("#", "state", "step", "kind", "waits for"), lines,
                   [step.id for step in self.book.steps])
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))
            self._show_step(self.book.steps[table.cursor_row])

    def _show_deadlines(self, deadlines: list[Any]) -> None:
        line = Text()
        now = data.now()
        for deadline in deadlines:
            if deadline.met:
                line.append(f"✓ {deadline.label}  ", style="green")
            elif deadline.due_at is not None:
                left = cells.time_left(deadline.due_at, now, " left")
                line.append(f"⏱ {deadline.label}: {left.plain}  ", style=str(left.style) or "bold")
        self.query_one("#deadlines", Static).update(line or Text("No deadlines.", style="dim"))

    def selected(self) -> Step | None:
        table = self.query_one("#steps", DataTable)
        if self.book is None or not table.row_count:
            return None
        return self.book.steps[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.book is not None and 0 <= event.cursor_row < len(self.book.steps):
            self._show_step(self.book.steps[event.cursor_row])

    def _show_step(self, step: Step) -> None:
        current = self.states.get(step.id)
        head = Text()
        head.append_text(plain(step.title, 200, "bold"))
        head.append(f"\n{step.kind} · {current.state if current else 'todo'}", style="dim")
        if current is not None:
            head.append(f" by {current.actor} at {current.updated_at[:19]}", style="dim")
            if current.note:
                head.append("\nnote: ")
                head.append_text(plain(current.note, 500))
        if isinstance(step, ApprovalStep):
            head.append(f"\napprovers: {', '.join(step.approvers)}")
        self.query_one("#step-head", Static).update(head)
        text = str(getattr(step, "instructions", "") or "")
        items = list(getattr(step, "checklist", []) or [])
        if items:
            text += "\n\n" + "\n".join(f"- [ ] {item}" for item in items)
        if getattr(step, "sql", ""):
            text += f"\n\n```sql\n{step.sql}\n```"  # type: ignore[attr-defined]
        self.query_one("#instructions", Markdown).update(text or "*(no instructions)*")
        shown = Text()
        for row in self.evidence:
            if row.step_id == step.id:
                shown.append(f"\nevidence: {row.title} ({row.rows} rows, sha256 "
                             f"{row.sha256[:12]}…)\n", style="bold")
                shown.append_text(plain(row.content, 3000))
        self.query_one("#step-evidence", Static).update(shown)

    # -- actions -------------------------------------------------------------------------
    def action_run_step(self) -> None:
        step = self.selected()
        if step is None:
            return
        if isinstance(step, NotifyStep | CommandStep):
            what = (f"run {' '.join(step.argv)}" if isinstance(step, CommandStep)
                    else f"post to webhook {step.webhook!r}")

            def answered(yes: bool | None) -> None:
                if yes:
                    self.execute(step.id, True)
                else:
                    self.notify(f"{step.id} was not run.")

            self.app.push_screen(Confirm(f"Step {step.id} will {what}. Go ahead?"), answered)
            return
        self.execute(step.id, False)

    @work(thread=True, group="playbook-action")
    def execute(self, step_id: str, confirmed: bool) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            with data.state(ws) as con:
                done = runner.run(ws, con, self.incident_id, step_id=step_id,
                                  confirm=lambda _step, _argv: confirmed)
        except SentinelError as exc:
            self._tell(f"{exc.title}: {exc.message}", "error")
        else:
            for ran in done:
                self._tell(f"{ran.step_id}: {ran.state} — {ran.message}",
                           "error" if ran.state == "failed" else "information")
        self.load()

    def action_finish(self, state: str) -> None:
        step = self.selected()
        if step is None:
            return
        question = f"{'Done' if state == 'done' else 'Skip'} {step.id}: a note"

        def answered(note: str | None) -> None:
            self._finish(step.id, state, note or "")

        self.app.push_screen(
            AskText(question + (" (required)" if state == "skipped" else " (optional)")),
            answered,
        )

    @work(thread=True, group="playbook-action")
    def _finish(self, step_id: str, state: str, note: str) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            with data.state(ws) as con:
                runner.finish(ws, con, self.incident_id, step_id, state, note=note)
        except SentinelError as exc:
            self._tell(f"{exc.title}: {exc.message}", "error")
        self.load()

    def action_approve(self) -> None:
        step = self.selected()
        if step is None:
            return
        def answered(who: str | None) -> None:
            if who:
                self._approve(step.id, who)

        self.app.push_screen(
            AskText(f"Approve {step.id} as (your name, one of the approvers):"), answered
        )

    @work(thread=True, group="playbook-action")
    def _approve(self, step_id: str, who: str) -> None:
        ws = self.app.workspace  # type: ignore[attr-defined]
        try:
            with data.state(ws) as con:
                runner.approve(ws, con, self.incident_id, step_id, actor=who)
        except SentinelError as exc:
            self._tell(f"{exc.title}: {exc.message}", "error")
        self.load()

    def _tell(self, message: str, severity: str) -> None:
        self.app.call_from_thread(self.notify, message, severity=severity)  # type: ignore[arg-type]
