"""What a demo generation wrote and planted, for the CLI summary, tests and readers.

The in-memory `DemoManifest` carries the planted values (card numbers, SSNs, the AWS key
pair) so tests can assert sentinel finds them. `MANIFEST.md`, written beside the logs,
does not: a leaked value should exist only in the logs, exactly as in a real incident,
so the manifest shows where to look and a masked hint, never the value itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sentinel.demo.incidents import PlantedIncident

MANIFEST_NAME = "MANIFEST.md"


@dataclass(frozen=True)
class DemoFile:
    path: str
    """Relative to the demo directory."""
    source: str
    format: str
    events: int


@dataclass
class DemoManifest:
    out_dir: Path
    seed: int
    start: datetime
    end: datetime
    files: list[DemoFile]
    counts: dict[str, int]
    """Records per source (litellm, bedrock, cloudtrail, openai_audit)."""
    incidents: list[PlantedIncident]
    users: int
    keys: int
    teams: int
    inference_events: int

    @property
    def paths(self) -> list[Path]:
        """Absolute paths of every log file written."""
        return [self.out_dir / f.path for f in self.files]

    def write(self) -> Path:
        path = self.out_dir / MANIFEST_NAME
        path.write_text(self.to_markdown(), encoding="utf-8")
        return path

    def to_markdown(self) -> str:
        lines = [
            "# sentinel demo data set",
            "",
            f"Seed {self.seed}; {self.start:%Y-%m-%d} to {self.end:%Y-%m-%d} (UTC, end "
            f"exclusive); {self.users} users, {self.teams} teams, {self.keys} LiteLLM "
            f"virtual keys; {self.inference_events:,} inference events.",
            "",
            "Regenerate with `sentinel demo --seed N`. Planted values are not listed here: "
            "they exist only in the logs.",
            "",
            "## Records per source",
            "",
            "| source | records | files |",
            "|---|---:|---:|",
        ]
        for source, count in sorted(self.counts.items()):
            n_files = sum(1 for f in self.files if f.source == source)
            lines.append(f"| {source} | {count:,} | {n_files} |")
        lines += ["", "## Planted incidents", "",
                  "| what | source | file | when (UTC) | who | hint | find it with |",
                  "|---|---|---|---|---|---|---|"]
        for inc in self.incidents:
            hint = ", ".join(m for v in inc.values if (m := mask(v)))
            lines.append(
                f"| {inc.kind}: {inc.summary} | {inc.source} | `{inc.file}` | "
                f"{inc.ts:%Y-%m-%d %H:%M:%S} | {inc.who} | {hint} | `{inc.find_with}` |"
            )
        lines += ["", "## Files", "", "| file | format | records |", "|---|---|---:|"]
        for f in self.files:
            lines.append(f"| `{f.path}` | {f.format} | {f.events:,} |")
        return "\n".join(lines) + "\n"



def mask(value: str) -> str:
    """Last four digits of a number (as on a receipt); nothing of any other value."""
    if re.fullmatch(r"[\d \-()+]{9,}", value):
        return "…" + re.sub(r"\D", "", value)[-4:]
    return ""
