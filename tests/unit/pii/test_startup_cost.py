"""What printing a few masked rows loads, and that what it leaves out still works when needed.

`sentinel scan --format jsonl` from cron prints a handful of alert rows; the masking of
those rows was a tenth of the process's wall time. Table layout (wcwidth), Arrow's
compute functions, phonenumbers and python-stdnum are loaded where they are first
needed, and a detector's regexes compiled when a text first holds its anchor. Each
check runs in a fresh interpreter: in this one, other tests have loaded everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

from sentinel.pii.catalog import build_catalog
from sentinel.pii.detectors import BUILTIN_DETECTORS
from sentinel.pii.masking import mask_text

DEFERRED = ("sentinel.pii", "sentinel.tables", "wcwidth", "pyarrow.compute", "phonenumbers",
            "stdnum")  # fmt: skip

ALERT_ROWS = """
import pyarrow as pa
rows = [
    {"alert_id": f"A{i:015x}", "level": "high", "rule_title": "Request burst from one key",
     "group_key": "actor_key=key-1" if i % 2 else f"actor_user=user{i}@example.com",
     "first_ts": "2025-01-24T09:20:46+00:00", "last_ts": "2025-01-24T09:25:45+00:00",
     "event_count": 300 + i, "rule_id": "11111111-2222-4333-8444-555555555504"}
    for i in range(5)
]
schema = pa.schema([(c, pa.int64() if c == "event_count" else pa.string()) for c in rows[0]])
table = pa.Table.from_pylist(rows, schema=schema)
"""


def _run(code: str) -> tuple[str, dict[str, object]]:
    """stdout of `code` in a fresh interpreter, and what it reports as `REPORT` on stderr."""
    report = (
        "\nimport json, sys\n"
        f"loaded = sorted(m for m in sys.modules if m.startswith({DEFERRED!r}))\n"
        "print('REPORT', json.dumps({'loaded': loaded, **globals().get('extra', {})}),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code + report], capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stderr.splitlines() if x.startswith("REPORT "))
    return result.stdout, json.loads(line.removeprefix("REPORT "))


def test_importing_output_loads_no_masking_table_layout_or_compute() -> None:
    _, report = _run("import sentinel.output, sentinel.cli.scan")
    assert report["loaded"] == []


def test_printing_alert_rows_loads_only_the_masking_and_the_detectors_they_meet() -> None:
    code = ALERT_ROWS + (
        "from sentinel.output import emit\n"
        "emit(table, fmt='json')\n"
        "from sentinel.pii.catalog import default_catalog\n"
        "catalog = default_catalog()\n"
        "extra = {'compiled': catalog.compiled.built(), 'detectors': len(catalog.detectors)}\n"
    )
    stdout, report = _run(code)
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r["group_key"] for r in rows] == [
        "actor_user=u***@example.com", "actor_key=key-1", "actor_user=u***@example.com",
        "actor_key=key-1", "actor_user=u***@example.com",
    ]  # fmt: skip
    assert "@example.com" in stdout and "user0@" not in stdout and "user2@" not in stdout
    assert rows[0]["rule_title"] == "Request burst from one key"
    assert rows[0]["rule_id"] == "11111111-2222-4333-8444-555555555504"
    assert report["loaded"] == [
        "sentinel.pii", "sentinel.pii.catalog", "sentinel.pii.detectors", "sentinel.pii.engine",
        "sentinel.pii.masking", "sentinel.pii.re2compat", "sentinel.pii.validators",
        "sentinel.pii.verdicts",
    ]  # fmt: skip
    # the e-mail detector, and the card detector the rule id's digit groups call up
    assert 1 <= int(report["compiled"]) <= 3 < int(report["detectors"])  # type: ignore[call-overload]


def test_a_phone_number_iban_and_national_id_are_masked_on_first_use() -> None:
    """The validators' libraries load on their first candidate, and then judge it."""
    code = (
        "import sys, pyarrow as pa\n"
        "from sentinel.pii.masking import mask_table\n"
        "before = sorted(m for m in sys.modules if m.startswith(('phonenumbers', 'stdnum')))\n"
        "texts = ['call +44 20 7946 0958', 'call +44 00 0000 0000',\n"
        "         'IBAN DE89 3704 0044 0532 0130 00 ok', 'iban DE89 3704 0044 0532 0130 01',\n"
        "         'ref 390.533.447-05 ok', 'ref 390.533.447-06 ok']\n"
        "masked = mask_table(pa.table({'t': texts})).column('t').to_pylist()\n"
        "print('\\n'.join(masked))\n"
        "extra = {'before': before}\n"
    )
    stdout, report = _run(code)
    assert stdout.splitlines() == [
        "call phone ****58",
        "call +44 00 0000 0000",  # not a valid number: phonenumbers said so
        "IBAN iban DE****3000 ok",
        "iban DE89 3704 0044 0532 0130 01",  # fails mod-97
        "ref national_id ****05 ok",
        "ref 390.533.447-06 ok",  # fails the CPF check digits (stdnum)
    ]
    assert report["before"] == []
    loaded = report["loaded"]
    assert isinstance(loaded, list)
    assert "phonenumbers" in loaded and "stdnum.iban" in loaded and "stdnum.br.cpf" in loaded
    assert "pyarrow.compute" not in loaded


def test_a_catalog_compiles_a_detector_when_a_text_first_holds_its_anchor() -> None:
    catalog = build_catalog(BUILTIN_DETECTORS)
    assert catalog.compiled.built() == catalog.engines.built() == 0
    assert catalog.befores.built() == catalog.afters.built() == 0
    assert mask_text("nothing to see", catalog) == "nothing to see"
    assert catalog.compiled.built() == 0
    assert mask_text("mail jane@example.org", catalog) == "mail j***@example.org"
    email = next(i for i, d in enumerate(catalog.detectors) if d.name == "email")
    assert catalog.compiled.built() == 1 and catalog.compiled._items[email] is not None
    assert catalog.afters.built() == 1  # the e-mail's guard; no other detector's
    assert len(list(catalog.compiled)) == len(catalog.detectors)  # iterating builds them all
    assert catalog.compiled.built() == len(catalog.detectors)
