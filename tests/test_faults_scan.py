"""Scan under faults (issue 16): file names that are not UTF-8, Ctrl-C, kill -9, symlink loops.

The fast cases run in-process with the fake encoder. The slow ones run the real CLI in a
subprocess (``tests.fake_encoder_cli``: the fake encoder, slowed down so a signal lands
mid-scan) and count photos from the catalog.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from typer.testing import CliRunner

from photocluster.catalog.db import open_catalog, to_url
from photocluster.catalog.fspath import ESCAPE, from_catalog, to_catalog
from photocluster.catalog.migrate import upgrade
from photocluster.catalog.models import Face, Person, Photo
from photocluster.cli import app
from photocluster.ingest.scan import scan
from tests.conftest import ROOT, calls
from tests.fakes import make_photo

runner = CliRunner()
BAD = "\udce9"  # what Python makes of the byte 0xE9 in a file name (os.fsdecode)


# --- names that are not valid UTF-8 ----------------------------------------------------------


def test_catalog_path_text_round_trips_every_name_and_keeps_prefixes() -> None:
    names = [
        "/p/plain.jpg",
        "/p/caf" + BAD + ".jpg",
        "/p/\udcff\udc80" + ESCAPE + "x" + ESCAPE + ESCAPE + "\u00e9.jpg",
        "/p/" + ESCAPE + "\u00e9",  # a real U+FFFF followed by é: not an escaped byte
        "/p/end" + ESCAPE,
        "/日本/写真.jpg",
    ]
    for name in names:
        text = to_catalog(name)
        text.encode("utf-8")  # storable
        assert from_catalog(text) == name
        assert to_catalog(name + "/more").startswith(text), "a folder's prefix stays a prefix"
    assert to_catalog("/p/plain.jpg") == "/p/plain.jpg"
    assert len({to_catalog(n) for n in names}) == len(names)
    # Every byte value in a name survives the trip through the catalog text.
    raw = os.fsdecode(bytes(range(1, 256)).replace(b"/", b""))
    assert os.fsencode(from_catalog(to_catalog(raw))) == os.fsencode(raw)


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_db(request: pytest.FixtureRequest, db_path: str) -> str:
    return db_path if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_a_name_that_is_not_utf8_is_scanned_beside_good_photos(
    tmp_path: Path, catalog_db: str, fake_options, fake_log: Path
) -> None:
    lib = tmp_path / "lib"
    good = [
        make_photo(lib / "a.jpg", [("ada", (40, 40, 60))]),
        make_photo(lib / "b.jpg", [("bob", (40, 40, 60))]),
        make_photo(lib / "sub" / "c.jpg", [("cyd", (40, 40, 60))]),
    ]
    odd_dir = lib / ("old" + BAD)  # a folder whose name is not UTF-8 either
    odd = [
        make_photo(lib / ("bad" + BAD + "\udcffname.jpg"), [("dee", (40, 40, 60))]),
        make_photo(odd_dir / ("x" + BAD + ".jpg"), [("eve", (40, 40, 60))]),
    ]
    (lib / ("broken" + BAD + ".jpg")).write_bytes(b"\xff\xd8 not a jpeg")  # fails, by name too
    on_disk = {str(p) for p in good + odd} | {str(lib / ("broken" + BAD + ".jpg"))}

    cat = open_catalog(catalog_db)
    try:
        summary = scan(cat, fake_options(lib))
        assert (summary.seen, summary.new, summary.failed_total) == (6, 6, 1)
        assert summary.faces_found == 5
        with cat.session() as s:
            photos = {p.path: p for p in s.scalars(select(Photo))}
            faces = {
                path: n
                for path, n in s.execute(
                    select(Photo.path, sa.func.count(Face.id)).join(Face).group_by(Photo.path)
                )
            }
            # A folder's photos are still selected by prefix (how scan, eval and xmp find them).
            in_odd_dir = s.scalars(
                select(Photo.path).where(Photo.path.startswith(f"{odd_dir}/", autoescape=True))
            ).all()
        assert set(photos) == on_disk, "every photo is in the catalog under its real name"
        for p in good + odd:
            assert photos[str(p)].status == "ok" and faces[str(p)] == 1
            # The stored path opens the very file (export, XMP, find and contact sheets do).
            assert Path(photos[str(p)].path).read_bytes() == p.read_bytes()
        broken = photos[str(lib / ("broken" + BAD + ".jpg"))]
        assert broken.status == "failed" and broken.error
        assert in_odd_dir == [str(odd[1])]

        # A re-run does no repeated work.
        before = calls(fake_log)
        again = scan(cat, fake_options(lib))
        assert (again.unchanged, again.new, again.changed, again.removed) == (6, 0, 0, 0)
        assert calls(fake_log) == before

        # Renamed to another odd name: recognised as a move; deleted: removed.
        moved = lib / ("moved" + "\udcfe.jpg")
        odd[0].rename(moved)
        odd[1].unlink()
        third = scan(cat, fake_options(lib))
        assert (third.moved, third.removed, third.new) == (1, 1, 0)
        assert calls(fake_log) == before
        with cat.session() as s:
            assert str(moved) in set(s.scalars(select(Photo.path)))
    finally:
        cat.close()


def test_a_photo_whose_name_is_not_utf8_exports_gets_a_sidecar_and_a_crop(
    tmp_path: Path, catalog, fake_options
) -> None:
    """What comes after the scan opens the file by the path the catalog gives back."""
    from photocluster.decisions.contact_sheet import CropCache, crop_requests
    from photocluster.export.folders import ExportOptions, export_people
    from photocluster.export.xmp.exiftool import find_exiftool
    from photocluster.export.xmp.writer import XmpExportOptions, export_xmp

    lib = tmp_path / "lib"
    good = make_photo(lib / "a.jpg", [("ada", (40, 40, 60))])
    odd = make_photo(lib / ("caf" + BAD + "\udcff.jpg"), [("ada", (60, 50, 60))])
    scan(catalog, fake_options(lib))
    with catalog.session() as s:
        ada = Person(name="Ada", hidden=False, created_at=datetime(2024, 1, 1))
        s.add(ada)
        s.flush()
        for face in s.scalars(select(Face)):
            face.person_id, face.confirmed = ada.id, True
        odd_face = s.scalars(select(Face.id).join(Photo).where(Photo.path == str(odd))).one()

    dest = tmp_path / "out"
    first = export_people(catalog, ExportOptions(dest=str(dest)))
    assert (first.added, first.failures) == (2, [])
    assert sorted(p.read_bytes() for p in (dest / "Ada").iterdir()) == sorted(
        p.read_bytes() for p in (good, odd)
    )
    again = export_people(catalog, ExportOptions(dest=str(dest)))  # the manifest reads back
    assert (again.unchanged, again.changed) == (2, 0)
    copies = export_people(catalog, ExportOptions(dest=str(tmp_path / "copies"), mode="copy"))
    assert (copies.added, copies.failures) == (2, [])

    with catalog.session() as s:
        (req,) = crop_requests(s, [odd_face])
    _crop, problem = CropCache(tmp_path / "crops").get(req)
    assert problem is None

    if find_exiftool() is None:
        return  # the sidecar needs exiftool
    xmp = export_xmp(catalog, XmpExportOptions())
    assert xmp.failures == [] and len(xmp.written) == 2
    (sidecar,) = [w for w in xmp.written if w.startswith(str(lib / "caf"))]
    assert Path(sidecar).exists()


def test_status_prints_a_name_that_is_not_utf8_as_its_own_bytes(tmp_path: Path) -> None:
    """The real CLI, on a terminal whose encoding is strict UTF-8 (the usual desktop locale)."""
    lib = tmp_path / "lib"
    make_photo(lib / "good.jpg", [("ada", (40, 40, 60))])
    (lib / ("broken" + BAD + ".jpg")).write_bytes(b"not a jpeg")
    db = str(tmp_path / "cat.sqlite3")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    done = _cli(["scan", str(lib), "--db", db, "-j", "1", "-q", "--json"], env)
    assert done.returncode == 0, done.stderr.decode()
    summary = json.loads(done.stdout)
    assert (summary["new"], summary["failed"]) == (2, 1)
    listed = _cli(["status", "--failed", "--db", db], env)
    assert listed.returncode == 0, listed.stderr.decode()
    assert listed.stdout.startswith(os.fsencode(lib / ("broken" + BAD + ".jpg")) + b"\t")


def test_upgrade_keeps_a_stored_path_that_holds_u_ffff(db_path: str) -> None:
    """Revision 0003 escapes U+FFFF: a path stored before it reads back unchanged."""
    engine = sa.create_engine(to_url(db_path))
    upgrade(engine, "0002")
    odd = "/p/" + ESCAPE + "\u00e9" + ESCAPE + ESCAPE + ".jpg"
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO photos (path, size, mtime_ns, status, encoder, scanned_at) "
                "VALUES (:p, 1, 1, 'ok', 'm', :t), ('/p/plain.jpg', 1, 1, 'ok', 'm', :t)"
            ),
            {"p": odd, "t": datetime(2024, 1, 1)},
        )
    engine.dispose()
    cat = open_catalog(db_path)
    try:
        with cat.session() as s:
            assert set(s.scalars(select(Photo.path))) == {odd, "/p/plain.jpg"}
    finally:
        cat.close()


# --- symlink loops ---------------------------------------------------------------------------


def test_file_symlink_loops_are_counted_with_the_skipped_files(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "self.jpg").symlink_to("self.jpg")
    (lib / "a.jpg").symlink_to("b.jpg")
    (lib / "b.jpg").symlink_to("a.jpg")
    (lib / "notes.txt").write_text("x")
    result = runner.invoke(app, ["scan", str(lib), "--db", str(tmp_path / "c.sqlite3"), "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["skipped_by_extension"] == {"(symlink loop)": 3, ".txt": 1}
    assert summary["skipped_files"] == 4
    result = runner.invoke(app, ["scan", str(lib), "--db", str(tmp_path / "c.sqlite3")])
    assert "other files skipped: 4 (" in result.stdout and "(symlink loop) 3" in result.stdout


# --- Ctrl-C and kill -9 of a real scan -------------------------------------------------------


def _library(root: Path, n: int) -> None:
    people = ["ada", "bob", "cyd", "dee"]
    for i in range(n):
        make_photo(
            root / f"p{i:03d}.jpg", [(people[i % 4], (20 + i % 50, 30, 60))], size=(200, 150)
        )


def _cli_cmd(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tests.fake_encoder_cli", *args]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(_cli_cmd(args), cwd=ROOT, env=env, capture_output=True, timeout=120)


def _fake_env(log: Path, delay: float, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FAKE_ENCODER_LOG": str(log),
        "FAKE_ENCODER_DELAY": str(delay),
        **extra,
    }


def _wait_for_calls(log: Path, n: int, proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the scan finished before the signal"
        if calls(log) >= n:
            return calls(log)
        time.sleep(0.01)
    raise AssertionError("the scan did not get going in time")


def _count(db: str, sql: str) -> int:
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(con.execute(sql).fetchone()[0])
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_keeps_every_analysed_photo_and_reports_the_true_count(
    tmp_path: Path, jobs: int
) -> None:
    total = 60
    lib, db, log = tmp_path / "lib", str(tmp_path / "cat.sqlite3"), tmp_path / "calls.log"
    _library(lib, total)
    # One batch would hold every photo: everything kept on Ctrl-C is kept by the interrupt.
    args = ["scan", str(lib), "--db", db, "-j", str(jobs), "-q", "--batch-size", "1000"]
    proc = subprocess.Popen(
        _cli_cmd(args),
        cwd=ROOT,
        env=_fake_env(log, 0.05),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        started = _wait_for_calls(log, 20, proc, timeout=60)
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        _out, err_bytes = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = err_bytes.decode()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err and "Errno" not in err
    # (the message before issue 16 said "after N of M photos; they are saved")
    found = re.search(r"Scan interrupted(?::| after) (\d+) of (\d+) photos", err)
    assert found, err
    reported = int(found.group(1))
    assert int(found.group(2)) == total
    assert _count(db, "SELECT count(*) FROM photos") == reported
    assert _count(db, "SELECT count(DISTINCT photo_id) FROM faces") == reported
    # Only photos still in the workers' hands (at most 3 per worker are handed out) are lost.
    assert reported >= started - 3 * jobs

    before = calls(log)
    resumed = _cli(
        ["scan", str(lib), "--db", db, "-j", str(jobs), "-q", "--json"], _fake_env(log, 0)
    )
    assert resumed.returncode == 0, resumed.stderr.decode()
    summary = json.loads(resumed.stdout)
    assert (summary["unchanged"], summary["new"]) == (reported, total - reported)
    assert calls(log) - before == total - reported, "saved photos were not analysed again"


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return kids


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead orphan waits for its new parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("watchdog_only", [False, True], ids=["pdeathsig", "watchdog"])
def test_kill_9_of_the_scan_leaves_no_worker_running(tmp_path: Path, watchdog_only: bool) -> None:
    """Linux workers get SIGKILL from the kernel when the scan dies; the watchdog alone (what
    macOS has) also ends them within a second."""
    lib, db, log = tmp_path / "lib", str(tmp_path / "cat.sqlite3"), tmp_path / "calls.log"
    _library(lib, 40)
    extra = {"FAKE_ENCODER_NO_PDEATHSIG": "1"} if watchdog_only else {}
    proc = subprocess.Popen(
        _cli_cmd(["scan", str(lib), "--db", db, "-j", "2", "-q"]),
        cwd=ROOT,
        env=_fake_env(log, 0.2, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        _wait_for_calls(log, 4, proc, timeout=60)
        workers = _children(proc.pid)
        assert len(workers) >= 2  # the pool (and anything else the scan started)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _running(w)], "workers outlived the killed scan"
    finally:
        if proc.poll() is None:
            proc.kill()
        for w in workers:
            if _running(w):
                os.kill(w, signal.SIGKILL)
