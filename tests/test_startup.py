"""Commands import only what they use: `--help` and `status` start without numpy or any
clustering code (`status` on an up-to-date SQLite catalog without SQLAlchemy either), and
clustering a small catalog does without faiss, scikit-learn and SciPy. Each check runs the
real entry point in a fresh interpreter and looks at ``sys.modules``."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from photocluster.ingest.scan import scan
from tests.conftest import ROOT
from tests.fakes import make_photo

HEAVY = {"numpy", "scipy", "sklearn", "hdbscan", "faiss", "PIL", "dlib", "onnxruntime", "alembic"}

_RUN = """
import json, sys
sys.argv = ["photocluster", *json.loads(sys.argv[1])]
if len(sys.argv) > 1 and sys.argv[1] == "--load-all":  # every command module, as before
    del sys.argv[1]
    from photocluster.cli.commands import load_all
    load_all()
from photocluster.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}),
      file=sys.stderr)
"""


def _imports(*args: str) -> tuple[int, set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "80"},
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), proc.stdout


def test_help_imports_no_numpy_nor_clustering_and_lists_every_command() -> None:
    code, modules, text = _imports("--help")
    assert code == 0
    assert not modules & (HEAVY | {"sqlalchemy", "tqdm"}), modules & HEAVY
    # the same help as with every command module imported (read from their source here)
    assert text == _imports("--load-all", "--help")[2]
    assert "  status  Summarise the catalog" in text and "  eval " in text


def test_status_imports_no_numpy_nor_clustering(catalog) -> None:  # type: ignore[no-untyped-def]
    code, modules, text = _imports("status", "--db", catalog.url.removeprefix("sqlite:///"))
    assert code == 0 and "Photos: 0" in text
    # an up-to-date SQLite catalog is read with sqlite3 alone
    assert not modules & (HEAVY | {"sqlalchemy"}), modules & (HEAVY | {"sqlalchemy"})
    code, modules, text = _imports(
        "status", "--failed", "--db", catalog.url.removeprefix("sqlite:///")
    )
    assert code == 0 and "No failed photos." in text
    assert not modules & HEAVY, modules & HEAVY


def test_clustering_a_small_catalog_does_not_import_faiss(
    catalog, fake_options, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    for i in range(12):
        person = ("ada", "bob", "cyd")[i % 3]
        make_photo(tmp_path / "lib" / f"p{i}.jpg", [(person, (20 + 5 * i, 30, 90))])
    scan(catalog, fake_options(tmp_path / "lib"))
    db = catalog.url.removeprefix("sqlite:///")
    code, modules, text = _imports("cluster", "--db", db)
    assert code == 0 and "Clustering" in text
    assert "faiss" not in modules and "hdbscan" in modules
    # hdbscan's compiled steps alone, not the package's import of scikit-learn; SciPy's few
    # functions from people.scipy_lite
    assert not modules & {"sklearn", "scipy"}, modules & {"sklearn", "scipy"}


def test_status_of_a_sqlite_file_reads_as_the_catalog_reads(
    catalog, fake_options, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """`status` summarises an up-to-date SQLite catalog with sqlite3 alone: the same figures
    as through the catalog's session (people named, hidden, emptied; failed photos); any
    other catalog goes the usual way (None)."""
    from sqlalchemy import update

    from photocluster.catalog.models import Face, Person
    from photocluster.catalog.status import catalog_status, session_rows, sqlite_file_status
    from photocluster.people.assign import ClusterOptions, cluster_catalog

    for i in range(16):
        person = ("ada", "bob", "cyd", "dee")[i % 4]
        make_photo(tmp_path / "lib" / f"p{i}.jpg", [(person, (20 + 5 * i, 30, 90))])
    (tmp_path / "lib" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a photo")
    scan(catalog, fake_options(tmp_path / "lib"))
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as session:
        ids = sorted(session.scalars(select(Person.id)))
        assert len(ids) >= 3
        session.execute(update(Person).where(Person.id == ids[0]).values(name="Ada"))
        session.execute(update(Person).where(Person.id == ids[1]).values(hidden=True))
        session.execute(update(Face).where(Face.person_id == ids[2]).values(person_id=None))
        session.commit()
        expected = catalog_status(session_rows(session))
    db = catalog.url.removeprefix("sqlite:///")
    quick = sqlite_file_status(db)
    assert quick == {**expected, "catalog": catalog.url}
    assert (quick["photos_failed"], quick["named_people"], quick["hidden_people"]) == (1, 1, 1)
    assert quick["people"] == len(ids) - 1  # the emptied person is not counted
    assert sqlite_file_status(catalog.url) is None  # a URL: opened as usual
    assert sqlite_file_status(str(tmp_path / "new.sqlite3")) is None  # a new catalog
    with sqlite3.connect(db) as conn:  # an older schema: open_catalog upgrades it
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert sqlite_file_status(db) is None
