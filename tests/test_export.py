"""`export DEST`: per-person folders, idempotent re-runs, renames, clashes, user files, failures."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog
from photocluster.catalog.embeddings import blob_to_embedding
from photocluster.catalog.models import Face, Person, Photo
from photocluster.cli import app
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.export import folders as export_mod
from photocluster.export.folders import ExportOptions, ExportStopped, export_people
from photocluster.export.manifest import MANIFEST_NAME
from photocluster.ingest.scan import scan
from tests.fakes import PEOPLE, make_photo, person_vector


def name_people(catalog: Catalog, names: dict[str, str | None]) -> dict[str, int]:
    """Create one Person per fake colour in ``names`` and put every face of that colour in it."""
    vectors = {key: person_vector(PEOPLE[key]) for key in names}
    ids: dict[str, int] = {}
    with catalog.session() as s:
        for key, name in names.items():
            person = Person(name=name, hidden=False, created_at=datetime(2024, 1, 1))
            s.add(person)
            s.flush()
            ids[key] = person.id
        for face in s.scalars(select(Face)):
            emb = blob_to_embedding(face.embedding)
            key = min(vectors, key=lambda k: float(np.linalg.norm(vectors[k] - emb)))
            if float(np.linalg.norm(vectors[key] - emb)) < 0.3:
                face.person_id = ids[key]
    return ids


def rename(catalog: Catalog, person_id: int, name: str | None) -> None:
    with catalog.session() as s:
        s.get_one(Person, person_id).name = name


@pytest.fixture
def library(tmp_path: Path, catalog: Catalog, fake_options) -> tuple[Path, dict[str, int]]:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    make_photo(lib / "2020" / "IMG_1.jpg", [("ada", (20, 20, 60))])
    make_photo(lib / "2021" / "IMG_1.jpg", [("ada", (40, 40, 60))])  # same name, other photo
    make_photo(lib / "2021" / "party.png", [("ada", (20, 20, 60)), ("bob", (200, 50, 70))])
    make_photo(lib / "2021" / "bob.jpg", [("bob", (60, 60, 70))])
    make_photo(lib / "2021" / "cyd.jpg", [("cyd", (60, 60, 70))])
    make_photo(lib / "2021" / "none.jpg", [])
    scan(catalog, fake_options(lib))
    ids = name_people(catalog, {"ada": "Ada", "bob": "Bob", "cyd": None})
    return lib, ids


def tree(dest: Path) -> dict[str, str]:
    """Every file under DEST (manifest aside) -> where it points / 'file'."""
    result = {}
    for root, _dirs, files in os.walk(dest):
        for f in files:
            p = Path(root) / f
            rel = str(p.relative_to(dest))
            if rel == MANIFEST_NAME:
                continue
            result[rel] = os.readlink(p) if p.is_symlink() else "file"
    return result


def run(catalog: Catalog, dest: Path, **kw: object):  # type: ignore[no-untyped-def]
    return export_people(catalog, ExportOptions(dest=str(dest), **kw))  # type: ignore[arg-type]


def test_one_folder_per_named_person_with_symlinks(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = library
    dest = tmp_path / "People"
    summary = run(catalog, dest)
    assert summary.mode == "symlink"
    assert any("symbolic links" in n for n in summary.notes)
    assert tree(dest) == {
        "Ada/IMG_1.jpg": str(lib / "2020" / "IMG_1.jpg"),
        "Ada/IMG_1 (2).jpg": str(lib / "2021" / "IMG_1.jpg"),
        "Ada/party.png": str(lib / "2021" / "party.png"),
        "Bob/party.png": str(lib / "2021" / "party.png"),
        "Bob/bob.jpg": str(lib / "2021" / "bob.jpg"),
    }
    assert (summary.people, summary.photos, summary.added) == (2, 4, 5)
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert sorted(manifest["entries"]) == sorted(tree(dest))
    assert sorted(manifest["folders"]) == ["Ada", "Bob"]


def test_include_unnamed_and_person_filter(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    _, ids = library
    dest = tmp_path / "out"
    run(catalog, dest, include_unnamed=True)
    assert f"Unknown {ids['cyd']:04d}/cyd.jpg" in tree(dest)
    only = tmp_path / "only"
    run(catalog, only, people=["bob"])  # case-insensitive name
    assert sorted(tree(only)) == ["Bob/bob.jpg", "Bob/party.png"]
    run(catalog, only, people=[str(ids["cyd"])])  # by id; Bob's entries go away
    assert sorted(tree(only)) == [f"Unknown {ids['cyd']:04d}/cyd.jpg"]
    with pytest.raises(NotFound, match="No person called 'Zed'"):
        run(catalog, only, people=["Zed"])


def test_second_run_changes_nothing(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    dest = tmp_path / "People"
    run(catalog, dest)
    before = {rel: os.lstat(dest / rel) for rel in tree(dest)}
    again = run(catalog, dest)
    assert again.changed == 0
    assert again.unchanged == 5
    assert again.actions == []
    after = {rel: os.lstat(dest / rel) for rel in tree(dest)}
    assert {k: (v.st_ino, v.st_mtime_ns) for k, v in before.items()} == {
        k: (v.st_ino, v.st_mtime_ns) for k, v in after.items()
    }
    dry = run(catalog, dest, dry_run=True)
    assert dry.actions == [] and dry.changed == 0


def test_dry_run_prints_the_plan_and_touches_nothing(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    dest = tmp_path / "People"
    plan = run(catalog, dest, dry_run=True)
    assert not dest.exists()
    assert sorted(a.rel for a in plan.actions if a.kind == "add") == sorted(
        ["Ada/IMG_1.jpg", "Ada/IMG_1 (2).jpg", "Ada/party.png", "Bob/party.png", "Bob/bob.jpg"]
    )


def test_rename_moves_the_folder_and_leaves_user_files(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    lib, ids = library
    dest = tmp_path / "People"
    run(catalog, dest)
    (dest / "Bob" / "my notes.txt").write_text("mine")
    (dest / "mine").mkdir()
    (dest / "mine" / "x.jpg").write_text("user file")
    inode = os.lstat(dest / "Ada" / "party.png").st_ino
    rename(catalog, ids["ada"], "Ada Lovelace")
    rename(catalog, ids["bob"], "Robert")
    summary = run(catalog, dest)
    assert summary.moved == 5 and summary.added == 0 and summary.removed == 0
    t = tree(dest)
    assert not (dest / "Ada").exists()  # only our files were in it: gone
    assert t["Ada Lovelace/party.png"] == str(lib / "2021" / "party.png")
    assert t["Ada Lovelace/IMG_1 (2).jpg"] == str(lib / "2021" / "IMG_1.jpg")
    assert os.lstat(dest / "Ada Lovelace" / "party.png").st_ino == inode  # moved, not remade
    assert "Robert/bob.jpg" in t
    # Bob's folder had a user file: kept, with only that file in it.
    assert sorted(os.listdir(dest / "Bob")) == ["my notes.txt"]
    assert (dest / "Bob" / "my notes.txt").read_text() == "mine"
    assert (dest / "mine" / "x.jpg").read_text() == "user file"
    assert any("Bob" in n and "did not make" in n for n in summary.notes)
    # Un-naming removes the folder's links; export of nobody leaves user files alone.
    rename(catalog, ids["ada"], None)
    rename(catalog, ids["bob"], None)
    gone = run(catalog, dest)
    assert gone.removed == 5
    assert tree(dest) == {"Bob/my notes.txt": "file", "mine/x.jpg": "file"}


def test_user_file_with_our_name_is_never_overwritten_or_removed(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    lib, ids = library
    dest = tmp_path / "People"
    (dest / "Bob").mkdir(parents=True)
    (dest / "Bob" / "bob.jpg").write_bytes(b"the user's own file")
    run(catalog, dest)
    assert (dest / "Bob" / "bob.jpg").read_bytes() == b"the user's own file"
    assert os.readlink(dest / "Bob" / "bob (2).jpg") == str(lib / "2021" / "bob.jpg")
    rename(catalog, ids["bob"], None)
    run(catalog, dest)
    assert sorted(os.listdir(dest / "Bob")) == ["bob.jpg"]  # ours gone, theirs kept
    assert (dest / "Bob" / "bob.jpg").read_bytes() == b"the user's own file"


def test_replaced_entry_is_left_alone(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    _, ids = library
    dest = tmp_path / "People"
    run(catalog, dest)
    (dest / "Bob" / "bob.jpg").unlink()
    (dest / "Bob" / "bob.jpg").write_text("edited by the user")
    rename(catalog, ids["bob"], None)
    summary = run(catalog, dest)
    assert summary.kept_changed == ["Bob/bob.jpg"]
    assert (dest / "Bob" / "bob.jpg").read_text() == "edited by the user"


def test_file_names_stay_stable_when_a_clashing_photo_leaves(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = library
    dest = tmp_path / "People"
    run(catalog, dest)
    with catalog.session() as s:
        photo = s.scalars(select(Photo).where(Photo.path == str(lib / "2020" / "IMG_1.jpg"))).one()
        for face in photo.faces:
            face.person_id = None
    summary = run(catalog, dest)
    assert summary.removed == 1 and summary.added == 0
    assert os.readlink(dest / "Ada" / "IMG_1 (2).jpg") == str(lib / "2021" / "IMG_1.jpg")
    assert not (dest / "Ada" / "IMG_1.jpg").exists()


def test_names_that_sanitise_alike_get_distinct_folders(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    _, ids = library
    rename(catalog, ids["ada"], "a/b")
    rename(catalog, ids["bob"], "a:b")
    dest = tmp_path / "People"
    summary = run(catalog, dest)
    assert summary.folders == {"a_b": "a/b", "a_b (2)": "a:b"}
    assert sorted(os.listdir(dest / "a_b (2)")) == ["bob.jpg", "party.png"]


@pytest.mark.parametrize("inside", ["lib/2021/People", "lib/People", "."])
def test_dest_inside_or_around_the_library_is_refused(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]], inside: str
) -> None:
    dest = tmp_path / inside
    with pytest.raises(PhotoclusterError, match="Refusing to export into"):
        run(catalog, dest)
    assert not (dest / MANIFEST_NAME).exists()
    assert not (tmp_path / "lib" / "People").exists()


def test_dest_reached_through_a_symlink_into_the_library_is_refused(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    (tmp_path / "sneaky").symlink_to(tmp_path / "lib")
    with pytest.raises(PhotoclusterError, match="a folder scanned into this catalog"):
        run(catalog, tmp_path / "sneaky" / "People")


def test_hardlink_and_copy_modes_and_switching_modes(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = library
    dest = tmp_path / "People"
    s = run(catalog, dest, mode="hardlink")
    assert s.mode == "hardlink"
    src = lib / "2021" / "bob.jpg"
    assert os.stat(dest / "Bob" / "bob.jpg").st_ino == os.stat(src).st_ino
    assert not (dest / "Bob" / "bob.jpg").is_symlink()
    assert run(catalog, dest, mode="hardlink").changed == 0
    c = run(catalog, dest, mode="copy")
    assert c.mode == "copy" and c.updated == 5
    copy = dest / "Bob" / "bob.jpg"
    assert not copy.is_symlink() and os.stat(copy).st_ino != os.stat(src).st_ino
    assert copy.read_bytes() == src.read_bytes()
    assert run(catalog, dest, mode="copy").changed == 0
    assert src.read_bytes() == copy.read_bytes()  # the original is untouched


def test_no_symlinks_on_dest_falls_back_to_copies_and_says_so(
    tmp_path: Path,
    catalog: Catalog,
    library: tuple[Path, dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_symlinks(*_a: object, **_k: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(export_mod.os, "symlink", no_symlinks)
    dest = tmp_path / "People"
    summary = run(catalog, dest, mode="symlink")
    assert summary.mode == "copy"
    assert any("does not allow symbolic links" in n for n in summary.notes)
    assert tree(dest)["Bob/bob.jpg"] == "file"


@pytest.mark.parametrize(
    ("code", "words"),
    [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left on device")],
)
def test_failure_mid_export_stops_clearly_and_a_rerun_completes(
    tmp_path: Path,
    catalog: Catalog,
    library: tuple[Path, dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    words: str,
) -> None:
    dest = tmp_path / "People"
    real_create = export_mod.create_entry
    made = []

    def failing_create(target: Path, planned: export_mod.PlannedFile, mode: str) -> str:
        if len(made) == 2:
            raise OSError(code, os.strerror(code), str(target))
        made.append(target)
        return real_create(target, planned, mode)

    monkeypatch.setattr(export_mod, "create_entry", failing_create)
    with pytest.raises(ExportStopped) as info:
        run(catalog, dest)
    message = str(info.value)
    assert words in message and "run the same command again" in message
    assert "2 of 5" in message
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    assert len(manifest["entries"]) == 2  # what was made is recorded
    monkeypatch.setattr(export_mod, "create_entry", real_create)
    again = run(catalog, dest)
    assert (again.added, again.unchanged) == (3, 2)
    assert len(tree(dest)) == 5
    assert run(catalog, dest).changed == 0


def test_real_read_only_folder_stops_with_a_clear_message(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions (the monkeypatched test covers this)")
    dest = tmp_path / "People"
    (dest / "Bob").mkdir(parents=True)
    (dest / "Bob").chmod(0o555)
    try:
        with pytest.raises(ExportStopped, match="Permission denied"):
            run(catalog, dest)
    finally:
        (dest / "Bob").chmod(0o755)
    assert len(tree(run(catalog, dest) and dest)) == 5


def test_lost_manifest_adopts_existing_links_instead_of_duplicating(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    dest = tmp_path / "People"
    run(catalog, dest)
    (dest / MANIFEST_NAME).unlink()
    again = run(catalog, dest)
    assert again.added == 0 and again.unchanged == 5
    assert len(tree(dest)) == 5


def test_corrupt_manifest_is_reported_and_nothing_is_removed(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    _, ids = library
    dest = tmp_path / "People"
    run(catalog, dest)
    (dest / MANIFEST_NAME).write_text("{not json")
    rename(catalog, ids["bob"], None)
    summary = run(catalog, dest)
    assert any("Ignoring the export manifest" in n for n in summary.notes)
    assert summary.removed == 0
    assert (dest / "Bob" / "bob.jpg").is_symlink()


def test_report_is_written_with_build_report(
    tmp_path: Path,
    catalog: Catalog,
    library: tuple[Path, dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = []

    def fake_build_report(session: object) -> dict[str, object]:
        seen.append(session)
        return {"schema": "photocluster.report/2", "people": []}

    monkeypatch.setattr(export_mod, "build_report", fake_build_report)
    dest = tmp_path / "People"
    summary = run(catalog, dest, report_path=str(tmp_path / "report.json"))
    assert summary.report_path == str(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["schema"] == "photocluster.report/2"
    assert len(seen) == 1


def test_report_with_the_real_people_report(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    report = tmp_path / "People" / "people.json"
    run(catalog, tmp_path / "People", report_path=str(report))
    data = json.loads(report.read_text())
    assert data["schema"] == "photocluster.report/2"


def test_cli_export_json_and_refusal(
    tmp_path: Path, db_path: str, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    runner = CliRunner()
    dest = tmp_path / "People"
    result = runner.invoke(app, ["export", str(dest), "--db", db_path, "--json", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["added"] == 5 and data["mode"] == "symlink"
    result = runner.invoke(app, ["export", str(dest), "--db", db_path, "-n"])
    assert result.exit_code == 0
    assert "would add 0" in result.stdout
    bad = runner.invoke(app, ["export", str(tmp_path / "lib" / "x"), "--db", db_path])
    assert bad.exit_code == 1
    assert "Refusing to export" in bad.stderr
    wrong = runner.invoke(app, ["export", str(dest), "--db", db_path, "--mode", "teleport"])
    assert wrong.exit_code == 2


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_report_that_cannot_be_written_fails_before_any_change(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]], where: str
) -> None:
    if where == "a folder":
        report = tmp_path / "reports"
        report.mkdir()
    else:
        (tmp_path / "afile").write_text("x")
        report = tmp_path / "afile" / "sub" / "r.json"
    dest = tmp_path / "People"
    with pytest.raises(PhotoclusterError, match="Cannot write the report"):
        run(catalog, dest, report_path=str(report))
    assert not dest.exists()


def test_cli_export_says_person_for_one_and_draws_no_empty_bar(
    tmp_path: Path, db_path: str, catalog: Catalog, library: tuple[Path, dict[str, int]]
) -> None:
    """Issue 17: "Exported 1 people", and a "0file" bar when there is nothing to do."""
    runner = CliRunner()
    dest = tmp_path / "People"
    first = runner.invoke(app, ["export", str(dest), "--db", db_path, "--person", "Ada"])
    assert first.exit_code == 0, first.output
    assert "Exported 1 person (3 photos)" in first.stdout
    again = runner.invoke(app, ["export", str(dest), "--db", db_path, "--person", "Ada"])
    assert again.exit_code == 0, again.output
    assert "0file" not in again.stderr and "Exporting" not in again.stderr
    both = runner.invoke(app, ["export", str(dest), "--db", db_path])
    assert "Exported 2 people" in both.stdout
