"""Open a catalog (SQLite file or SQLAlchemy URL), bring its schema up to date, hand out sessions.

Whoever starts a unit of work owns the session (``with catalog.session() as s``); query helpers
elsewhere take a session and never commit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from photocluster.errors import CatalogError

EMBEDDING_DIM = 128
_EMBEDDING_BYTES = EMBEDDING_DIM * 4
SQLITE_BUSY_TIMEOUT_MS = 30_000


def embedding_to_blob(vector: np.ndarray) -> bytes:
    """The one way an embedding becomes bytes: 128 little-endian float32."""
    arr = np.asarray(vector, dtype="<f4").reshape(-1)
    if arr.size != EMBEDDING_DIM:
        raise ValueError(f"embedding has {arr.size} values, expected {EMBEDDING_DIM}")
    return arr.tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    """The inverse of :func:`embedding_to_blob`, with a length check."""
    if len(blob) != _EMBEDDING_BYTES:
        raise ValueError(f"embedding blob has {len(blob)} bytes, expected {_EMBEDDING_BYTES}")
    return np.frombuffer(blob, dtype="<f4")


def blobs_to_matrix(blobs: list[bytes]) -> np.ndarray:
    """Many blobs into one (n, 128) float32 matrix without a Python loop per value."""
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    for blob in blobs:
        if len(blob) != _EMBEDDING_BYTES:
            raise ValueError(f"embedding blob has {len(blob)} bytes, expected {_EMBEDDING_BYTES}")
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), EMBEDDING_DIM).copy()


assert struct.calcsize("<f") == 4


def to_url(db: str) -> str:
    """A bare path becomes a SQLite URL; anything with ``://`` is taken as an SQLAlchemy URL."""
    if "://" in db:
        return db
    path = Path(db).expanduser()
    return f"sqlite:///{path.resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _describe(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@dataclass
class Catalog:
    """An open catalog: the engine and a session factory."""

    url: str
    engine: Engine
    _factory: sessionmaker[Session]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on any exception."""
        with self._factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


def create_catalog_engine(db: str) -> Engine:
    url = to_url(db)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(f"Cannot understand the catalog location {db!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogError(
                    f"Cannot create the catalog folder {parent}: {exc.strerror}. "
                    "Pass --db with a writable location."
                ) from exc
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        try:
            engine = create_engine(url, pool_pre_ping=True)
        except Exception as exc:  # missing driver, bad URL
            raise CatalogError(f"Cannot open the catalog {_describe(url)}: {exc}") from exc
    return engine


def open_catalog(db: str, *, migrate: bool = True) -> Catalog:
    """Open (creating if needed) the catalog at ``db`` and upgrade its schema to the newest."""
    engine = create_catalog_engine(db)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise CatalogError(
            f"Cannot reach the catalog {_describe(engine.url.render_as_string())}: {reason}. "
            "Check --db / PHOTOCLUSTER_DB and that the database server is running."
        ) from exc
    if migrate:
        from photocluster.migrate import upgrade

        upgrade(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    return Catalog(
        url=engine.url.render_as_string(hide_password=True), engine=engine, _factory=factory
    )


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
