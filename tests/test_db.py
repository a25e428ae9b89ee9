"""Catalog: embedding blobs, URL handling, SQLite pragmas, migrations, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from photocluster.catalog.db import open_catalog, table_names, to_url
from photocluster.catalog.embeddings import blob_to_embedding, blobs_to_matrix, embedding_to_blob
from photocluster.catalog.migrate import current_revision, head_revision
from photocluster.catalog.models import Base
from photocluster.errors import CatalogError, NoCatalog
from photocluster.settings import Settings, resolve_db


def test_embedding_round_trip_is_float32_and_exact() -> None:
    vec = np.random.default_rng(1).normal(size=128)
    blob = embedding_to_blob(vec)
    assert len(blob) == 512
    back = blob_to_embedding(blob)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vec.astype(np.float32))
    matrix = blobs_to_matrix([blob, blob])
    assert matrix.shape == (2, 128)


@pytest.mark.parametrize("size", [0, 127, 129])
def test_embedding_length_is_checked(size: int) -> None:
    with pytest.raises(ValueError, match="expected 128"):
        embedding_to_blob(np.zeros(size))
    with pytest.raises(ValueError, match="expected 512"):
        blob_to_embedding(b"\0" * (size * 4))
    with pytest.raises(ValueError):
        blobs_to_matrix([b"\0" * 512, b"\0" * (size * 4)])


def test_paths_become_sqlite_urls_and_urls_pass_through(tmp_path: Path) -> None:
    assert to_url(str(tmp_path / "c.db")) == f"sqlite:///{tmp_path / 'c.db'}"
    assert to_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_db_option_beats_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHOTOCLUSTER_DB", "/env/cat.sqlite3")
    assert resolve_db("/opt/cat.sqlite3") == "/opt/cat.sqlite3"
    assert resolve_db(None) == "/env/cat.sqlite3"
    monkeypatch.delenv("PHOTOCLUSTER_DB")
    monkeypatch.setenv("PHOTOCLUSTER_HOME", "/home/x/pc")
    assert resolve_db(None) == "/home/x/pc/catalog.sqlite3"


def test_cache_dir_sits_beside_a_file_catalog(tmp_path: Path) -> None:
    s = Settings(db=str(tmp_path / "cat.sqlite3"))
    assert s.cache_dir == tmp_path / "cat.sqlite3-cache"


def test_new_catalog_is_migrated_wal_and_enforces_foreign_keys(db_path: str) -> None:
    cat = open_catalog(db_path)
    try:
        assert {"photos", "faces", "people", "rejections", "decisions", "meta"} <= set(
            table_names(cat.engine)
        )
        assert current_revision(cat.engine) == head_revision()
        with cat.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    finally:
        cat.close()


def test_migrations_match_the_models(db_path: str) -> None:
    cat = open_catalog(db_path)
    try:
        with cat.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        cat.close()


def test_reopening_is_idempotent(db_path: str) -> None:
    open_catalog(db_path).close()
    cat = open_catalog(db_path)
    assert current_revision(cat.engine) == head_revision()
    cat.close()


def test_catalog_from_an_unknown_newer_version_is_refused(db_path: str) -> None:
    open_catalog(db_path).close()
    engine = create_engine(to_url(db_path))
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(CatalogError, match="newer version"):
        open_catalog(db_path)


def test_unreachable_server_is_a_clear_error() -> None:
    with pytest.raises(CatalogError, match="Cannot reach the catalog"):
        open_catalog("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")


def test_uncreatable_catalog_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CatalogError, match="Cannot create the catalog folder"):
        open_catalog(str(blocker / "sub" / "cat.sqlite3"))


def test_without_create_a_missing_or_empty_sqlite_catalog_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "cat.sqlite3"
    with pytest.raises(NoCatalog, match=r"No catalog at .*scan a folder into it first") as info:
        open_catalog(str(missing), create=False)
    assert info.value.path == missing and list(tmp_path.iterdir()) == []
    missing.touch()
    with pytest.raises(NoCatalog, match=r"\(the file is empty\)"):
        open_catalog(str(missing), create=False)
    assert missing.stat().st_size == 0
    # a missing folder is said as such (unless it is one made on first use)
    deep = tmp_path / "typo" / "cat.sqlite3"
    with pytest.raises(CatalogError, match="does not exist"):
        open_catalog(str(deep), create=False, create_folder=False)
    with pytest.raises(NoCatalog):
        open_catalog(str(deep), create=False, create_folder=True)
    assert not (tmp_path / "typo").exists()
    open_catalog(str(missing)).close()  # create=True (the default) starts it
    open_catalog(str(missing), create=False).close()


def test_without_create_an_empty_postgresql_database_still_gets_the_schema(pg_url: str) -> None:
    cat = open_catalog(pg_url, create=False)  # how a shared catalog starts: `status` on it
    try:
        assert current_revision(cat.engine) == head_revision()
    finally:
        cat.close()


def test_postgresql_catalog_is_created_and_migrated(pg_url: str) -> None:
    cat = open_catalog(pg_url)
    try:
        assert cat.engine.dialect.name == "postgresql"
        assert current_revision(cat.engine) == head_revision()
        with cat.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        cat.close()
