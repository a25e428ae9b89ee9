"""Schema migrations with Alembic, run programmatically when a catalog is opened."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine

from photocluster.errors import CatalogError

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the catalog to ``revision``; refuse a catalog written by a newer photocluster."""
    script = ScriptDirectory.from_config(alembic_config())
    current = current_revision(engine)
    try:
        known = current is None or script.get_revision(current) is not None
    except CommandError:
        known = False
    if not known:
        raise CatalogError(
            f"The catalog has schema revision {current}, which this photocluster does not know: "
            "it was written by a newer version. Upgrade photocluster."
        )
    if revision == "head" and current == script.get_current_head():
        return
    command.upgrade(alembic_config(engine), revision)
