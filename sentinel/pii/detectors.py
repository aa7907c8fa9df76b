"""The built-in detectors: what sentinel looks for in prompts and responses out of the box.

Every pattern must mean the same in RE2 (DuckDB and pyarrow run it over whole columns)
and in Python's `re` with `re.ASCII` (used on the few candidates to locate groups), so
patterns use neither look-around nor back-references. Conventions inside a pattern:

* group `v` is the value (the whole match when absent);
* groups `pre` / `post` are one-character guards: RE2 has no look-behind, so a pattern
  optionally swallows the neighbouring character and the scanner rejects the candidate
  when a guard is non-empty (`ORD-123-45-6789` is not an SSN, `v1.2.3.4` not an IP).

`priority` settles overlaps: when two findings overlap, the higher one is kept (an email
inside a database URL is reported as the URL; a card number is not also a phone).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Detector:
    name: str
    """The finding type reported in `pii_types` (several detectors may share one)."""
    pattern: str
    validator: str | None = None
    severity: str = "medium"
    kind: str = "pii"
    """`pii` or `secret`: secrets are masked down to their provider prefix and last 4."""
    priority: int = 50
    normaliser: str = "strip"
    prefix: str = ""
    """For secrets, a regex of the provider prefix a masked hint may show (`AKIA`, `sk-ant-`)."""


_LABEL_SEP = r"""["']?\s*(?:[:=#]|=>|\bis\b|\bno\.?|\bnumber\b)?\s*["']?\s*"""
_MONTH = r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    # --- secrets -------------------------------------------------------------------------
    Detector(
        "private_key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:\\[nr]|[A-Za-z0-9+/=\s:,])*"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
        None, "critical", "secret", 100, "pem",
    ),
    Detector(
        "jwt",
        r"(?P<pre>[\w-]??)(?P<v>eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",
        "jwt", "high", "secret", 95, "exact", r"eyJ",
    ),
    Detector(
        "anthropic_key",
        r"(?P<pre>[\w-]??)(?P<v>sk-ant-(?:api|admin|oat|sid)\d\d-[A-Za-z0-9_-]{20,})",
        "token", "critical", "secret", 94, "exact", r"sk-ant-[a-z]+\d\d-",
    ),
    Detector(
        "openai_key",
        r"(?P<pre>[\w-]??)(?P<v>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,})",
        "token", "critical", "secret", 93, "exact", r"sk-(?:proj-|svcacct-|admin-)?",
    ),
    Detector(
        "github_token",
        r"(?P<pre>\w??)(?P<v>gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        "token", "critical", "secret", 92, "exact", r"gh[pousr]_|github_pat_",
    ),
    Detector(
        "stripe_key",
        r"(?P<pre>\w??)(?P<v>(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,99})",
        "token", "critical", "secret", 92, "exact", r"[sr]k_(?:live|test)_",
    ),
    Detector(
        "slack_token",
        r"(?P<pre>\w??)(?P<v>xox[abposr]-[0-9A-Za-z-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"
        r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,})",
        "token", "high", "secret", 92, "exact",
        r"xox[a-z]-|xapp-|https://hooks\.slack\.com/",
    ),
    Detector(
        "google_api_key",
        r"(?P<pre>\w??)(?P<v>AIza[0-9A-Za-z_-]{35})",
        "token", "high", "secret", 92, "exact", r"AIza",
    ),
    Detector(
        "google_oauth_token",
        r"(?P<pre>\w??)(?P<v>ya29\.[0-9A-Za-z_-]{20,})",
        "token", "high", "secret", 92, "exact", r"ya29\.",
    ),
    Detector(
        "aws_access_key",
        r"(?P<pre>\w??)(?P<v>(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)"
        r"[A-Z2-7]{16})(?P<post>\w?)",
        "token", "high", "secret", 91, "exact", r"A[A-Z]{3}",
    ),
    Detector(
        "aws_secret_key",
        r"(?i:aws[ _.-]?secret(?:[ _.-]?access)?(?:[ _.-]?key)?|secret[ _.-]?access[ _.-]?key)"
        + _LABEL_SEP
        + r"(?P<v>[A-Za-z0-9/+]{40})(?P<post>[A-Za-z0-9/+=]?)",
        "aws_secret", "critical", "secret", 90, "exact",
    ),
    Detector(
        "database_url",
        r"(?P<v>(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|"
        r"sqlserver|cockroachdb|clickhouse|oracle|jdbc:[a-z]+)(?:\+[a-z0-9]+)?://"
        r"[^\s:/@'\"]+:[^\s@/'\"]+@[^\s/'\"<>]+)",
        "db_password", "critical", "secret", 89, "exact", r"[A-Za-z0-9+:]+://",
    ),
    Detector(
        "generic_secret",
        r"(?i:password|passwd|pwd|passphrase|secret|api[_-]?key|apikey|access[_-]?token|"
        r"auth[_-]?token|client[_-]?secret|private[_-]?key|bearer)"
        r"""(?:["']?\s*(?:[:=]|=>)\s*["']?|\s+is\s+["']?|\s+)(?P<v>[^\s"'`,;]{8,128})""",
        "entropy", "high", "secret", 10, "exact",
    ),
    # --- personal data -------------------------------------------------------------------
    Detector(
        "credit_card",
        r"(?P<pre>[\w.+/-]??)(?P<v>\d(?:[ -]?\d){12,})(?P<post>\w?)",
        "card", "high", "pii", 80, "digits",
    ),
    Detector(
        "iban",
        r"(?P<pre>\w??)(?P<v>[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34})",
        "iban", "high", "pii", 79, "compact",
    ),
    Detector(
        "ssn",
        r"(?P<pre>[\w.+/-]??)(?P<v>\d{3}[ -]\d{2}[ -]\d{4})(?P<post>(?:\w|-\d)?)",
        "ssn", "high", "pii", 78, "digits",
    ),
    Detector(
        "ssn",
        r"\b(?i:ssn|social security(?: number| no\b)?)" + _LABEL_SEP
        + r"(?P<v>\d{9})(?P<post>\w?)",
        "ssn", "high", "pii", 78, "digits",
    ),
    Detector(
        "national_id",
        r"\b(?i:national[ _-]?id(?:entity)?(?: card)?|nino|ni|national insurance|bsn|cpf|dni|nie|"
        r"nif|pesel|aadhaar|codice fiscale|personnummer|sin|steuer-?id|idnr|nir|hetu|cpr|curp|"
        r"tax id|tin|id card|identity card)\b" + _LABEL_SEP
        + r"(?P<v>[A-Za-z0-9](?:[ ./-]?[A-Za-z0-9]){5,19})(?P<post>\w?)",
        "national_id", "high", "pii", 77, "compact",
    ),
    Detector(
        "national_id",
        r"(?P<pre>[\w.-]??)(?P<v>\d{3}\.\d{3}\.\d{3}-\d{2}|[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}"
        r"[A-Z])(?P<post>\w?)",
        "national_id", "high", "pii", 77, "compact",
    ),
    Detector(
        "passport",
        r"\b(?i:passport)(?:[ _-]?(?i:number|num|nr\b|no\b|id\b|#))?" + _LABEL_SEP
        + r"(?P<v>[A-Z0-9]{6,9})(?P<post>\w?)",
        "passport", "high", "pii", 76, "compact",
    ),
    Detector(
        "email",
        r"(?P<v>[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
        r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24})(?P<post>\w?)",
        "email", "medium", "pii", 70, "lower",
    ),
    Detector(
        "date_of_birth",
        r"\b(?i:d\.?o\.?b|date of birth|birth ?date|born(?: on)?|geburtsdatum|date de naissance|"
        r"fecha de nacimiento|data di nascita)" + _LABEL_SEP
        + r"(?P<v>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\.? " + _MONTH + r",? \d{4}|"
        + _MONTH + r" \d{1,2},? \d{4})",
        "date", "medium", "pii", 65, "strip",
    ),
    Detector(
        "phone",
        r"(?P<pre>[\w.+/-]??)(?P<v>(?:\+|\b00)[1-9]\d{0,2}[ .-]?(?:\(0?\d{1,4}\)[ .-]?)?"
        r"\d{1,4}(?:[ .-]?\d{1,4}){1,5})(?P<post>\w?)",
        "phone", "medium", "pii", 60, "phone",
    ),
    Detector(
        "phone",
        r"(?P<pre>[\w.+/-]??)(?P<v>\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})"
        r"(?P<post>(?:\w|[.-]\d)?)",
        "phone", "medium", "pii", 60, "phone",
    ),
    Detector(
        "ipv6",
        r"(?P<pre>[\w:.]??)(?P<v>(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|"
        r"(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{0,4})(?P<post>[\w.]?)",
        "ipv6", "low", "pii", 55, "ip",
    ),
    Detector(
        "ipv4",
        r"(?P<pre>[\w.-]??)(?P<v>(?:\d{1,3}\.){3}\d{1,3})(?P<post>(?:\.?\w)?)",
        "ipv4", "low", "pii", 54, "ip",
    ),
)  # fmt: skip
