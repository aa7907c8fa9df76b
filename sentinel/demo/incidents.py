"""The incidents planted in the demo data, for detections and the PII scanner to find.

Each plant is a record (or a short run of records) in a specific file, at a specific
time, by a specific actor, holding specific values. `PlantedIncident` keeps all of that
so tests can check that sentinel finds exactly what was planted; the manifest written
next to the logs leaves the values out (they exist only in the logs, as in a real leak).

All values are synthetic: card numbers are random Luhn-valid numbers with real issuer
prefixes, SSNs are random numbers in the valid area/group/serial ranges, the AWS key
pair is random in AWS's `AKIA…` format, addresses use documentation IP ranges.

The night of day 11–12 is one story: a laptop key is used at 3 a.m. from an unknown
address, then the same address brute-forces an AWS console password, deletes the
Bedrock invocation-logging configuration, runs Bedrock models as an IAM user that never
used Bedrock before (seen only by CloudTrail now) and mints an OpenAI key with admin scopes.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sentinel.demo.audit import cloudtrail_record as ct_record
from sentinel.demo.audit import console_login, iam_user_identity, openai_event, session_actor
from sentinel.demo.records import Call
from sentinel.demo.world import (
    AWS_ACCOUNT,
    BROWSER_UA_INTRUDER,
    INTRUDER_IP,
    LITELLM_MODELS,
    World,
    hex_id,
)

LOGGING_DELETED_DAY = 12
"""Bedrock invocation logs in us-east-1 stop after the deletion on this day."""


@dataclass
class PlantedIncident:
    kind: str
    """credit_card, ssn, customer_record, aws_credentials, new_ip_off_hours,
    console_brute_force, bedrock_logging_deleted, bedrock_first_use, admin_key_created."""
    source: str
    file: str
    """Path relative to the demo directory."""
    ts: datetime
    who: str
    summary: str
    find_with: str
    values: list[str] = field(default_factory=list)
    """The planted PII/secret values (only in memory and in the logs themselves)."""
    events: int = 1


@dataclass
class Plants:
    incidents: list[PlantedIncident] = field(default_factory=list)
    litellm: list[tuple[Call, PlantedIncident]] = field(default_factory=list)
    spend: list[tuple[Call, PlantedIncident]] = field(default_factory=list)
    bedrock: list[tuple[Call, PlantedIncident]] = field(default_factory=list)
    cloudtrail: list[tuple[dict[str, Any], PlantedIncident]] = field(default_factory=list)
    openai: list[tuple[dict[str, Any], PlantedIncident]] = field(default_factory=list)


def luhn_complete(digits: str) -> str:
    """`digits` plus the Luhn check digit that makes the whole number valid."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return digits + str((10 - total % 10) % 10)


def card_number(rng: random.Random, brand: str) -> str:
    prefix, length = {"visa": ("4", 16), "mastercard": (f"5{rng.randint(1, 5)}", 16),
                      "amex": (rng.choice(("34", "37")), 15), "discover": ("6011", 16)}[brand]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(prefix)))
    return luhn_complete(body)


def format_card(number: str, sep: str) -> str:
    if len(number) == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(101, 899) if a != 666])
    return f"{area:03d}-{rng.randint(10, 99):02d}-{rng.randint(1000, 9999):04d}"


def aws_key_pair(rng: random.Random) -> tuple[str, str]:
    key_id = "AKIA" + "".join(rng.choice(string.ascii_uppercase + "234567") for _ in range(16))
    alphabet = string.ascii_letters + string.digits + "/+"
    return key_id, "".join(rng.choice(alphabet) for _ in range(40))


def _at(days: list[datetime], day: int, hour: float) -> datetime:
    return days[day] + timedelta(seconds=int(hour * 3600))


def plant_all(rng: random.Random, world: World, days: list[datetime], paths: Any) -> Plants:
    """Build every planted record; `paths` maps (source, ts, region) to a demo file."""
    plants = Plants()
    by_team = {t.alias: [k for k in world.keys if k.team == t] for t in world.teams}
    gpt4o = LITELLM_MODELS[0]

    def add_llm(day: int, hour: float, team: str, kind: str, prompt: str, reply: str,
                values: list[str], summary: str, find: str, spend: bool = False) -> None:
        key = by_team[team][-1]
        user = rng.choice(key.users)
        ts = _at(days, day, hour)
        call = Call(ts, prompt, reply, user, user.ip, key=key, model=gpt4o)
        src = "litellm_spendlogs" if spend else "litellm"
        inc = PlantedIncident(kind, "litellm", paths(src, ts, ""), ts, user.email, summary,
                              find, values)
        plants.incidents.append(inc)
        (plants.spend if spend else plants.litellm).append((call, inc))

    card_find = "sentinel hunt --type credit_card"
    for day, hour, brand, sep in ((2, 10.3, "visa", " "), (4, 14.7, "mastercard", "-"),
                                  (6, 9.2, "amex", " "), (8, 16.1, "discover", "")):
        number = format_card(card_number(rng, brand), sep)
        prompt = (f"Customer says their payment failed twice. Card on file is {number}, "
                  f"expiry 0{rng.randint(1, 9)}/28. Can you draft an apology and explain "
                  "how to update the card in the billing portal? Keep it friendly.")
        add_llm(day, hour, "support", "credit_card", prompt,
                "Here is a friendly draft apologising for the failed payment ...",
                [number], f"{brand.title()} card number pasted into a support prompt",
                card_find)
    spend_card = format_card(card_number(rng, "visa"), "-")
    add_llm(9, 11.5, "support", "credit_card",
            f"Refund request: please check whether card {spend_card} was charged twice for "
            "the annual plan and write a reply confirming the refund timeline.",
            "The reply confirms a refund within five to ten business days ...",
            [spend_card], "Card number in a LiteLLM SpendLogs export (string-encoded "
            "messages)", card_find, spend=True)
    for day, hour in ((3, 13.4), (7, 10.8)):
        number = ssn(rng)
        add_llm(day, hour, "finance", "ssn",
                f"Fill in the W-9 summary for our new contractor. Their SSN is {number} and "
                "they invoice monthly. What else do we need before the first payment?",
                "Before the first payment you need a signed W-9 and ...",
                [number], "US SSN pasted into a finance prompt", "sentinel hunt --type ssn")

    # One complete customer record, as it would be copied out of the CRM.
    rec_card = format_card(card_number(rng, "visa"), " ")
    record_values = ["Margaret Okonkwo", "margaret.okonkwo@mailbox.example",
                     "+1 (503) 555-0182", "1184 Alder Street, Portland, OR 97205",
                     "1979-04-23", rec_card]
    add_llm(10, 15.2, "support", "customer_record",
            "Write a retention offer for this customer who wants to cancel:\n\n"
            f"Name: {record_values[0]}\nEmail: {record_values[1]}\nPhone: {record_values[2]}"
            f"\nAddress: {record_values[3]}\nDate of birth: {record_values[4]}\n"
            f"Card: {rec_card} exp 11/27\nPlan: Business annual, customer since 2019.",
            "Dear Margaret, we would hate to see you go ...", record_values,
            "A full customer record (name, e-mail, phone, address, DOB, card) in one prompt",
            "sentinel hunt --type credit_card; sentinel sql \"SELECT * FROM events "
            "WHERE pii_count >= 4\"")

    # Bedrock: an SSN in a streamed InvokeModel, an AWS key pair in a Converse call.
    data_user = world.team_users(world.teams[2])[3]
    arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{data_user.sso_role}/{data_user.email}"
    bed_ssn = ssn(rng)
    ts = _at(days, 5, 11.1)
    call = Call(ts, "Summarise this HR case note for the manager, without legal advice: "
                f"employee (SSN {bed_ssn}) disputes the overtime calculation for October.",
                "The employee disputes the October overtime calculation ...", data_user,
                "", region="us-east-1", identity_arn=arn, stream=True, done_marker=True,
                bedrock_model="anthropic.claude-3-5-sonnet-20240620-v1:0",
                operation="InvokeModelWithResponseStream")
    inc = PlantedIncident("ssn", "bedrock", paths("bedrock", ts, "us-east-1"), ts,
                          data_user.email, "US SSN in a streamed Bedrock InvokeModel prompt",
                          "sentinel hunt --type ssn", [bed_ssn])
    plants.incidents.append(inc)
    plants.bedrock.append((call, inc))

    eng_user = world.team_users(world.teams[0])[6]
    key_id, secret = aws_key_pair(rng)
    ts = _at(days, 6, 14.6)
    arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{eng_user.sso_role}/{eng_user.email}"
    call = Call(ts, "Why does boto3 give AccessDenied when I upload to the reports bucket? "
                "My ~/.aws/credentials:\n\n[default]\n"
                f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
                "region = us-west-2\n\nThe bucket policy allows s3:PutObject for our role.",
                "The credentials belong to a user, not the role the policy allows ...",
                eng_user, "", region="us-west-2", identity_arn=arn, operation="Converse",
                bedrock_model="amazon.nova-pro-v1:0")
    inc = PlantedIncident("aws_credentials", "bedrock", paths("bedrock", ts, "us-west-2"), ts,
                          eng_user.email, "AWS access key id and secret key in a Bedrock "
                          "Converse prompt", "sentinel hunt --type aws_access_key",
                          [key_id, secret])
    plants.incidents.append(inc)
    plants.bedrock.append((call, inc))

    _plant_intrusion(rng, world, days, paths, plants)
    return plants


def _plant_intrusion(
    rng: random.Random, world: World, days: list[datetime], paths: Any, plants: Plants
) -> None:
    # 1. A personal laptop key used at 3 a.m. from an address never seen before.
    key = next(k for k in world.keys if k.owner is not None and k.team.alias == "engineering")
    owner = key.owner
    assert owner is not None
    start = _at(days, 11, 3 + 4 / 60)
    asks = ("List every table in the customers schema with its columns.",
            "Write a script that pages through /v1/customers and saves everything as CSV.",
            "How do I disable request logging in a LiteLLM proxy config?",
            "Generate a Python loop that exports all rows of a Postgres table in chunks.")
    inc = PlantedIncident("new_ip_off_hours", "litellm", paths("litellm", start, ""), start,
                          key.alias, f"Key {key.alias} (owner {owner.email}) used 18 times "
                          f"between 03:04 and 03:41 UTC from new IP {INTRUDER_IP}",
                          "sentinel sql \"SELECT ts, client_ip, actor_key FROM events WHERE "
                          f"client_ip = '{INTRUDER_IP}'\"", [INTRUDER_IP], events=18)
    plants.incidents.append(inc)
    for i in range(18):
        ts = start + timedelta(seconds=i * 123 + rng.randint(0, 40))
        prompt = asks[i % len(asks)] + " Do not include explanations, just the code. " * 4
        call = Call(ts, prompt, "Here is the code:\n\nimport csv, requests ...", owner,
                    INTRUDER_IP, key=key, model=LITELLM_MODELS[2])
        plants.litellm.append((call, inc))

    # 2. Console password spraying, then a successful login without MFA.
    t0 = _at(days, 12, 2 + 9 / 60)
    inc = PlantedIncident("console_brute_force", "cloudtrail", paths("cloudtrail", t0,
                          "us-east-1"), t0, "ops-admin", f"14 failed ConsoleLogin attempts "
                          f"for IAM user ops-admin from {INTRUDER_IP} in 6 minutes, then a "
                          "success without MFA", "sentinel rules test; sentinel sql \"SELECT "
                          "ts, outcome, client_ip FROM events WHERE action = 'ConsoleLogin'\"",
                          [INTRUDER_IP], events=15)
    plants.incidents.append(inc)
    for i in range(14):
        ts = t0 + timedelta(seconds=i * 25 + rng.randint(0, 9))
        plants.cloudtrail.append((console_login(rng, ts, "ops-admin", INTRUDER_IP, False), inc))
    ts = t0 + timedelta(minutes=7, seconds=12)
    plants.cloudtrail.append((console_login(rng, ts, "ops-admin", INTRUDER_IP, True,
                                            mfa=False), inc))

    # 3. The intruder turns off Bedrock model invocation logging.
    ts = _at(days, LOGGING_DELETED_DAY, 2 + 31 / 60)
    record = ct_record(rng, ts, "bedrock.amazonaws.com",
                       "DeleteModelInvocationLoggingConfiguration", "us-east-1",
                       iam_user_identity(rng, "ops-admin"), INTRUDER_IP, BROWSER_UA_INTRUDER,
                       read_only=False)
    inc = PlantedIncident("bedrock_logging_deleted", "cloudtrail",
                          paths("cloudtrail", ts, "us-east-1"), ts, "ops-admin",
                          "Bedrock model invocation logging deleted in us-east-1; invocation "
                          "logs for that region stop afterwards",
                          "sentinel sql \"SELECT * FROM events WHERE action = "
                          "'DeleteModelInvocationLoggingConfiguration'\"", [INTRUDER_IP])
    plants.incidents.append(inc)
    plants.cloudtrail.append((record, inc))

    # 4. An OpenAI API key with organisation-owner scopes, minted from the same address.
    admin = world.team_users(world.teams[0])[1]
    ts = _at(days, 12, 2 + 48 / 60)
    key_id = f"key_{hex_id(rng, 16)}"
    event = openai_event(rng, ts, "api_key.created",
                         session_actor(rng, admin, INTRUDER_IP, city="Amsterdam"),
                         {"id": key_id, "data": {"scopes": ["api.organization.owner",
                                                            "api.management.read",
                                                            "api.management.write"]}})
    inc = PlantedIncident("admin_key_created", "openai_audit", paths("openai_audit", ts, ""),
                          ts, admin.email, f"OpenAI API key {key_id} created with owner/"
                          f"management scopes from {INTRUDER_IP} at 02:48 UTC",
                          "sentinel sql \"SELECT * FROM events WHERE action = "
                          "'api_key.created'\"", [key_id])
    plants.incidents.append(inc)
    plants.openai.append((event, inc))


INTRUDER_CLI_UA = ("aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0 md/arch#x86_64 "
                   "lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard "
                   "md/installer#exe md/prompt#off command/bedrock-runtime.invoke-model")


def plant_bedrock_first_use(
    rng: random.Random, days: list[datetime], paths: Any, plants: Plants
) -> None:
    """After deleting the logging configuration, the intruder runs Bedrock models as
    `ops-admin`, an IAM user CloudTrail has seen all along that never invoked Bedrock.

    Its own `rng` (not the world's), so adding it changed no other record of the demo.
    """
    start = _at(days, LOGGING_DELETED_DAY, 2 + 36 / 60)
    inc = PlantedIncident("bedrock_first_use", "cloudtrail",
                          paths("cloudtrail", start, "us-east-1"), start, "ops-admin",
                          f"IAM user ops-admin, which never used Bedrock, invokes Claude 3 "
                          f"times from {INTRUDER_IP} after invocation logging was deleted "
                          "(only CloudTrail sees it)",
                          "sentinel sql \"SELECT ts, actor_user, action, client_ip FROM events "
                          "WHERE actor_user = 'ops-admin' AND action LIKE 'Invoke%'\"",
                          [INTRUDER_IP], events=3)
    plants.incidents.append(inc)
    for i in range(3):
        ts = start + timedelta(seconds=i * 140 + rng.randint(0, 30))
        record = ct_record(rng, ts, "bedrock.amazonaws.com", "InvokeModel", "us-east-1",
                           iam_user_identity(rng, "ops-admin"), INTRUDER_IP, INTRUDER_CLI_UA,
                           request={"modelId": "anthropic.claude-3-5-sonnet-20240620-v1:0"})
        plants.cloudtrail.append((record, inc))
