"""The detector catalog: built-in detectors plus the user's `[[pii.detectors]]`, compiled.

A catalog is built once per configuration (the default one is cached) because it holds
compiled regexes and the combined prefilter pattern. User detectors are checked when the
catalog loads — a pattern RE2 cannot compile, one that matches the empty string, or an
unknown validator is a `ConfigError` carrying the config line — so a bad detector fails
`sentinel` at start-up (and `sentinel config check`), not halfway through an ingest.

Invariant: a user's pattern only ever runs in RE2, whose matching time is linear in the
text. Built-in patterns, written and tested here, also have a Python `re` form (the
reference semantics, cheapest for one short text); a user pattern such as `(a+)+b`
would backtrack exponentially there, so its "Python" form is an RE2 object with the
same interface (`Catalog.compiled`).

A detector's own regexes (its pattern for `re` and for RE2, its `before`/`after`
context) are compiled the first time a text needs them (`PerDetector`): a command
printing a few alert rows meets one or two detectors' candidates, and compiling all
~40 patterns twice cost more than masking the rows. What is compiled when the catalog
is built: the anchors (the prefilter and its RE2 `Set`, which every text meets) and
every user pattern, so a bad user detector still fails at start-up. A built-in pattern,
written and tested here, cannot fail to compile later.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import re2

from sentinel.config import Config, DetectorConfig, check_config
from sentinel.exceptions import ConfigError
from sentinel.pii import validators
from sentinel.pii.detectors import BUILTIN_DETECTORS, Detector

USER_PRIORITY = 85
"""User detectors outrank built-in personal data: the user asked for them specifically."""

_RE2_MEMORY = 64 << 20
"""Memory per compiled RE2 object. A `Set` whose DFA runs out of memory reports no match at
all rather than failing, so it gets far more than the anchors need (default 8 MiB)."""
_NAMED_GROUP = re.compile(r"\(\?P?<\w+>")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

T = TypeVar("T")
_UNBUILT: Any = object()


class PerDetector(Generic[T]):
    """One compiled object per detector, each built the first time it is asked for.

    Indexed and iterated like the tuple it stands for. Safe across threads without a
    lock: two threads asking at once may both build an item, and both build the same.
    """

    __slots__ = ("_build", "_items")

    def __init__(self, build: Callable[[int], T], count: int, now: Iterable[int] = ()) -> None:
        self._build = build
        self._items: list[Any] = [_UNBUILT] * count
        for index in now:
            self[index]

    def __getitem__(self, index: int) -> T:
        item = self._items[index]
        if item is _UNBUILT:
            item = self._items[index] = self._build(index)
        return item  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return (self[index] for index in range(len(self._items)))

    def built(self) -> int:
        """How many items have been built so far (for tests of the laziness)."""
        return sum(item is not _UNBUILT for item in self._items)


@dataclass(frozen=True)
class Catalog:
    """Detectors in a fixed order, with their compiled forms.

    `detectors[i]`, `compiled[i]` and `checks[i]` describe the same detector; the scanner
    refers to detectors by that index (the `PerDetector` fields compile on first use).
    Twins (`Detector.twin`) come last and are never searched: `anchor_of` covers the
    others only, and `twin_of[i]` names the twin that judges what detector `i`'s
    validator rejects (the same matches: no second search).
    """

    detectors: tuple[Detector, ...]
    compiled: PerDetector[re.Pattern[str] | re2._Regexp] = field(repr=False)
    """Each pattern for one text at a time: Python's `re`, or RE2 for a user's pattern."""
    checks: tuple[validators.Validator | None, ...] = field(repr=False)
    anchors: tuple[str, ...] = field(repr=False)
    """Each detector's prefilter pattern, named groups removed (RE2 needs unique names)."""
    befores: PerDetector[re.Pattern[str] | None] = field(repr=False)
    afters: PerDetector[re.Pattern[str] | None] = field(repr=False)
    prefilter: str = field(repr=False)
    """One RE2 alternation of every anchor, for the first pass over the whole column."""
    anchor_set: re2.Set = field(repr=False)
    """The distinct anchors as an RE2 `Set`: which of them occur in one text."""
    anchor_count: int = field(repr=False)
    anchor_of: tuple[int, ...] = field(repr=False)
    """Each searched (non-twin) detector's anchor, as an index into `anchor_set`."""
    engines: PerDetector[re2._Regexp] = field(repr=False)
    """Each pattern compiled by RE2 for bytes, the column-wide extraction."""
    value_groups: PerDetector[int] = field(repr=False)
    """The number of each pattern's group `v`, 0 when it has none."""
    twin_of: tuple[int, ...] = field(repr=False, default=())
    """For each detector, the index of its twin, or -1."""

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(d.name for d in self.detectors))

    def detector_for(self, type_name: str) -> Detector | None:
        return next((d for d in self.detectors if d.name == type_name), None)


def build_catalog(detectors: tuple[Detector, ...]) -> Catalog:
    """Compile `detectors` (assumed valid) into a catalog; twins are moved to the end."""
    detectors = tuple(d for d in detectors if not d.twin) + tuple(d for d in detectors if d.twin)
    searched = sum(not d.twin for d in detectors)
    twin_of = tuple(
        next(
            (j for j in range(searched, len(detectors)) if detectors[j].pattern == d.pattern),
            -1,
        )
        if i < searched
        else -1
        for i, d in enumerate(detectors)
    )
    count, users = len(detectors), [i for i, d in enumerate(detectors) if d.re2_only]
    compiled = PerDetector(lambda i: _reference(detectors[i]), count, users)
    checks = tuple(validators.resolve(d.validator) if d.validator else None for d in detectors)
    anchors = tuple(_NAMED_GROUP.sub("(?:", d.anchor or d.pattern) for d in detectors)
    befores = PerDetector(lambda i: _context(detectors[i].before), count)
    afters = PerDetector(lambda i: _context(detectors[i].after), count)
    distinct = list(dict.fromkeys(anchors[:searched]))
    prefilter = "|".join(f"(?:{a})" for a in distinct)
    anchor_set = re2.Set.SearchSet(_re2_options())
    for anchor in distinct:
        anchor_set.Add(anchor.encode())
    anchor_set.Compile()
    engines = PerDetector(
        lambda i: re2.compile(detectors[i].pattern.encode(), _re2_options()), count, users
    )
    value_groups = PerDetector(lambda i: int(compiled[i].groupindex.get("v", 0)), count)
    return Catalog(
        detectors, compiled, checks, anchors, befores, afters, prefilter, anchor_set,
        len(distinct), tuple(distinct.index(a) for a in anchors[:searched]), engines,
        value_groups, twin_of,
    )  # fmt: skip


def _reference(detector: Detector) -> re.Pattern[str] | re2._Regexp:
    """The pattern that locates matches in one text (see the module docstring)."""
    if detector.re2_only:
        return re2.compile(detector.pattern, _re2_options())
    return re.compile(detector.pattern, re.ASCII)


def _context(guard: str) -> re.Pattern[str] | None:
    return re.compile(guard, re.ASCII) if guard else None


def _re2_options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _RE2_MEMORY
    options.log_errors = False  # a bad user pattern is a ConfigError, not a C++ log on stderr
    return options


@functools.cache
def default_catalog() -> Catalog:
    """The built-in detectors only (what `mask_text` uses when given no catalog)."""
    return build_catalog(BUILTIN_DETECTORS)


def load_catalog(config: Config) -> Catalog:
    """The built-in detectors plus the user's, each user detector checked first."""
    if not config.pii.detectors:
        return default_catalog()
    return _load_cached(config.path, config.pii.detectors)


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path | None, entries: tuple[DetectorConfig, ...]) -> Catalog:
    config = Config(path=path)  # for `where()` only
    user = tuple(_user_detector(config.where(e.line), e) for e in entries)
    return build_catalog(BUILTIN_DETECTORS + user)


def _user_detector(where: str, entry: DetectorConfig) -> Detector:
    name, pattern, validator = entry.name, entry.pattern, entry.validator
    if not _TYPE_NAME.match(name):
        raise ConfigError(f"{where}: detector {name!r}: name must be lower_snake_case")
    try:
        compiled = re2.compile(pattern, _re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ConfigError(
            f"{where}: detector {name!r}: bad regex for RE2, which runs every custom pattern "
            f"(no look-around or back-references): {reason}"
        ) from exc
    if compiled.search("") is not None:
        raise ConfigError(f"{where}: detector {name!r}: pattern matches the empty string")
    if validator is not None and validators.resolve(validator) is None:
        known = [*validators.BUILTIN, "stdnum.<module>"]
        close = difflib.get_close_matches(validator, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: detector {name!r}: unknown validator {validator!r}{hint}; "
            f"known: {', '.join(known)}"
        )
    return Detector(
        name=name,
        pattern=pattern,
        validator=validator,
        severity=entry.severity,
        kind="pii",
        priority=USER_PRIORITY,
        re2_only=True,
    )


def check_detectors(config: Config) -> list[ConfigError]:
    """Every problem of the user's detectors (all of them, not only the first)."""
    problems = []
    for entry in config.pii.detectors:
        try:
            _user_detector(config.where(entry.line), entry)
        except ConfigError as exc:
            problems.append(exc)
    if not problems and config.pii.detectors:
        try:
            _load_cached(config.path, config.pii.detectors)
        except ConfigError as exc:
            problems.append(exc)
    return problems


def check_config_file(path: Path) -> list[ConfigError]:
    """Every problem of a `sentinel.toml`, in file order: keys and types, then detectors."""
    config, problems = check_config(path)
    problems = problems + check_detectors(config)
    return sorted(problems, key=_line_of)


def _line_of(problem: ConfigError) -> int:
    if problem.location is not None and problem.location.line:
        return problem.location.line
    found = re.match(r"[^\n]*?:(\d+): ", problem.message)  # "path:line: …" messages
    return int(found[1]) if found else 0


# --- normalisation and digests --------------------------------------------------------------


def normalise(detector: Detector, value: str) -> str:
    """The canonical form of a value, so `4111 1111…` and `4111-1111…` hunt alike."""
    how = detector.normaliser
    if how == "digits":
        return re.sub(r"\D", "", value)
    if how == "lower":
        return value.strip().lower()
    if how == "compact":
        return re.sub(r"[\s./-]", "", value).upper()
    if how == "ip":
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            return value.strip().lower()
    if how == "phone":
        return _phone_e164(value)
    if how == "pem":
        return re.sub(r"\\[nr]|\s", "", value)
    if how == "exact":
        return value
    return value.strip()


def _phone_e164(value: str) -> str:
    import phonenumbers  # here, not at import: only a phone's digest needs it

    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else "US")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return "+" + re.sub(r"\D", "", text)


def digest(key: bytes, normalised: str) -> str:
    """HMAC-SHA256 (hex) of a normalised value under the workspace key."""
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()
