"""Prompt and response text that reads like real business use of an AI gateway.

Detections and the PII scanner are only convincing on text that looks like what people
actually paste: support tickets, diffs for review, meeting notes, SQL, campaign briefs.
Each kind is a template filled from fragment lists and grown paragraph by paragraph to a
drawn length (200–2,000 characters), so 50,000 prompts are varied without a corpus.

Invariant: ordinary prompts contain no PII or secrets — no e-mail addresses, phone
numbers or long digit runs — so every scanner finding in the demo is a planted one.
"""

from __future__ import annotations

import random
from collections.abc import Callable

PRODUCTS = ("Northwind Cloud", "Northwind Insights", "the mobile app", "the billing portal",
            "the partner API", "Northwind Sync", "the admin console", "the reporting module")
CUSTOMERS = ("Helix Logistics", "Brightwater Foods", "Orbital Freight", "Kestrel Health",
             "Juniper Retail", "Alder & Finch", "Cobalt Mining", "Meridian Travel",
             "Lumen Energy", "Tidewater Bank", "Quarry Labs", "Sable Insurance")
SYMPTOMS = ("the export to CSV times out after about two minutes",
            "invoices show the wrong currency after the last update",
            "users are logged out every few minutes on Safari",
            "the dashboard shows yesterday's numbers until a manual refresh",
            "webhooks arrive twice for the same order",
            "the SSO login loops back to the sign-in page",
            "attachments larger than ten megabytes fail silently",
            "search returns no results for names with accents",
            "scheduled reports are sent in UTC instead of local time",
            "the sync job stops after the first batch")
MOODS = ("The customer is frustrated and mentions they are evaluating competitors.",
         "They were polite but this is the third ticket about it this month.",
         "This is blocking their month-end close, so it is urgent for them.",
         "They have a workaround but it costs their team an hour a day.",
         "The account manager asked us to prioritise this one.")
LANGS = ("Python", "TypeScript", "Go", "Java", "Kotlin", "Rust")
CODE = {
    "Python": ("def apply_discount(order, rules):\n    for rule in rules:\n"
               "        if rule.matches(order):\n            order.total -= rule.amount\n"
               "    return order\n"),
    "TypeScript": ("export async function fetchOrders(api: Client, page = 1) {\n"
                   "  const res = await api.get(`/orders?page=${page}`);\n"
                   "  return res.data.items.map((o: any) => ({ ...o, total: +o.total }));\n}\n"),
    "Go": ("func (s *Store) Get(ctx context.Context, id string) (*Item, error) {\n"
           "\trow := s.db.QueryRowContext(ctx, \"SELECT data FROM items WHERE id=$1\", id)\n"
           "\tvar it Item\n\tif err := row.Scan(&it.Data); err != nil {\n"
           "\t\treturn nil, err\n\t}\n\treturn &it, nil\n}\n"),
    "Java": ("public List<Invoice> overdue(LocalDate today) {\n"
             "    return invoices.stream()\n        .filter(i -> i.getDue().isBefore(today))\n"
             "        .collect(Collectors.toList());\n}\n"),
    "Kotlin": ("suspend fun refresh(token: String): Session =\n"
               "    client.post(\"/auth/refresh\") { header(\"X-Token\", token) }.body()\n"),
    "Rust": ("pub fn parse_line(line: &str) -> Result<Record, Error> {\n"
             "    let mut parts = line.split(',');\n"
             "    let id = parts.next().ok_or(Error::Missing)?.parse()?;\n"
             "    Ok(Record { id, name: parts.next().unwrap_or_default().to_string() })\n}\n"),
}
REVIEW_ASKS = ("Is there a race condition here?", "Can you suggest better names?",
               "What tests would you add?", "Is the error handling idiomatic?",
               "Could this be simpler?", "Does this leak connections under load?")
TABLES = ("orders", "invoices", "subscriptions", "support_tickets", "web_sessions",
          "payments", "product_events", "accounts")
SQL_GOALS = ("monthly recurring revenue by plan", "churned accounts per quarter",
             "the top ten customers by order value", "week-over-week active users",
             "average ticket resolution time by priority", "refund rate by region",
             "a seven-day rolling average of signups", "duplicate rows in the import")
MEETINGS = ("the quarterly business review", "the incident retrospective",
            "the roadmap planning session", "the vendor negotiation call",
            "the hiring committee sync", "the data governance working group")
DECISIONS = ("move the launch by two weeks", "freeze new features until the migration is done",
             "hire a second on-call engineer", "drop the legacy export format",
             "renegotiate the support contract", "pilot the new onboarding flow with five "
             "customers")
CAMPAIGNS = ("the spring product launch", "a webinar on data quality",
             "the customer-appreciation newsletter", "a LinkedIn series on AI governance",
             "the partner program relaunch", "the holiday discount campaign")
TONES = ("confident but not pushy", "warm and practical", "crisp and technical",
         "playful, for a younger audience", "formal, for procurement teams")
FILLER = (
    "For context, we rolled out the new release to about a third of our customers last "
    "week and the feedback has been mixed.",
    "Please keep the answer short enough to paste into a Slack thread.",
    "We already tried restarting the workers and clearing the cache; neither helped.",
    "Our style guide prefers plain English and active voice.",
    "Assume the reader is smart but has not seen this system before.",
    "If anything is ambiguous, list your assumptions at the top.",
    "The deadline is Friday, so a good-enough answer today beats a perfect one later.",
    "Leadership mostly cares about the impact on renewals and support load.",
    "Please flag anything that might need a second opinion from legal.",
    "We are a team of six, so anything that needs a dedicated owner is hard for us.",
)


def _grow(rng: random.Random, text: str, target: int) -> str:
    """Append context paragraphs until the prompt reaches `target` characters."""
    parts = [text]
    length = len(text)
    while length < target:
        extra = rng.choice(FILLER)
        parts.append(extra)
        length += len(extra) + 2
    out = "\n\n".join(parts)
    return out[:2000]


def support_ticket(rng: random.Random) -> tuple[str, str]:
    ticket = rng.randint(100000, 999999)
    prompt = (
        f"Summarise this support ticket and draft a reply.\n\nTicket #{ticket} from "
        f"{rng.choice(CUSTOMERS)} about {rng.choice(PRODUCTS)}:\n\"Since yesterday "
        f"{rng.choice(SYMPTOMS)}. We also noticed that {rng.choice(SYMPTOMS)}. Can you "
        f"look into it?\"\n\n{rng.choice(MOODS)}"
    )
    reply = (
        f"Summary: the customer reports two issues in {rng.choice(PRODUCTS)}; the first is "
        "the priority.\n\nDraft reply:\nHi, thanks for the detailed report. We have "
        "reproduced the first issue and our engineers are working on a fix; we will update "
        "this ticket within one business day. In the meantime, a manual refresh avoids the "
        "problem."
    )
    return prompt, reply


def code_review(rng: random.Random) -> tuple[str, str]:
    lang = rng.choice(LANGS)
    prompt = (
        f"Please review this {lang} change before I open the pull request. "
        f"{rng.choice(REVIEW_ASKS)}\n\n```{lang.lower()}\n{CODE[lang]}```\n\n"
        f"{rng.choice(REVIEW_ASKS)}"
    )
    reply = (
        "Overall the change is readable. Three suggestions:\n1. Handle the empty case "
        "explicitly instead of relying on a default.\n2. The loop mutates its input; "
        "return a new value so callers are not surprised.\n3. Add a test for the error "
        "path, which is currently untested."
    )
    return prompt, reply


def sql_help(rng: random.Random) -> tuple[str, str]:
    table, other = rng.sample(TABLES, 2)
    goal = rng.choice(SQL_GOALS)
    prompt = (
        f"I need a SQL query for {goal}. We use Postgres. The table `{table}` has columns "
        f"id, account_id, created_at, status and amount; `{other}` has id, account_id, "
        f"region and plan. My attempt:\n\nSELECT date_trunc('month', created_at) AS m, "
        f"sum(amount)\nFROM {table} t JOIN {other} o ON o.account_id = t.account_id\n"
        f"GROUP BY 1;\n\nIt double counts when an account has several rows in {other}."
    )
    reply = (
        f"The join fans out because {other} has several rows per account. Aggregate "
        f"{other} first (or use EXISTS), then join:\n\nWITH o AS (SELECT DISTINCT "
        f"account_id, region FROM {other})\nSELECT date_trunc('month', t.created_at) AS m, "
        f"o.region, sum(t.amount)\nFROM {table} t JOIN o USING (account_id)\nGROUP BY 1, 2;"
    )
    return prompt, reply


def meeting_summary(rng: random.Random) -> tuple[str, str]:
    meeting = rng.choice(MEETINGS)
    decision = rng.choice(DECISIONS)
    prompt = (
        f"Summarise these notes from {meeting} into decisions, owners and open questions.\n\n"
        f"- Discussed whether to {decision}; most agreed, finance wants numbers first.\n"
        f"- {rng.choice(CUSTOMERS)} escalation: {rng.choice(SYMPTOMS)}.\n"
        f"- Proposal to {rng.choice(DECISIONS)} was postponed.\n"
        f"- Action: engineering to estimate the work on {rng.choice(PRODUCTS)}."
    )
    reply = (
        f"Decisions: {decision} (pending a cost estimate from finance).\nOwners: engineering "
        "for the estimate, the account team for the escalation.\nOpen questions: timeline, "
        "and whether the postponed proposal returns next quarter."
    )
    return prompt, reply


def marketing_copy(rng: random.Random) -> tuple[str, str]:
    campaign = rng.choice(CAMPAIGNS)
    prompt = (
        f"Write three subject lines and a 120-word intro for {campaign}. Tone: "
        f"{rng.choice(TONES)}. Product: {rng.choice(PRODUCTS)}. Key message: teams spend "
        f"less time on manual reporting. Avoid buzzwords like 'synergy' and 'revolutionary'."
    )
    reply = (
        "Subject lines:\n1. Your Monday report, already done\n2. Less spreadsheet, more "
        "decisions\n3. See what changed this week in one glance\n\nIntro: Reporting should "
        "not eat your week. With automated summaries, your team starts every Monday with "
        "the numbers that matter and the context behind them."
    )
    return prompt, reply


def finance_analysis(rng: random.Random) -> tuple[str, str]:
    prompt = (
        f"Explain the variance in our cloud spend this month for the board pack. Compute "
        f"went up {rng.randint(8, 35)} percent, storage down {rng.randint(2, 12)} percent, "
        f"and the AI gateway line is new. Draft two paragraphs, neutral tone, and suggest "
        f"one chart. Customers driving usage include {rng.choice(CUSTOMERS)} and "
        f"{rng.choice(CUSTOMERS)}."
    )
    reply = (
        "Cloud spend rose mainly because of compute for new customer workloads, partly "
        "offset by storage savings after the archive migration. The AI gateway is a new "
        "line reflecting the assistant rollout.\n\nSuggested chart: stacked monthly spend "
        "by category over the last six months."
    )
    return prompt, reply


KINDS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "support_ticket": support_ticket,
    "code_review": code_review,
    "sql_help": sql_help,
    "meeting_summary": meeting_summary,
    "marketing_copy": marketing_copy,
    "finance_analysis": finance_analysis,
}
TEAM_KINDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "engineering": (("code_review", "sql_help", "meeting_summary"), (60, 25, 15)),
    "support": (("support_ticket", "meeting_summary"), (85, 15)),
    "data": (("sql_help", "code_review", "meeting_summary"), (60, 20, 20)),
    "marketing": (("marketing_copy", "meeting_summary"), (80, 20)),
    "finance": (("finance_analysis", "sql_help", "meeting_summary"), (60, 20, 20)),
}
SYSTEM_PROMPTS = (
    "You are a helpful assistant for Northwind employees. Be concise.",
    "You are a senior engineer reviewing code. Be specific and kind.",
    "You are a support agent assistant. Never promise dates you cannot keep.",
)


def prompt_for(rng: random.Random, team: str) -> tuple[str, str]:
    """A (prompt, response) pair typical for `team`, 200–2,000 characters of prompt."""
    kinds, weights = TEAM_KINDS[team]
    prompt, reply = KINDS[rng.choices(kinds, weights)[0]](rng)
    return _grow(rng, prompt, rng.randint(200, 1900)), reply
