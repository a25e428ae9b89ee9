"""Scanning with the fake encoder: incremental, moves, changes, deletions, bad files, pools."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.embeddings import blob_to_embedding
from photocluster.catalog.models import Face, Person, Photo
from photocluster.errors import PhotoclusterError
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.executors import PoolExecutor
from photocluster.ingest.scan import scan
from tests.conftest import calls
from tests.fakes import FakeEncoder, make_photo


def _library(root: Path) -> Path:
    make_photo(root / "a.jpg", [("ada", (20, 20, 60))])
    make_photo(root / "b.png", [("bob", (50, 40, 70)), ("cyd", (250, 60, 70))])
    make_photo(root / "sub" / "c.jpg", [("ada", (100, 100, 80))])
    make_photo(root / "sub" / "empty.jpg", [])
    (root / "notes.txt").write_text("not a photo")
    return root


def _faces(catalog: Catalog) -> dict[str, list[tuple[int, int, int, int, int]]]:
    with catalog.session() as s:
        rows = s.execute(
            select(Photo.path, Face.id, Face.left, Face.top, Face.right, Face.bottom)
            .join(Face)
            .order_by(Photo.path, Face.left)
        ).all()
    out: dict[str, list[tuple[int, int, int, int, int]]] = {}
    for r in rows:
        out.setdefault(Path(r.path).name, []).append((r.id, r.left, r.top, r.right, r.bottom))
    return out


def test_first_scan_records_photos_faces_and_skips_other_files(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = _library(tmp_path / "lib")
    summary = scan(catalog, fake_options(root))
    assert (summary.seen, summary.new, summary.faces_found) == (4, 4, 4)
    assert summary.walk.skipped_by_extension[".txt"] == 1
    assert calls(fake_log) == 4
    faces = _faces(catalog)
    assert [f[1:] for f in faces["b.png"]] == [(50, 40, 120, 110), (250, 60, 320, 130)]
    with catalog.session() as s:
        statuses = dict(s.execute(select(Photo.path, Photo.status)).all())
        photo = s.execute(select(Photo).where(Photo.path.endswith("a.jpg"))).scalar_one()
        assert (photo.width, photo.height) == (400, 300)
        assert photo.encoder.startswith("fake_v1;hog;")
        assert len(photo.content_hash or "") == 64
        face = s.execute(select(Face).where(Face.photo_id == photo.id)).scalar_one()
        assert blob_to_embedding(face.embedding).shape == (128,)
        assert face.size == 60
    assert statuses[str(root / "sub" / "empty.jpg")] == "no_faces"


def test_rescan_of_unchanged_tree_reads_nothing(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    before = _faces(catalog)
    summary = scan(catalog, fake_options(root))
    assert (summary.unchanged, summary.new, summary.changed) == (4, 0, 0)
    assert calls(fake_log) == 4, "no photo was analysed again"
    assert _faces(catalog) == before


def test_changed_file_is_reprocessed_and_keeps_face_ids_and_names(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        face = (
            s.execute(
                select(Face).join(Photo).where(Photo.path.endswith("b.png")).order_by(Face.left)
            )
            .scalars()
            .first()
        )
        assert face is not None
        person = Person(name="Bob", hidden=False, created_at=face.photo.scanned_at)
        s.add(person)
        s.flush()
        face.person_id, face.confirmed = person.id, True
        kept_id = face.id
    # Same people, one face nudged by 4 px, one face gone, a new one added.
    make_photo(root / "b.png", [("bob", (54, 40, 70)), ("dee", (150, 150, 50))])
    os.utime(root / "b.png", ns=(1, 1_000_000_000))
    summary = scan(catalog, fake_options(root))
    assert (summary.changed, summary.unchanged) == (1, 3)
    assert calls(fake_log) == 5
    faces = _faces(catalog)["b.png"]
    assert [f[1:] for f in faces] == [(54, 40, 124, 110), (150, 150, 200, 200)]
    with catalog.session() as s:
        kept = s.get(Face, kept_id)
        assert kept is not None and kept.left == 54
        assert kept.confirmed and kept.person is not None and kept.person.name == "Bob"


def test_moved_and_renamed_files_keep_their_faces_without_reencoding(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    before = _faces(catalog)
    (root / "2024").mkdir()
    shutil.move(root / "a.jpg", root / "2024" / "renamed.jpg")
    summary = scan(catalog, fake_options(root))
    assert (summary.moved, summary.new, summary.removed) == (1, 0, 0)
    assert calls(fake_log) == 4, "a moved photo is not analysed again"
    after = _faces(catalog)
    assert after["renamed.jpg"] == before["a.jpg"]  # same face ids and boxes
    assert "a.jpg" not in after


def test_move_into_another_scanned_folder_is_recognised(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    make_photo(one / "x.jpg", [("eve", (30, 30, 60))])
    two.mkdir()
    scan(catalog, fake_options(one))
    shutil.move(one / "x.jpg", two / "x.jpg")
    summary = scan(catalog, fake_options(two))
    assert summary.moved == 1 and calls(fake_log) == 1


def test_deleted_files_leave_the_catalog(tmp_path: Path, catalog: Catalog, fake_options) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    (root / "b.png").unlink()
    summary = scan(catalog, fake_options(root))
    assert summary.removed == 1
    assert "b.png" not in _faces(catalog)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Face)) == 2


def test_an_emptied_root_keeps_its_catalog_entries(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    for p in list(root.rglob("*.jpg")) + list(root.rglob("*.png")):
        p.unlink()
    summary = scan(catalog, fake_options(root))
    assert summary.removed == 0 and summary.warnings
    assert len(_faces(catalog)) == 3


def test_scanning_another_folder_leaves_the_first_alone(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    _library(tmp_path / "lib")
    make_photo(tmp_path / "lib2" / "z.jpg", [("fay", (10, 10, 40))])
    scan(catalog, fake_options(tmp_path / "lib"))
    summary = scan(catalog, fake_options(tmp_path / "lib2"))
    assert summary.removed == 0
    assert len(_faces(catalog)) == 4


def test_changing_encoder_settings_reprocesses(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = _library(tmp_path / "lib")
    scan(catalog, fake_options(root))
    summary = scan(catalog, fake_options(root, params=EncoderParams(detect_size=800)))
    assert summary.changed == 4 and calls(fake_log) == 8


def test_bad_files_become_failures_with_reasons_and_the_scan_goes_on(
    tmp_path: Path, catalog: Catalog, fake_options, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _library(tmp_path / "lib")
    (root / "zero.jpg").write_bytes(b"")
    (root / "text.jpg").write_text("hello, I am not a JPEG")
    good = (root / "a.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(good[: len(good) // 3])
    Image.new("L", (1000, 1000)).save(root / "bomb.png")
    unreadable = root / "locked.jpg"
    shutil.copy(root / "a.jpg", unreadable)
    real_open = open

    def guarded_open(path, *a, **kw):  # type: ignore[no-untyped-def]
        if str(path) == str(unreadable):  # tests run as root, where chmod 000 still reads
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr("photocluster.ingest.analyse.open", guarded_open, raising=False)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    summary = scan(catalog, fake_options(root))
    with catalog.session() as s:
        errors = {
            Path(p).name: e
            for p, e in s.execute(select(Photo.path, Photo.error).where(Photo.status == "failed"))
        }
    assert errors.keys() == {"zero.jpg", "text.jpg", "truncated.jpg", "bomb.png", "locked.jpg"}
    assert "empty file" in errors["zero.jpg"]
    assert "not an image" in errors["text.jpg"]
    assert "decode" in errors["truncated.jpg"]
    assert "too large" in errors["bomb.png"]
    assert "permission denied" in errors["locked.jpg"]
    assert all("\n" not in e for e in errors.values())
    assert summary.failed_total == 5 and summary.faces_found == 4


def test_failed_photos_are_not_retried_unless_asked(
    tmp_path: Path, catalog: Catalog, fake_options, fake_log: Path
) -> None:
    root = tmp_path / "lib"
    root.mkdir()
    (root / "text.jpg").write_text("nope")
    scan(catalog, fake_options(root))
    scan(catalog, fake_options(root))
    assert calls(fake_log) == 0  # never reached the encoder
    again = scan(catalog, fake_options(root))
    assert (again.unchanged, again.failed_earlier, again.failed_total) == (1, 1, 0)
    assert scan(catalog, fake_options(root, retry_failed=True)).failed_total == 1


def test_file_vanishing_mid_scan_is_a_failure_not_a_crash(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    root = _library(tmp_path / "lib")
    victim = root / "sub" / "c.jpg"
    options = fake_options(root)
    inner = options.executor_factory

    def deleting_factory(jobs, factory, params):  # type: ignore[no-untyped-def]
        victim.unlink()  # after the walk, before analysis
        return inner(jobs, factory, params)

    options.executor_factory = deleting_factory
    summary = scan(catalog, options)
    assert summary.failed["file vanished during the scan"] == 1
    assert summary.faces_found == 3


def test_missing_root_is_a_clear_error(tmp_path: Path, catalog: Catalog, fake_options) -> None:
    with pytest.raises(PhotoclusterError, match="Folder not found"):
        scan(catalog, fake_options(tmp_path / "nope"))
    (tmp_path / "file.jpg").write_text("x")
    with pytest.raises(PhotoclusterError, match="Not a folder"):
        scan(catalog, fake_options(tmp_path / "file.jpg"))


def test_hidden_folders_symlink_loops_hard_links_and_fifos(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    root = _library(tmp_path / "lib")
    make_photo(root / ".thumbs" / "t.jpg", [("eve", (10, 10, 40))])
    make_photo(root / "._a.jpg", [])
    os.symlink(root, root / "sub" / "loop")  # a symlink back to the root
    os.link(root / "a.jpg", root / "hardlink.jpg")
    os.mkfifo(root / "pipe.jpg")  # would block forever if opened
    summary = scan(catalog, fake_options(root))
    assert summary.seen == 4
    assert summary.walk.loops_skipped == 1
    assert summary.walk.duplicates_skipped == 1
    assert summary.walk.skipped_by_extension["(not a regular file)"] == 1
    assert scan(catalog, fake_options(root, include_hidden=True)).new == 2


def test_pool_gives_the_same_catalog_as_inline(tmp_path: Path, fake_options) -> None:
    root = _library(tmp_path / "lib")
    results = []
    for jobs in (1, 2):
        cat = open_catalog(str(tmp_path / f"cat{jobs}.sqlite3"))
        scan(cat, fake_options(root, jobs=jobs))
        with cat.session() as s:
            results.append(
                s.execute(
                    select(Photo.path, Face.left, Face.top, Face.embedding)
                    .join(Face)
                    .order_by(Photo.path, Face.left)
                ).all()
            )
        cat.close()
    assert results[0] == results[1] and len(results[0]) == 4


class _CrashingEncoder(FakeEncoder):
    def detect(self, pixels, upsample):  # type: ignore[no-untyped-def]
        if tuple(pixels[0, 0]) == (1, 2, 3):
            os._exit(3)  # a hard crash, like a segfault in a decoder
        return super().detect(pixels, upsample)


def test_a_worker_crash_fails_only_that_photo(tmp_path: Path, catalog: Catalog) -> None:
    root = _library(tmp_path / "lib")
    poison = Image.new("RGB", (100, 100), (128, 128, 128))
    poison.putpixel((0, 0), (1, 2, 3))
    poison.save(root / "poison.png")
    from photocluster.ingest.scan import ScanOptions

    options = ScanOptions(
        root=str(root),
        jobs=2,
        encoder_factory=functools.partial(_CrashingEncoder),
        executor_factory=PoolExecutor,
    )
    summary = scan(catalog, options)
    assert summary.failed["the image decoder or face model crashed on this file"] == 1
    assert summary.faces_found == 4


def test_postgresql_catalog_scans_and_rescans(tmp_path: Path, pg_url: str, fake_options) -> None:
    root = _library(tmp_path / "lib")
    cat = open_catalog(pg_url)
    try:
        assert scan(cat, fake_options(root, jobs=2)).faces_found == 4
        (root / "a.jpg").rename(root / "moved.jpg")
        summary = scan(cat, fake_options(root))
        assert (summary.moved, summary.unchanged) == (1, 3)
        assert len(_faces(cat)) == 3
    finally:
        cat.close()
