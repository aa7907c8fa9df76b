"""The built-in demo data set behind `sentinel demo`.

Two weeks of a fictional company's AI usage in the four formats sentinel reads
(LiteLLM, Bedrock invocation logs, CloudTrail, OpenAI audit logs), with incidents
planted for the PII scanner and the detections to find. See docs/demo.md.
"""

from __future__ import annotations

from sentinel.demo.generator import DEFAULT_END, generate
from sentinel.demo.incidents import PlantedIncident
from sentinel.demo.manifest import DemoFile, DemoManifest

__all__ = ["DEFAULT_END", "DemoFile", "DemoManifest", "PlantedIncident", "generate"]
