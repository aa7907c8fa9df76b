"""Control-plane records: AWS CloudTrail events and OpenAI organisation audit-log events.

The shapes follow CloudTrail's documented record format (as in the Elastic fixtures:
ConsoleLogin, bedrock Converse) and OpenAI's `AuditLog` object (`/organization/
audit_logs`). Builders here make single records; the background activity functions
make the ordinary days an investigator has to look through to see what is unusual.
"""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta
from typing import Any

from sentinel.demo.world import (
    AWS_ACCOUNT,
    OFFICE_EGRESS,
    User,
    World,
    hex_id,
    rand_str,
    uuid4,
)

BOTO_UA = ("Boto3/1.35.50 md/Botocore#1.35.50 ua/2.0 os/linux#6.8.0-1016-aws md/arch#x86_64 "
           "lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.50")
BROWSER_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/130.0.0.0 Safari/537.36")
CONSOLE_IAM_USERS = ("ops-admin", "billing-readonly", "breakglass-sre")


def _upper_id(rng: random.Random, prefix: str, length: int = 16) -> str:
    return prefix + rand_str(rng, string.ascii_uppercase + "234567", length)


def iam_user_identity(rng: random.Random, name: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": _upper_id(rng, "AIDA", 17),
        "arn": f"arn:aws:iam::{AWS_ACCOUNT}:user/{name}",
        "accountId": AWS_ACCOUNT,
        "userName": name,
    }


def role_identity(
    rng: random.Random, role: str, session: str, created: datetime, sso: bool = False
) -> dict[str, Any]:
    role_path = f"role/aws-reserved/sso.amazonaws.com/{role}" if sso else f"role/{role}"
    role_pid = "AROA" + hex_id(rng, 17).upper()
    ident: dict[str, Any] = {
        "type": "AssumedRole",
        "principalId": f"{role_pid}:{session}",
        "arn": f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": AWS_ACCOUNT,
        # Temporary session credentials (ASIA…), as CloudTrail records them.
        "accessKeyId": _upper_id(rng, "ASIA"),
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": role_pid,
                              "arn": f"arn:aws:iam::{AWS_ACCOUNT}:{role_path}",
                              "accountId": AWS_ACCOUNT, "userName": role},
            "attributes": {"creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "mfaAuthenticated": "false"},
        },
    }
    if not sso:
        ident["sessionContext"]["ec2RoleDelivery"] = "2.0"
    return ident


def cloudtrail_record(
    rng: random.Random,
    ts: datetime,
    source: str,
    name: str,
    region: str,
    identity: dict[str, Any],
    ip: str,
    user_agent: str,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    read_only: bool = True,
    request_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One CloudTrail management event (eventVersion 1.10)."""
    record: dict[str, Any] = {
        "eventVersion": "1.10",
        "userIdentity": identity,
        "eventTime": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": user_agent,
    }
    if extra and "errorMessage" in extra:
        record["errorMessage"] = extra.pop("errorMessage")
    record["requestParameters"] = request
    record["responseElements"] = response
    if extra:
        record.update(extra)
    if name != "ConsoleLogin":
        record["requestID"] = request_id or uuid4(rng)
    record["eventID"] = uuid4(rng)
    record["readOnly"] = read_only
    record["eventType"] = "AwsConsoleSignIn" if name == "ConsoleLogin" else "AwsApiCall"
    record["managementEvent"] = True
    record["recipientAccountId"] = AWS_ACCOUNT
    record["eventCategory"] = "Management"
    host = "signin.aws.amazon.com" if name == "ConsoleLogin" else (
        f"{source.split('.')[0]}.{region}.amazonaws.com")
    if source == "bedrock.amazonaws.com" and name in ("InvokeModel", "Converse",
                                                      "InvokeModelWithResponseStream"):
        host = f"bedrock-runtime.{region}.amazonaws.com"
    record["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                            "clientProvidedHostHeader": host}
    return record


def console_login(
    rng: random.Random, ts: datetime, user: str, ip: str, success: bool, mfa: bool = True
) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "additionalEventData": {
            "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&"
                       "isauthcode=true",
            "MobileVersion": "No",
            "MFAUsed": "Yes" if mfa and success else "No",
        }
    }
    if not success:
        extra["errorMessage"] = "Failed authentication"
    return cloudtrail_record(
        rng, ts, "signin.amazonaws.com", "ConsoleLogin", "us-east-1",
        iam_user_identity(rng, user), ip, BROWSER_UA,
        response={"ConsoleLogin": "Success" if success else "Failure"},
        read_only=False, extra=extra,
    )


def background_cloudtrail(
    rng: random.Random, world: World, days: list[datetime]
) -> list[dict[str, Any]]:
    """Ordinary control-plane activity: console sign-ins, config reads, listings."""
    out: list[dict[str, Any]] = []
    checker = ("config-auditor-role", "i-07aa51e2c9d3b8f40")
    for day in days:
        weekday = day.weekday() < 5
        for name in CONSOLE_IAM_USERS[:2] if weekday else ():
            ts = day + timedelta(hours=rng.uniform(7.5, 10), seconds=rng.randint(0, 59))
            out.append(console_login(rng, ts, name, OFFICE_EGRESS, True))
        # A nightly compliance check reads the Bedrock logging configuration.
        ts = day + timedelta(hours=2, minutes=rng.randint(0, 20))
        ident = role_identity(rng, checker[0], checker[1], ts - timedelta(minutes=5))
        for region in ("us-east-1", "us-west-2", "eu-west-1"):
            out.append(cloudtrail_record(
                rng, ts, "bedrock.amazonaws.com", "GetModelInvocationLoggingConfiguration",
                region, ident, "10.40.0.44", BOTO_UA))
        for _ in range(rng.randint(20, 40) if weekday else rng.randint(2, 6)):
            user = rng.choice([u for u in world.users if u.team.alias in ("engineering",
                                                                          "data")])
            ts = day + timedelta(hours=rng.uniform(7, 19))
            source, name = rng.choice((
                ("bedrock.amazonaws.com", "ListFoundationModels"),
                ("bedrock.amazonaws.com", "GetFoundationModel"),
                ("bedrock.amazonaws.com", "ListGuardrails"),
                ("s3.amazonaws.com", "ListBuckets"),
                ("ec2.amazonaws.com", "DescribeInstances"),
                ("iam.amazonaws.com", "ListRoles"),
                ("sts.amazonaws.com", "GetCallerIdentity"),
            ))
            ident = role_identity(rng, user.sso_role, user.email, ts - timedelta(hours=1),
                                  sso=True)
            out.append(cloudtrail_record(rng, ts, source, name, "us-east-1", ident,
                                         OFFICE_EGRESS, BOTO_UA))
    return out


# --- OpenAI organisation audit log -------------------------------------------------

OPENAI_PROJECTS = (("proj_support_assist", "Support Assist"),
                   ("proj_codebot", "Code Review Bot"), ("proj_analytics", "Analytics"))


def session_actor(rng: random.Random, user: User, ip: str, city: str = "London") -> dict[str, Any]:
    return {
        "type": "session",
        "session": {
            "user": {"id": "user-" + hex_id(rng, 24), "email": user.email},
            "ip_address": ip,
            "user_agent": BROWSER_UA,
            "ja3": hex_id(rng, 32),
            "ja4": f"t13d1516h2_{hex_id(rng, 12)}_{hex_id(rng, 12)}",
            "ip_address_details": {"country": "GB" if city == "London" else "NL",
                                   "city": city,
                                   "region": "England" if city == "London" else "North Holland",
                                   "region_code": "ENG" if city == "London" else "NH",
                                   "asn": "64500", "latitude": "51.50740",
                                   "longitude": "-0.12780"},
        },
    }


def openai_event(
    rng: random.Random, ts: datetime, event_type: str, actor: dict[str, Any],
    payload: dict[str, Any], project: tuple[str, str] | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"audit_log-{hex_id(rng, 24)}",
        "type": event_type,
        "effective_at": int(ts.timestamp()),
    }
    if project:
        event["project"] = {"id": project[0], "name": project[1]}
    event["actor"] = actor
    event[event_type] = payload
    return event


def background_openai(
    rng: random.Random, world: World, days: list[datetime]
) -> list[dict[str, Any]]:
    """Admins signing in, rotating project keys, inviting people."""
    admins = [u for u in world.users if u.team.alias in ("engineering", "data")][:5]
    out: list[dict[str, Any]] = []
    for day in days:
        if day.weekday() >= 5:
            continue
        for admin in rng.sample(admins, 3):
            ts = day + timedelta(hours=rng.uniform(8, 10))
            out.append(openai_event(rng, ts, "login.succeeded",
                                    session_actor(rng, admin, OFFICE_EGRESS), {}))
            if rng.random() < 0.3:
                ts2 = ts + timedelta(minutes=rng.randint(2, 40))
                project = rng.choice(OPENAI_PROJECTS)
                out.append(openai_event(
                    rng, ts2, "api_key.created", session_actor(rng, admin, OFFICE_EGRESS),
                    {"id": f"key_{hex_id(rng, 16)}",
                     "data": {"scopes": ["api.model.request", "api.model.read"]}},
                    project))
                out.append(openai_event(
                    rng, ts2 + timedelta(minutes=3), "api_key.deleted",
                    session_actor(rng, admin, OFFICE_EGRESS),
                    {"id": f"key_{hex_id(rng, 16)}"}, project))
        if rng.random() < 0.25:
            admin = rng.choice(admins)
            ts = day + timedelta(hours=rng.uniform(11, 16))
            invitee = rng.choice(world.users)
            out.append(openai_event(rng, ts, "invite.sent",
                                    session_actor(rng, admin, OFFICE_EGRESS),
                                    {"id": f"invite-{hex_id(rng, 16)}",
                                     "data": {"email": invitee.email, "role": "reader"}}))
    return out
