"""Sentinel: incident response and audit-log forensics for AI usage."""

__version__ = "0.1.0"
