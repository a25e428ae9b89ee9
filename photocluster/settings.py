"""One settings object, built once by the CLI (option > environment > default) and passed down."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ENV_DB = "PHOTOCLUSTER_DB"
ENV_HOME = "PHOTOCLUSTER_HOME"


def default_home() -> Path:
    """Where photocluster keeps its catalog and caches when not told otherwise.

    ``$PHOTOCLUSTER_HOME``, else ``$XDG_DATA_HOME/photocluster``, else
    ``~/.local/share/photocluster``.
    """
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME]).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "photocluster"


def default_db() -> str:
    return str(default_home() / "catalog.sqlite3")


# The bundled sample library (sample_data/) carries this file, wherever it is copied and
# whatever the folder is called; a folder of one's own named sample_data does not.
SAMPLE_MARKER = ".photocluster-sample"


def is_sample_library(folder: str | os.PathLike[str]) -> bool:
    """True for photocluster's own sample photos, which never belong in the user's catalog."""
    return (Path(folder).expanduser() / SAMPLE_MARKER).is_file()


def demo_db() -> str:
    """The catalog the sample photos go into when no catalog was chosen."""
    return str(default_home() / "demo.sqlite3")


def resolve_db(option: str | None) -> str:
    """``--db`` wins, then ``$PHOTOCLUSTER_DB``, then the default file."""
    if option:
        return option
    if os.environ.get(ENV_DB):
        return os.environ[ENV_DB]
    return default_db()


@dataclass(frozen=True)
class Settings:
    """What every command needs to know about where it works."""

    db: str
    quiet: bool = False

    @property
    def cache_dir(self) -> Path:
        """Thumbnails and indexes: ``<catalog file>-cache/``, or under the home dir for a URL."""
        if "://" in self.db:
            digest = hashlib.sha1(self.db.encode()).hexdigest()[:12]
            return default_home() / f"cache-{digest}"
        path = Path(self.db).expanduser().resolve()
        return path.with_name(path.name + "-cache")
