"""Read-only summaries of the catalog for `status`. The summary is plain SQL without parameters,
run through a session (any catalog) or, for a SQLite catalog file already at the newest schema,
through the standard library's sqlite3 alone (:func:`sqlite_file_status`), so `status`
starts without SQLAlchemy; `status --failed` uses the ORM (paths go through their column
type)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from photocluster.catalog.photo_status import PhotoStatus
from photocluster.catalog.sqlite_file import (
    SQLITE_BUSY_TIMEOUT_MS,
    check_sqlite_file,
    newest_revision,
    to_url,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Rows = Callable[[str], Sequence[Sequence[Any]]]  # runs one SQL text, returns its rows

# People are people with faces: one whose faces all left (rejected, moved) is not counted.
_WITH_FACES = "id IN (SELECT person_id FROM faces WHERE person_id IS NOT NULL)"
_COUNTS = {
    "by_status": "SELECT status, count(*) FROM photos GROUP BY status",
    "encoders": "SELECT encoder, count(*) FROM photos GROUP BY encoder",
    "faces": "SELECT count(*) FROM faces",
    "assigned": "SELECT count(*) FROM faces WHERE person_id IS NOT NULL",
    "people": f"SELECT count(*) FROM people WHERE {_WITH_FACES}",
    "named": f"SELECT count(*) FROM people WHERE {_WITH_FACES} AND name IS NOT NULL",
    "hidden": f"SELECT count(*) FROM people WHERE {_WITH_FACES} AND hidden IS true",
}
_ONE_NUMBER = ("faces", "assigned", "people", "named", "hidden")


def session_rows(session: Session) -> Rows:
    """SQL through the session's connection (SQLite or PostgreSQL)."""
    return lambda sql: session.connection().exec_driver_sql(sql).all()


def catalog_status(rows: Rows) -> dict[str, Any]:
    """Photos by status and encoder settings, faces, people (named, hidden)."""
    by_status: dict[str, int] = {k: v for k, v in rows(_COUNTS["by_status"])}
    encoders: dict[str, int] = {k: v for k, v in rows(_COUNTS["encoders"])}
    n = {key: rows(sql)[0][0] or 0 for key, sql in _COUNTS.items() if key in _ONE_NUMBER}
    return {
        "photos": sum(by_status.values()),
        "photos_ok": by_status.get(PhotoStatus.OK, 0),
        "photos_no_faces": by_status.get(PhotoStatus.NO_FACES, 0),
        "photos_failed": by_status.get(PhotoStatus.FAILED, 0),
        "faces": n["faces"],
        "assigned_faces": n["assigned"],
        "unassigned_faces": n["faces"] - n["assigned"],
        "people": n["people"],
        "named_people": n["named"],
        "hidden_people": n["hidden"],
        "encoders": encoders,
    }


def failed_photos(session: Session) -> list[tuple[str, str]]:
    """Failed photos and why, by path."""
    # imported here: the summary above needs neither the ORM nor Photo's path type (`status`
    # starts without SQLAlchemy); `status --failed` does
    from sqlalchemy import select

    from photocluster.catalog.models import Photo

    rows = session.execute(
        select(Photo.path, Photo.error)
        .where(Photo.status == PhotoStatus.FAILED)
        .order_by(Photo.path)
    ).all()
    return [(r.path, r.error or "unknown error") for r in rows]


def sqlite_file_status(db: str) -> dict[str, Any] | None:
    """:func:`catalog_status` of the SQLite catalog file ``db`` (with its URL as "catalog"),
    read with sqlite3 alone, when opening it needs nothing of
    :func:`photocluster.catalog.db.open_catalog`'s: a file that exists, is not empty and is at
    the newest schema revision. None otherwise (a URL, a new or missing catalog, a schema to
    upgrade, an SQLite error): open_catalog then opens, upgrades or refuses it. A file that is
    not a catalog or is truncated is refused here as open_catalog refuses it."""
    if "://" in db:
        return None
    url = to_url(db)
    path = Path(url.removeprefix("sqlite:///"))
    if not path.is_file() or path.stat().st_size == 0:
        return None
    check_sqlite_file(path)
    try:
        with contextlib.closing(
            sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        ) as conn:
            versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
            if versions != [newest_revision()]:
                return None
            status = catalog_status(lambda sql: conn.execute(sql).fetchall())
    except sqlite3.Error:
        return None
    status["catalog"] = url
    return status
