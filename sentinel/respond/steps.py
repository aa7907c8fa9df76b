"""Playbook step kinds: a declared registry mapping a YAML `kind:` to one class.

Each class is the step's schema (a pydantic model, unknown keys rejected) and its
behaviour. `STEP_KINDS` is the registry, as pySigma's transformations dict maps a
`type:` to a class: adding a kind means writing one class and adding one line here.

- `manual`: instructions (Markdown) and a checklist; a responder marks it done or
  skipped, with a note.
- `approval`: one of the named `approvers`, who is not the responder who requested it.
- `query`: one SELECT over the lake; `:field` parameters are bound from the incident.
  The result is masked and attached as evidence.
- `notify`: posts to a webhook from `[incidents.webhooks]`; failure is recorded, not fatal.
- `command`: a local program (no shell), arguments templated from incident fields, run
  only after an explicit confirmation; its masked output is attached.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from sentinel.config import WebhookConfig
from sentinel.exceptions import PlaybookError
from sentinel.respond import params as fields
from sentinel.respond.webhook import post_json

STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MAX_OUTPUT = 64 * 1024


@dataclass
class Evidence:
    kind: str
    title: str
    content: str
    """Masked: JSON lines of rows, or command output."""
    rows: int = 0


@dataclass
class Outcome:
    state: str
    """done or failed."""
    detail: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class StepContext:
    """What an automatic step may use while it runs."""

    values: dict[str, Any]
    """The incident's fields (`params.INCIDENT_FIELDS`)."""
    lake: Callable[[], duckdb.DuckDBPyConnection]
    """Opens the sandboxed, read-only lake connection."""
    webhooks: dict[str, WebhookConfig]
    confirmed: bool = False
    """The responder confirmed this step (commands run only then)."""
    workdir: Path | None = None


class Step(BaseModel):
    """Fields every step has."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind_name: ClassVar[str] = ""
    automatic: ClassVar[bool] = False
    """Run by `sentinel playbook run`; the others need a responder's done/skip/approve."""

    id: str = Field(description="Short unique id, e.g. `revoke-key` (lowercase, digits, -_).")
    kind: str = Field(description="manual, query, approval, notify or command.")
    title: str = Field(description="One line shown in the step list.")
    after: list[str] = Field(
        default_factory=list, description="Ids of earlier steps that must be finished first."
    )

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(location inside the step, message) for what the schema alone cannot check."""
        if not STEP_ID.match(self.id):
            return [(("id",), f"step id {self.id!r} must be lowercase letters, digits, - or _")]
        return []

    def execute(self, ctx: StepContext) -> Outcome:
        raise PlaybookError(f"a {self.kind} step is finished by a responder, not run")


class ManualStep(Step):
    kind_name: ClassVar[str] = "manual"
    instructions: str = Field(description="What to do, in Markdown.")
    checklist: list[str] = Field(default_factory=list, description="Items to tick off.")


class ApprovalStep(Step):
    kind_name: ClassVar[str] = "approval"
    approvers: list[str] = Field(min_length=1, description="Who may approve (`--as NAME`).")
    instructions: str = Field(default="", description="What the approver is agreeing to.")


class QueryStep(Step):
    kind_name: ClassVar[str] = "query"
    automatic: ClassVar[bool] = True
    sql: str = Field(description="One SELECT over the lake views; `:field` parameters.")
    max_rows: int = Field(default=200, ge=1, le=10000, description="Rows kept as evidence.")
    instructions: str = Field(default="", description="How to read the result.")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        found = super().problems()
        for kind, name in fields.sql_parameters(self.sql):
            if kind == "raw":
                found.append((("sql",), f"parameter {name!r}: write :field_name instead"))
            elif name not in fields.INCIDENT_FIELDS:
                found.append((("sql",), _unknown_field(f":{name}", name)))
        return found

    def execute(self, ctx: StepContext) -> Outcome:
        from sentinel.lake.query import query_error
        from sentinel.output import json_line
        from sentinel.pii.masking import mask_table

        names = {name for _, name in fields.sql_parameters(self.sql)}
        bound = {name: ctx.values.get(name) for name in names}
        lake = ctx.lake()
        try:
            sql = fields.to_duckdb(self.sql)
            statements = lake.extract_statements(sql)
            if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
                raise PlaybookError(f"step {self.id}: the query must be exactly one SELECT")
            reader = lake.sql(sql, params=bound or None)
            table = reader.to_arrow_table() if reader is not None else None
        except duckdb.Error as exc:
            raise PlaybookError(f"step {self.id}: {query_error(exc)}") from exc
        finally:
            lake.close()
        if table is None:
            raise PlaybookError(f"step {self.id}: the query returned no result")
        total = table.num_rows
        masked = mask_table(table.slice(0, self.max_rows))
        content = "".join(json_line(row) + "\n" for row in masked.to_pylist())
        title = f"{self.title}: {total} row{'s' if total != 1 else ''}"
        return Outcome(
            "done", {"rows": total, "kept": masked.num_rows, "columns": table.column_names},
            [Evidence("query", title, content, masked.num_rows)],
        )


class NotifyStep(Step):
    kind_name: ClassVar[str] = "notify"
    automatic: ClassVar[bool] = True
    webhook: str = Field(description="Name of an `[incidents.webhooks.NAME]` entry.")
    message: str = Field(description="Text with `{field}` placeholders; PII is masked.")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        found = super().problems()
        for name in fields.template_fields(self.message):
            if name not in fields.SCALAR_FIELDS:
                found.append((("message",), _unknown_field("{" + name + "}", name)))
        return found

    def execute(self, ctx: StepContext) -> Outcome:
        from sentinel.pii.masking import mask_text

        hook = ctx.webhooks.get(self.webhook)
        if hook is None:
            return Outcome("failed", {"error": f"webhook {self.webhook!r} is not configured "
                                      f"(add [incidents.webhooks.{self.webhook}])"})
        text = mask_text(fields.render(self.message, ctx.values))
        if hook.format == "slack":
            body: dict[str, Any] = {"text": text}
        else:
            body = {
                key: mask_text(str(ctx.values[key])) if ctx.values.get(key) is not None else None
                for key in ("incident_id", "title", "severity", "status", "rule_id", "group_key")
            }
            body["message"] = text
        result = post_json(hook.url, body, timeout=hook.timeout, retries=hook.retries)
        detail = {"webhook": self.webhook, "attempts": result.attempts, "status": result.status}
        if not result.ok:
            return Outcome("failed", {**detail, "error": result.error})
        return Outcome("done", detail)


class CommandStep(Step):
    kind_name: ClassVar[str] = "command"
    automatic: ClassVar[bool] = True
    argv: list[str] = Field(min_length=1, description="Program and arguments; `{field}` ok.")
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds before it is killed.")
    instructions: str = Field(default="", description="What the command does.")

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        found = super().problems()
        for index, arg in enumerate(self.argv):
            for name in fields.template_fields(arg):
                if name not in fields.SCALAR_FIELDS:
                    found.append((("argv", index), _unknown_field("{" + name + "}", name)))
        return found

    def command_line(self, values: dict[str, Any]) -> list[str]:
        """The argv with incident fields filled in; refuses values that look like options."""
        argv = []
        for arg in self.argv:
            for name in fields.template_fields(arg):
                value = values.get(name)
                if value is None or str(value) == "":
                    raise PlaybookError(f"step {self.id}: the incident has no {name}")
                if str(value).startswith("-") and arg == "{" + name + "}":
                    # A log-derived value must not turn into an option of the program.
                    raise PlaybookError(f"step {self.id}: {name} starts with '-'; not passed")
            argv.append(fields.render(arg, values))
        return argv

    def execute(self, ctx: StepContext) -> Outcome:
        from sentinel.pii.masking import mask_text

        argv = self.command_line(ctx.values)
        if not ctx.confirmed:
            raise PlaybookError(f"step {self.id} runs {argv!r}: it needs an explicit confirmation")
        try:
            done = subprocess.run(
                argv, shell=False, capture_output=True, stdin=subprocess.DEVNULL,
                timeout=self.timeout, cwd=ctx.workdir, check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Outcome("failed", {"argv": _masked(argv), "error": mask_text(str(exc))})
        output = (done.stdout + done.stderr)[:MAX_OUTPUT].decode("utf-8", "replace")
        detail = {"argv": _masked(argv), "exit_code": done.returncode}
        evidence = [Evidence("command", f"{self.title}: exit {done.returncode}", mask_text(output))]
        return Outcome("done" if done.returncode == 0 else "failed", detail, evidence)


def _masked(argv: list[str]) -> list[str]:
    from sentinel.pii.masking import mask_text

    return [mask_text(arg) for arg in argv]


def _unknown_field(shown: str, name: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, fields.INCIDENT_FIELDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{shown} is not an incident field{hint}; known: {', '.join(fields.INCIDENT_FIELDS)}"


STEP_KINDS: dict[str, type[Step]] = {
    cls.kind_name: cls for cls in (ManualStep, ApprovalStep, QueryStep, NotifyStep, CommandStep)
}
