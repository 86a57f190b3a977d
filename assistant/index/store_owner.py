"""One process owns an embedded store directory at a time; the others find it and defer.

Chroma's embedded store keeps its vector index in the memory of the process that opened it:
a second process that writes to the same directory leaves the first one's index behind
("Error finding id"), and two writers can lose each other's work. So a process opens an
embedded store only while it holds `newsdesk.lock` in the store directory (an `flock`, which
the kernel drops when the process dies, however it dies). The owner describes itself in
`newsdesk-owner.json` beside it: a running server names its URL and a token there, and
`newsdesk-ingest` sends its articles to that server instead of opening the store itself.

The lock is per process and counted: every `NewsStore` of one process on one directory
shares it (Chroma shares one client per directory inside a process, so they agree).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

from assistant.errors import StoreBusyError, StoreError

LOCK_FILE = "newsdesk.lock"
OWNER_FILE = "newsdesk-owner.json"
Role = Literal["server", "ingest"]
# Where a server that owns a store directory takes articles from `newsdesk-ingest`.
LOCAL_INGEST_ROUTE = "/_local/ingest"
# Where `newsdesk-ingest --delete` removes an article from the store the server owns.
LOCAL_DELETE_ROUTE = "/_local/delete"


@dataclass(frozen=True)
class Owner:
    """The process that holds a store directory."""

    pid: int
    role: Role
    since: float
    url: str = ""  # where a server takes articles (role "server", once it listens)
    token: str = ""  # the bearer token of that server's local ingest route

    def describe(self) -> str:
        if self.role == "server":
            where = f" at {self.url}" if self.url else ""
            return f"a newsdesk server (pid {self.pid}){where}"
        return f"newsdesk-ingest (pid {self.pid})"


class StoreLock:
    """This process's hold on one store directory (shared by its stores, counted)."""

    def __init__(self, directory: Path, fd: int, owner: Owner) -> None:
        self.directory = directory
        self.owner = owner
        self._fd = fd
        self._holders = 0

    @property
    def token(self) -> str:
        return self.owner.token

    def publish(self, url: str) -> None:
        """Announce that this process serves the store at `url` (it takes articles there)."""
        self.owner = replace(self.owner, role="server", url=url)
        _write_owner(self.directory, self.owner)

    def release(self) -> None:
        """Drop one holder; the last one unlocks the directory."""
        with _registry_lock:
            self._holders -= 1
            if self._holders > 0:
                return
            _held.pop(self.directory, None)
            with contextlib.suppress(OSError):
                (self.directory / OWNER_FILE).unlink()
            os.close(self._fd)


_registry_lock = threading.Lock()
_held: dict[Path, StoreLock] = {}


def acquire(directory: Path, role: Role = "ingest", wait: bool = False,
            on_wait: Callable[[Owner | None], None] | None = None,
            poll_s: float = 0.25) -> StoreLock:
    """Hold `directory` for this process (creating it), or raise `StoreBusyError` naming the
    process that holds it. With `wait`, wait for an ingest that holds it to finish (calling
    `on_wait` once); a server that holds it is never waited for."""
    directory = directory.resolve()
    with _registry_lock:
        held = _held.get(directory)
        if held is not None:
            held._holders += 1
            return held
    fd = _open_lock_file(directory)
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = read_owner(directory)
                if not wait or (owner is not None and owner.role == "server"):
                    raise StoreBusyError(_busy_message(directory, owner)) from None
                if on_wait and not told:
                    on_wait(owner)
                    told = True
                time.sleep(poll_s)
    except BaseException:
        os.close(fd)
        raise
    owner = Owner(pid=os.getpid(), role=role, since=time.time(), token=secrets.token_urlsafe(32))
    _write_owner(directory, owner)
    lock = StoreLock(directory, fd, owner)
    with _registry_lock:
        lock._holders = 1
        _held[directory] = lock
    return lock


def current_owner(directory: Path) -> Owner | None:
    """The process that holds `directory` now (this one included), or None when it is free."""
    directory = directory.resolve()
    with _registry_lock:
        if directory in _held:
            return _held[directory].owner
    path = directory / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody has opened the store here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_owner(directory) or Owner(pid=0, role="ingest", since=0.0)
    finally:
        os.close(fd)  # also drops the shared lock taken to look
    return None


def read_owner(directory: Path) -> Owner | None:
    """What the owner wrote about itself (None when unreadable or not yet written)."""
    try:
        data = json.loads((directory / OWNER_FILE).read_text(encoding="utf-8"))
        return Owner(**data)
    except (OSError, ValueError, TypeError):
        return None


def _open_lock_file(directory: Path) -> int:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise StoreError(f"cannot open the store directory {directory}: it is read-only "
                             "(NEWSDESK_DATA_DIR must be writable)", "read_only") from exc
        if exc.errno == errno.ENOSPC:
            raise StoreError(f"cannot open the store directory {directory}: the disk is full "
                             "(free space and try again)", "disk_full") from exc
        raise StoreError(f"cannot open the store directory {directory}: "
                         f"{exc.strerror or exc}") from exc


def _write_owner(directory: Path, owner: Owner) -> None:
    """Replace the owner file atomically (readers never see half of it); best effort."""
    path = directory / OWNER_FILE
    temp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(asdict(owner), out)
        os.replace(temp, path)
    except OSError:
        # A full disk must not stop a server from starting: the ingest CLI then waits or
        # reports the store as busy instead of finding the server's URL.
        with contextlib.suppress(OSError):
            temp.unlink()


def _busy_message(directory: Path, owner: Owner | None) -> str:
    who = owner.describe() if owner else "another process"
    if owner is not None and owner.role == "server":
        return (f"the store directory {directory} is served by {who}: one server per data "
                "directory. Stop that server, or give this one its own NEWSDESK_DATA_DIR (or "
                "share a Chroma server through CHROMA_HOST).")
    return (f"the store directory {directory} is in use by {who}; wait for it to finish, or "
            "use another NEWSDESK_DATA_DIR.")
