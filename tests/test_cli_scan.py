"""The real CLI with real dlib: sample_data, exit codes, and interruption (Ctrl-C, kill -9)."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from photocluster.cli import app
from tests.conftest import SAMPLE_DATA

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _db_rows(db: str, sql: str) -> list[tuple]:
    con = sqlite3.connect(db, timeout=30)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def sample_catalog(tmp_path_factory: pytest.TempPathFactory) -> str:
    """sample_data scanned once with the real encoder (jobs 2)."""
    db = str(tmp_path_factory.mktemp("sample") / "cat.sqlite3")
    code, _out, err = _run("scan", str(SAMPLE_DATA), "--db", db, "--json", "-q", "-j", "2")
    assert code == 0, err
    return db


@pytest.mark.dlib
def test_sample_data_scan_finds_faces_and_reports_the_corrupt_file(sample_catalog: str) -> None:
    per_file = dict(
        _db_rows(
            sample_catalog,
            "SELECT p.path, count(f.id) FROM photos p LEFT JOIN faces f ON f.photo_id = p.id "
            "GROUP BY p.path",
        )
    )
    names = {Path(p).relative_to(SAMPLE_DATA).as_posix(): n for p, n in per_file.items()}
    assert names["hopper_exif_rotated.jpg"] == 1
    assert names["group_photo.jpg"] == 2
    assert names["originals/grace_hopper.jpg"] == 1
    assert names["originals/camera.png"] == 0
    assert sum(names.values()) >= 7
    failed = _db_rows(sample_catalog, "SELECT path, error FROM photos WHERE status = 'failed'")
    assert [Path(p).name for p, _ in failed] == ["corrupt_truncated.jpg"]
    taken = _db_rows(
        sample_catalog, "SELECT taken_at FROM photos WHERE path LIKE '%collins_dated_2021.jpg'"
    )
    assert taken[0][0].startswith("2021-06-01 12:00:00")


@pytest.mark.dlib
def test_rotated_photo_box_is_in_displayed_pixels(sample_catalog: str) -> None:
    ((w, h, left, top, right, bottom),) = _db_rows(
        sample_catalog,
        "SELECT p.width, p.height, f.left, f.top, f.right, f.bottom FROM faces f "
        "JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE '%hopper_exif_rotated.jpg'",
    )
    raw = Image.open(SAMPLE_DATA / "hopper_exif_rotated.jpg").size
    assert (w, h) == (raw[1], raw[0]), "width/height are the displayed (rotated) size"
    assert 0 <= left < right <= w and 0 <= top < bottom <= h
    # Same face as the upright original: the box sits in the same place relative to the photo.
    ((ow, oh, ol, ot, o_right, o_bottom),) = _db_rows(
        sample_catalog,
        "SELECT p.width, p.height, f.left, f.top, f.right, f.bottom FROM faces f "
        "JOIN photos p ON p.id = f.photo_id WHERE p.path LIKE '%originals/grace_hopper.jpg'",
    )
    assert abs(left / w - ol / ow) < 0.03 and abs(top / h - ot / oh) < 0.03
    assert abs(right / w - o_right / ow) < 0.03 and abs(bottom / h - o_bottom / oh) < 0.03


@pytest.mark.dlib
def test_status_reports_and_lists_failures(sample_catalog: str) -> None:
    code, out, _ = _run("status", "--db", sample_catalog, "--json")
    assert code == 0
    status = json.loads(out)
    assert status["photos"] == 8 and status["photos_failed"] == 1
    code, out, _ = _run("status", "--failed", "--db", sample_catalog)
    assert code == 0
    assert "corrupt_truncated.jpg\tcannot decode image" in out


@pytest.mark.dlib
def test_scan_keeps_the_face_index_and_find_names_a_new_photo(
    sample_catalog: str, tmp_path: Path
) -> None:
    from photocluster.settings import Settings

    assert (Settings(db=sample_catalog).cache_dir / "face-index" / "meta.json").exists()
    # a photo the catalog has not seen: Grace Hopper's portrait, mirrored and shrunk
    img = Image.open(SAMPLE_DATA / "originals" / "grace_hopper.jpg").convert("RGB")
    img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img.thumbnail((400, 400))
    img.save(tmp_path / "hopper_mirror.jpg", quality=90)
    code, out, err = _run(
        "find", str(tmp_path / "hopper_mirror.jpg"), "--db", sample_catalog, "--json", "-q"
    )
    assert code == 0, err
    doc = json.loads(out)
    (face,) = doc["faces"]
    assert face["verdict"] == "known"
    assert 0 < face["best"]["nearest_face"] < 0.5
    hopper = {"hopper_exif_rotated.jpg", "grace_hopper.jpg"}
    assert Path(face["neighbours"][0]["photo"]).name in hopper
    assert face["neighbours"][0]["person_id"] == face["best"]["person_id"]
    # the photo was only looked up: the catalog did not change
    assert not _db_rows(sample_catalog, "SELECT 1 FROM photos WHERE path LIKE '%hopper_mirror%'")


def test_scan_summary_is_json_on_stdout_and_progress_stays_off_it(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "x.txt").write_text("x")
    code, out, _ = _run("scan", str(lib), "--db", str(tmp_path / "c.sqlite3"), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["seen"] == 0 and summary["skipped_by_extension"] == {".txt": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "/definitely/not/here"], "Folder not found"),
        (["scan", ".", "--detector", "magic"], "unknown detector"),
        (["status", "--db", "postgresql+psycopg://x@127.0.0.1:1/none"], "Cannot reach"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_1(
    tmp_path: Path, args: list[str], message: str
) -> None:
    if "--db" not in args:
        args = [*args, "--db", str(tmp_path / "c.sqlite3")]
    code, out, err = _run(*args)
    assert code == 1
    assert message in err and "Traceback" not in err
    assert out == ""


def test_every_command_has_help_with_an_example() -> None:
    import typer.main

    from photocluster.cli import app as the_app

    group = typer.main.get_command(the_app)
    for name in group.list_commands(None):  # type: ignore[arg-type]
        code, out, _ = _run(name, "--help")
        assert code == 0, name
        assert "Example: photocluster" in out, f"`{name} --help` has no example"


# --- interruption with a real scan subprocess ------------------------------------------------


def _library_of_copies(root: Path, n: int) -> None:
    """n distinct small photos with real faces, from the sample portraits."""
    sources = [SAMPLE_DATA / "originals" / "grace_hopper.jpg", SAMPLE_DATA / "group_photo.jpg"]
    root.mkdir(parents=True)
    for i in range(n):
        img = Image.open(sources[i % 2]).convert("RGB")
        img.thumbnail((500, 500))
        img.putpixel((0, 0), (i % 256, i // 256, 7))  # distinct bytes
        img.save(root / f"p{i:03d}.jpg", quality=90)


def _scan_cmd(lib: Path, db: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "photocluster",
        "scan",
        str(lib),
        "--db",
        db,
        "-j",
        "1",
        "--batch-size",
        "4",
        *extra,
    ]


def _wait_for_rows(db: str, at_least: int, proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the scan finished before it could be interrupted"
        try:
            n = _db_rows(db, "SELECT count(*) FROM photos")[0][0]
        except sqlite3.OperationalError:
            n = 0
        if n >= at_least:
            return int(n)
        time.sleep(0.05)
    raise AssertionError("the scan did not commit in time")


def _faces_per_photo(db: str) -> dict[str, int]:
    return dict(
        _db_rows(
            db,
            "SELECT p.path, count(f.id) FROM photos p LEFT JOIN faces f ON f.photo_id = p.id "
            "GROUP BY p.path",
        )
    )


@pytest.mark.dlib
@pytest.mark.slow
def test_kill_9_mid_scan_loses_at_most_a_batch_and_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib"
    _library_of_copies(lib, 40)
    db = str(tmp_path / "cat.sqlite3")
    proc = subprocess.Popen(
        _scan_cmd(lib, db, "-q"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    committed = _wait_for_rows(db, 8, proc, timeout=120)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after_kill = _faces_per_photo(db)
    assert len(after_kill) >= committed
    resumed = subprocess.run(_scan_cmd(lib, db, "--json", "-q"), capture_output=True, check=True)
    summary = json.loads(resumed.stdout)
    assert summary["unchanged"] == len(after_kill), "committed photos were not redone"
    assert summary["new"] == 40 - len(after_kill)
    # A clean reference scan of the same photos gives exactly the same faces per photo.
    ref = str(tmp_path / "ref.sqlite3")
    subprocess.run(_scan_cmd(lib, ref, "-q", "-j", "2"), capture_output=True, check=True)
    assert _faces_per_photo(db) == _faces_per_photo(ref)
    dupes = _db_rows(
        db,
        "SELECT photo_id, left, top, count(*) FROM faces GROUP BY photo_id, left, top "
        "HAVING count(*) > 1",
    )
    assert dupes == []


@pytest.mark.dlib
def test_ctrl_c_keeps_finished_photos_says_how_to_resume_and_exits_130(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _library_of_copies(lib, 30)
    db = str(tmp_path / "cat.sqlite3")
    proc = subprocess.Popen(
        _scan_cmd(lib, db, "-q"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _wait_for_rows(db, 4, proc, timeout=120)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Run the same command again to continue" in err
    assert b"Traceback" not in err
    kept = len(_faces_per_photo(db))
    assert 4 <= kept < 30


@pytest.mark.dlib
@pytest.mark.slow
def test_cnn_detector_finds_the_face_and_is_a_separate_cache_key(tmp_path: Path) -> None:
    """--detector cnn goes through dlib's CNN model (slow on CPU: a small view keeps it short)."""
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(SAMPLE_DATA / "originals" / "grace_hopper.jpg", lib / "hopper.jpg")
    db = str(tmp_path / "cat.sqlite3")
    args = ["scan", str(lib), "--db", db, "-q", "--json", "--no-cluster", "-j", "1"]
    code, out, err = _run(*args, "--detector", "cnn", "--detect-size", "320", "--upsample", "0")
    assert code == 0, err
    assert json.loads(out)["faces_found"] == 1
    ((encoder, left, right),) = _db_rows(
        db, "SELECT p.encoder, f.left, f.right FROM photos p JOIN faces f ON f.photo_id = p.id"
    )
    assert encoder.startswith("dlib_resnet_v1_flip;cnn;d320;u0")
    assert 100 < right - left < 300  # a face-sized box in displayed pixels (photo is 512 wide)
    # Switching back to HOG re-analyses the photo: results are cached per detector.
    code, out, _ = _run(*args)
    assert json.loads(out)["changed"] == 1


@pytest.mark.dlib
def test_eval_command_on_a_labelled_copy_of_sample_data(tmp_path: Path) -> None:
    """`eval` as a user runs it: a folder per person, a throw-away catalog, JSON and text."""
    root = tmp_path / "labelled"
    files = {
        "hopper": ["originals/grace_hopper.jpg", "hopper_exif_rotated.jpg"],
        "collins": ["family/collins_dated_2021.jpg", "originals/astronaut.png"],
        "_group": ["group_photo.jpg"],
    }
    for person, names in files.items():
        (root / person).mkdir(parents=True)
        for name in names:
            shutil.copy(SAMPLE_DATA / name, root / person / Path(name).name)
    code, out, err = _run("eval", str(root), "--json", "-q")
    assert code == 0, err
    r = json.loads(out)
    assert (r["photos"], r["photos_labelled"], r["labelled_faces"], r["identities"]) == (5, 4, 4, 2)
    assert set(r["pairwise"]) == {"precision", "recall", "f"}
    assert r["verification"]["genuine_pairs"] == 2 and r["verification"]["impostor_pairs"] == 4
    assert r["labels"]["multi_face_photos"] == 0
    assert r["version"] == 2 and r["strangers"]["count"] == 0
    code, out, err = _run("eval", str(root), "-q")
    assert code == 0 and "pairwise precision" in out and "verification over 2 same" in out
    # no labelled photo: a clear error, exit 1
    code, _out, err = _run("eval", str(root / "_group"), "-q")
    assert code == 1 and "No labelled photos" in err
    # filed under Collins, the group photo's largest face is Hopper's: the label check says so
    shutil.move(root / "_group" / "group_photo.jpg", root / "collins" / "group_photo.jpg")
    code, out, err = _run("eval", str(root), "-q")
    assert code == 0, err
    assert "labels: in 1 of 1 labelled photos with several faces" in out
    # Collins's own face in it is the scored one: the clustering is right about it
    assert "  pairwise precision 1.000  recall 1.000  F 1.000" in out
    assert "largest face instead: pairwise precision" in out
