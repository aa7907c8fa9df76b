"""The workspace: one directory holding config, lake, case store and quarantine.

Layout (created owner-only, 0700 directories and 0600 files, because it holds
customer data and the key that makes PII digests unguessable):

    sentinel.toml   config           lake/events/source=<s>/date=<d>/<batch>.parquet
    state.db        SQLite case store  lake/.staging/   Parquet files not yet committed
    secret.key      HMAC key           quarantine/      rejected records, JSON lines
    demo-logs/      `sentinel demo`    logs/            sentinel's own log
    state/baselines/  baseline models (derived, rebuildable)   state/tmp/  scan spill files
    state/correlations/  correlations' open bursts (derived, rebuildable)

Processes that must not overlap on one workspace (two ingests, two scans, two daemons)
serialise on a `LockFile`: an exclusive `flock`, released by the kernel if the holder
dies, so a crash never leaves a stale lock behind. `workspace_lock(ws, name)` holds
`lake/.<name>.lock` for a block; the watcher holds `daemon.lock` for its life.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sentinel.config import Config, load_config
from sentinel.exceptions import WorkspaceError

CONFIG_NAME = "sentinel.toml"

CONFIG_TEMPLATE = """\
# sentinel.toml: configuration of this sentinel workspace.
# Every key is optional; the values shown commented out are the defaults.
# Unknown keys are rejected, so a typo never silently turns a setting off.

[ingest]
# A JSON line longer than this is quarantined instead of parsed (bytes).
# max_line_bytes = 8388608
# Bytes of a source file normalised and committed as one exactly-once batch. Larger
# is faster and uses more memory: 64 MiB peaks near 1.1 GB on a big file, 96 MiB
# near 1.5 GB for ~10% more speed (bench/README.md).
# batch_bytes = 67108864
# Largest single-document file (pretty-printed JSON, JSON array, CloudTrail envelope).
# max_document_bytes = 536870912
# A .gz file is read up to this many times its compressed size (and at least 64 MiB):
# the rest of a gzip bomb is quarantined with the reason.
# max_gzip_ratio = 200

[privacy]
# What the lake keeps of prompt and response text:
#   "full"   text as logged (best for investigation; the lake is a copy of the leak,
#            so protect this directory like the gateway's own logs)
#   "masked" text with every finding replaced by a [TYPE] placeholder
#   "none"   no text at all: only metadata, finding types, positions and digests
# The quarantine/ folder follows the same mode for the rejected lines it keeps.
# store_text = "full"
# Who did it and from where (actor_*, client_ip, user_agent, resource, endpoint) is
# shown in clear by `sql`, `hunt` and the TUI: it is what an investigator needs to
# answer "who, from where", not leaked content. Set true to mask it too (hints with a
# keyed tag, so different people still group apart), e.g. where analysts must not
# see employee identities.
# mask_identities = false

[pii]
# Scan prompts and responses for PII and secrets at ingest.
# scan = true
# Processes that share a batch's PII candidates when they are many (this one plus
# workers); 0 = one per core.
# processes = 0

# Your own detectors: name, regex, optional validator (luhn, iban, ssn, …), severity.
# [[pii.detectors]]
# name = "employee_id"
# pattern = "EMP-[0-9]{6}"
# severity = "medium"

# Files `sentinel watch` tails: a file, a directory (recursive) or a glob. `source` is
# optional: formats are recognised from content. See the README's watcher section.
# [[watch]]
# path = "/var/log/litellm/*.jsonl"
# source = "litellm"
# exclude = ["*.tmp"]
# start_at = "beginning"      # or "end" for files present when the daemon first starts
# poll = false                # true on NFS/SMB

# [daemon]
# batch_bytes = 16777216      # a batch is closed at this many bytes...
# batch_seconds = 1.0         # ...or when its oldest line has waited this long
# idle_timeout = 5.0          # an idle file's unterminated last line is then read
# rescan_interval = 30.0      # full rescan under the file events
# max_open_files = 512
# duckdb_memory_mb = 256      # memory_limit of each of the daemon's DuckDB connections
# duckdb_threads = 0          # its ingest and per-event scans (0: one per core)

# [scan]
# memory_limit = "1GB"        # DuckDB's limit in a scan; beyond it, it spills to state/tmp
# threads = 0                 # DuckDB threads in a scan; 0: one per core

[incidents]
# Alerts of one rule and group key this close (event time) to an open incident join it.
# dedup_window = "24h"
# A directory of your own playbooks (relative to the workspace), beside the shipped ones.
# playbooks = "playbooks"

# Where a playbook's `notify` step posts (format "json" or "slack"; timeout in seconds).
# [incidents.webhooks.oncall]
# url = "https://hooks.slack.com/services/…"
# format = "slack"
# timeout = 5.0
# retries = 2

# A generic JSON-lines gateway log (Portkey, Helicone, in-house): column = JSON path.
# [sources.portkey]
# match = "$.portkey_request_id"      # a path whose presence recognises the format
# [sources.portkey.fields]
# ts = "$.created_at"
# event_id = "$.id"
# actor_user = "$.user"
# model = "$.model"
# prompt_text = "$.request.messages[*].content"
# response_text = "$.response.choices[*].message.content"
# [sources.portkey.logsource]           # what Sigma rules call it (this is the default)
# product = "ai_gateway"
# service = "portkey"
"""


@dataclass(frozen=True)
class Workspace:
    root: Path
    _config_cache: dict[str, tuple[Any, Config]] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Workspace:
        """An existing workspace; a clear error with the fix when there is none."""
        root = Path(path).expanduser().resolve()
        if not (root / CONFIG_NAME).is_file() or not (root / "secret.key").is_file():
            raise WorkspaceError(
                f"no sentinel workspace at {root}; create one with `sentinel init {path}`"
            )
        return cls(root)

    @classmethod
    def init(cls, path: str | os.PathLike[str], notes: list[str] | None = None) -> Workspace:
        """Create (or complete) a workspace; never overwrites an existing config or key.

        A new directory is created owner-only. An existing one is used only when it is
        empty or already a workspace, and its mode is never changed without a word: an
        empty directory is restricted to its owner with a note appended to `notes`; a
        workspace readable by others gets a note with the `chmod` to run.
        """
        root = Path(path).expanduser().resolve()
        try:
            _prepare_root(root, notes if notes is not None else [])
            ws = cls(root)
            for directory in (
                root / "lake", ws.lake_dir, ws.staging_dir, ws.quarantine_dir, ws.logs_dir
            ):
                directory.mkdir(mode=0o700, exist_ok=True)
            _write_new(root / CONFIG_NAME, CONFIG_TEMPLATE.encode())
            _write_new(root / "secret.key", secrets.token_hex(32).encode() + b"\n")
        except OSError as exc:
            raise WorkspaceError(f"cannot create workspace at {root}: {exc}") from exc
        from sentinel.store.db import open_db  # the store needs the directory first

        open_db(ws.state_db).close()
        os.chmod(ws.state_db, 0o600)
        return ws

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def config(self) -> Config:
        """`sentinel.toml` as it is now: re-read when the file has changed.

        Raises ConfigError when it is invalid. A long-lived process reads its config
        through `sentinel.runtime.Runtime.config`, which keeps the last valid one instead.
        """
        try:
            st = os.stat(self.config_path)
            stamp: tuple[int, ...] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        cached = self._config_cache.get("config")
        if cached is not None and cached[0] == stamp:
            return cached[1]
        config = load_config(self.config_path)
        self._config_cache["config"] = (stamp, config)
        return config

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake" / "events"

    @property
    def staging_dir(self) -> Path:
        return self.root / "lake" / ".staging"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def demo_dir(self) -> Path:
        return self.root / "demo-logs"

    @property
    def state_db(self) -> Path:
        return self.root / "state.db"

    def owns(self, path: str | os.PathLike[str]) -> bool:
        """Whether `path` is the workspace's own data, which nothing may read as input or
        overwrite as output: the lake (staging included), quarantine, logs, the config,
        the key and `state.db` with its WAL files. Symlinks are resolved first."""
        target = Path(path).expanduser().resolve()
        if any(target.is_relative_to(d) for d in self._own_dirs()):
            return True
        if target in (self.config_path.resolve(), (self.root / "secret.key").resolve()):
            return True
        return target.parent == self.root and target.name.startswith("state.db")

    def _own_dirs(self) -> tuple[Path, ...]:
        return tuple(d.resolve() for d in (
            self.root / "lake", self.root / "state", self.quarantine_dir, self.logs_dir))

    def secret_key(self) -> bytes:
        """The per-workspace HMAC key for PII digests."""
        try:
            return bytes.fromhex((self.root / "secret.key").read_text().strip())
        except (OSError, ValueError) as exc:
            raise WorkspaceError(f"cannot read {self.root / 'secret.key'}: {exc}") from exc


class LockFile:
    """An exclusive `flock` on one file: the one lock implementation of sentinel.

    The kernel releases it when the holder dies, however it dies, so a crash never leaves
    a stale lock behind; the holder's pid may be written inside, only for messages. The
    descriptor is close-on-exec: a child process (a PII worker) never inherits the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, wait: bool = True) -> bool:
        """Take the lock (waiting for a holder, or with `wait=False` returning False)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return True

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def write_holder(self) -> None:
        """Write this process's pid into the held lock file (for `holder`)."""
        assert self.fd is not None, "write_holder needs the lock held"
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def holder(self) -> int | None:
        """The pid of the process holding the lock, -1 if it wrote none, None if free.

        A probe with a shared lock, never blocking and never creating the file."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_pid(fd) or -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or 0) or None
    except (OSError, ValueError):
        return None


@contextmanager
def workspace_lock(ws: Workspace, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the workspace's `name` lock (e.g. "ingest", "scan"), a `LockFile` in `lake/`.

    Waits for another holder; with `wait=False` yields False at once instead (and holds
    nothing), True when it got the lock."""
    if not name.isidentifier():
        raise ValueError(f"lock name {name!r} is not a plain word")
    lock = LockFile(ws.root / "lake" / f".{name}.lock")
    if not lock.acquire(wait):
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


_WORKSPACE_MARKERS = (CONFIG_NAME, "secret.key", "state.db")


def _prepare_root(root: Path, notes: list[str]) -> None:
    """Create `root`, or check that an existing `root` may become (or is) a workspace."""
    if not root.exists():
        root.mkdir(mode=0o700, parents=True)
        os.chmod(root, 0o700)  # mkdir's mode is filtered by the umask
        return
    if not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a directory; choose another path")
    mode = stat.S_IMODE(root.stat().st_mode)
    if any((root / marker).exists() for marker in _WORKSPACE_MARKERS):
        if mode & 0o077:
            notes.append(
                f"{root} is accessible to other users (mode {mode:04o}); it holds customer "
                f"data: consider `chmod 700 {root}`"
            )
        return
    if any(root.iterdir()):
        raise WorkspaceError(
            f"{root} is not empty and is not a sentinel workspace; sentinel init refuses to "
            f"mix a workspace into it: give a new or empty directory, e.g. "
            f"`sentinel init {root / 'sentinel-data'}`"
        )
    if mode & 0o077:
        os.chmod(root, 0o700)
        notes.append(f"{root}: mode changed from {mode:04o} to 0700 (owner only)")


def _write_new(path: Path, content: bytes) -> None:
    """Create `path` with mode 0600 unless it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
