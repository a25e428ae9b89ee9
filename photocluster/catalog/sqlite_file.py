"""A SQLite catalog file checked with the standard library alone (no SQLAlchemy, so `status`
can use it at start-up): its URL (:func:`to_url`), the file's header, a file shorter than its
header says, the errors that say so (and those for a catalog that is missing or in a missing
folder), and the newest schema revision the migrations know."""

from __future__ import annotations

import os
import time
from pathlib import Path

from photocluster.errors import CatalogError, NoCatalog

SQLITE_BUSY_TIMEOUT_MS = 30_000  # how long a reader or writer waits for SQLite's own locks
SQLITE_HEADER = b"SQLite format 3\x00"
_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def to_url(db: str) -> str:
    """A bare path becomes a SQLite URL; anything with ``://`` is taken as an SQLAlchemy URL."""
    if "://" in db:
        return db
    path = Path(db).expanduser()
    return f"sqlite:///{path.resolve()}"


_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image",
    b"\x89PNG": "a PNG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
}


def not_a_catalog(path: Path, start: bytes) -> CatalogError:
    kind = next((k for magic, k in _MAGIC.items() if start.startswith(magic)), None)
    looks = f"it looks like {kind}" if kind else "it does not start like one"
    return CatalogError(
        f"{path} is not a photocluster catalog: not an SQLite database ({looks}). "
        "Check --db / PHOTOCLUSTER_DB; to start a new catalog, give a path that does not exist yet."
    )


def no_catalog(path: Path, *, empty: bool = False) -> NoCatalog:
    """For a command that never starts a catalog: there is none at ``path`` (yet)."""
    what = " (the file is empty)" if empty else ""
    return NoCatalog(
        f"No catalog at {path}{what}: scan a folder into it first "
        f"(photocluster scan FOLDER --db {path}).",
        path=path,
    )


def no_folder(path: Path) -> CatalogError:
    """A new catalog in a folder that does not exist: refused rather than made."""
    return CatalogError(
        f"There is no catalog at {path}: its folder {path.parent} does not exist "
        "(a typo, or a drive that is not mounted?). To start a new catalog "
        f"there, create the folder first: mkdir -p '{path.parent}'"
    )


def damaged(path: Path | str, why: str) -> CatalogError:
    return CatalogError(
        f"The catalog {path} is damaged ({why}). Restore it from a backup; or recover what is "
        f"readable with `sqlite3 {path} .recover | sqlite3 recovered.sqlite3` and use "
        "--db recovered.sqlite3 (then `photocluster scan` your folders again)."
    )


def _read_head(path: Path) -> tuple[bytes, int]:
    try:
        with path.open("rb") as fh:
            return fh.read(100), os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise CatalogError(f"Cannot read the catalog {path}: {exc.strerror}.") from exc


def _missing_bytes(head: bytes, size: int) -> tuple[int, int] | None:
    """(size, expected) when the file is shorter than its header says (if the header's size is
    valid: its change counter matches), else None."""
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] == head[92:96] and pages and size < pages * page_size:
        return size, pages * page_size
    return None


def check_sqlite_file(path: Path) -> None:
    """Refuse a folder, a file that is not SQLite, and a file shorter than its own header says."""
    if path.is_dir():
        raise CatalogError(
            f"{path} is a folder, not a catalog file. Pass --db FOLDER/catalog.sqlite3."
        )
    head, size = _read_head(path)
    if not head:
        return  # an empty file is an empty SQLite database: a new catalog
    if not head.startswith(SQLITE_HEADER) or len(head) < 100:
        raise not_a_catalog(path, head)
    # A checkpoint that grows the file writes the new header before the pages at its end: a
    # short file is damage only if it stays the same for a moment.
    deadline = time.monotonic() + 10
    while (short := _missing_bytes(head, size)) is not None:
        time.sleep(0.2)
        again = _read_head(path)
        if again == (head, size) or time.monotonic() > deadline:
            raise damaged(path, f"truncated: {short[0]} of its {short[1]} bytes are left")
        head, size = again


def newest_revision() -> str | None:
    """The newest migration's revision: its file's number (``0004_face_revision.py`` is
    ``0004``), read from the file names without importing alembic; None without migrations."""
    numbers = [p.name.split("_", 1)[0] for p in _VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(numbers) if numbers else None
