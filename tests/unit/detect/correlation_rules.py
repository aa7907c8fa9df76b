"""The base rules correlation tests refer to, and the time they start from.

Shared by the example tests (`test_detect_correlation.py`) and the differential test
(`test_detect_correlation_differential.py`), so both compile correlations over the same
named rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)

# Two disjoint rules: `failed` and `ok` never match the same event.
BASE = """\
title: failed
name: failed
logsource: {product: ai_gateway, service: litellm}
detection:
  sel: {outcome: failure}
  condition: sel
---
title: ok
name: ok
logsource: {product: ai_gateway, service: litellm}
detection:
  sel: {outcome: success}
  condition: sel
---
"""

# A third rule that overlaps both: an event can match it and one of the others.
KEYED = """\
title: keyed
name: keyed
logsource: {product: ai_gateway, service: litellm}
detection:
  sel: {model: gpt-4o}
  condition: sel
---
"""
