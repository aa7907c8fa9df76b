"""Validators: the checks that turn a regex candidate into a finding.

A pattern alone cannot tell a card number from an order number, so every detector that
has a checksum or a structural rule names a validator here. Validators only ever see
candidates (the few strings the column-wide regex pass found), so they may be plain
Python. Checksums come from python-stdnum and phonenumbers rather than being
re-implemented.

Those libraries are imported by the validator that needs them, on its first candidate,
not with this module: phonenumbers alone costs ~20 ms at import, and most texts a
command prints (alert rows, a query result of ids and counts) hold no candidate phone
number, IBAN or national id. What a validator decides does not depend on when its
library was loaded.

A validator takes the candidate value and returns True (accept it as it is), False
(reject), or a `(start, end)` span inside the value when only part of the candidate is
the finding (a card number followed by another number, an IBAN followed by a word in
capitals).
"""

from __future__ import annotations

import base64
import binascii
import functools
import importlib
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from datetime import date
from types import ModuleType

Verdict = bool | tuple[int, int]
Validator = Callable[[str], Verdict]

_SEPARATORS = re.compile(r"[ -]")

# Issuer identification prefixes of the major card networks (ISO/IEC 7812 ranges).
_CARD_PREFIXES = re.compile(
    r"^(?:4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[689])|6(?:011|5|4[4-9]|2)"
    r"|35|5[06-8]|6[07])"
)


def card(value: str) -> Verdict:
    """A Luhn-valid number with a known issuer prefix, written the way cards are.

    The candidate is a run of digit groups; the finding is the first window of whole
    groups holding 13-19 digits, grouped contiguously or in fours (or Amex 4-6-5).
    """
    groups = _SEPARATORS.split(value)
    positions = []
    offset = 0
    for group in groups:
        positions.append(offset)
        offset += len(group) + 1
    for first in range(len(groups)):
        total = 0
        for last in range(first, len(groups)):
            total += len(groups[last])
            if total > 19:
                break
            if total < 13:
                continue
            window = groups[first : last + 1]
            digits = "".join(window)
            if _card_grouping(window) and _CARD_PREFIXES.match(digits) and _luhn(digits):
                start = positions[first]
                return start, positions[last] + len(groups[last])
    return False


_LUHN_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, less 9 when above 9


def _luhn(digits: str) -> bool:
    """`luhn.is_valid` for plain ASCII digits, at a tenth of the cost."""
    if not (digits.isascii() and digits.isdigit()):
        from stdnum import luhn as stdnum_luhn

        return bool(stdnum_luhn.is_valid(digits))
    doubled = digits[-2::-2].translate(_LUHN_DOUBLED)
    return (sum(map(int, digits[-1::-2])) + sum(map(int, doubled))) % 10 == 0


def _card_grouping(groups: list[str]) -> bool:
    sizes = [len(g) for g in groups]
    if len(sizes) == 1:
        return True
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


_IBAN_NEVER_CHECK = frozenset({"00", "01", "99"})


def iban(value: str) -> Verdict:
    """ISO 13616 mod-97, trying shorter prefixes when a word in capitals follows.

    Check digits 00, 01 and 99 pass mod-97 for some bodies but are never issued: ISO 7064
    computes them as 98 minus a remainder (0-96), so they run from 02 to 98.
    """
    if value[2:4] in _IBAN_NEVER_CHECK:
        return False
    from stdnum import iban as stdnum_iban

    ends = [m.start() for m in re.finditer(" ", value)] + [len(value)]
    for end in sorted(ends, reverse=True):
        candidate = value[:end]
        compact = candidate.replace(" ", "")
        if len(compact) >= 15 and _mod97(compact) and stdnum_iban.is_valid(candidate):
            return 0, end
    return False


_BASE36 = {ord(c): str(int(c, 36)) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}


def _mod97(compact: str) -> bool:
    """The ISO 7064 check alone: cheap, and most look-alikes fail it. True when unsure."""
    if not (compact.isascii() and compact.isalnum()):
        return True  # stdnum decides
    return int((compact[4:] + compact[:4]).translate(_BASE36)) % 97 == 1


def ssn(value: str) -> Verdict:
    """US SSN: area not 000/666/9xx, group not 00, serial not 0000, no known fakes."""
    seps = {c for c in value if not c.isdigit()}
    if len(seps) > 1:
        return False
    dashed = value.replace(" ", "-")
    parts = _SSN_PARTS.fullmatch(dashed)
    if parts is None:
        from stdnum.us import ssn as stdnum_ssn

        return bool(stdnum_ssn.is_valid(dashed))
    # stdnum's rules, without the cleaning and exceptions that make up most of its cost
    area, group, serial = parts.groups()
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}-{group}-{serial}" not in _SSN_PUBLISHED


_SSN_PARTS = re.compile(r"([0-9]{3})-?([0-9]{2})-?([0-9]{4})")
# Numbers published in advertising and therefore never issued (stdnum's blacklist).
_SSN_PUBLISHED = frozenset({"078-05-1120", "457-55-5462", "219-09-9999"})


def phone(value: str) -> Verdict:
    """A number phonenumbers accepts as valid (international, or US/CA without `+`).

    The candidate may run into a following number (`+44 20 7946 0958 10`), so shorter
    prefixes ending at a separator are tried, longest first. An extension (`x493`,
    ` ext. 12`) belongs to the finding when the number before it is valid as it stands.
    """
    return _phone_span(value, ("US",))


# Where a labelled number in national format (no `+`) may be from: the label says it is a
# phone, the region is a guess, so every region whose numbering plan sentinel's users
# commonly meet is tried (US first: most numbers in English prompts are NANP).
_LABELLED_REGIONS = (
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "CH", "AT", "IE", "PT", "PL", "SE", "NO",
    "DK", "FI", "BR", "MX", "AU", "NZ", "IN", "JP", "CN", "SG", "ZA",
)  # fmt: skip
_DATE_LIKE = re.compile(
    r"^(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./]\d\d?$|^\d\d?[-./]\d\d?[-./]\d{4}$"
)


def labelled_phone(value: str) -> Verdict:
    """A number after a phone label, valid in some common region (or international)."""
    return _phone_span(value, _LABELLED_REGIONS)


_EXTENSION = re.compile(r"\s?(?:[xX]|[eE][xX][tT]\.?|[eE]xtension)\s?\d{1,6}$")


def _phone_span(value: str, regions: tuple[str, ...]) -> Verdict:
    extension = _EXTENSION.search(value)
    if extension is not None:
        number = value[: extension.start()]
        return (0, len(value)) if _valid_phone(number, regions) else False
    ends = [m.start() for m in re.finditer(r"[ .-]", value)] + [len(value)]
    for end in sorted(set(ends), reverse=True):
        if _valid_phone(value[:end], regions):
            return 0, end
    return False


@functools.cache
def _plan(region: str) -> tuple[str, frozenset[int]]:
    """A region's trunk prefix (`0`, or "" when none) and the lengths its numbers have."""
    import phonenumbers

    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc if metadata is not None else None
    if metadata is None or general is None:  # unknown region: no length rules it out
        return "", frozenset(range(1, 18))
    return metadata.national_prefix or "", frozenset(general.possible_length)


def _plausible_in(region: str, digits: str) -> bool:
    """Whether `digits`, written nationally, has a length `region`'s plan allows (cheap:
    it spares the parse and validation of most regions a guess would otherwise try)."""
    prefix, lengths = _plan(region)
    national = digits[len(prefix) :] if prefix and digits.startswith(prefix) else digits
    return len(national) in lengths


def _valid_phone(value: str, regions: tuple[str, ...]) -> bool:
    import phonenumbers

    digits = sum(c.isdigit() for c in value)
    # A guessed region admits 7-digit local numbers (`555-0000` is valid in Germany).
    if digits < (8 if len(regions) > 1 else 7) or digits > 15:
        return False
    text = value.strip()
    if _DATE_LIKE.match(text):
        return False
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+") and len(regions) > 1:
        bare = "".join(c for c in text if c.isdigit())
        regions = tuple(r for r in regions if _plausible_in(r, bare))
    for region in (None,) if text.startswith("+") else regions:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return True
    return False


def ipv4(value: str) -> Verdict:
    """A dotted quad without leading zeros; loopback and 0.0.0.0 are not personal data."""
    parts = value.split(".")
    if any(len(p) > 1 and p.startswith("0") for p in parts):
        return False
    if len(parts) == 4 and all(len(p) <= 3 and p.isascii() and p.isdigit() for p in parts):
        # What IPv4Address checks, without building one.
        if any(int(p) > 255 for p in parts):
            return False
        return parts[0] != "127" and value != "0.0.0.0"
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


def ipv6(value: str) -> Verdict:
    """A parseable IPv6 address with enough groups that it is not a clock time or C++."""
    groups = [g for g in value.split(":") if g]
    if len(groups) < 3:
        return False
    try:
        address = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return not (address.is_loopback or address.is_unspecified)


_EMAIL_NOT_TLDS = frozenset(
    "png jpg jpeg gif svg webp bmp ico js mjs ts tsx jsx css scss json yaml yml lock txt map "
    "vue py rb go rs java kt html htm xml pdf zip gz tar wasm".split()
)


def email(value: str) -> Verdict:
    """RFC-ish shape: no `..`, no dot at the ends, a real-looking TLD (not `icon@2x.png`)."""
    local, _, domain = value.rpartition("@")
    if not local or ".." in local or local.startswith(".") or local.endswith("."):
        return False
    if local == "git":  # an SSH remote (git@github.com:org/repo), not a mailbox
        return False
    tld = domain.rsplit(".", 1)[-1].lower()
    return tld not in _EMAIL_NOT_TLDS and ".." not in domain


def jwt(value: str) -> Verdict:
    """Three base64url parts whose first decodes to a JSON header with `alg`."""
    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        parsed = json.loads(decoded)
    except (binascii.Error, ValueError):
        return False
    return isinstance(parsed, dict) and ("alg" in parsed or "typ" in parsed)


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s own character distribution."""
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


_PLACEHOLDER = re.compile(
    r"(?i)your|x{4,}|example|placeholder|changeme|redacted|dummy|sample|<|>|\$\{|\{\{|\*\*\*|"
    r"^\[|\.\.\."
)
# Case-sensitive for tokens: random bodies contain "Xxx" or "your" by chance often enough.
_TOKEN_PLACEHOLDER = re.compile(
    r"x{6,}|X{6,}|\*{3,}|YOUR|your_|EXAMPLE|example|placeholder|<|>|\$\{|\{\{|\.\.\."
)
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


def entropy(value: str) -> Verdict:
    """A plausible secret: long enough, mixed character classes, high entropy, no placeholder.

    Trailing sentence punctuation is not part of the secret (`secret protéger.`).
    """
    trimmed = value.rstrip(".)]>!?:")
    if len(trimmed) < 8 or _PLACEHOLDER.search(trimmed) or _ENV_NAME.match(trimmed):
        return False
    classes = sum(
        (
            any(c.islower() for c in trimmed),
            any(c.isupper() for c in trimmed),
            any(c.isdigit() for c in trimmed),
            any(not c.isalnum() for c in trimmed),
        )
    )
    if classes < 2 or shannon_entropy(trimmed) < 2.8:
        return False
    return True if trimmed == value else (0, len(trimmed))


# Keys printed in providers' documentation and copied into countless tutorials and tests.
_DOCUMENTATION_TOKENS = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "AKIAI44QH8DHBEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "sk_test_26PHem9AhJZvU623DfE1x4sd",
    }
)


def token(value: str) -> Verdict:
    """A provider token: not a documentation value or placeholder, not one repeated character."""
    body = value[-16:]
    return (
        value not in _DOCUMENTATION_TOKENS
        and not _TOKEN_PLACEHOLDER.search(value)
        and len(set(body)) > 4
    )


def placeholder(value: str) -> Verdict:
    """A provider-shaped token that is a documentation value or a placeholder.

    The complement of `token`: what it rejects as `AKIAIOSFODNN7EXAMPLE` or
    `sk-xxxxxxxx…` is reported under its own type instead of being dropped unseen.
    """
    return token(value) is False


def aws_secret_placeholder(value: str) -> Verdict:
    """An AWS secret key slot holding a placeholder (`wJalr…EXAMPLEKEY`, `xxxx…`)."""
    if re.fullmatch(r"[0-9a-fA-F]{40}", value):  # a hex digest: neither kind of value
        return False
    return token(value) is False


def aws_secret(value: str) -> Verdict:
    """40 base64 characters that are not a hex digest (git SHA-1 is 40 hex too)."""
    if re.fullmatch(r"[0-9a-fA-F]{40}", value):
        return False
    return token(value) is True and entropy(value) is True


def db_password(value: str) -> Verdict:
    """A database URL whose password is not a placeholder such as `password` or `${PW}`."""
    userinfo = value.split("://", 1)[-1].rsplit("@", 1)[0]
    password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    if not password or password.lower() in {"password", "pass", "passwd", "secret", "pwd"}:
        return False
    return not _PLACEHOLDER.search(password)


_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    )
    for m in (names,)
}


def birth_date(value: str) -> Verdict:
    """Some reading of the date (Y-M-D, D-M-Y, M-D-Y, with a month name) is a real past date."""
    parts = re.findall(r"\d+|[A-Za-z]+", value)
    numbers: list[int] = []
    month_name = None
    for part in parts:
        if part.isdigit():
            numbers.append(int(part))
        elif part[:3].lower() in _MONTHS:
            month_name = _MONTHS[part[:3].lower()]
    if month_name is not None and len(numbers) == 2:
        day, year = (numbers[0], numbers[1]) if numbers[1] > 31 else (numbers[1], numbers[0])
        orders = [(year, month_name, day)]
    elif len(numbers) == 3:
        a, b, c = numbers
        orders = [(a, b, c), (c, b, a), (c, a, b)]
    else:
        return False
    for year, month, day in orders:
        if year < 100:
            year += 1900 if year > 30 else 2000
        try:
            found = date(year, month, day)
        except ValueError:
            continue
        if date(1900, 1, 1) <= found <= date.today():
            return True
    return False


# National ids with a check digit that python-stdnum knows; a labelled value passing any
# of them is accepted. Formats without a checksum (passports) rely on the label alone.
NATIONAL_ID_MODULES = (
    "nl.bsn", "br.cpf", "es.dni", "es.nie", "pl.pesel", "in_.aadhaar", "it.codicefiscale",
    "se.personnummer", "fr.nir", "de.idnr", "ca.sin", "dk.cpr", "fi.hetu", "no.fodselsnummer",
    "mx.curp", "be.nn", "cn.ric", "za.idnr", "tr.tckimlik", "il.idnr", "kr.rrn", "ie.pps",
    "ch.ssn", "at.vnr", "pt.cc", "cl.rut", "ar.dni", "gb.nhs", "us.ssn", "us.itin",
)  # fmt: skip

_UK_NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$")


def national_id(value: str) -> Verdict:
    """Passes the checksum of some national id scheme, or is a UK National Insurance number.

    A labelled candidate may run on into the next word, so shorter prefixes ending at a
    space are tried, longest first.
    """
    ends = [m.start() for m in re.finditer(" ", value)] + [len(value)]
    for end in sorted(set(ends), reverse=True):
        if _national_id(value[:end]):
            return 0, end
    return False


def _national_id(value: str) -> bool:
    compact = re.sub(r"[\s./-]", "", value).upper()
    if _UK_NINO.match(compact):
        return True
    if sum(c.isdigit() for c in compact) < 6:  # every scheme here is mostly digits
        return False
    checks = _national_id_checks_for(len(compact))
    if compact[:2].isalpha():  # some schemes drop a leading country code (CL12531909-2)
        checks += _national_id_checks_for(len(compact) - 2)
    return any(check(value) for check in checks)


_PROBE_LENGTHS = range(1, 41)


@functools.cache
def _national_id_checks() -> tuple[tuple[Callable[[str], bool], frozenset[int]], ...]:
    """Each scheme's `is_valid`, with the lengths (without separators) a number may have.

    The lengths are learnt from stdnum itself: a length is ruled out when the scheme's
    `validate` says `InvalidLength` to every probe of digits that long (a scheme that
    checks the characters first keeps every length). Trying only the schemes that a
    candidate's length allows is what makes a labelled id cheap to check; a test holds
    every valid example in stdnum's own documentation to it.
    """
    out = []
    for name in NATIONAL_ID_MODULES:
        module = _stdnum(name)
        lengths = frozenset(n for n in _PROBE_LENGTHS if not _length_ruled_out(module, n))
        out.append((module.is_valid, lengths))
    return tuple(out)


@functools.cache
def _national_id_checks_for(length: int) -> tuple[Callable[[str], bool], ...]:
    return tuple(check for check, lengths in _national_id_checks() if length in lengths)


def _length_ruled_out(module: ModuleType, length: int) -> bool:
    from stdnum.exceptions import InvalidLength, ValidationError

    digits, dated = "1234567890" * 4, "8501019" + "0" * 40  # the last reads as a birth date
    for probe in ("1" * length, "0" * length, digits[:length], dated[:length]):
        try:
            module.validate(probe)
        except InvalidLength:
            continue
        except (ValidationError, ValueError):  # some other rule spoke first: length may do
            return False
        return False
    return True


def passport(value: str) -> Verdict:
    """A labelled passport number: 6-9 letters and digits with at least two digits."""
    return sum(c.isdigit() for c in value) >= 2


def _stdnum(name: str) -> ModuleType:
    return importlib.import_module(f"stdnum.{name}")


def luhn(value: str) -> Verdict:
    """The Luhn checksum over the value's digits (for a user's `validator = "luhn"`)."""
    from stdnum import luhn as stdnum_luhn

    return bool(stdnum_luhn.is_valid(re.sub(r"\D", "", value)))


BUILTIN: dict[str, Validator] = {
    "luhn": luhn,
    "card": card,
    "iban": iban,
    "ssn": ssn,
    "phone": phone,
    "labelled_phone": labelled_phone,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "email": email,
    "jwt": jwt,
    "entropy": entropy,
    "token": token,
    "placeholder": placeholder,
    "aws_secret_placeholder": aws_secret_placeholder,
    "aws_secret": aws_secret,
    "db_password": db_password,
    "date": birth_date,
    "national_id": national_id,
    "passport": passport,
}


def resolve(name: str) -> Validator | None:
    """The validator called `name`: a built-in, or `stdnum.<module>` for any stdnum format."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name.startswith("stdnum."):
        try:
            module = _stdnum(name.removeprefix("stdnum."))
        except ImportError:
            return None
        check = getattr(module, "is_valid", None)
        if check is None:
            return None
        return lambda v: bool(check(v))
    return None
