"""The list of top-level commands. Each command module adds its command(s) here."""

from __future__ import annotations

import click

from sentinel.cli.audit import audit_group
from sentinel.cli.baselines import baselines_group
from sentinel.cli.config_cmds import config
from sentinel.cli.demo import demo
from sentinel.cli.hunt import hunt
from sentinel.cli.incidents import incidents_group
from sentinel.cli.playbook import playbook_group
from sentinel.cli.rules import rules
from sentinel.cli.scan import scan
from sentinel.cli.sources import sources
from sentinel.cli.sql import sql
from sentinel.cli.status import status
from sentinel.cli.tui import tui
from sentinel.cli.watch import watch
from sentinel.cli.workspace_cmds import ingest, init

ALL: list[click.Command] = [init, ingest]
ALL.append(sql)
ALL.append(rules)
ALL.append(baselines_group)
ALL.append(demo)
ALL.append(hunt)
ALL.append(sources)
ALL.append(watch)
ALL.append(status)
ALL.append(incidents_group)
ALL.append(playbook_group)
ALL.append(audit_group)
ALL.append(tui)
ALL.append(config)
ALL.append(scan)
