"""Shared fixtures: temporary catalogs (SQLite, and PostgreSQL when reachable) and fake encoders."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.cli.commands import load_all
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.scan import ScanOptions
from tests.fakes import FakeEncoder

# The CLI imports only the module of the command it runs; tests invoke any command on `app`.
load_all()

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DATA = ROOT / "sample_data"
SHARED_FACES = ROOT.parent / "shared" / "faces"
PG_ADMIN_URL = os.environ.get(
    "PHOTOCLUSTER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every real-dlib and browser test is also `slow`: `-m "not slow"` is the quick loop."""
    for item in items:
        heavy = item.get_closest_marker("dlib") or item.get_closest_marker("browser")
        if heavy and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)


def _set_home(mp: pytest.MonkeyPatch, home: Path) -> None:
    mp.setenv("PHOTOCLUSTER_HOME", str(home / "photocluster"))
    mp.setenv("XDG_DATA_HOME", str(home / "xdg-data"))
    mp.delenv("PHOTOCLUSTER_DB", raising=False)
    # `scan` checks (and the first time converts) the ONNX face model with real dlib; tests
    # with fake encoders must not, so the CLI's default is dlib here. ONNX tests ask for it.
    mp.setenv("PHOTOCLUSTER_ENCODER", "dlib")


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary home for module- and session-scoped fixtures too (set up before any test's)."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        _set_home(mp, home)
        # One model cache for the whole run: the ONNX face model is converted once.
        mp.setenv("PHOTOCLUSTER_MODEL_CACHE", str(home / "models"))
        yield home


@pytest.fixture(scope="session", autouse=True)
def _cli_built_once() -> Iterator[None]:
    """Typer's CliRunner rebuilds the whole click command tree from the app on every invoke
    (tens of ms of type-hint evaluation each, seconds over the quick suite); the app does not
    change during a run, so build it once per app."""
    import typer.main
    import typer.testing

    built: dict[int, Any] = {}

    def get_command(typer_app: Any) -> Any:
        if id(typer_app) not in built:
            built[id(typer_app)] = typer.main.get_command(typer_app)
        return built[id(typer_app)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.testing, "_get_command", get_command)
        yield


@pytest.fixture(autouse=True)
def _own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own photocluster home, so nothing lands in the user's real one.

    Without this, anything that falls back to the default catalog or cache (a URL catalog's
    face index, a command run without --db) wrote into ``~/.local/share/photocluster``.
    Subprocesses inherit the variables.
    """
    home = tmp_path_factory.mktemp("home")
    _set_home(monkeypatch, home)
    return home


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "catalog.sqlite3")


@pytest.fixture(scope="session")
def _fresh_catalog_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One newly created (migrated) empty catalog, made once per session."""
    path = tmp_path_factory.mktemp("fresh-catalog") / "catalog.sqlite3"
    open_catalog(str(path)).close()
    assert not Path(f"{path}-wal").exists() or not Path(f"{path}-wal").stat().st_size
    return path


@pytest.fixture
def catalog(db_path: str, _fresh_catalog_file: Path) -> Iterator[Catalog]:
    # A copy of a fresh catalog is one, without running every migration again for each test
    # (Alembic re-reads its scripts for every new catalog: seconds over the quick suite).
    shutil.copyfile(_fresh_catalog_file, db_path)
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
