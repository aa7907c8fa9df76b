"""A labelled corpus of prompts for measuring the PII scanner's precision and recall.

Each sample is prompt-like text (Faker sentences in many locales, code and log snippets)
with planted values whose type and character span are known, plus *hard negatives* that
look like PII but are not: order numbers shaped like SSNs, UUIDs, timestamps, card
numbers failing Luhn, IBANs failing mod-97, version strings, hashes, ISBNs, bare
10-digit order ids, card fragments. Documentation keys (`AKIAIOSFODNN7EXAMPLE`) are
planted as `placeholder_secret`. A finding that overlaps no label is a false positive.

Phone numbers are Faker's own, as written (extensions included), in 12 locales, kept
when phonenumbers calls them valid for their region. Secrets are synthesised in each
provider's documented format with random bodies (no real credentials); other personal
data comes from Faker so formats vary by locale.

    .venv/bin/python bench/pii_corpus.py --samples 2000 > corpus.jsonl
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import phonenumbers
from faker import Faker
from stdnum import iban as stdnum_iban
from stdnum import luhn

LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_BR", "pl_PL",
           "sv_SE", "ja_JP", "zh_CN", "hi_IN"]  # fmt: skip
PHONE_REGIONS = {
    "en_US": "US", "en_CA": "CA", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR", "es_ES": "ES",
    "it_IT": "IT", "nl_NL": "NL", "pt_BR": "BR", "pl_PL": "PL", "sv_SE": "SE", "en_AU": "AU",
}  # fmt: skip
PHONE_LABELS = ["call me at ", "phone: ", "Phone ", "tel ", "Tel: ", "mobile ", "cell: ",
                "call ", "phone number: ", "Telefon: ", "mobile: "]  # fmt: skip
# Written so that it says "phone" without a label: international, or NANP with separators.
_SELF_EVIDENT_PHONE = re.compile(
    r"^(?:\+|00)|^(?:1 )?(?:\(\d{3}\) ?|\d{3}[.-])\d{3}[ .-]\d{4}(?: ?(?:x|ext\.?) ?\d+)?$"
)
ALNUM = string.ascii_letters + string.digits


@dataclass
class Sample:
    text: str = ""
    labels: list[tuple[str, int, int]] = field(default_factory=list)

    def add(self, piece: str) -> None:
        self.text += piece

    def plant(self, kind: str, value: str, before: str = "", after: str = " ") -> None:
        self.text += before
        self.labels.append((kind, len(self.text), len(self.text) + len(value)))
        self.text += value + after


class Corpus:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        Faker.seed(seed)
        self.fakers = {loc: Faker(loc) for loc in LOCALES}
        for f in self.fakers.values():
            f.seed_instance(self.rng.randrange(1 << 30))
        self.en = self.fakers["en_US"]
        self.phone_fakers = {loc: Faker(loc) for loc in PHONE_REGIONS}
        for f in self.phone_fakers.values():
            f.seed_instance(self.rng.randrange(1 << 30))

    def faker(self) -> Faker:
        return self.fakers[self.rng.choice(LOCALES)]

    def token(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    # --- planted values ------------------------------------------------------------------
    def card(self) -> str:
        number = self.en.credit_card_number(
            self.rng.choice(["visa16", "mastercard", "amex", "discover", "jcb16", "diners"])
        )
        style = self.rng.random()
        if len(number) == 15 and style < 0.5:
            return f"{number[:4]} {number[4:10]} {number[10:]}"
        if style < 0.4:
            return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        if style < 0.7:
            return "-".join(number[i : i + 4] for i in range(0, len(number), 4))
        return number

    def ssn(self) -> tuple[str, str]:
        value = self.en.ssn()
        style = self.rng.random()
        if style < 0.6:
            return value, self.rng.choice(["SSN ", "ssn: ", "social security number ", "", "SS# "])
        if style < 0.8:
            return value.replace("-", " "), self.rng.choice(["SSN ", "my ssn is ", ""])
        return value.replace("-", ""), self.rng.choice(["SSN: ", "social security number "])

    def iban(self) -> str:
        value = self.faker().iban()
        while not stdnum_iban.is_valid(value):  # Faker's en_GB IBANs are a digit short
            value = self.faker().iban()
        return stdnum_iban.format(value) if self.rng.random() < 0.5 else value

    def phone(self) -> tuple[str, str]:
        """(number, label): Faker's numbers as Faker writes them (extensions included),
        kept when phonenumbers calls them valid for their region.

        Four in five follow a label ("call me at", "tel", …); the others stand alone when
        their writing says phone by itself (international, or NANP with separators). An
        unlabelled national number (`030 901820`, `8029418004`) is not planted alone:
        sentinel does not guess a country, nor call ten bare digits a phone, without a label.
        """
        for _ in range(50):
            loc = self.rng.choice(list(PHONE_REGIONS))
            raw = self.phone_fakers[loc].phone_number()
            try:
                number = phonenumbers.parse(raw, PHONE_REGIONS[loc])
            except phonenumbers.NumberParseException:
                continue
            if not phonenumbers.is_valid_number(number):
                continue
            if self.rng.random() < 0.2 and _SELF_EVIDENT_PHONE.search(raw):
                return raw, ""
            return raw, self.rng.choice(PHONE_LABELS)
        return "+44 20 7946 0958", ""

    def jwt(self) -> str:
        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        header = part({"alg": self.rng.choice(["HS256", "RS256"]), "typ": "JWT"})
        issued = self.rng.randrange(1_600_000_000, 1_800_000_000)
        body = part({"sub": self.en.uuid4(), "iat": issued})
        return f"{header}.{body}.{self.token(43, ALNUM + '-_')}"

    def pem(self) -> str:
        kind = self.rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
        lines = [self.token(64, ALNUM + "+/") for _ in range(self.rng.randint(3, 8))]
        sep = "\\n" if self.rng.random() < 0.2 else "\n"
        return sep.join(
            [f"-----BEGIN {kind}PRIVATE KEY-----", *lines, f"-----END {kind}PRIVATE KEY-----"]
        )

    def secret(self, kind: str) -> tuple[str, str]:
        """(value, text before it) for one secret type."""
        t = self.token
        makers: dict[str, Callable[[], tuple[str, str]]] = {
            "aws_access_key": lambda: (self.rng.choice(["AKIA", "ASIA"])
                                       + t(16, string.ascii_uppercase + "234567"),
                                       self.rng.choice(["aws_access_key_id = ", "key ", "id: "])),
            "aws_secret_key": lambda: (t(40, ALNUM + "/+"), self.rng.choice(
                ["aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", "secret access key: ",
                 '"SecretAccessKey": "'])),
            "openai_key": lambda: (self.rng.choice(["sk-proj-", "sk-", "sk-svcacct-"])
                                   + t(self.rng.choice([48, 64, 120]), ALNUM + "_-"),
                                   self.rng.choice(["OPENAI_API_KEY=", "key ", "api key: "])),
            "anthropic_key": lambda: ("sk-ant-api03-" + t(93, ALNUM + "_-") + "AA",
                                      self.rng.choice(["ANTHROPIC_API_KEY=", "use ", ""])),
            "google_api_key": lambda: ("AIza" + t(35, ALNUM + "_-"),
                                       self.rng.choice(["key=", "GOOGLE_API_KEY: ", ""])),
            "stripe_key": lambda: (self.rng.choice(["sk_live_", "sk_test_", "rk_live_"])
                                   + t(self.rng.choice([24, 99]), ALNUM),
                                   self.rng.choice(["STRIPE_SECRET_KEY=", "stripe ", ""])),
            "slack_token": lambda: (self.rng.choice(["xoxb-", "xoxp-"]) + t(12, string.digits)
                                    + "-" + t(12, string.digits) + "-" + t(24, ALNUM),
                                    self.rng.choice(["SLACK_TOKEN=", "token ", ""])),
            "github_token": lambda: (self.rng.choice(["ghp_", "gho_", "ghs_"]) + t(36, ALNUM),
                                     self.rng.choice(["GITHUB_TOKEN=", "token: ", ""])),
            "jwt": lambda: (self.jwt(), self.rng.choice(["Authorization: Bearer ", "jwt=", ""])),
            "private_key": lambda: (self.pem(), "key:\n"),
            "database_url": lambda: (
                f"{self.rng.choice(['postgres', 'postgresql', 'mysql', 'mongodb+srv', 'redis'])}"
                f"://{self.en.user_name()}:{t(14, ALNUM + '-_.~')}@"
                f"{self.en.domain_name()}:{self.rng.choice([5432, 3306, 6379, 27017])}",
                self.rng.choice(["DATABASE_URL=", "connect to ", "url: "])),
            "generic_secret": lambda: (t(6, ALNUM) + self.rng.choice("!#%&*") + t(8, ALNUM),
                                       self.rng.choice(["password: ", "PASSWORD=", "api_key = ",
                                                        '"client_secret": "', "the password is "])),
        }  # fmt: skip
        return makers[kind]()

    def national_id(self) -> tuple[str, str]:
        choice = self.rng.random()
        if choice < 0.25:
            return self.fakers["nl_NL"].ssn(), self.rng.choice(["BSN ", "bsn: "])
        if choice < 0.5:
            return self.fakers["pt_BR"].cpf(), self.rng.choice(["CPF ", "cpf: ", ""])
        if choice < 0.75:
            return self.fakers["it_IT"].ssn(), self.rng.choice(["codice fiscale ", ""])
        # one in ten unlabelled: a bare 11-digit number is not reported without context
        return self.fakers["pl_PL"].pesel(), "PESEL: " if self.rng.random() < 0.9 else "ref "

    def passport(self) -> tuple[str, str]:
        if self.rng.random() < 0.5:
            value = self.en.passport_number()
        else:
            value = self.token(2, string.ascii_uppercase) + self.token(7, string.digits)
        return value, self.rng.choice(["passport number: ", "Passport No. ", "passport #"])

    def dob(self) -> tuple[str, str]:
        d = self.en.date_of_birth(minimum_age=18, maximum_age=90)
        value = self.rng.choice(
            [d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%m-%d-%Y"), d.strftime("%d %B %Y"),
             d.strftime("%B %d, %Y")]
        )  # fmt: skip
        return value, self.rng.choice(["DOB: ", "date of birth ", "Date of Birth: ", "born on "])

    # --- hard negatives --------------------------------------------------------------------
    def negative(self) -> str:
        r = self.rng
        hexd = "0123456789abcdef"

        def d(n: int) -> str:
            return self.token(n, string.digits)

        def v() -> int:
            return r.randint(0, 9)

        options: list[Callable[[], str]] = [
            lambda: f"order ORD-{d(3)}-{d(2)}-{d(4)}",
            lambda: f"request id {self.en.uuid4()}",
            lambda: f"ts={r.randrange(1_600_000_000_000, 1_800_000_000_000)}",
            lambda: f"at {self.en.iso8601()} and {r.randrange(1_600_000_000, 1_800_000_000)}",
            lambda: f"card on file {_bad_luhn(self.en.credit_card_number('visa16'))}",
            lambda: f"iban {_bad_iban(self.faker().iban())}",
            lambda: f"upgraded to v{v()}.{r.randint(0, 30)}.{r.randint(0, 99)}.{v()}",
            lambda: f"release {v()}.{v()}.{v()}.{v()}.{v()}",
            lambda: f"commit {self.token(40, hexd)}",
            lambda: f"sha256 {self.token(64, hexd)} md5 {self.token(32, hexd)}",
            lambda: "set password: ******** or PASSWORD=${DB_PASSWORD} or api_key=YOUR_API_KEY",
            lambda: "see logo@2x.png, npm i lodash@4.17.21, ssh git@github.com",
            lambda: f"meeting at {r.randint(0, 23):02d}:{r.randint(10, 59)}:{r.randint(10, 59)}",
            lambda: f"invoice {r.randrange(10**8, 10**9)} total {r.randrange(10**5, 10**7)}",
            lambda: f"tracking {self.token(2, 'ABCDEFGHJKLMNPRSTUVWXYZ')}{d(9)}US",
            lambda: f"ssn {r.choice(['000', '666', '900'])}-{d(2)}-{d(4)}",
            lambda: "std::vector<int> v; auto x = a::b::c;",
            lambda: f"localhost 127.0.0.1:{r.randint(1000, 9999)} bind 0.0.0.0",
            lambda: "postgres://user:password@localhost:5432/app",
            lambda: f"price {r.randint(1, 999)}.{r.randint(0, 99):02d} EUR, qty {r.randint(1, 99)}",
            lambda: f"order id {r.randrange(10**9, 10**10)} and ref {d(10)}",
            lambda: f"ISBN {_isbn13(r)} (ISBN-10 {d(1)}-{d(3)}-{d(5)}-{d(1)})",
            lambda: f"card ending in {d(4)} {d(4)}, expiry {r.randint(1, 12):02d}/{d(2)}",
            lambda: f"build {r.randint(2019, 2026)}.{r.randint(1, 12)}.{d(3)}.{d(4)}",
            lambda: f"logged {r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(10, 28)}"
                    f"T{r.randint(10, 23)}:{r.randint(10, 59)}:{r.randint(10, 59)}.{d(6)}Z",
        ]  # fmt: skip
        return r.choice(options)()

    # --- samples ---------------------------------------------------------------------------
    PII_KINDS = ("credit_card", "ssn", "iban", "email", "phone", "ipv4", "ipv6", "date_of_birth",
                 "passport", "national_id")  # fmt: skip
    PLACEHOLDERS = ("AKIAIOSFODNN7EXAMPLE", "sk-xxxxxxxxxxxxxxxxxxxxxxxx",
                    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "sk_test_4eC39HqLyjWDarjtT1zdp7dc")
    SECRET_KINDS = ("aws_access_key", "aws_secret_key", "openai_key", "anthropic_key",
                    "google_api_key", "stripe_key", "slack_token", "github_token", "jwt",
                    "private_key", "database_url", "generic_secret")  # fmt: skip

    def sample(self, pii_rate: float, negative_rate: float) -> Sample:
        s = Sample()
        fake = self.faker()
        parts = self.rng.randint(2, 8)
        for _ in range(parts):
            roll = self.rng.random()
            if roll < 0.6:
                s.add(fake.paragraph(nb_sentences=self.rng.randint(1, 4)) + " ")
            elif roll < 0.8:
                s.add(self.code_snippet() + "\n")
            else:
                s.add(fake.sentence() + "\n")
            if self.rng.random() < pii_rate / parts:
                self.plant(s)
            if self.rng.random() < negative_rate / parts:
                if self.rng.random() < 0.05:  # a documentation key: its own type
                    s.plant("placeholder_secret", self.rng.choice(self.PLACEHOLDERS),
                            "e.g. the example key ", ". ")
                else:
                    s.add(self.negative() + ". ")
        return s

    def code_snippet(self) -> str:
        r = self.rng
        return r.choice(
            [
                f"def f(x):\n    return x * {r.randint(2, 99)}  # TODO",
                f"SELECT id, name FROM users WHERE id = {r.randint(1, 10**6)} LIMIT 10;",
                f"ERROR 2024-0{r.randint(1, 9)}-1{r.randint(0, 9)} worker-{r.randint(1, 9)} "
                f"timeout after {r.randint(1, 999)}ms",
                "const cfg = { retries: 3, backoff: 'exp' };",
                f'{{"status": {r.choice([200, 404, 500])}, "items": [{r.randint(1, 99)}, 7]}}',
            ]
        )

    def plant(self, s: Sample) -> None:
        kind = self.rng.choice(self.PII_KINDS + self.SECRET_KINDS)
        before = self.rng.choice(["", "Please check ", "Customer: ", "value "])
        if kind == "credit_card":
            s.plant(kind, self.card(), before + self.rng.choice(["card ", "", "cc: "]))
        elif kind == "ssn":
            value, label = self.ssn()
            s.plant(kind, value, before + label)
        elif kind == "iban":
            s.plant(kind, self.iban(), before + self.rng.choice(["IBAN ", "account ", ""]))
        elif kind == "email":
            s.plant(kind, self.faker().email(), before + "email ")
        elif kind == "phone":
            value, label = self.phone()
            s.plant(kind, value, before + label)
        elif kind == "ipv4":
            s.plant(kind, self.en.ipv4_public(), before + "client ip ")
        elif kind == "ipv6":
            s.plant(kind, self.en.ipv6(), before + "from ")
        elif kind == "date_of_birth":
            value, label = self.dob()
            s.plant(kind, value, before + label)
        elif kind == "passport":
            value, label = self.passport()
            s.plant(kind, value, before + label)
        elif kind == "national_id":
            value, label = self.national_id()
            s.plant(kind, value, before + label)
        else:
            value, label = self.secret(kind)
            s.plant(kind, value, label, after='" ' if label.endswith('"') else " ")


def _isbn13(r: random.Random) -> str:
    body = "978" + "".join(str(r.randint(0, 9)) for _ in range(9))
    check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(body)) % 10) % 10
    return f"{body[:3]}-{body[3]}-{body[4:6]}-{body[6:12]}-{check}"


def _bad_luhn(number: str) -> str:
    last = int(number[-1])
    for d in range(10):
        candidate = number[:-1] + str((last + d + 1) % 10)
        if not luhn.is_valid(candidate):
            return candidate
    return number


def _bad_iban(value: str) -> str:
    check = int(value[2:4])
    return value[:2] + f"{(check + 1) % 97 or 2:02d}" + value[4:]


def generate(samples: int, seed: int = 7, pii_rate: float = 0.5,
             negative_rate: float = 0.5) -> list[Sample]:  # fmt: skip
    corpus = Corpus(seed)
    return [corpus.sample(pii_rate, negative_rate) for _ in range(samples)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for s in generate(args.samples, args.seed):
        line = json.dumps({"text": s.text, "labels": s.labels}, ensure_ascii=False)
        sys.stdout.write(line + "\n")


if __name__ == "__main__":
    main()
