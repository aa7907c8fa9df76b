"""Each Sigma feature: the exact SQL the backend emits, and what it matches in DuckDB."""

from __future__ import annotations

import base64

import pytest

from sentinel.detect.fields import raw_path_sql

SRC = "SELECT * FROM events WHERE source IN ('litellm') AND "


def test_plain_value_is_case_insensitive_equality(detection, run):
    sql = detection("sel:\n  actor_user: Alice\ncondition: sel\n")
    assert sql == SRC + "(coalesce(lower(\"actor_user\") = lower('Alice'), false))"
    events = [{"actor_user": "alice"}, {"actor_user": "ALICE"}, {"actor_user": "alice2"}, {}]
    assert run(sql, events) == ["e0", "e1"]


def test_cased_modifier_matches_exactly(detection, run):
    sql = detection("sel:\n  actor_user|cased: Alice\ncondition: sel\n")
    assert sql == SRC + "(coalesce(\"actor_user\" = 'Alice', false))"
    assert run(sql, [{"actor_user": "Alice"}, {"actor_user": "alice"}]) == ["e0"]


def test_cased_wildcards_use_like(detection, run):
    sql = detection("sel:\n  model|cased: 'gpt-?o*'\ncondition: sel\n")
    assert "\"model\" LIKE 'gpt-_o%'" in sql
    assert run(sql, [{"model": "gpt-4o-mini"}, {"model": "GPT-4o"}]) == ["e0"]


def test_wildcards_and_like_metacharacters(detection, run):
    sql = detection("sel:\n  prompt_text: '50%_off?*'\ncondition: sel\n")
    assert "\"prompt_text\" ILIKE '50\\%\\_off_%' ESCAPE '\\'" in sql
    events = [
        {"prompt_text": "50%_OFF! today"},
        {"prompt_text": "50x_off! today"},  # % is literal
        {"prompt_text": "50%yoff! today"},  # _ is literal
        {"prompt_text": "50%_off"},  # ? needs one character
    ]
    assert run(sql, events) == ["e0"]


def test_escaped_wildcards_and_backslash(detection, run):
    sql = detection("sel:\n  prompt_text: 'a\\*b\\?c\\\\d*'\ncondition: sel\n")
    assert "starts_with(lower(\"prompt_text\"), lower('a*b?c\\d'))" in sql
    events = [
        {"prompt_text": "a*b?c\\dzz"},
        {"prompt_text": "axb?c\\d"},
        {"prompt_text": "a*bxc\\d"},
    ]
    assert run(sql, events) == ["e0"]


def test_quote_in_value(detection, run):
    sql = detection('sel:\n  prompt_text|contains: "it\'s"\ncondition: sel\n')
    assert "contains(lower(\"prompt_text\"), lower('it''s'))" in sql
    assert run(sql, [{"prompt_text": "IT'S here"}, {"prompt_text": "its"}]) == ["e0"]


@pytest.mark.parametrize(
    ("modifier", "template", "hits"),
    [
        ("contains", "contains(lower(\"prompt_text\"), lower('Key'))", ["e0", "e1", "e2"]),
        ("startswith", "starts_with(lower(\"prompt_text\"), lower('Key'))", ["e0"]),
        ("endswith", "ends_with(lower(\"prompt_text\"), lower('Key'))", ["e2"]),
    ],
)
def test_contains_startswith_endswith(detection, run, modifier, template, hits):
    sql = detection(f"sel:\n  prompt_text|{modifier}: Key\ncondition: sel\n")
    assert sql == SRC + f"(coalesce({template}, false))"
    events = [
        {"prompt_text": "KEY first"},
        {"prompt_text": "a key inside"},
        {"prompt_text": "last KEY"},
    ]
    assert run(sql, events) == hits


def test_contains_all(detection, run):
    sql = detection("sel:\n  prompt_text|contains|all: [alpha, beta]\ncondition: sel\n")
    assert " AND " in sql
    events = [{"prompt_text": "alpha and beta"}, {"prompt_text": "alpha only"}]
    assert run(sql, events) == ["e0"]


def test_regex_is_unanchored_with_flags(detection, run):
    sql = detection("sel:\n  prompt_text|re: 'b.c'\ncondition: sel\n")
    assert sql == SRC + "(coalesce(regexp_matches(\"prompt_text\", 'b.c'), false))"
    assert run(sql, [{"prompt_text": "abxcd"}, {"prompt_text": "ABXCD"}]) == ["e0"]
    sql_i = detection("sel:\n  prompt_text|re|i: 'b.c'\ncondition: sel\n")
    assert "'(?i)b.c'" in sql_i
    assert run(sql_i, [{"prompt_text": "ABXCD"}]) == ["e0"]
    sql_s = detection("sel:\n  prompt_text|re|s: 'a.b'\ncondition: sel\n")
    assert run(sql_s, [{"prompt_text": "a\nb"}]) == ["e0"]
    sql_m = detection("sel:\n  prompt_text|re|m: '^second$'\ncondition: sel\n")
    assert "'(?m)^second$'" in sql_m
    assert run(sql_m, [{"prompt_text": "first\nsecond\nthird"}, {"prompt_text": "a second"}]) == [
        "e0"
    ]


def test_cidr_ipv4_uses_prefix_arithmetic(detection, run):
    sql = detection("sel:\n  client_ip|cidr: 10.16.0.0/12\ncondition: sel\n")
    assert sql == SRC + '(coalesce((sentinel_ipv4("client_ip") >> 20) = 161, false))'
    events = [
        {"client_ip": "10.16.0.1"},
        {"client_ip": "10.31.255.255"},
        {"client_ip": "10.32.0.0"},
        {"client_ip": "10.1.0.0"},
        {"client_ip": "10.16.0.1x"},
        {"client_ip": "::ffff:10.16.0.1"},
    ]
    assert run(sql, events) == ["e0", "e1"]


def test_cidr_ipv6_and_zero_prefix(detection, run):
    sql = detection("sel:\n  client_ip|cidr: ['2001:db8:8000::/33', '0.0.0.0/0']\ncondition: sel\n")
    # A list of networks parses the address once per family (sentinel.detect.folding).
    assert sql.count('sentinel_ipv6("client_ip")') == 1
    assert sql.count('sentinel_ipv4("client_ip")') == 1
    assert "(sentinel_ip >> 95) = " in sql and "sentinel_ip IS NOT NULL" in sql
    events = [
        {"client_ip": "2001:db8:8000::1"},
        {"client_ip": "2001:DB8:FFFF:1::"},
        {"client_ip": "2001:db8:7fff::1"},
        {"client_ip": "192.0.2.1"},
        {"client_ip": "nope"},
    ]
    assert run(sql, events) == ["e0", "e1", "e3"]


def test_base64_and_base64offset(detection, run):
    secret = "password="
    sql = detection(f"sel:\n  prompt_text|base64: '{secret}'\ncondition: sel\n")
    encoded = base64.b64encode(secret.encode()).decode()
    assert run(sql, [{"prompt_text": encoded}, {"prompt_text": secret}]) == ["e0"]
    sql = detection(f"sel:\n  prompt_text|base64offset|contains: '{secret}'\ncondition: sel\n")
    inside = base64.b64encode(b"xx" + secret.encode() + b"yy").decode()
    assert run(sql, [{"prompt_text": f"blob {inside} end"}, {"prompt_text": "none"}]) == ["e0"]


def test_exists(detection, run):
    sql = detection("sel:\n  actor_team|exists: true\ncondition: sel\n")
    assert sql == SRC + '(("actor_team" IS NOT NULL))'
    assert run(sql, [{"actor_team": "red"}, {"actor_team": ""}, {}]) == ["e0", "e1"]
    sql = detection("sel:\n  raw.metadata.tag|exists: false\ncondition: sel\n")
    events = [{"raw": {"metadata": {"tag": "x"}}}, {"raw": {"metadata": {}}}, {}]
    assert run(sql, events) == ["e1", "e2"]


def test_null_value(detection, run):
    sql = detection("sel:\n  actor_team: null\ncondition: sel\n")
    assert sql == SRC + '(("actor_team" IS NULL))'
    assert run(sql, [{"actor_team": "red"}, {}]) == ["e1"]


def test_fieldref(detection, run):
    sql = detection("sel:\n  actor_user|fieldref: actor_key\ncondition: sel\n")
    assert sql == SRC + '(coalesce(lower("actor_user") = lower("actor_key"), false))'
    events = [
        {"actor_user": "Bob", "actor_key": "bob"},
        {"actor_user": "bob", "actor_key": "k"},
        {},
    ]
    assert run(sql, events) == ["e0"]


def test_fieldref_startswith(detection, run):
    sql = detection("sel:\n  prompt_text|fieldref|startswith: actor_user\ncondition: sel\n")
    events = [
        {"prompt_text": "bob says hi", "actor_user": "Bob"},
        {"prompt_text": "hi bob", "actor_user": "bob"},
    ]
    assert run(sql, events) == ["e0"]


@pytest.mark.parametrize(
    ("modifier", "op", "hits"),
    [
        ("lt", "<", ["e0"]),
        ("lte", "<=", ["e0", "e1"]),
        ("gt", ">", ["e2"]),
        ("gte", ">=", ["e1", "e2"]),
    ],
)
def test_numeric_comparisons(detection, run, modifier, op, hits):
    sql = detection(f"sel:\n  status_code|{modifier}: 429\ncondition: sel\n")
    assert sql == SRC + f'(coalesce("status_code" {op} 429, false))'
    assert run(sql, [{"status_code": 200}, {"status_code": 429}, {"status_code": 500}, {}]) == hits


def test_number_on_text_field_compares_numerically(detection, run):
    sql = detection("sel:\n  raw.usage.total|gte: 1000\ncondition: sel\n")
    assert f"TRY_CAST({raw_path_sql(['usage', 'total'])} AS DOUBLE) >= 1000" in sql
    events = [{"raw": {"usage": {"total": 1500}}}, {"raw": {"usage": {"total": "lots"}}}, {}]
    assert run(sql, events) == ["e0"]
    sql = detection("sel:\n  status_code: '4*'\ncondition: sel\n")
    assert "starts_with(lower(CAST(\"status_code\" AS VARCHAR)), lower('4'))" in sql
    assert run(sql, [{"status_code": 404}, {"status_code": 500}]) == ["e0"]


def test_windash(detection, run):
    sql = detection("sel:\n  prompt_text|windash|contains: ' -exec '\ncondition: sel\n")
    events = [
        {"prompt_text": "run x /exec y"},
        {"prompt_text": "run x -exec y"},
        {"prompt_text": "x exec"},
    ]
    assert run(sql, events) == ["e0", "e1"]


def test_expand_with_pipeline_variable(sigma, run):
    from sigma.collection import SigmaCollection
    from sigma.processing.pipeline import ProcessingPipeline

    from sentinel.detect.backend import SentinelBackend

    rule = """\
title: expand
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    resource|expand: '%buckets%'
  condition: sel
"""
    backend = SentinelBackend(ProcessingPipeline(vars={"buckets": ["prod-*", "audit"]}))
    sql = backend.convert(SigmaCollection.from_yaml(rule))[0]
    assert "starts_with(lower(\"resource\"), lower('prod-'))" in sql
    events = [
        {"resource": "PROD-1", "source": "cloudtrail"},
        {"resource": "audit", "source": "cloudtrail"},
    ]
    assert run(sql, events + [{"resource": "dev", "source": "cloudtrail"}]) == ["e0", "e1"]


def test_keywords_search_prompt_response_and_raw(detection, run):
    sql = detection("keywords:\n  - 'drop table'\ncondition: keywords\n")
    assert "contains(lower(\"prompt_text\"), lower('drop table'))" in sql
    assert "contains(lower(\"raw\"), lower('drop table'))" in sql
    events = [
        {"prompt_text": "please DROP TABLE users"},
        {"response_text": "drop table x"},
        {"raw": {"note": "drop table"}},
        {"actor_user": "drop table"},
    ]
    assert run(sql, events) == ["e0", "e1", "e2"]


def test_list_column_matches_any_element(detection, run):
    sql = detection("sel:\n  pii_types|startswith: aws_\ncondition: sel\n")
    assert sql == SRC + (
        '(coalesce(len(list_filter("pii_types", lambda elem: '
        "starts_with(lower(elem), lower('aws_')))) > 0, false))"
    )
    events = [
        {"pii_types": ["email", "AWS_access_key"]},
        {"pii_types": ["email"]},
        {"pii_types": []},
        {},
    ]
    assert run(sql, events) == ["e0"]


def test_not_over_list_and_missing_field(detection, run):
    sql = detection("sel:\n  pii_types: email\ncondition: not sel\n")
    events = [{"pii_types": ["email"]}, {"pii_types": ["ssn"]}, {}]
    assert run(sql, events) == ["e1", "e2"]


def test_not_matches_missing_field(detection, run):
    sql = detection("sel:\n  actor_team: red\ncondition: not sel\n")
    assert sql == SRC + "(NOT coalesce(lower(\"actor_team\") = lower('red'), false))"
    assert run(sql, [{"actor_team": "red"}, {"actor_team": "blue"}, {}]) == ["e1", "e2"]


def test_raw_path_is_quoted_json_path(detection, run):
    sql = detection("sel:\n  raw.metadata.user_api_key_alias: ci-bot\ncondition: sel\n")
    assert 'json_extract_string(raw, \'$."metadata"."user_api_key_alias"\')' in sql
    events = [
        {"raw": {"metadata": {"user_api_key_alias": "CI-bot"}}},
        {"raw": {"metadata": {}}},
        {},
    ]
    assert run(sql, events) == ["e0"]


def test_raw_json_is_parsed_only_where_the_key_can_be(detection, run):
    sql = detection("sel:\n  raw.metadata.turn_off_message_logging: 'true'\ncondition: sel\n")
    assert "THEN json_extract_string(raw, '$.\"metadata\".\"turn_off_message_logging\"')" in sql
    events = [
        {"raw": '{"metadata": {"turn_off_message_logging": "TRUE"}}'},
        {"raw": '{"metadata": {"turn\\u005foff\\u005Fmessage_logging": "true"}}'},  # escaped
        {"raw": '{"metadata": {}, "prompt": "what is turn_off_message_logging?"}'},
        {"raw": '{"metadata": {"turn_off_message_logging": "false"}}'},
        {"raw": '{"metadata": {}}'},
        {},
    ]
    assert run(sql, events) == ["e0", "e1"]
    # A key JSON may spell with another escape (`\/`) or must escape: always parsed.
    assert raw_path_sql(["a/b"]) == "json_extract_string(raw, '$.\"a/b\"')"
    sql = detection("sel:\n  raw.a/b: v\ncondition: sel\n")
    assert run(sql, [{"raw": '{"a\\/b": "v"}'}, {"raw": '{"a/b": "w"}'}]) == ["e0"]


def test_boolean_value_on_raw_path(detection, run):
    sql = detection("sel:\n  raw.stream: true\ncondition: sel\n")
    assert run(sql, [{"raw": {"stream": True}}, {"raw": {"stream": False}}]) == ["e0"]


def test_source_filter_comes_from_logsource(sigma, run):
    rule = """\
title: all gateways
logsource: {product: ai_gateway}
detection:
  sel: {model: m}
  condition: sel
"""
    sql = sigma(rule)[0]
    assert sql.startswith("SELECT * FROM events WHERE source IN ('bedrock', 'litellm') AND ")
    events = [{"model": "m", "source": "bedrock"}, {"model": "m", "source": "cloudtrail"}]
    assert run(sql, events) == ["e0"]


def test_condition_output_format(sigma):
    from sigma.collection import SigmaCollection

    from sentinel.detect.backend import SentinelBackend

    rule = (
        "title: t\nlogsource: {product: openai, service: audit}\n"
        "detection:\n  s: {action: x}\n  condition: s\n"
    )
    queries = SentinelBackend().convert(SigmaCollection.from_yaml(rule), "condition")
    assert queries == [
        "source IN ('openai_audit') AND (coalesce(lower(\"action\") = lower('x'), false))"
    ]


NETWORKS = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "100.64.0.0/10",
            "::1/128", "fc00::/7", "fe80::/10", "2001:db8:8000::/33"]
ADDRESSES = ["10.0.0.1", "10.255.255.255", "11.0.0.0", "172.15.255.255", "172.16.0.0",
             "172.31.255.255", "172.32.0.0", "192.168.1.1", "192.169.0.0", "127.0.0.1",
             "100.63.255.255", "100.64.0.0", "100.127.255.255", "100.128.0.0", "8.8.8.8",
             "::1", "::2", "fc00::1", "fdff:ffff::1", "fe00::1", "fe80::1%eth0", "febf::1",
             "fec0::1", "2001:db8:8000::1", "2001:db8:7fff::1", "::ffff:10.0.0.1", "010.0.0.1",
             "10.0.0", "10.0.0.256", "", "not an ip", None]


def test_cidr_lists_fold_into_one_parse_and_agree_with_ipaddress(detection, run):
    import ipaddress

    listed = ", ".join(f"'{n}'" for n in NETWORKS)
    sql = detection(f"sel:\n  client_ip|cidr: [{listed}]\ncondition: sel\n")
    assert sql.count("sentinel_ipv4(") == 1 and sql.count("sentinel_ipv6(") == 1
    expected = []
    for index, address in enumerate(ADDRESSES):
        try:
            parsed = ipaddress.ip_address((address or "").split("%")[0])
        except ValueError:
            continue
        if any(parsed in ipaddress.ip_network(n) for n in NETWORKS
               if ipaddress.ip_network(n).version == parsed.version):
            expected.append(f"e{index}")
    assert run(sql, [{"client_ip": a} for a in ADDRESSES]) == sorted(expected)
    # `not` of the folded list: a missing address is "not in the list".
    negated = detection(f"sel:\n  client_ip|cidr: [{listed}]\ncondition: not sel\n")
    everything = [f"e{i}" for i in range(len(ADDRESSES))]
    assert run(negated, [{"client_ip": a} for a in ADDRESSES]) == sorted(
        e for e in everything if e not in expected
    )


def test_substring_lists_fold_into_one_regex_with_lower_semantics(detection, run):
    sql = detection("sel:\n  prompt_text|contains: [Kit, 'a.b', 'pIn']\ncondition: sel\n")
    assert sql.count("regexp_matches(") == 1 and "lower(" not in sql
    texts = [
        "the \u212aIT bag",  # Kelvin sign: lower() gives 'kit'
        "a PİN code",  # dotted capital I: lower() gives 'pin'
        "a.b",
        "axb",  # '.' is a literal, not "any character"
        "ſkit",  # long s is not 's' for lower(); 'kit' still matches
        "pſn",
        None,
        "KIT",
    ]
    assert run(sql, [{"prompt_text": t} for t in texts]) == ["e0", "e1", "e2", "e4", "e7"]
    # Non-ASCII values keep one comparison each (lower() semantics there are DuckDB's).
    mixed = detection("sel:\n  prompt_text|contains: ['café', 'tea']\ncondition: sel\n")
    assert "regexp_matches(" not in mixed
    assert run(mixed, [{"prompt_text": "CAFÉ au lait"}, {"prompt_text": "TEA"}]) == ["e0", "e1"]
