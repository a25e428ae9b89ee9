"""Two clients scanning different folders into one PostgreSQL catalog at the same time.

Real `python -m photocluster scan` processes with real dlib, on small copies of the sample
portraits; the result must equal a one-client SQLite scan, and re-scanning both is a no-op.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from typer.testing import CliRunner

from photocluster.catalog.db import open_catalog
from photocluster.cli import app
from tests.conftest import ROOT, SAMPLE_DATA

PER_FOLDER = 8
_OPTIONS = ["-j", "1", "--batch-size", "2", "--json", "-q"]


def _copies(root: Path, n: int, salt: int) -> None:
    """n distinct small photos with real faces (1 or 2 each), from the sample portraits."""
    sources = [SAMPLE_DATA / "originals" / "grace_hopper.jpg", SAMPLE_DATA / "group_photo.jpg"]
    root.mkdir(parents=True)
    for i in range(n):
        img = Image.open(sources[i % 2]).convert("RGB")
        img.thumbnail((500, 500))
        img.putpixel((0, 0), (i % 256, salt, 7))  # distinct bytes in every file
        img.save(root / f"p{i:03d}.jpg", quality=90)


def _scan(folder: Path, db: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "photocluster", "scan", str(folder), "--db", db, *_OPTIONS],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _both(folders: list[Path], db: str) -> list[dict[str, Any]]:
    procs = [_scan(folder, db) for folder in folders]  # started together, run together
    summaries = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err.decode()
        assert b"Traceback" not in err
        summaries.append(json.loads(out))
    return summaries


def _catalog(db: str) -> tuple[dict[str, list[tuple[Any, ...]]], list[tuple[Any, ...]]]:
    """Faces per photo path (boxes + embedding), and every photo row (path, scanned_at)."""
    engine = sa.create_engine(db if "://" in db else f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            photos = conn.execute(
                sa.text("SELECT path, scanned_at FROM photos ORDER BY path")
            ).all()
            faces = conn.execute(
                sa.text(
                    'SELECT p.path, f."left", f.top, f."right", f.bottom, f.embedding '
                    "FROM faces f JOIN photos p ON p.id = f.photo_id "
                    'ORDER BY p.path, f."left", f.top'
                )
            ).all()
    finally:
        engine.dispose()
    out: dict[str, list[tuple[Any, ...]]] = {p: [] for p, _ in photos}
    for path, *box, blob in faces:
        out[path].append((*box, np.frombuffer(bytes(blob), dtype="<f4")))
    return out, [tuple(r) for r in photos]


@pytest.mark.dlib
@pytest.mark.slow
def test_two_clients_scan_different_folders_into_one_catalog_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    folders = [tmp_path / "alice", tmp_path / "bob"]
    for salt, folder in enumerate(folders):
        _copies(folder, PER_FOLDER, salt)
    # The catalog exists before the two scans start, so that their scanning overlaps (creating
    # a catalog from several clients at once is tested on its own below).
    open_catalog(pg_url).close()

    first = _both(folders, pg_url)
    assert [(s["new"], s["failed"]) for s in first] == [(PER_FOLDER, 0), (PER_FOLDER, 0)]

    shared, photos = _catalog(pg_url)
    paths = [p for p, _ in photos]
    assert len(paths) == len(set(paths)) == 2 * PER_FOLDER, "every photo exactly once"
    # The two scans really overlapped: each wrote a batch while the other was still writing.
    when = {f: sorted(t for p, t in photos if p.startswith(str(f) + "/")) for f in folders}
    a, b = when.values()
    assert a[0] < b[-1] and b[0] < a[-1], "the scans ran one after the other; nothing was tested"

    # The same faces as one client scanning both folders into SQLite.
    ref = str(tmp_path / "ref.sqlite3")
    for folder in folders:
        result = CliRunner().invoke(app, ["scan", str(folder), "--db", ref, "-q", "-j", "1"])
        assert result.exit_code == 0, result.stderr
    expected, _ = _catalog(ref)
    assert sorted(shared) == sorted(expected)
    for path, faces in expected.items():
        assert [f[:4] for f in shared[path]] == [f[:4] for f in faces], path
        for got, want in zip(shared[path], faces, strict=True):
            np.testing.assert_allclose(got[4], want[4], atol=1e-5)
    assert sum(len(f) for f in shared.values()) == sum(s["faces_found"] for s in first) > 0

    # Re-scanning both, again at the same time, changes nothing.
    again = _both(folders, pg_url)
    assert [(s["unchanged"], s["new"], s["changed"], s["removed"]) for s in again] == [
        (PER_FOLDER, 0, 0, 0)
    ] * 2
    assert _catalog(pg_url)[1] == photos


@pytest.mark.slow
def test_several_clients_creating_a_new_catalog_at_once_all_succeed(pg_url: str) -> None:
    """The first migration of an empty schema is serialised (advisory lock), not a crash."""
    code = (
        "import sys; from photocluster.catalog.db import open_catalog; "
        "open_catalog(sys.argv[1]).close()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, pg_url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read().decode()) for p in procs]  # type: ignore[union-attr]
    assert [rc for rc, _ in results] == [0, 0, 0, 0], results
    cat = open_catalog(pg_url)
    try:
        from photocluster.catalog.migrate import current_revision, head_revision

        assert current_revision(cat.engine) == head_revision()
    finally:
        cat.close()
