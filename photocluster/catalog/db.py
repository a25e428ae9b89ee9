"""Open a catalog (SQLite file or SQLAlchemy URL), bring its schema up to date, hand out sessions.

Whoever starts a unit of work owns the session (``with catalog.session() as s``); query helpers
elsewhere take a session and never commit. A unit of work that changes the catalog first takes
the catalog's write lock (:func:`hold_write_lock`), held until its session commits or rolls
back: photocluster writers run one at a time, readers never wait. SQLite: an exclusive lock on
``<catalog>-lock`` (the OS drops it when the process dies) plus ``BEGIN IMMEDIATE``;
PostgreSQL: an advisory lock per catalog schema, on a connection of its own (both in
:mod:`photocluster.catalog.lock`).

A catalog that is damaged, not a database, read-only (for a writer), in a folder that does
not exist, or (for a caller that never starts one: ``create=False``) missing, is refused when it
is opened, with a :class:`CatalogError` that says what to do; the same SQLite errors met later
(damage found mid-run) become a ``CatalogError`` too.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from photocluster.catalog.lock import FileLock, ServerLock, WaitReporter, WriteLock
from photocluster.catalog.sqlite_file import (
    SQLITE_BUSY_TIMEOUT_MS,
    check_sqlite_file,
    damaged,
    newest_revision,
    no_catalog,
    no_folder,
    not_a_catalog,
    to_url,
)
from photocluster.errors import CatalogError

# Values per IN (...) clause: stays far below every database's parameter limit.
IN_LIST_CHUNK = 500
T = TypeVar("T")


def in_chunks(values: Sequence[T]) -> Iterator[list[T]]:
    """``values`` in lists of at most :data:`IN_LIST_CHUNK`, one per ``IN (...)`` clause."""
    for i in range(0, len(values), IN_LIST_CHUNK):
        yield list(values[i : i + IN_LIST_CHUNK])


def _to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode=WAL``, tried again for up to the busy timeout while the file is
    locked: switching a brand-new file to WAL needs it to itself, and SQLite answers "database
    is locked" at once, without waiting, while another process is creating the same catalog
    (2 of 120 concurrent first opens failed so before)."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    _to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _describe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def hold_write_lock(session: Session, what: str) -> None:
    """Hold the catalog's write lock until ``session``'s transaction ends (commit or rollback).

    Call it first in a unit of work that changes the catalog, before the reads its changes are
    based on: the writer then sees every change committed before it and nobody else's until it
    commits. ``what`` names the work for whoever waits (``"assign"``, ``"cluster --full"``).
    Sessions not from a :class:`Catalog` are left alone.
    """
    catalog = session.info.get("catalog")
    if not isinstance(catalog, Catalog) or session.info.get("write_lock"):
        return
    catalog._lock.acquire(what, catalog.on_wait)
    session.info["write_lock"] = True
    if not catalog.is_sqlite:
        return
    try:
        connection = session.connection()
        dbapi = connection.connection.dbapi_connection
        if dbapi is not None and not dbapi.in_transaction:
            # Also SQLite's own write lock, so that no other program writes between our reads
            # and our writes.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    except BaseException:
        session.info.pop("write_lock", None)
        catalog._lock.release()
        raise


def _end_of_transaction(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or not session.info.pop("write_lock", False):
        return
    catalog = session.info.get("catalog")
    if isinstance(catalog, Catalog):
        catalog._lock.release()


@dataclass
class Catalog:
    """An open catalog: the engine and a session factory."""

    url: str
    engine: Engine
    _factory: sessionmaker[Session]
    on_wait: WaitReporter | None = None
    created: bool = False  # this open made a new SQLite file
    path: Path | None = None  # the SQLite file
    _lock: WriteLock = field(default_factory=lambda: WriteLock(None), repr=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any exception."""
        with self._factory() as session:
            session.info["catalog"] = self
            event.listen(session, "after_transaction_end", _end_of_transaction)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def write_session(self, what: str) -> Iterator[Session]:
        """A :meth:`session` that holds the write lock (:func:`hold_write_lock`) throughout."""
        with self.session() as session:
            hold_write_lock(session, what)
            yield session

    @contextmanager
    def write_lock(self, what: str) -> Iterator[None]:
        """Hold the write lock across several sessions (each still takes it, without waiting).

        For a caller that must wait for the lock at a point where Ctrl-C can stop the wait,
        then write where Ctrl-C is held back until the commit.
        """
        self._lock.acquire(what, self.on_wait)
        try:
            yield
        finally:
            self._lock.release()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


# --- damaged, foreign, read-only and missing catalogs -------------------------------------------


def _read_only(path: Path | str, why: str, *, writer: bool = False) -> CatalogError:
    if writer:
        return CatalogError(
            f"The catalog {path} is read-only ({why}), and this command changes it. Make the "
            "file and its folder writable, or work on a copy (--db COPY)."
        )
    return CatalogError(
        f"The catalog {path} is read-only ({why}). photocluster cannot change it, nor read it "
        "in a read-only folder (SQLite keeps -wal and -shm files beside it). Make the file and "
        "its folder writable, or work on a copy (--db COPY)."
    )


def _sqlite_error(path: Path, message: str) -> CatalogError | None:
    """The user-facing error for an SQLite error that is about the catalog file, if it is."""
    low = message.lower()
    if "not a database" in low:  # "file is not a database", "file is encrypted or is not ..."
        try:
            with path.open("rb") as fh:
                return not_a_catalog(path, fh.read(16))
        except OSError:
            return not_a_catalog(path, b"")
    if "malformed" in low or "corrupt" in low:
        return damaged(path, message)
    if "readonly" in low or "read-only" in low:
        return _read_only(path, message)
    if "database is locked" in low:
        return CatalogError(
            f"The catalog {path} stayed locked by another program for "
            f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s ({message}). Try again when it has finished."
        )
    if "unable to open database file" in low or "disk i/o error" in low:
        return CatalogError(
            f"Cannot use the catalog {path} ({message}): check that it and its folder can be "
            "read and written."
        )
    return None


def _translate_sqlite_errors(engine: Engine, path: Path) -> None:
    def handle(context: ExceptionContext) -> None:
        original = context.original_exception
        if isinstance(original, sqlite3.DatabaseError):
            translated = _sqlite_error(path, str(original))
            if translated is not None:
                raise translated from original

    event.listen(engine, "handle_error", handle)


def _sqlite_path(url: str) -> Path | None:
    database = make_url(url).database
    return Path(database) if database and database != ":memory:" else None


def _file_size(path: Path) -> int | None:
    """The file's size; None when there is none (nor, perhaps, its folder)."""
    try:
        return path.stat().st_size
    except (FileNotFoundError, NotADirectoryError):
        return None


def create_catalog_engine(db: str, *, create: bool = True, create_folder: bool = True) -> Engine:
    """An engine for the catalog ``db``; see :func:`open_catalog` for ``create`` and
    ``create_folder`` (SQLite only: a server URL is always taken as it is)."""
    url = to_url(db)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(f"Cannot understand the catalog location {db!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            if path.exists():
                check_sqlite_file(path)
            if not create and (size := _file_size(path)) in (None, 0):
                # checked before the folder is made: a refused command leaves nothing behind
                if size is None and not create_folder and not path.parent.is_dir():
                    raise no_folder(path)
                raise no_catalog(path, empty=size == 0)
            if not path.exists() and not path.parent.is_dir():
                if not create_folder:
                    raise no_folder(path)
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CatalogError(
                        f"Cannot create the catalog folder {path.parent}: {exc.strerror}. "
                        "Pass --db with a writable location."
                    ) from exc
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        if path is not None:
            _translate_sqlite_errors(engine, path)
    else:
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # missing driver, bad URL
            raise CatalogError(f"Cannot open the catalog {_describe(url)}: {exc}") from exc
    return engine


def _check_writable_file(path: Path) -> None:
    if path.exists() and not os.access(path, os.W_OK):
        raise _read_only(path, "no permission to write the file", writer=True)
    if not os.access(path.parent, os.W_OK):
        raise _read_only(path, f"no permission to write in its folder {path.parent}", writer=True)


def _check_writable_server(catalog: Catalog) -> None:
    with catalog.engine.connect() as conn:
        if conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on":
            raise _read_only(catalog.url, "the server only allows reading", writer=True)


def _verify(catalog: Catalog) -> None:
    """SQLite's quick check of every page (about a second per GB)."""
    if catalog.path is None:
        return
    with catalog.engine.connect() as conn:
        problems = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check(3)")]
    if problems != ["ok"]:
        lines = [ln for p in problems for ln in p.splitlines() if not ln.startswith("***")]
        first = (lines or problems)[0][:120]
        raise damaged(catalog.path, f"SQLite's check found: {first}")


def open_catalog(
    db: str,
    *,
    migrate: bool = True,
    create: bool = True,
    create_folder: bool = True,
    write: bool = False,
    verify: bool = False,
    on_wait: WaitReporter | None = None,
) -> Catalog:
    """Open (creating if needed) the catalog at ``db`` and upgrade its schema to the newest.

    ``create``: start a new SQLite catalog when the file does not exist or is empty; else
    refuse it with :class:`NoCatalog` (for commands that never start one: a typo or an
    unmounted drive must not become an empty catalog). A server URL is opened either way: an
    empty database is how a shared catalog starts.
    ``create_folder``: make a missing folder for a new SQLite catalog (else refuse).
    ``write``: refuse a catalog this process cannot write (the command would change it).
    ``verify``: SQLite's quick check of every page first (before long work).
    ``on_wait``: told who holds the catalog's write lock when a writer of this catalog waits.
    """
    engine = create_catalog_engine(db, create=create, create_folder=create_folder)
    path = (
        _sqlite_path(engine.url.render_as_string(hide_password=False))
        if (engine.dialect.name == "sqlite")
        else None
    )
    existed = path is None or (path.exists() and path.stat().st_size > 0)
    try:
        if write and path is not None:
            _check_writable_file(path)  # before SQLite says so in its own words
        with engine.connect() as conn:
            conn.exec_driver_sql(
                "SELECT 1" if path is None else "SELECT count(*) FROM sqlite_master"
            )
    except CatalogError:
        engine.dispose()
        raise
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CatalogError(
            f"Cannot reach the catalog {_describe(engine.url.render_as_string())}: {reason}. "
            "Check --db / PHOTOCLUSTER_DB and that the database server is running."
        ) from exc
    factory = sessionmaker(engine, expire_on_commit=False)
    catalog = Catalog(
        url=engine.url.render_as_string(hide_password=True),
        engine=engine,
        _factory=factory,
        on_wait=on_wait,
        created=not existed,
        path=path,
        _lock=WriteLock(
            FileLock(path.with_name(path.name + "-lock"))
            if path is not None
            else None
            if engine.dialect.name == "sqlite"
            else ServerLock(engine)
        ),
    )
    try:
        if write and not catalog.is_sqlite:
            _check_writable_server(catalog)
        if verify and existed:
            _verify(catalog)
        if migrate:
            _migrate(catalog)
    except BaseException:
        engine.dispose()
        raise
    return catalog


def _at_newest_revision(engine: Engine) -> bool:
    """The catalog's schema is the newest migration's revision (:func:`newest_revision`):
    known without importing alembic, which costs about 0.1 s at every command's start. Anything
    else (older, newer, unreadable) goes to alembic."""
    newest = newest_revision()
    if newest is None:
        return False
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).fetchall()
    except DBAPIError:
        return False
    return [row[0] for row in rows] == [newest]


def _migrate(catalog: Catalog) -> None:
    if _at_newest_revision(catalog.engine):
        return
    # alembic (~0.1 s) loads only when the schema must be checked or upgraded
    from photocluster.catalog.migrate import current_revision, head_revision, upgrade

    if current_revision(catalog.engine) == head_revision():
        return
    if catalog.is_sqlite:
        # One process migrates while the others wait, then find the schema at head.
        # (PostgreSQL: an advisory lock in the migration environment.)
        catalog._lock.acquire("(upgrading the catalog)", catalog.on_wait)
        try:
            upgrade(catalog.engine)
        finally:
            catalog._lock.release()
    else:
        upgrade(catalog.engine)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
