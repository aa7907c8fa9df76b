"""Generate the demo data set: two weeks of a company's AI usage, across four log formats.

`generate()` is deterministic: one `random.Random(seed)` drives every choice, the time
window is anchored to a fixed end date (not the clock), and the writers produce
byte-identical files, so the demo, its tests and its documentation stay in step.

Volume: `events` inference records in total (LiteLLM payloads + SpendLogs rows +
Bedrock invocation logs, planted ones included), about 30 % of them Bedrock. Every
Bedrock call also has its CloudTrail management event (same `requestID`), except that
after the planted deletion of the logging configuration, us-east-1 calls appear only in
CloudTrail — the gap an investigator should notice.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sentinel.demo import writers
from sentinel.demo.audit import BOTO_UA, background_cloudtrail, background_openai, role_identity
from sentinel.demo.audit import cloudtrail_record as ct_record
from sentinel.demo.incidents import LOGGING_DELETED_DAY, plant_all, plant_bedrock_first_use
from sentinel.demo.manifest import DemoFile, DemoManifest
from sentinel.demo.prompts import SYSTEM_PROMPTS, prompt_for
from sentinel.demo.records import (
    Call,
    bedrock_record,
    litellm_payload,
    model_map_json,
    spend_log_row,
)
from sentinel.demo.world import (
    AWS_ACCOUNT,
    BEDROCK_APP_ROLES,
    BEDROCK_MODEL_WEIGHTS,
    BEDROCK_MODELS,
    BEDROCK_REGION_WEIGHTS,
    BEDROCK_REGIONS,
    LITELLM_MODEL_WEIGHTS,
    LITELLM_MODELS,
    OFFICE_EGRESS,
    ApiKey,
    User,
    World,
    build_world,
)

DEFAULT_END = datetime(2026, 11, 20, tzinfo=UTC)
"""The demo window ends here (exclusive) unless `end` is given."""
DAYS = 14
BEDROCK_SHARE = 0.3
HOURS = tuple(range(7, 22))
HOUR_WEIGHTS = (2, 6, 9, 10, 9, 6, 8, 9, 9, 8, 6, 3, 2, 1, 1)
APP_KIND = {"support-summariser": "support", "contract-review-api": "finance",
            "sql-assistant": "data"}


def generate(
    out_dir: Path, seed: int = 7, events: int = 50_000, end: datetime | None = None
) -> DemoManifest:
    """Write the demo logs into `out_dir` and return what was written and planted."""
    if events < 1000:
        raise ValueError("the demo needs at least 1,000 events to plant its incidents")
    end = (end or DEFAULT_END).astimezone(UTC)
    start = end.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS)
    days = [start + timedelta(days=i) for i in range(DAYS)]
    rng = random.Random(seed)
    world = build_world(rng)
    plants = plant_all(rng, world, days, writers.path_for)
    plant_bedrock_first_use(random.Random(f"{seed}/bedrock-first-use"), days,
                            writers.path_for, plants)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: list[DemoFile] = []

    deleted_at = next(i.ts for i in plants.incidents if i.kind == "bedrock_logging_deleted")
    n_bedrock = round(events * BEDROCK_SHARE) - len(plants.bedrock)
    bedrock, trail = _bedrock_calls(rng, world, days, n_bedrock, deleted_at)
    for call, _inc in plants.bedrock:
        bedrock.append(bedrock_record(rng, call))
    n_spend = max(20, min(200, events // 250)) - len(plants.spend)
    n_litellm = events - len(bedrock) - n_spend - len(plants.spend) - len(plants.litellm)
    calls = _litellm_calls(rng, world, days, n_litellm + n_spend)
    rng.shuffle(calls)
    spend_calls = [c for c, _ in plants.spend] + calls[:n_spend]
    llm_calls = [c for c, _ in plants.litellm] + calls[n_spend:]

    files += _write_litellm(rng, out_dir, llm_calls, spend_calls)
    files += _write_bedrock(out_dir, bedrock)
    cloudtrail = trail + background_cloudtrail(rng, world, days)
    cloudtrail += [rec for rec, _ in plants.cloudtrail]
    files += _write_cloudtrail(out_dir, cloudtrail)
    openai = background_openai(rng, world, days) + [ev for ev, _ in plants.openai]
    files += _write_openai(out_dir, openai, days[4])

    counts: dict[str, int] = defaultdict(int)
    for f in files:
        counts[f.source] += f.events
    manifest = DemoManifest(
        out_dir=out_dir, seed=seed, start=start, end=start + timedelta(days=DAYS),
        files=files, counts=dict(counts), incidents=plants.incidents,
        users=len(world.users), keys=len(world.keys), teams=len(world.teams),
        inference_events=len(llm_calls) + len(spend_calls) + len(bedrock),
    )
    manifest.write()
    return manifest


def _human_times(rng: random.Random, days: list[datetime], n: int) -> list[datetime]:
    """`n` timestamps in working hours, weekdays much busier than weekends."""
    day_weights = [1.0 if d.weekday() < 5 else 0.12 for d in days]
    picked_days = rng.choices(days, day_weights, k=n)
    picked_hours = rng.choices(HOURS, HOUR_WEIGHTS, k=n)
    rand = rng.random
    return [d + timedelta(hours=h, microseconds=int(rand() * 3_600_000_000))
            for d, h in zip(picked_days, picked_hours, strict=True)]


def _litellm_calls(rng: random.Random, world: World, days: list[datetime], n: int) -> list[Call]:
    """Gateway traffic: people through their own or their team's key, plus two services."""
    personal = {k.owner.user_id: k for k in world.keys if k.owner is not None}
    shared = {k.team.team_id: k for k in world.keys if k.owner is None and k.users}
    ci_bot = next(k for k in world.keys if k.alias == "ci-code-review-bot")
    nightly = next(k for k in world.keys if k.alias == "nightly-digest-job")
    # A few heavy users and a long tail, as in any real rollout.
    weights = [rng.paretovariate(1.5) for _ in world.users]
    n_nightly = 40 * len(days)
    n_ci = n // 20
    n_people = n - n_nightly - n_ci
    calls: list[Call] = []
    users = rng.choices(world.users, weights, k=n_people)
    models = rng.choices(LITELLM_MODELS, LITELLM_MODEL_WEIGHTS, k=n)
    for i, ts in enumerate(_human_times(rng, days, n_people)):
        user = users[i]
        key = personal.get(user.user_id) or shared[user.team.team_id]
        prompt, reply = prompt_for(rng, user.team.alias)
        ip = user.vpn_ip if rng.random() < 0.15 else user.ip
        calls.append(_llm_call(rng, ts, prompt, reply, user, ip, key, models[i]))
    for i, ts in enumerate(_human_times(rng, days, n_ci)):
        prompt, reply = prompt_for(rng, "engineering")
        calls.append(_llm_call(rng, ts, prompt, reply, None, world.service_ips[ci_bot.alias],
                               ci_bot, models[n_people + i]))
    for day in days:
        for j in range(40):
            ts = day + timedelta(hours=1, seconds=j * 30 + rng.randint(0, 25))
            prompt, reply = prompt_for(rng, "data")
            calls.append(_llm_call(rng, ts, prompt, reply, None,
                                   world.service_ips[nightly.alias], nightly, LITELLM_MODELS[1]))
    return calls


def _llm_call(
    rng: random.Random, ts: datetime, prompt: str, reply: str, user: User | None, ip: str,
    key: ApiKey, model: Any,
) -> Call:
    system = rng.choice(SYSTEM_PROMPTS) if rng.random() < 0.5 else None
    return Call(ts, prompt, reply, user, ip, system=system, key=key, model=model,
                failed=rng.random() < 0.015, stream=rng.random() < 0.4)


def _bedrock_calls(
    rng: random.Random, world: World, days: list[datetime], n: int, deleted_at: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Bedrock invocation records and their CloudTrail events.

    us-east-1 calls after `deleted_at` get a CloudTrail event but no invocation log.
    """
    sso_users = [u for u in world.users if u.team.alias in ("engineering", "data")]
    records: list[dict[str, Any]] = []
    trail: list[dict[str, Any]] = []
    for ts in _human_times(rng, days, n):
        ts = ts.replace(microsecond=0)
        region = rng.choices(BEDROCK_REGIONS, BEDROCK_REGION_WEIGHTS)[0]
        model_id, family = rng.choices(BEDROCK_MODELS, BEDROCK_MODEL_WEIGHTS)[0]
        if rng.random() < 0.7:
            app, session = rng.choice(BEDROCK_APP_ROLES)
            role = f"{app}-role"
            arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/{session}"
            prompt, reply = prompt_for(rng, APP_KIND[app])
            user: User | None = None
            ip, sso = f"10.40.1.{BEDROCK_APP_ROLES.index((app, session)) + 20}", False
        else:
            user = rng.choice(sso_users)
            role, session = user.sso_role, user.email
            arn = f"arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/{session}"
            prompt, reply = prompt_for(rng, user.team.alias)
            ip, sso = OFFICE_EGRESS, True
        if family == "anthropic":
            op = rng.choices(("InvokeModel", "InvokeModelWithResponseStream", "Converse"),
                             (50, 30, 20))[0]
        else:
            op = rng.choices(("Converse", "ConverseStream"), (80, 20))[0]
        call = Call(ts, prompt, reply, user, ip, region=region, identity_arn=arn,
                    bedrock_model=model_id, operation=op,
                    system=rng.choice(SYSTEM_PROMPTS) if rng.random() < 0.4 else None,
                    done_marker=op == "InvokeModelWithResponseStream" and rng.random() < 0.05)
        record = bedrock_record(rng, call)
        ident = role_identity(rng, role, session, ts - timedelta(minutes=20), sso=sso)
        trail.append(ct_record(rng, ts, "bedrock.amazonaws.com", op, region, ident, ip,
                               BOTO_UA, request={"modelId": model_id},
                               request_id=record["requestId"]))
        if not (region == "us-east-1" and ts > deleted_at):
            records.append(record)
    assert days[LOGGING_DELETED_DAY] <= deleted_at
    return records, trail


def _write_litellm(
    rng: random.Random, root: Path, calls: list[Call], spend_calls: list[Call]
) -> list[DemoFile]:
    maps = {m.name: model_map_json(m) for m in LITELLM_MODELS}
    by_file: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.ts):
        by_file[writers.litellm_path(call.ts)].append(call)
    files = []
    for rel in sorted(by_file):
        n = writers.write_lines(root, rel, (litellm_payload(rng, c, maps) for c in by_file[rel]))
        files.append(DemoFile(rel, "litellm", "json lines (StandardLoggingPayload)", n))
    rows = [spend_log_row(rng, c) for c in sorted(spend_calls, key=lambda c: c.ts)]
    n = writers.write_json_array(root, writers.SPEND_EXPORT, rows)
    files.append(DemoFile(writers.SPEND_EXPORT, "litellm", "JSON array (SpendLogs export)", n))
    return files


def _write_bedrock(root: Path, records: list[dict[str, Any]]) -> list[DemoFile]:
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in sorted(records, key=lambda r: r["timestamp"]):
        ts = datetime.strptime(rec["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        by_file[writers.bedrock_path(ts, rec["region"])].append(rec)
    files = []
    for rel in sorted(by_file):
        n = writers.write_lines(root, rel, (json.dumps(r) for r in by_file[rel]), compress=True)
        files.append(DemoFile(rel, "bedrock", "gzipped json lines (ModelInvocationLog)", n))
    return files


def _write_cloudtrail(root: Path, records: list[dict[str, Any]]) -> list[DemoFile]:
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for rec in sorted(records, key=lambda r: r["eventTime"]):
        ts = datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        by_file[writers.cloudtrail_path(ts, rec["awsRegion"])].append(rec)
    files = []
    for rel in sorted(by_file):
        n = writers.write_cloudtrail(root, rel, by_file[rel])
        files.append(DemoFile(rel, "cloudtrail", 'gzipped {"Records": [...]}', n))
    return files


def _write_openai(
    root: Path, events: list[dict[str, Any]], backfill_until: datetime
) -> list[DemoFile]:
    """Early days as one API list page (a backfill), the rest as JSON lines."""
    cutoff = int(backfill_until.timestamp())
    ordered = sorted(events, key=lambda e: e["effective_at"])
    page = [e for e in ordered if e["effective_at"] < cutoff]
    lines = [json.dumps(e) for e in ordered if e["effective_at"] >= cutoff]
    n_page = writers.write_list_page(root, writers.OPENAI_PAGE, page)
    n_lines = writers.write_lines(root, writers.OPENAI_LINES, lines)
    return [
        DemoFile(writers.OPENAI_PAGE, "openai_audit", 'API list page {"object": "list"}',
                 n_page),
        DemoFile(writers.OPENAI_LINES, "openai_audit", "json lines (AuditLog)", n_lines),
    ]

