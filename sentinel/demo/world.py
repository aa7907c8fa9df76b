"""The fictional company behind the demo logs: people, teams, keys, models, networks.

Everything is derived from one `random.Random`, so a seed gives the same world every
time. Names use the reserved `.example` domain and documentation IP ranges
(RFC 5737: 198.51.100.0/24 for the office egress, 203.0.113.0/24 for the intruder) and
AWS's documented example account id, so nothing in the demo points at a real party.
Key fields only ever hold a LiteLLM key *alias* or *hash*, never a raw `sk-` key.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field

COMPANY_DOMAIN = "northwind.example"
AWS_ACCOUNT = "111122223333"
OFFICE_EGRESS = "198.51.100.23"
INTRUDER_IP = "203.0.113.77"
BROWSER_UA_INTRUDER = "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"

FIRST_NAMES = (
    "Alice Ben Chloe Daniel Emma Farid Grace Hugo Isla Jonas Keiko Liam Maya Noah Olivia "
    "Priya Quentin Rosa Samir Tara Umar Vera Wei Xavier Yara Zoe Aaron Bianca Carlos Dina "
    "Elena Felix Greta Hassan Ines Jamal Kira Lucas Mei Nadia Omar Paula"
).split()
LAST_NAMES = (
    "Abbott Bauer Chen Dubois Eriksen Fischer Garcia Hansen Ito Jensen Kowalski Lopez "
    "Moreau Novak Okafor Patel Quinn Rossi Schmidt Tanaka Ueda Varga Walsh Young Zimmer"
).split()

TEAMS = ("engineering", "support", "data", "marketing", "finance")
TEAM_SIZES = (12, 10, 8, 5, 5)


@dataclass(frozen=True)
class Team:
    alias: str
    team_id: str


@dataclass(frozen=True)
class User:
    user_id: str
    name: str
    email: str
    team: Team
    ip: str
    """The user's usual address as the gateway sees it (office LAN)."""
    vpn_ip: str
    """Their address when working from home over the VPN."""
    sso_role: str


@dataclass(frozen=True)
class ApiKey:
    alias: str
    key_hash: str
    team: Team
    owner: User | None
    """The person a personal key belongs to; None for a team's shared key."""
    users: tuple[User, ...]
    """Who sends requests with this key."""


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    api_base: str
    input_cost: float
    output_cost: float
    max_tokens: int = 16384


@dataclass
class World:
    rng: random.Random
    teams: list[Team]
    users: list[User]
    keys: list[ApiKey]
    service_ips: dict[str, str] = field(default_factory=dict)

    def team_users(self, team: Team) -> list[User]:
        return [u for u in self.users if u.team == team]

    def user_by_email(self, email: str) -> User:
        return next(u for u in self.users if u.email == email)


LITELLM_MODELS = (
    Model("gpt-4o", "openai", "https://api.openai.com", 2.5e-06, 1e-05),
    Model("gpt-4o-mini", "openai", "https://api.openai.com", 1.5e-07, 6e-07),
    Model("gpt-4.1", "openai", "https://api.openai.com", 2e-06, 8e-06, 32768),
    Model("claude-sonnet-4-20250514", "anthropic", "https://api.anthropic.com", 3e-06, 1.5e-05),
    Model("claude-3-5-haiku-20241022", "anthropic", "https://api.anthropic.com", 8e-07, 4e-06),
    Model("gemini-2.5-pro", "vertex_ai", "https://europe-west4-aiplatform.googleapis.com",
          1.25e-06, 1e-05, 65535),
    Model("azure/gpt-4o-eu", "azure", "https://northwind-eu.openai.azure.com",
          2.5e-06, 1e-05),
    Model("mistral-large-latest", "mistral", "https://api.mistral.ai/v1", 2e-06, 6e-06, 8191),
)
LITELLM_MODEL_WEIGHTS = (30, 25, 10, 15, 6, 6, 5, 3)

BEDROCK_MODELS = (
    # (modelId, family) — family decides the InvokeModel body format.
    ("anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic"),
    ("anthropic.claude-3-haiku-20240307-v1:0", "anthropic"),
    ("us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic"),
    ("amazon.nova-pro-v1:0", "converse"),
    ("meta.llama3-1-70b-instruct-v1:0", "converse"),
    ("mistral.mistral-large-2407-v1:0", "converse"),
)
BEDROCK_MODEL_WEIGHTS = (30, 25, 15, 12, 10, 8)
BEDROCK_REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
BEDROCK_REGION_WEIGHTS = (60, 25, 15)

# Applications that call Bedrock with an instance or task role (not a person).
BEDROCK_APP_ROLES = (
    ("support-summariser", "i-0a1b2c3d4e5f60718"),
    ("contract-review-api", "i-0f9e8d7c6b5a40312"),
    ("sql-assistant", "ecs-task-3c1d5e7f"),
)


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng` (uuid.uuid4() would break determinism)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(rng: random.Random, length: int) -> str:
    return f"{rng.getrandbits(length * 4):0{length}x}"


def rand_str(rng: random.Random, alphabet: str, length: int) -> str:
    """`length` characters of `alphabet` from one `randbytes` call (fast; tiny bias)."""
    size = len(alphabet)
    return "".join(alphabet[b % size] for b in rng.randbytes(length))


def build_world(rng: random.Random) -> World:
    """Five teams, forty people, fifteen LiteLLM virtual keys (two of them services)."""
    teams = [Team(alias, uuid4(rng)) for alias in TEAMS]
    names = [(f, ln) for f in FIRST_NAMES for ln in LAST_NAMES]
    rng.shuffle(names)
    users: list[User] = []
    used_first: set[str] = set()
    picks = iter(names)
    for team, size in zip(teams, TEAM_SIZES, strict=True):
        for _ in range(size):
            first, last = next(picks)
            while first in used_first:
                first, last = next(picks)
            used_first.add(first)
            subnet = 20 + TEAMS.index(team.alias)
            users.append(
                User(
                    user_id=uuid4(rng),
                    name=f"{first} {last}",
                    email=f"{first.lower()}.{last.lower()}@{COMPANY_DOMAIN}",
                    team=team,
                    ip=f"10.{subnet}.{rng.randint(1, 8)}.{rng.randint(10, 250)}",
                    vpn_ip=f"10.8.{len(users) // 50}.{len(users) % 50 + 10}",
                    sso_role=f"AWSReservedSSO_{team.alias.title()}_{hex_id(rng, 16)}",
                )
            )
    keys: list[ApiKey] = []
    world = World(rng, teams, users, keys)
    shared_alias = {
        "engineering": "eng-shared",
        "support": "support-desk",
        "data": "data-notebooks",
        "marketing": "marketing-content",
        "finance": "finance-reporting",
    }
    for team in teams:
        members = world.team_users(team)
        # The first member(s) of each team own a personal key; the rest share one.
        owners = members[: {"engineering": 4, "support": 2, "data": 2}.get(team.alias, 0)]
        for owner in owners:
            alias = owner.email.split("@")[0].replace(".", "-") + "-laptop"
            keys.append(ApiKey(alias, _key_hash(rng), team, owner, (owner,)))
        rest = tuple(m for m in members if m not in owners)
        keys.append(ApiKey(shared_alias[team.alias], _key_hash(rng), team, None, rest))
    eng = teams[0]
    ci_bot = ApiKey("ci-code-review-bot", _key_hash(rng), eng, None, ())
    nightly = ApiKey("nightly-digest-job", _key_hash(rng), teams[2], None, ())
    keys += [ci_bot, nightly]
    world.service_ips[ci_bot.alias] = "10.40.0.12"
    world.service_ips[nightly.alias] = "10.40.0.31"
    return world


def _key_hash(rng: random.Random) -> str:
    """What LiteLLM stores for a virtual key: the SHA-256 of the token, never the token."""
    return hashlib.sha256(rng.getrandbits(256).to_bytes(32, "big")).hexdigest()
