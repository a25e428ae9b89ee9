"""Shared fixtures: temporary catalogs (SQLite, and PostgreSQL when reachable) and fake encoders."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from photocluster.db import Catalog, open_catalog
from photocluster.encoder import EncoderParams
from photocluster.scan import ScanOptions
from tests.fakes import FakeEncoder

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SHARED_FACES = ROOT.parent / "shared" / "faces"
PG_ADMIN_URL = os.environ.get(
    "PHOTOCLUSTER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "catalog.sqlite3")


@pytest.fixture
def catalog(db_path: str) -> Iterator[Catalog]:
    cat = open_catalog(db_path)
    yield cat
    cat.close()


def _pg_reachable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ):
            return None
    except Exception as exc:  # any failure means: skip with the reason
        return f"PostgreSQL on 127.0.0.1:5432 is unreachable ({type(exc).__name__}: {exc})"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL schema for one test; skipped when no server is reachable."""
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    import sqlalchemy as sa

    schema = f"pc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def fake_log(tmp_path: Path) -> Path:
    return tmp_path / "encoder-calls.log"


def calls(log: Path) -> int:
    """How many photos the fake encoder has looked at (across processes)."""
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.fixture
def fake_options(fake_log: Path):  # type: ignore[no-untyped-def]
    """Build ScanOptions that use the FakeEncoder, logging each call to ``fake_log``."""

    def build(root: Path | str, **kw: object) -> ScanOptions:
        kw.setdefault("jobs", 1)
        return ScanOptions(
            root=str(root),
            params=kw.pop("params", EncoderParams()),  # type: ignore[arg-type]
            encoder_factory=functools.partial(_fake_factory, log=str(fake_log)),
            **kw,  # type: ignore[arg-type]
        )

    return build


def _fake_factory(params: EncoderParams, log: str | None = None) -> FakeEncoder:
    return FakeEncoder(params, log=log)
