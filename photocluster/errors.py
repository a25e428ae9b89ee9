"""The one exception family that crosses into the CLI; everything else is a bug."""

from __future__ import annotations

from pathlib import Path


class PhotoclusterError(Exception):
    """A user-facing error: the message says what happened and what to do next."""


class NotFound(PhotoclusterError):
    """A person, face or photo the user named does not exist."""


class CatalogError(PhotoclusterError):
    """The catalog cannot be opened, reached or upgraded."""


class NoCatalog(CatalogError):
    """A command that never starts a catalog was pointed at a SQLite file that does not exist
    (or is empty)."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class Interrupted(PhotoclusterError):
    """A long job was interrupted (Ctrl-C); work committed so far is kept."""

    def __init__(self, message: str, *, done: int = 0) -> None:
        super().__init__(message)
        self.done = done
