"""The built-in detectors: what sentinel looks for in prompts and responses out of the box.

Every pattern must mean the same in RE2 (DuckDB and pyarrow run it over whole columns)
and in Python's `re` with `re.ASCII` (used on the few candidates to locate groups), so
patterns use neither look-around nor back-references. Conventions inside a pattern:

* group `v` is the value (the whole match when absent), for labelled patterns;
* `before` / `after` stand in for the look-around RE2 lacks: a candidate preceded by a
  `before` character or followed by `after` text is part of a larger token and dropped
  (`ORD-123-45-6789` is not an SSN, `v1.2.3.4` not an IP). Keeping such guards out of
  the pattern keeps its literal prefix, which RE2 turns into a memchr-speed skip.
* `anchor` is a cheap necessary condition for the prefilter pass: short, few states,
  literal where possible (the full pattern's counted repetitions make a slow DFA).

`priority` settles overlaps: when two findings overlap, the higher one is kept (an email
inside a database URL is reported as the URL; a card number is not also a phone).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
    before: str = ""
    """A character class; a match right after such a character is part of a larger token."""
    after: str = ""
    """A regex; a match followed by text matching it is part of a larger token."""
    anchor: str = ""
    """A cheap superset of `pattern` for the prefilter (default: the pattern itself)."""
    re2_only: bool = False
    """A user's `[[pii.detectors]]` pattern: never run by Python's backtracking `re`, whose
    worst case on a pattern such as `(a+)+b` is exponential; RE2's is linear."""
    twin: bool = False
    """A second verdict on another detector's matches, never searched for itself: what the
    detector of the same pattern rejects, this one may accept (under its own type)."""


# A label starts a word, or follows an escaped newline/tab in JSON text ("…\\nDOB: …" in
# `raw`), where `\b` sees "nDOB" as one word.
_WORD_START = r"(?:\b|\\[nrt])"
_LABEL_SEP = r"""["']?\s*(?:[:=#]|=>|\bis\b|\bno\.?|\bnumber\b)?\s*["']?\s*"""
_MONTH = r"(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
# Short labels are words in some languages ("sin", "ni", "tin"): only in capitals.
_NATIONAL_LABEL = (
    _WORD_START
    + r"(?:(?i:national[ _-]?id(?:entity)?(?: card)?|nino|national insurance(?: number)?|bsn|"
    r"cpf|pesel|aadhaar|codice fiscale|personnummer|steuer-?id|idnr|hetu|curp|tax id|id card|"
    r"identity card)|NI|DNI|NIE|NIF|SIN|NIR|CPR|TIN)\b"
)
_DOB_LABEL = (
    _WORD_START
    + r"(?i:d\.?o\.?b|date of birth|birth ?date|born(?: on)?|geburtsdatum|date de naissance|"
    r"fecha de nacimiento|data di nascita)"
)
_SECRET_LABEL = (
    r"(?i:password|passwd|pwd|passphrase|secret|api[_-]?key|apikey|access[_-]?token|"
    r"auth[_-]?token|client[_-]?secret|private[_-]?key|bearer)"
)
_AWS_SECRET_LABEL = (
    r"(?i:aws[ _.-]?secret(?:[ _.-]?access)?(?:[ _.-]?key)?|secret[ _.-]?access[ _.-]?key)"
)
# A phone number's extension: `x493`, ` ext. 12`, ` extension 7`.
_PHONE_EXTENSION = r"(?:\s?(?i:x|ext\.?|extension)\s?\d{1,6})?"
_PHONE_LABEL = (
    _WORD_START
    # Few words: each one costs every row of the prefilter pass a little.
    + r"(?i:(?:tele)?phone|tel|mobile|cell(?:phone)?|call(?: me)?(?: at| on)?|fax|whatsapp|"
    r"telefon[oe]?)\b\.?(?:\s*(?i:number\b|no\b\.?|nr\b\.?|#))?"
)
_PEM_LABEL = r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
_DIGIT_BEFORE = r"[\w.+/-]"

_DETECTORS: tuple[Detector, ...] = (
    # --- secrets -------------------------------------------------------------------------
    Detector(
        "private_key",
        _PEM_LABEL + r"(?:\\[nr]|[A-Za-z0-9+/=\s:,])*"
        r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----)?",
        severity="critical", kind="secret", priority=100, normaliser="pem",
        anchor=r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY",
    ),
    Detector(
        "jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
        "jwt", "high", "secret", 95, "exact", r"eyJ", before=r"[\w-]",
        anchor=r"eyJ[A-Za-z0-9_-]{8,}\.eyJ",
    ),
    Detector(
        "anthropic_key", r"sk-ant-(?:api|admin|oat|sid)\d\d-[A-Za-z0-9_-]{20,}",
        "token", "critical", "secret", 94, "exact", r"sk-ant-[a-z]+\d\d-", before=r"[\w-]",
        anchor=r"sk-ant-",
    ),
    Detector(
        "openai_key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
        "token", "critical", "secret", 93, "exact", r"sk-(?:proj-|svcacct-|admin-)?",
        before=r"[\w-]", anchor=r"sk-[A-Za-z0-9_-]{20}",
    ),
    Detector(
        "github_token", r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}",
        "token", "critical", "secret", 92, "exact", r"gh[pousr]_|github_pat_", before=r"\w",
        anchor=r"gh[pousr]_[A-Za-z0-9]{36}|github_pat_",
    ),
    Detector(
        "stripe_key", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,99}",
        "token", "critical", "secret", 92, "exact", r"[sr]k_(?:live|test)_", before=r"\w",
        anchor=r"k_(?:live|test)_",
    ),
    Detector(
        "slack_token",
        r"xox[abposr]-[0-9A-Za-z-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}"
        r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_-]{20,}",
        "token", "high", "secret", 92, "exact", r"xox[a-z]-|xapp-|https://hooks\.slack\.com/",
        before=r"\w", anchor=r"xox[abposr]-|xapp-\d|hooks\.slack\.com/",
    ),
    Detector(
        "google_api_key", r"AIza[0-9A-Za-z_-]{35}",
        "token", "high", "secret", 92, "exact", r"AIza", before=r"\w",
    ),
    Detector(
        "google_oauth_token", r"ya29\.[0-9A-Za-z_-]{20,}",
        "token", "high", "secret", 92, "exact", r"ya29\.", before=r"\w",
    ),
    Detector(
        "aws_access_key",
        r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[A-Z2-7]{16}",
        "token", "high", "secret", 91, "exact", r"A[A-Z]{3}", before=r"\w", after=r"\w",
    ),
    Detector(
        "aws_secret_key",
        _AWS_SECRET_LABEL + _LABEL_SEP + r"(?P<v>[A-Za-z0-9/+]{40})",
        "aws_secret", "critical", "secret", 90, "exact", after=r"[A-Za-z0-9/+=]",
        anchor=r"(?i:secret[ _.-]?access|aws[ _.-]?secret)",
    ),
    Detector(
        "database_url",
        r"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|"
        r"sqlserver|cockroachdb|clickhouse|oracle|jdbc:[a-z]+)(?:\+[a-z0-9]+)?://"
        r"[^\s:/@'\"]+:[^\s@/'\"]+@[^\s/'\"<>]+",
        "db_password", "critical", "secret", 89, "exact", r"[A-Za-z0-9+:]+://",
        anchor=r"://[^\s:/@'\"]+:[^\s@/'\"]+@",
    ),
    Detector(
        "generic_secret",
        _SECRET_LABEL
        + r"""(?:["']?\s*(?:[:=]|=>)\s*["']?|\s+is\s+["']?|\s+)(?P<v>[^\s"'`,;]{8,128})""",
        "entropy", "high", "secret", 10, "exact", anchor=_SECRET_LABEL,
    ),
    # --- personal data -------------------------------------------------------------------
    Detector(
        "credit_card", r"\d(?:[ -]?\d){12,}",
        "card", "high", "pii", 80, "digits", before=_DIGIT_BEFORE, after=r"\w",
        anchor=r"\d{4}[ -]?\d{4}[ -]?\d{4}|\d{4}[ -]\d{6}[ -]\d{4}",
    ),
    Detector(
        "iban", r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,34}",
        "iban", "high", "pii", 81, "compact", before=r"\w",
        anchor=r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
    ),
    Detector(
        "ssn", r"\d{3}[ -]\d{2}[ -]\d{4}",
        "ssn", "high", "pii", 78, "digits", before=_DIGIT_BEFORE, after=r"\w|-\d",
    ),
    Detector(
        "ssn",
        _WORD_START + r"(?i:ssn|social security(?: number| no\b)?)" + _LABEL_SEP + r"(?P<v>\d{9})",
        "ssn", "high", "pii", 78, "digits", after=r"\w",
        anchor=r"(?i:ssn|social security)",
    ),
    Detector(
        "national_id",
        _NATIONAL_LABEL + _LABEL_SEP + r"(?P<v>[A-Z0-9](?:[ ./-]?[A-Z0-9]){5,19})",
        "national_id", "high", "pii", 77, "compact", after=r"\w", anchor=_NATIONAL_LABEL,
    ),
    Detector(
        "national_id",
        r"\d{3}\.\d{3}\.\d{3}-\d{2}|[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]",
        "national_id", "high", "pii", 77, "compact", before=r"[\w.-]", after=r"\w",
    ),
    Detector(
        "passport",
        _WORD_START
        + r"(?i:passport)(?:[ _-]?(?:(?i:number|num|nr|no|id)\b\.?|#))?"
        + _LABEL_SEP
        + r"(?P<v>[A-Z0-9]{6,9})",
        "passport", "high", "pii", 76, "compact", after=r"\w", anchor=r"(?i:passport)",
    ),
    Detector(
        "email",
        r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
        r"[A-Za-z]{2,24}",
        "email", "medium", "pii", 70, "lower", after=r"\w",
        anchor=r"[A-Za-z0-9_%+-]@[A-Za-z0-9-]+\.[A-Za-z]{2}",
    ),
    Detector(
        "date_of_birth",
        _DOB_LABEL + _LABEL_SEP
        + r"(?P<v>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{1,2}\.? " + _MONTH + r",? \d{4}|"
        + _MONTH + r" \d{1,2},? \d{4})",
        "date", "medium", "pii", 65, "strip", anchor=_DOB_LABEL,
    ),
    Detector(
        "phone",
        r"(?:\+|\b00)[1-9]\d{0,2}[ .-]?(?:\(0?\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,5}"
        + _PHONE_EXTENSION,
        "phone", "medium", "pii", 60, "phone", before=_DIGIT_BEFORE, after=r"\w",
        anchor=r"(?:\+|\b00)[1-9]\d{0,2}[ .-]?\(?\d",
    ),
    Detector(
        "phone",
        r"(?:\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4})" + _PHONE_EXTENSION,
        "phone", "medium", "pii", 60, "phone", before=_DIGIT_BEFORE, after=r"\w|[.-]\d",
        anchor=r"\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}[.-]\d{3}[.-]\d{4}",
    ),
    # A number after a label ("call me at 8029418004", "Tel: 030 901820"): bare digits or a
    # national format, which only the label tells from an order number. (`+…` numbers are
    # the first phone detector's, label or not.)
    Detector(
        "phone",
        _PHONE_LABEL + _LABEL_SEP
        + r"(?P<v>(?:\(\d{1,5}\)[ .-]?)?\d(?:[ .-]?\(?\d{1,5}\)?){2,9}" + _PHONE_EXTENSION + ")",
        "labelled_phone", "medium", "pii", 60, "phone", after=r"\w|[.-]\d",
        anchor=_PHONE_LABEL + _LABEL_SEP + r"\(?\d",  # "call" alone is too common
    ),
    Detector(
        "ipv6",
        r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|"
        r"(?:[0-9A-Fa-f]{1,4}:){1,6}:(?:[0-9A-Fa-f]{1,4}:){0,5}[0-9A-Fa-f]{0,4}",
        "ipv6", "low", "pii", 55, "ip", before=r"[\w:.]", after=r"[\w.:]",
        anchor=r"[0-9A-Fa-f]::|::[0-9A-Fa-f]|(?:[0-9A-Fa-f]{1,4}:){4}[0-9A-Fa-f]",
    ),
    Detector(
        "ipv4", r"(?:\d{1,3}\.){3}\d{1,3}",
        "ipv4", "low", "pii", 54, "ip", before=r"[\w.-]", after=r"\.?\w",
        anchor=r"\d\.\d{1,3}\.\d{1,3}\.\d",
    ),
)  # fmt: skip


def _placeholder_twin(detector: Detector) -> Detector:
    """`detector` reporting what its validator rejects as a placeholder, under its own type."""
    validator = "aws_secret_placeholder" if detector.validator == "aws_secret" else "placeholder"
    return replace(
        detector, name=PLACEHOLDER_TYPE, validator=validator, severity="informational", twin=True
    )


PLACEHOLDER_TYPE = "placeholder_secret"
"""A provider-shaped key that is a documentation value or a placeholder (`AKIAIOSFODNN7EXAMPLE`,
`sk-xxxx…`). Reported, so a scan never passes over a key without a word, but as its own
type: it is no leak, so rules and hunts on `aws_access_key` do not see it, and it keeps
the shape's hint (`AKIA****MPLE`) so an analyst sees which provider it imitates."""

BUILTIN_DETECTORS: tuple[Detector, ...] = _DETECTORS + tuple(
    _placeholder_twin(d) for d in _DETECTORS if d.validator in ("token", "aws_secret")
)
