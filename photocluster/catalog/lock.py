"""The catalog's write lock: one photocluster writer at a time per catalog, between threads (an
RLock) and between processes or clients. SQLite: an exclusive lock on ``<catalog>-lock`` (the OS
drops it when the process dies; the file names the holder). PostgreSQL: an advisory lock per
catalog schema on a connection of its own (its ``application_name`` names the holder).

:mod:`photocluster.catalog.db` gives each open catalog one :class:`WriteLock` and holds it from a
writer's first read to its session's commit (``db.hold_write_lock``).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from photocluster.errors import CatalogError

# A writer that waits longer than this for the write lock says whom it waits for.
_QUIET_WAIT = 1.0
# PostgreSQL advisory lock (key, hashtext(schema)): one writer per catalog schema.
_PG_WRITE_LOCK = 1346594627

# Told who holds the write lock when a writer has to wait for it (e.g. "`photocluster cluster
# --full` (pid 4242)"); the CLI prints it.
WaitReporter = Callable[[str], None]


def _holder_text(what: str) -> str:
    return f"`photocluster {what}` (pid {os.getpid()})"


class _Held(Protocol):
    """How one catalog is locked against other processes (or clients of a server)."""

    def try_lock(self, what: str) -> bool: ...

    def holder(self) -> str: ...  # who holds it, after a failed try_lock

    def wait_lock(self, what: str) -> None: ...  # after a failed try_lock; Ctrl-C stops it

    def unlock(self) -> None: ...

    def discard(self) -> None: ...  # after an interrupted wait: let go of what is not locked


class WriteLock:
    """The write lock of one open catalog: re-entrant within a thread, exclusive between threads
    (an RLock) and between processes (``held``: a file lock, or a server's advisory lock)."""

    def __init__(self, held: _Held | None) -> None:
        self.held = held  # None: an in-memory catalog, one process
        self._thread = threading.RLock()
        self._depth = 0
        self._what = ""

    def acquire(self, what: str, on_wait: WaitReporter | None) -> None:
        if not self._thread.acquire(timeout=_QUIET_WAIT):
            if on_wait is not None:
                on_wait(_holder_text(self._what or "(another thread)"))
            self._thread.acquire()
        try:
            if self._depth == 0:
                if self.held is not None and not self._try_for_a_moment(what):
                    if on_wait is not None:
                        on_wait(self.held.holder())
                    self.held.wait_lock(what)
                self._what = what
            self._depth += 1
        except BaseException:
            if self._depth == 0 and self.held is not None:
                self.held.discard()
            self._thread.release()
            raise

    def _try_for_a_moment(self, what: str) -> bool:
        assert self.held is not None
        deadline = time.monotonic() + _QUIET_WAIT
        while not self.held.try_lock(what):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def release(self) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self.held is not None:
                self.held.unlock()
        finally:
            self._thread.release()


class FileLock:
    """An exclusive lock on ``<catalog>-lock`` (the OS drops it when the process dies); the file
    holds the holder's description for whoever waits."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._locked = False

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise CatalogError(
                    f"Cannot create the catalog's lock file {self.path}: {exc.strerror}. The "
                    "catalog's folder must be writable to change the catalog."
                ) from exc
        return self._fd

    def try_lock(self, what: str) -> bool:
        fd = self._open()
        if not _try_lock_fd(fd):
            return False
        self._mark(fd, what)
        return True

    def holder(self) -> str:
        text = os.pread(self._open(), 512, 0).decode("utf-8", "replace").strip()
        return text or "another photocluster process"

    def wait_lock(self, what: str) -> None:
        fd = self._open()
        _wait_lock_fd(fd)
        self._mark(fd, what)

    def _mark(self, fd: int, what: str) -> None:
        self._locked = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_text(what).encode(), 0)

    def unlock(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if self._locked:
                os.ftruncate(fd, 0)
                _unlock_fd(fd)  # before closing: a forked worker may share the open file
        finally:
            self._locked = False
            os.close(fd)

    def discard(self) -> None:
        self.unlock()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    # Windows locks are mandatory: lock one byte far past the holder text so it stays readable.
    _LOCK_OFFSET = 1 << 20

    def _try_lock_fd(fd: int) -> bool:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _wait_lock_fd(fd: int) -> None:
        while not _try_lock_fd(fd):
            time.sleep(0.2)

    def _unlock_fd(fd: int) -> None:
        os.lseek(fd, _LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock_fd(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _wait_lock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class ServerLock:
    """A PostgreSQL advisory lock per catalog schema, held by a connection of its own (the
    server drops it when the client dies); its ``application_name`` says who holds it."""

    _KEY = "(:k, hashtext(current_schema()))"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _mark(self, what: str) -> None:
        name = f"{_holder_text(what)} on {socket.gethostname()}"[:63]
        self._connection().execute(
            text("SELECT set_config('application_name', :n, false)"), {"n": name}
        )

    def try_lock(self, what: str) -> bool:
        got = self._connection().scalar(
            text(f"SELECT pg_try_advisory_lock{self._KEY}"), {"k": _PG_WRITE_LOCK}
        )
        if got:
            self._mark(what)
        return bool(got)

    def holder(self) -> str:
        row = (
            self._connection()
            .execute(
                text(
                    "SELECT a.application_name, a.pid FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
                    "AND l.classid = CAST(:k AS oid) "
                    "AND l.objid = CAST(hashtext(current_schema()) AS oid)"
                ),
                {"k": _PG_WRITE_LOCK},
            )
            .first()
        )
        if row is None:
            return "another photocluster client"
        return str(row[0]) if row[0] else f"another client (server pid {row[1]})"

    def wait_lock(self, what: str) -> None:
        self._connection().execute(
            text(f"SELECT pg_advisory_lock{self._KEY}"), {"k": _PG_WRITE_LOCK}
        )
        self._mark(what)

    def unlock(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            # Never back to the pool: the lock and the name go with the connection.
            conn.invalidate()
        finally:
            conn.close()

    def discard(self) -> None:
        self.unlock()
