"""What a new user meets in the first hour (issue 18): the demo catalog, export's refusal, help,
--version, the README's commands, the tests' own home, and the wording of scan/find/cluster/tune.

Fake encoder throughout (the CLI's dlib adapter is replaced), so these run in the quick loop.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.cli import app
from photocluster.ingest.scan import scan
from photocluster.people.assign import ClusterChanges, FaceMove, cluster_catalog
from photocluster.settings import default_db, default_home
from tests.conftest import ROOT, SAMPLE_DATA
from tests.fakes import FakeEncoder, make_photo
from tests.test_people import OPTS, faces_by_key, keys, library

runner = CliRunner()
SAMPLE_MARKER = ".photocluster-sample"  # the file that marks sample_data as the demo library


def demo_db() -> str:
    return str(default_home() / "demo.sqlite3")


@pytest.fixture
def fake_dlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's encoder (inline, -j 1) is the fake one."""
    monkeypatch.setattr(
        "photocluster.ingest.encoder.DlibEncoder", lambda detector="hog": FakeEncoder()
    )


# -- 8. every test has its own home -------------------------------------------------------------

_HOMES: list[Path] = []


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_has_its_own_photocluster_home(
    run: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.getbasetemp()
    home = default_home()
    assert base in home.parents, f"{home} is not a temporary folder of this test session"
    assert Path(default_db()).parent == home and "PHOTOCLUSTER_DB" not in os.environ
    assert home not in _HOMES
    _HOMES.append(home)


# -- 2. the README's first command does not touch the user's catalog ----------------------------


def test_the_sample_photos_go_into_a_demo_catalog_and_the_default_stays_untouched(
    monkeypatch: pytest.MonkeyPatch, fake_dlib: None
) -> None:
    monkeypatch.chdir(ROOT)  # the README's command, from the project folder
    monkeypatch.setenv("UV_RUN_RECURSION_DEPTH", "1")  # as under `uv run`
    result = runner.invoke(app, ["scan", "sample_data", "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert not Path(default_db()).exists(), "the user's default catalog was created"
    demo = demo_db()
    assert Path(demo).exists()
    assert f"demo catalog of their own, {demo}" in result.stderr
    assert f"`uv run photocluster people --db {demo}`" in result.stderr
    monkeypatch.delenv("UV_RUN_RECURSION_DEPTH")  # installed some other way
    result = runner.invoke(app, ["scan", "sample_data", "-j", "1", "-q"])
    assert f"`photocluster people --db {demo}`" in result.stderr
    with contextlib.closing(open_catalog(demo)) as cat, cat.session() as s:
        paths = list(s.scalars(select(Photo.path)))
    assert paths and all(p.startswith(str(SAMPLE_DATA)) for p in paths)
    # the default catalog does not exist yet: status says so, points to the demo, creates nothing
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.strip() == (
        f"Error: No catalog at {default_db()} yet: scan a folder into it first (photocluster "
        f"scan FOLDER). The sample photos are in the demo catalog: add --db {demo}"
    )
    assert not Path(default_db()).exists()


def test_the_sample_library_is_recognised_by_its_marker_not_by_its_name(
    tmp_path: Path, fake_dlib: None
) -> None:
    from photocluster import settings

    assert settings.SAMPLE_MARKER == SAMPLE_MARKER and settings.demo_db() == demo_db()
    copy = tmp_path / "photocluster-demo"  # renamed copy: still the sample library
    copy.mkdir()
    shutil.copy(SAMPLE_DATA / SAMPLE_MARKER, copy / SAMPLE_MARKER)
    make_photo(copy / "a.png", [("ada", (10, 10, 40))])
    mine = tmp_path / "sample_data"  # the user's own folder of that name: their catalog
    make_photo(mine / "b.png", [("bob", (10, 10, 40))])
    assert runner.invoke(app, ["scan", str(copy), "-j", "1", "-q"]).exit_code == 0
    assert Path(demo_db()).exists() and not Path(default_db()).exists()
    result = runner.invoke(app, ["scan", str(mine), "-j", "1", "-q"])
    assert result.exit_code == 0 and "demo" not in result.stderr
    assert Path(default_db()).exists()
    # a catalog chosen by --db or PHOTOCLUSTER_DB is used even for the sample photos
    chosen = tmp_path / "chosen.sqlite3"
    result = runner.invoke(app, ["scan", str(copy), "--db", str(chosen), "-j", "1", "-q"])
    assert result.exit_code == 0 and "demo" not in result.stderr and chosen.exists()
    env = tmp_path / "env.sqlite3"
    result = runner.invoke(
        app, ["scan", str(copy), "-j", "1", "-q"], env={"PHOTOCLUSTER_DB": str(env)}
    )
    assert result.exit_code == 0 and "demo" not in result.stderr and env.exists()


# -- 3. export refuses only a DEST inside a folder that was scanned -----------------------------


def _named_catalog(db: str, *roots: Path) -> None:
    with contextlib.closing(open_catalog(db)) as cat:
        for root in roots:
            scan(cat, _fake_scan_options(root))
        cluster_catalog(cat, OPTS)
        ada = next(pid for key, (_f, pid, _c) in faces_by_key(cat).items() if "ada/" in key)
        with cat.session() as s:
            s.execute(update(Person).where(Person.id == ada).values(name="Ada"))


def _fake_scan_options(root: Path):  # type: ignore[no-untyped-def]
    from photocluster.ingest.encoder import EncoderParams
    from photocluster.ingest.scan import ScanOptions

    return ScanOptions(root=str(root), params=EncoderParams(), jobs=1, encoder_factory=_fake)


def _fake(params):  # type: ignore[no-untyped-def]
    return FakeEncoder(params)


def test_export_next_to_the_library_is_allowed_and_inside_a_scanned_folder_refused(
    tmp_path: Path, db_path: str
) -> None:
    home = tmp_path / "home"
    pictures, elsewhere = home / "Pictures", tmp_path / "opt" / "sample_data"
    library(pictures, {"ada": 5})
    library(elsewhere, {"ada": 1}, start=5)
    _named_catalog(db_path, pictures, elsewhere)
    # ~/People: the photos' common folder holds it, but nobody scanned that folder
    result = runner.invoke(app, ["export", str(home / "People"), "--db", db_path, "-q"])
    assert result.exit_code == 0, result.stderr
    assert (home / "People" / "Ada").is_dir()
    # inside a scanned folder: refused, naming the folder
    dest = pictures / "2024" / "People"
    result = runner.invoke(app, ["export", str(dest), "--db", db_path, "-q"])
    assert result.exit_code == 1
    assert f"it is inside {pictures}, a folder scanned into this catalog" in result.stderr
    assert not dest.exists()


def test_scanned_roots_are_remembered_once_each_and_exactly(
    catalog: Catalog, tmp_path: Path
) -> None:
    from photocluster.catalog.roots import remember_root, scanned_roots

    odd = str(tmp_path / os.fsdecode(b"caf\xe9"))  # not UTF-8: a surrogate escape
    with catalog.session() as s:
        for root in ("/photos/b", "/photos/a", odd, "/photos/a"):
            remember_root(s, root)
    with catalog.session() as s:
        assert scanned_roots(s) == sorted(["/photos/a", "/photos/b", odd])


def test_scanned_roots_on_postgresql(pg_url: str) -> None:
    from photocluster.catalog.roots import remember_root, scanned_roots

    cat = open_catalog(pg_url)
    try:
        with cat.session() as s:
            remember_root(s, "/photos/a")
        with cat.session() as s:
            remember_root(s, "/photos/a")
            remember_root(s, "/photos/b")
        with cat.session() as s:
            assert scanned_roots(s) == ["/photos/a", "/photos/b"]
    finally:
        cat.close()


# -- 7. --version, and the README's commands run as written --------------------------------------


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"photocluster {importlib.metadata.version('photocluster')}\n"


def _readme_code_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    lines: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        lines += block.splitlines()
    lines += [line for line in text.splitlines() if line.startswith("    ")]  # indented code
    # the command itself: no prompt, no trailing comment
    return [line.strip().removeprefix("$ ").split("  #")[0].strip() for line in lines]


def test_readme_commands_say_uv_run_as_the_set_up_leaves_no_photocluster_on_path() -> None:
    code = _readme_code_lines()
    bare = [line for line in code if line.startswith("photocluster ")]
    assert not bare, f"README commands without `uv run`: {bare[:5]}"
    assert "uv run photocluster scan sample_data" in code
    assert "uv run photocluster --version" in (ROOT / "README.md").read_text()


def test_readme_development_section_gives_the_quick_and_the_full_test_command() -> None:
    text = (ROOT / "README.md").read_text()
    dev = text[text.index("## Development") :]
    assert 'uv run pytest -m "not slow"' in dev and "uv run pytest " in dev
    assert "uv run pytest\n" in (ROOT / ".ci" / "run").read_text()


# -- 9. the scan summary, find, cluster --dry-run, tune, help -------------------------------------


def test_scan_summary_order_faceless_photos_and_sidecars(tmp_path: Path, fake_dlib: None) -> None:
    lib = tmp_path / "lib"
    library(lib, {"ada": 4})
    make_photo(lib / "wall.png", [])
    (lib / "ada" / "0.png.xmp").write_text("<x:xmpmeta/>")  # as export-xmp writes them
    (lib / "notes.txt").write_text("x")
    db = str(tmp_path / "c.sqlite3")
    result = runner.invoke(app, ["scan", str(lib), "--db", db, "-j", "1", "-q"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"Scanned {lib}")
    assert "photos without a face: 1 of 5 read" in out
    assert "other files skipped: 1 (.txt 1)" in out and ".xmp" not in out.split("sidecars")[0]
    assert "XMP sidecars (not photos; `photocluster import-xmp` reads them): 1" in out
    assert out.index("Scanned") < out.index("clustered: ") and "lustered" not in result.stderr
    result = runner.invoke(app, ["scan", str(lib), "--db", db, "-j", "1", "-q", "--json"])
    doc = json.loads(result.stdout)
    assert doc["sidecars"] == 1 and doc["skipped_by_extension"] == {".txt": 1}
    assert doc["no_faces"] == 0 and doc["clustered"]["people_created"] == 0  # nothing new


def test_find_never_puts_a_name_beside_unknown(
    tmp_path: Path, db_path: str, fake_dlib: None
) -> None:
    library(tmp_path / "photos", {"ada": 5, "bob": 4})
    _named_catalog(db_path, tmp_path / "photos")
    stranger = make_photo(tmp_path / "new" / "eve.png", [("eve", (30, 40, 50))])
    result = runner.invoke(app, ["find", str(stranger), "--db", db_path, "-q"])
    assert result.exit_code == 0, result.stderr
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("face 1")]
    assert re.search(r": unknown \(nearest: .+, \d\.\d{3} to their centre, not a match\)$", line)
    assert "—" not in line


def test_cluster_full_dry_run_lists_the_faces_that_move(
    tmp_path: Path, catalog: Catalog, db_path: str
) -> None:
    library(tmp_path / "photos", {"ada": 5, "bob": 4, "cyd": 4})
    scan(catalog, _fake_scan_options(tmp_path / "photos"))
    cluster_catalog(catalog, OPTS)
    face = faces_by_key(catalog)
    bob, cyd = face["bob/0.png"][1], face["cyd/0.png"][1]
    with catalog.session() as s:  # a wrong merge: cyd's faces in bob's person
        s.execute(update(Face).where(Face.person_id == cyd).values(person_id=bob))
        s.delete(s.get(Person, cyd))
    result = runner.invoke(app, ["cluster", "--db", db_path, "--full", "--dry-run", "-q"])
    assert result.exit_code == 0, result.stderr
    ids = ", ".join(str(face[k][0]) for k in sorted(keys("cyd", 4)))
    assert "would change: 4 faces moved\n" in result.stdout
    assert f"    person {bob} -> new person 1: faces {ids}\n" in result.stdout


def test_a_long_list_of_moves_is_cut_and_says_how_many_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from photocluster.cli.people_cmds import MOVES_LISTED, print_changes

    moves = [FaceMove(i, 1, 2) for i in range(1, 31)] + [FaceMove(99, 3, None)]
    print_changes(ClusterChanges(mode="full", dry_run=True, faces=40, moves=moves))
    out = capsys.readouterr().out
    listed = ", ".join(map(str, range(1, MOVES_LISTED + 1)))
    assert f"    person 1 -> person 2: faces {listed} and {30 - MOVES_LISTED} more\n" in out
    assert f"({31 - MOVES_LISTED} more not listed; --json lists every move)" in out


def test_tune_explains_its_columns(tmp_path: Path, db_path: str, catalog: Catalog) -> None:
    library(tmp_path / "photos", {"ada": 5, "bob": 4})
    scan(catalog, _fake_scan_options(tmp_path / "photos"))
    result = runner.invoke(app, ["tune", "--db", db_path, "--sizes", "4", "--samples", "3", "-q"])
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    for column in (
        "size, samples, spread =",
        "unassigned =",
        "precision =",
        "recall =",
        "purity =",
    ):
        assert column in text
    assert "* = the setting this catalog clusters with" in text


def _help(*args: str) -> str:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    return result.stdout


def test_help_reads_cleanly_in_80_columns_and_lists_commands_by_the_journey() -> None:
    import typer.main

    main = _help()
    order = [main.index(f"\n  {name} ") for name in ("scan", "cluster", "name", "export")]
    assert order == sorted(order), "commands not in the order a user meets them"
    group = typer.main.get_command(app)
    for name in ["", *group.list_commands(None)]:  # type: ignore[arg-type]
        text = _help(*([name] if name else []))
        assert not re.search(r"<(str|bool|int|float|list)", text), f"type tags in {name} --help"
        assert "{" not in text.splitlines()[0], f"usage noise in {name} --help"
        assert all(len(line) <= 80 for line in text.splitlines()), f"{name} --help too wide"
        assert "…" not in text, f"something cut off in {name} --help"
    export = _help("export")
    assert export.startswith("Usage: photocluster export [OPTIONS] DEST\n")
    db = " ".join(export[export.index("--db") :].split())
    assert "~/.local/share/photocluster/catalog.sqlite3." in db


def _collected(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [line for line in done.stdout.splitlines() if "::" in line]


@pytest.mark.slow  # collects the heavy modules in a subprocess
def test_real_dlib_dask_tmux_and_concurrent_postgresql_tests_are_marked_slow() -> None:
    """`uv run pytest -m "not slow"` is the quick loop: none of these run in it."""
    heavy = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").glob("test_*.py")
        if "mark.dlib" in p.read_text()
        or p.name in ("test_naming_tmux.py", "test_concurrent_pg.py")
    )
    assert "tests/test_cli_scan.py" in heavy and "tests/test_naming_tmux.py" in heavy
    quick = _collected("-m", "not slow", *heavy, "tests/test_dask.py")
    assert not [t for t in quick if "test_naming_tmux" in t or "test_concurrent_pg" in t]
    assert not _collected("-m", "dlib and not slow", *heavy)
    dask_quick = {t.split("::")[1].split("[")[0] for t in quick if "test_dask" in t}
    assert "test_executor_is_a_bounded_window_over_the_cluster" not in dask_quick
    assert "test_scheduler_comes_from_the_environment_and_is_required" in dask_quick
