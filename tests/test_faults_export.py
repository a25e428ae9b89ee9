"""Fault injection on the output side (issue 16): exports the user edited, no-op re-exports,
hostile sidecars, photos that changed on disk under the face index, invisible characters in
folder names. Each case broke before its fix."""

from __future__ import annotations

import errno
import os
import signal
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from PIL import Image, ImageEnhance
from sqlalchemy import select
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Photo
from photocluster.cli import app
from photocluster.export.foldernames import safe_filename, safe_name
from photocluster.export.manifest import MANIFEST_NAME
from photocluster.export.xmp.importer import ImportOptions, import_xmp
from photocluster.index.store import sync_index
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.scan import scan
from photocluster.people.find import find_in_photo
from tests.fakes import FakeEncoder
from tests.test_export import library, rename, run
from tests.test_people import library as people_library
from tests.test_xmp import EXPECTED, faces_by_name, regions_xml, unnamed

__all__ = ["library", "unnamed"]  # fixtures used by name below


def _edit_in_place(path: Path) -> bytes:
    """Change bytes in the middle of ``path`` through the same inode; size and mtime kept
    (as ``exiftool -overwrite_original_in_place -P`` or a careful editor would)."""
    st = path.stat()
    with open(path, "r+b") as fh:
        fh.seek(st.st_size // 2)
        old = fh.read(8)
        fh.seek(st.st_size // 2)
        fh.write(bytes(b ^ 0xFF for b in old))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    return path.read_bytes()


def test_a_copy_edited_in_place_is_never_deleted_or_overwritten(
    tmp_path: Path,
    catalog: Catalog,
    library: tuple[Path, dict[str, int]],
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    lib, ids = library
    dest = tmp_path / "People"
    run(catalog, dest, mode="copy")
    bob = _edit_in_place(dest / "Bob" / "bob.jpg")
    ada = _edit_in_place(dest / "Ada" / "IMG_1.jpg")

    # Bob leaves the export (his entries would be removed) and Ada's photo changes on disk
    # (her entry would be replaced by a copy of the new version).
    rename(catalog, ids["bob"], None)
    photo = lib / "2020" / "IMG_1.jpg"
    with Image.open(photo) as img:
        img.load()
        ImageEnhance.Brightness(img).enhance(1.15).save(photo, quality=90)
    scan(catalog, fake_options(lib))
    summary = run(catalog, dest, mode="copy")

    assert (dest / "Bob" / "bob.jpg").read_bytes() == bob, "deleted the user's edit"
    assert not (dest / "Bob" / "party.png").exists(), "an untouched copy is still removed"
    assert (dest / "Ada" / "IMG_1.jpg").read_bytes() == ada, "overwrote the user's edit"
    assert sorted(summary.kept_changed) == ["Ada/IMG_1.jpg", "Bob/bob.jpg"]
    assert summary.failures == []
    # the new version of Ada's photo is exported beside the edited copy
    fresh = [n for n in os.listdir(dest / "Ada") if n.startswith("IMG_1 (")]
    assert photo.read_bytes() in [(dest / "Ada" / n).read_bytes() for n in fresh]
    # and the edited copies stay alone on the next runs
    again = run(catalog, dest, mode="copy")
    assert again.changed == 0 and again.kept_changed == []
    assert (dest / "Bob" / "bob.jpg").read_bytes() == bob
    assert (dest / "Ada" / "IMG_1.jpg").read_bytes() == ada


def test_cli_export_summary_reads_as_english(
    tmp_path: Path, db_path: str, library: tuple[Path, dict[str, int]]
) -> None:
    dest = tmp_path / "People"
    result = CliRunner().invoke(app, ["export", str(dest), "--db", db_path, "--mode", "copy"])
    assert result.exit_code == 0, result.output
    assert "as copies in" in result.stdout and "copys" not in result.output
    _edit_in_place(dest / "Bob" / "bob.jpg")
    hide = CliRunner().invoke(app, ["hide", "Bob", "--db", db_path])
    assert hide.exit_code == 0, hide.output
    again = CliRunner().invoke(app, ["export", str(dest), "--db", db_path, "--mode", "copy"])
    assert again.exit_code == 0, again.output
    assert "warning: left Bob/bob.jpg: it changed since photocluster made it" in again.stderr
    assert (dest / "Bob" / "bob.jpg").exists()


def _mtimes(dest: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of DEST, every folder and every file in it, the manifest included."""
    found = {".": (os.lstat(dest).st_ino, os.lstat(dest).st_mtime_ns)}
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = Path(root) / name
            st = os.lstat(p)
            found[str(p.relative_to(dest))] = (st.st_ino, st.st_mtime_ns)
    return found


@pytest.mark.parametrize("mode", ["auto", "hardlink", "copy"])
def test_a_no_op_export_writes_nothing(
    tmp_path: Path, catalog: Catalog, library: tuple[Path, dict[str, int]], mode: str
) -> None:
    dest = tmp_path / "People"
    first = run(catalog, dest, mode=mode)
    assert first.added == 5 and (dest / MANIFEST_NAME).is_file()
    before = _mtimes(dest)
    again = run(catalog, dest, mode=mode)
    assert again.changed == 0 and again.unchanged == 5
    assert again.mode == first.mode
    assert _mtimes(dest) == before


def test_a_no_op_export_keeps_copies_made_where_links_were_impossible(
    tmp_path: Path,
    catalog: Catalog,
    library: tuple[Path, dict[str, int]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--mode hardlink with one photo on another filesystem: its copy is not made again."""
    real_link = os.link

    def link(src: str | Path, dst: str | Path) -> None:
        if Path(src).name == "bob.jpg":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    dest = tmp_path / "People"
    first = run(catalog, dest, mode="hardlink")
    assert first.mode == "hardlink" and first.added == 5
    assert os.stat(dest / "Bob" / "bob.jpg").st_nlink == 1  # a copy
    before = _mtimes(dest)
    again = run(catalog, dest, mode="hardlink")
    assert again.changed == 0 and again.unchanged == 5
    assert _mtimes(dest) == before


class _Hung(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail (instead of hanging the suite) if the test blocks for more than 10 s."""

    def hung(_sig: int, _frame: FrameType | None) -> None:
        raise _Hung("blocked for 10 s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_import_xmp_skips_a_fifo_named_as_a_sidecar(
    unnamed: tuple[Path, Catalog], alarm: None
) -> None:
    lib, cat = unnamed
    os.mkfifo(lib / "up.jpg.xmp")
    os.mkfifo(lib / "lonely.xmp")  # a FIFO no photo claims is not opened either
    up = EXPECTED["up.jpg"][1]
    (lib / "up.xmp").write_text(regions_xml([("Ada", up["Ada"][:4])]))
    summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    reasons = {Path(f).name: r for f, r in summary.skipped}
    assert "not a regular file" in reasons["up.jpg.xmp"]
    assert "not a regular file" in reasons["lonely.xmp"]
    assert summary.assigned == 1, "the photo's other sidecar is still read"


def test_embedded_xmp_ending_in_a_nul_byte_is_imported(unnamed: tuple[Path, Catalog]) -> None:
    lib, cat = unnamed
    up = EXPECTED["up.jpg"][1]
    with Image.open(lib / "up.jpg") as img:
        img.load()
        packet = regions_xml([("Ada", up["Ada"][:4]), ("Bob", up["Bob"][:4])]).encode()
        img.save(lib / "up.jpg", quality=95, xmp=packet + b"\x00")
    with Image.open(lib / "up.jpg") as img:
        assert img.info["xmp"].endswith(b"\x00")
    summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    assert summary.skipped == []
    assert summary.assigned == 2
    assert faces_by_name(cat) == {"Ada": [("up.jpg", True)], "Bob": [("up.jpg", True)]}


def test_find_sees_a_photo_that_changed_on_disk_with_its_faces_in_place(
    tmp_path: Path,
    catalog: Catalog,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    root = tmp_path / "photos"
    people_library(root, {"ada": 3, "bob": 3})
    scan(catalog, fake_options(root))
    cache = tmp_path / "cache"
    sync_index(catalog, cache)
    photo = root / "ada" / "1.png"
    with catalog.session() as s:
        before = s.execute(
            select(Face.id, Face.embedding).join(Photo).where(Photo.path == str(photo))
        ).one()

    with Image.open(photo) as img:  # re-saved 15 % brighter: same box, new embedding
        ImageEnhance.Brightness(img.convert("RGB")).enhance(1.15).save(photo)
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        after = s.execute(
            select(Face.id, Face.embedding).join(Photo).where(Photo.path == str(photo))
        ).one()
    assert after[0] == before[0] and after[1] != before[1], "kept in place, re-encoded"

    result = find_in_photo(catalog, cache, str(photo), FakeEncoder(), EncoderParams())
    (face,) = result.faces
    assert face.neighbours[0].photo == str(photo)
    assert face.neighbours[0].distance == pytest.approx(0.0, abs=1e-5)
    assert result.index.updated == 1 and not result.index.rebuilt
    assert sync_index(catalog, cache)[1].updated == 0, "up to date once updated"


INVISIBLE = [
    "\u202e",  # right-to-left override
    "\u202d",  # left-to-right override
    "\u202a",  # left-to-right embedding
    "\u2066",  # left-to-right isolate
    "\u2069",  # pop directional isolate
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u061c",  # Arabic letter mark
    "\u200b",  # zero-width space
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space (BOM)
    "\u00ad",  # soft hyphen
    "\u180e",  # Mongolian vowel separator
    "\u3164",  # Hangul filler
    "\U000e0041",  # tag latin capital A (invisible "ASCII smuggling")
]


@pytest.mark.parametrize("ch", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_bidi_and_invisible_characters_never_reach_a_folder_name(ch: str) -> None:
    for raw in (f"Ada{ch}", f"{ch}Ada", f"A{ch}da", f"{ch}", f"Ada{ch}gpj.exe"):
        name = safe_name(raw)
        assert ch not in name, (raw, name)
        assert not any(unicodedata.category(c) == "Cf" for c in name if c not in "\u200c\u200d")
    assert safe_name(f"Ada{ch}") == "Ada"
    assert safe_name(f"A{ch}da") == "Ada"
    assert safe_name(ch) == "Unnamed"
    assert safe_filename(f"IMG{ch}_1.jpg") == "IMG_1.jpg"
    assert safe_filename(f"evil{ch}gpj.exe") == "evilgpj.exe"


def test_joiners_that_carry_meaning_are_kept() -> None:
    family = "\U0001f469\u200d\U0001f469\u200d\U0001f467"  # 👩‍👩‍👧: ZWJ between emoji
    scotland = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a word
    for name in (family, scotland, persian):
        assert safe_name(f"Zoë {name}") == f"Zoë {name}"
    # but not where they only hide a difference between ASCII names
    assert safe_name("A\u200dda") == "Ada"
    assert safe_name("Ada\u200c") == "Ada"
