"""Masking before the query: no query shape prints a planted value of any catalog type.

One event per type holds the value in its prompt, its response and its `raw` (there
JSON-escaped character by character, and URL-encoded). Every query shape below runs
against every type; the output (or the error message) is searched for the parts of the
value a hint never shows, after undoing the encodings a query can apply (hex, URL,
JSON escapes, case, separators). A mutation of one type's masking turns its row red.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from sentinel.exceptions import QueryError
from sentinel.lake.session import SqlSession
from sentinel.workspace import Workspace
from tests.unit.lake.lakefiles import event, write_events

PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3x4mpl3Body+/=\n"
    "-----END RSA PRIVATE KEY-----"
)
# (type, text holding the value, parts of the value no masked output may contain)
PLANTS = [
    ("credit_card", "pay with 4539 5781 2306 4419 today", ["45395781", "57812306"]),
    ("ssn", "employee SSN 123-45-6789 disputes", ["123456789", "456789"]),
    ("iban", "IBAN DE89 3704 0044 0532 0130 00 THANKS", ["37040044", "05320130"]),
    ("email", "write to john.doe+ai@example.co.uk now", ["johndoe", "ohndoeai"]),
    ("phone", "call +44 20 7946 0958 please", ["2079460", "79460958"]),
    ("ipv4", "client 203.0.113.7 connected", ["301137"]),
    ("ipv6", "from 2001:db8:85a3::8a2e:370:7334 at", ["db885a3", "8a2e3707334"]),
    ("date_of_birth", "DOB: 1985-03-12 on file", ["19850312", "198503"]),
    ("passport", "passport number: 123456789 valid", ["123456789", "345678"]),
    ("national_id", "BSN: 111222333 registered", ["111222333", "1222333"]),
    ("aws_access_key", "key=AKIA2E3AXF3BZ44C7QWR here", ["2e3axf3bz44c"]),
    (
        "aws_secret_key",
        "aws_secret_access_key = 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",
        ["wjalrxutnfemi", "k7mdeng", "bpxrficyzq8"],
    ),
    ("openai_key", "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", ["ab3def6hij"]),
    (
        "anthropic_key",
        "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA-_zz",
        ["zx9yw8vu7ts6", "nm3lk2jh1gf0"],
    ),
    ("google_api_key", "k=AIzaSyD3x4mpl3K3yW1thTh1rtyF1veCh4rs00Z", ["d3x4mpl3k3y", "th1rtyf1ve"]),
    ("stripe_key", "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr", ["51h8xyzabc", "efghijklmn"]),
    ("slack_token", "token xoxb-1234567890-0987654321-AbCdEfGhIjKl", ["1234567890", "abcdefghij"]),
    ("github_token", "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", ["a1b2c3d4e5f6", "k1l2m3n4"]),
    (
        "jwt",
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123",
        ["eyjhbgcioijiuzi1", "eyjzdwiioiixmjm0"],
    ),
    ("database_url", "DATABASE_URL=postgres://app:S3cr3t!x@db.internal:5432/prod", ["s3cr3t"]),
    ("generic_secret", 'config {"password": "Tr0ub4dor&3x"}', ["tr0ub4dor"]),
    ("private_key", f"key:\n{PEM}\nthanks", ["miieowibaakcaqea", "3x4mpl3body"]),
    ("employee_id", "staff EMP-482913 asked", ["emp482913", "482913"]),
]
TYPES = [p[0] for p in PLANTS]
CUSTOM_DETECTOR = '\n[[pii.detectors]]\nname = "employee_id"\npattern = "EMP-[0-9]{6}"\n'

SHAPES = [
    "prompt_text",
    "response_text",
    "raw",
    "*",
    "left(prompt_text, 14)",
    "left(prompt_text, 75)",
    "right(prompt_text, 20)",
    "substr(prompt_text, 7, 12)",
    "substring(prompt_text FROM 3 FOR 40)",
    "replace(prompt_text, ' ', '')",
    "regexp_replace(prompt_text, '[^0-9A-Za-z]', '', 'g')",
    "lower(prompt_text)",
    "upper(prompt_text)",
    "trim(prompt_text)",
    "reverse(reverse(prompt_text))",
    "concat(prompt_text, '|', response_text)",
    "prompt_text || prompt_text",
    "repeat(prompt_text, 2)",
    "format('{}', prompt_text)",
    "printf('%s', prompt_text)",
    "string_split(prompt_text, ' ')",
    "string_split(prompt_text, '')",
    "string_split_regex(prompt_text, '[-. :]')",
    "array_to_string(string_split(prompt_text, ''), '')",
    "list_transform(string_split(prompt_text, ' '), x -> upper(x))",
    "regexp_extract(prompt_text, '[0-9A-Za-z][^ ]{5,}')",
    "regexp_extract_all(prompt_text, '[^ ]+')",
    "[prompt_text, response_text]",
    "{'p': prompt_text, 'r': raw}",
    "prompt_text::BLOB",
    "hex(prompt_text)",
    "url_encode(prompt_text)",
    "to_json(prompt_text)",
    "json_extract_string(raw, '$.messages[0].content')",
    "raw->>'$.messages[0].content'",
    "json_extract(raw, '$.messages')",
    "json_extract_string(raw, '$.url')",
    "url_decode(json_extract_string(raw, '$.url'))",
    "json_transform(raw, '{\"messages\": [{\"content\": \"VARCHAR\"}]}')",
    "(SELECT string_agg(prompt_text, ',') FROM events)",
    "(SELECT list(raw) FROM events)",
    "(SELECT max(prompt_text) FROM events)",
    "(SELECT min(response_text) FROM events)",
    "prompt_text::INTEGER",
    "error(prompt_text)",
    "CAST(raw AS DATE)",
    "json_extract(prompt_text, '$')",
]
TEXT_COLUMNS = ("prompt_text", "response_text")
SPAN_QUERY = (
    "SELECT substr(e.{col}, f.start + 1, f.\"end\" - f.start) AS piece, "
    "substr(e.{col}, f.start - 2, f.\"end\" - f.start + 6) AS around "
    "FROM events e, unnest(e.pii_findings) AS t(f) WHERE e.event_id = '{id}'"
)


def escaped_json(text: str, value_start: int, value_end: int) -> str:
    """`text` as a JSON string body with every other character of the value \\u-escaped."""
    out = []
    for i, char in enumerate(text):
        if value_start <= i < value_end and i % 2 == 0 and " " < char < "\x7f":
            out.append(f"\\u{ord(char):04x}")
        elif char == "/":
            out.append("\\/")
        else:
            out.append(json.dumps(char)[1:-1])
    return "".join(out)


def planted_event(index: int, type_name: str, text: str) -> dict[str, object]:
    start = next(i for i, c in enumerate(text) if c.isalnum() and i > text.find(" ") - 1)
    body = escaped_json(text, start, len(text))
    url = "https://portal.example/?q=" + urllib.parse.quote(text, safe="")
    raw = '{"messages": [{"role": "user", "content": "' + body + '"}], "url": "' + url + '"}'
    assert json.loads(raw)["messages"][0]["content"] == text
    return event(
        index,
        event_id=f"plant-{type_name}",
        prompt_text=text,
        response_text=f"echo: {text}",
        raw=raw,
        actor_user="alice@corp.example",
        client_ip="198.51.100.23",
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("masked") / "ws")
    with ws.config_path.open("a", encoding="utf-8") as handle:
        handle.write(CUSTOM_DETECTOR)
    rows = [planted_event(i, t, text) for i, (t, text, _) in enumerate(PLANTS)]
    import pyarrow as pa

    from sentinel.pii.scanner import scan_events
    from sentinel.schema import EVENT_SCHEMA

    table = scan_events(pa.Table.from_pylist(rows, schema=EVENT_SCHEMA), ws.config, ws.secret_key())
    write_events(ws.lake_dir, table.to_pylist())
    return ws


@pytest.fixture(scope="module")
def session(planted: Workspace) -> SqlSession:
    return SqlSession(planted)


def decoded_variants(text: str) -> list[str]:
    """`text` and what a reader could decode it to, each reduced to lowercase a-z0-9."""
    variants = [text, urllib.parse.unquote(text)]
    variants.append(re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text))
    for token in re.findall(r"[0-9A-Fa-f]{16,}", text):
        try:
            variants.append(bytes.fromhex(token[: len(token) // 2 * 2]).decode("latin-1"))
        except ValueError:
            pass
    for token in re.findall(r"(?:\\x[0-9A-Fa-f]{2}|[^\\])+", text):
        variants.append(re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), token))
    return [re.sub(r"[^a-z0-9]", "", v.lower()) for v in variants]


def shown(session: SqlSession, sql: str) -> str:
    """Everything a user would see: the rows, masked on the way out, or the error."""
    try:
        tables = [session.masker.mask_table(table) for table, _ in session.run(sql)]
    except QueryError as exc:
        return exc.message
    return " ".join(str(table.to_pylist()) for table in tables)


def assert_hidden(text: str, type_name: str) -> None:
    forbidden = next(parts for t, _, parts in PLANTS if t == type_name)
    for variant in decoded_variants(text):
        for part in forbidden:
            assert part not in variant, f"{type_name}: {part!r} shown in {text[:400]!r}"


def test_every_plant_is_found_at_ingest(session: SqlSession) -> None:
    """A precondition: the catalog finds each planted value (else the test proves nothing)."""
    [(table, _)] = session.run(
        "SELECT event_id, list_distinct(pii_types) AS types FROM events ORDER BY 1"
    )
    found = {r["event_id"].removeprefix("plant-"): r["types"] for r in table.to_pylist()}
    for type_name in TYPES:
        assert type_name in found[type_name], (type_name, found[type_name])


@pytest.mark.parametrize("type_name", TYPES)
def test_no_query_shape_shows_a_planted_value(session: SqlSession, type_name: str) -> None:
    """Every shape over one type (one test per type: a broken type names itself)."""
    where = f"WHERE event_id = 'plant-{type_name}'"
    queries = [f"SELECT {shape} FROM events {where}" for shape in SHAPES]
    queries += [SPAN_QUERY.format(col=c, id=f"plant-{type_name}") for c in TEXT_COLUMNS]
    leaks = []
    for sql in queries:
        try:
            assert_hidden(shown(session, sql), type_name)
        except AssertionError as exc:
            leaks.append(f"{sql}\n    {exc}")
    assert not leaks, "\n".join(leaks)


def test_there_are_at_least_thirty_shapes() -> None:
    assert len(SHAPES) + len(TEXT_COLUMNS) >= 30


@pytest.mark.parametrize("type_name", TYPES)
def test_a_query_cannot_test_for_the_value(session: SqlSession, type_name: str) -> None:
    """Masking before the query also blinds predicates: no guessing oracle."""
    text = next(t for name, t, _ in PLANTS if name == type_name)
    literal = text.replace("'", "''")
    [(table, _)] = session.run(
        f"SELECT count(*) FILTER (WHERE prompt_text = '{literal}') AS equal, "
        f"count(*) FILTER (WHERE raw LIKE '%' || json_extract_string(to_json('{literal}'), '$')"
        " || '%') AS inside, "
        f"count(*) FILTER (WHERE contains(response_text, '{literal}')) AS contained "
        f"FROM events WHERE event_id = 'plant-{type_name}'"
    )
    assert table.to_pylist() == [{"equal": 0, "inside": 0, "contained": 0}]


def test_hints_carry_a_keyed_tag_so_masked_values_stay_distinct(planted: Workspace) -> None:
    write_events(
        planted.lake_dir,
        [
            event(100, event_id="tag-a1", prompt_text="card 4111 1111 1111 1111"),
            event(101, event_id="tag-a2", prompt_text="card 4111-1111-1111-1111"),
            event(102, event_id="tag-b", prompt_text="card 5500 0000 0000 0004"),
            event(103, event_id="tag-c", prompt_text="card 4012 8888 8888 1881"),
        ],
        batch="batch-tags",
    )
    session = SqlSession(planted)
    [(table, _)] = session.run(
        "SELECT prompt_text, count(*) AS n FROM events WHERE event_id LIKE 'tag-%' "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    groups = table.to_pylist()
    assert len(groups) == 3  # the same card twice (two spellings) is one group
    assert groups[0]["n"] == 2 and groups[0]["prompt_text"].startswith("card card ****1111 ·")
    tags = {g["prompt_text"].rsplit("·", 1)[1] for g in groups}
    assert len(tags) == 3 and all(re.fullmatch(r"[0-9a-f]{4}", t) for t in tags)
    other = Workspace.init(planted.root.parent / "other")
    assert session.masker.tag("credit_card", "4111111111111111") != (
        SqlSession(other).masker.tag("credit_card", "4111111111111111")
    )


def test_identities_are_shown_in_clear_by_default(session: SqlSession) -> None:
    [(table, _)] = session.run(
        "SELECT actor_user, client_ip FROM events WHERE event_id = 'plant-email'"
    )
    row = session.masker.mask_table(table).to_pylist()[0]
    assert row == {"actor_user": "alice@corp.example", "client_ip": "198.51.100.23"}


def test_mask_identities_masks_who_and_from_where(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    ws.config_path.write_text("[privacy]\nmask_identities = true\n", encoding="utf-8")
    write_events(
        ws.lake_dir, [event(1, actor_user="alice@corp.example", client_ip="198.51.100.23")]
    )
    session = SqlSession(ws)
    [(table, _)] = session.run("SELECT actor_user, client_ip, lower(actor_user) AS l FROM events")
    row = table.to_pylist()[0]
    assert row["actor_user"].startswith("a***@corp.example ·")
    assert row["client_ip"].startswith("ipv4 198.*.*.* ·")
    assert "alice" not in str(row)


def test_the_output_net_masks_text_held_as_string_views(session: SqlSession) -> None:
    """Arrow's view layout of text is text: a result column of views is masked too."""
    import pyarrow as pa

    views = pa.array(["mail jane@example.org", None], pa.string_view())
    masked = session.masker.mask_table(pa.table({"note": views}))
    assert masked.column("note").to_pylist() == ["mail j***@example.org", None]


def test_errors_are_masked(session: SqlSession) -> None:
    with pytest.raises(QueryError) as caught:
        session.run("SELECT 'typed 4539 5781 2306 4419'::INTEGER")
    assert "4539" not in caught.value.message and "card ****4419" in caught.value.message


def test_reveal_shows_values_and_audits_them_masked(planted: Workspace) -> None:
    session = SqlSession(planted, reveal_reason="case 7 for 4539 5781 2306 4419")
    [(table, _)] = session.run(
        "SELECT prompt_text FROM events WHERE event_id = 'plant-credit_card'"
    )
    assert table.column(0)[0].as_py() == "pay with 4539 5781 2306 4419 today"
    reveal = session.reveal("SELECT * FROM events WHERE prompt_text LIKE '%4539 5781 2306 4419%'")
    assert reveal is not None
    assert "4539" not in reveal.query and "card ****4419" in reveal.query
    assert "4539" not in reveal.reason
