"""Responding to incidents: playbooks (schema, step kinds, runner) and alert intake."""
