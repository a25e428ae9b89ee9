"""XMP face regions: export-xmp read back with exiftool (incl. rotated photos), merging into
existing sidecars, idempotence, sidecar naming, in-place writes, import-xmp, hostile XMP."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Decision, Face, Person, Photo
from photocluster.cli import app
from photocluster.errors import PhotoclusterError
from photocluster.export.xmp import regions as xmp_mod
from photocluster.export.xmp import writer as xmp_writer
from photocluster.export.xmp.importer import ImportOptions, import_xmp
from photocluster.export.xmp.regions import XmpError, parse_xmp, regions_from_xmp
from photocluster.export.xmp.writer import XmpExportOptions, export_xmp
from photocluster.ingest.scan import scan
from tests.conftest import calls
from tests.fakes import BACKGROUND, PEOPLE, make_photo
from tests.test_export import name_people, rename

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(
    EXIFTOOL is None, reason="exiftool not installed (run .ci/install-system-deps)"
)
TOL = 0.012  # JPEG edges may move a square's detected border by a pixel or two


def rotated_photo(
    path: Path,
    displayed: tuple[int, int],
    faces: list[tuple[str, tuple[int, int, int]]],
    orientation: int,
) -> Path:
    """A JPEG that *displays* as ``displayed`` with ``faces``, stored rotated + EXIF orientation."""
    img = Image.new("RGB", displayed, BACKGROUND)
    for person, (x, y, side) in faces:
        img.paste(PEOPLE[person], (x, y, x + side, y + side))
    # exif_transpose applies ROTATE_270 for 6 and ROTATE_90 for 8: store the inverse.
    stored = img.transpose(
        Image.Transpose.ROTATE_90 if orientation == 6 else Image.Transpose.ROTATE_270
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, quality=95, exif=exif)
    return path


# What each photo should carry: displayed size and (name, centre x, centre y, w, h) normalised,
# computed from where the squares were drawn, not from the catalog.
def expected_region(x: int, y: int, side: int, w: int, h: int) -> tuple[float, ...]:
    return ((x + side / 2) / w, (y + side / 2) / h, side / w, side / h)


EXPECTED: dict[str, tuple[tuple[int, int], dict[str, tuple[float, ...]]]] = {
    "up.jpg": (
        (400, 300),
        {
            "Ada": expected_region(20, 20, 60, 400, 300),
            "Bob": expected_region(200, 50, 70, 400, 300),
        },
    ),
    "rot6.jpg": ((300, 400), {"Ada": expected_region(30, 250, 60, 300, 400)}),
    "rot8.jpg": (
        (300, 400),
        {
            "Bob": expected_region(200, 20, 70, 300, 400),
            "Ada": expected_region(40, 300, 60, 300, 400),
        },
    ),
}


def build_library(lib: Path) -> Path:
    make_photo(lib / "up.jpg", [("ada", (20, 20, 60)), ("bob", (200, 50, 70))])
    rotated_photo(lib / "rot6.jpg", (300, 400), [("ada", (30, 250, 60))], 6)
    rotated_photo(lib / "rot8.jpg", (300, 400), [("bob", (200, 20, 70)), ("ada", (40, 300, 60))], 8)
    make_photo(lib / "cyd.jpg", [("cyd", (60, 60, 70))])  # an unnamed person only
    return lib


@pytest.fixture
def named(tmp_path: Path, catalog: Catalog, fake_options) -> tuple[Path, dict[str, int]]:  # type: ignore[no-untyped-def]
    lib = build_library(tmp_path / "lib")
    scan(catalog, fake_options(lib))
    ids = name_people(catalog, {"ada": "Ada", "bob": "Bob", "cyd": None})
    return lib, ids


def exif_read(path: Path, *tags: str) -> dict[str, Any]:
    assert EXIFTOOL is not None
    out = subprocess.run(
        [EXIFTOOL, "-j", "-struct", *tags, str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)[0]  # type: ignore[no-any-return]


def regions_by_name(data: dict[str, Any]) -> dict[str, tuple[float, ...]]:
    result = {}
    for r in data["RegionInfo"]["RegionList"]:
        a = r["Area"]
        assert a["Unit"] == "normalized"
        assert r["Type"] == "Face"
        result[r["Name"]] = (a["X"], a["Y"], a["W"], a["H"])
    return result


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_exiftool
def test_sidecars_carry_every_region_and_name_in_displayed_orientation(
    catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = named
    originals = {p.name: digest(p) for p in lib.iterdir()}
    with catalog.session() as s:
        sizes = {Path(p.path).name: (p.width, p.height) for p in s.scalars(select(Photo))}
    assert sizes["rot6.jpg"] == (300, 400) == sizes["rot8.jpg"]  # the scan applied orientation
    summary = export_xmp(catalog, XmpExportOptions())
    assert summary.failures == []
    assert sorted(Path(p).name for p in summary.written) == [
        "rot6.jpg.xmp",
        "rot8.jpg.xmp",
        "up.jpg.xmp",
    ]
    assert not (lib / "cyd.jpg.xmp").exists()  # nobody named there
    for photo, (dims, faces) in EXPECTED.items():
        data = exif_read(lib / f"{photo}.xmp", "-XMP-mwg-rs:all", "-XMP-iptcExt:PersonInImage")
        applied = data["RegionInfo"]["AppliedToDimensions"]
        assert (applied["W"], applied["H"], applied["Unit"]) == (*dims, "pixel")
        got = regions_by_name(data)
        assert sorted(got) == sorted(faces), photo
        for name, want in faces.items():
            assert got[name] == pytest.approx(want, abs=TOL), (photo, name)
        assert sorted(data["PersonInImage"]) == sorted(faces)
    assert {p.name: digest(p) for p in lib.iterdir() if p.suffix != ".xmp"} == originals


SIDECAR_WITH_OTHER_TOOLS = """<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?>
<x:xmpmeta xmlns:x='adobe:ns:meta/'>
<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
 <rdf:Description rdf:about=''
  xmlns:xmp='http://ns.adobe.com/xap/1.0/'
  xmlns:dc='http://purl.org/dc/elements/1.1/'
  xmlns:digiKam='http://www.digikam.org/ns/1.0/'
  xmlns:darktable='http://darktable.sf.net/'
  xmlns:mwg-rs='http://www.metadataworkinggroup.com/schemas/regions/'
  xmlns:stArea='http://ns.adobe.com/xmp/sType/Area#'
  xmlns:stDim='http://ns.adobe.com/xap/1.0/sType/Dimensions#'
  xmp:Rating='4'
  darktable:xmp_version='5'
  darktable:auto_presets_applied='1'>
  <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>Adda</rdf:li></rdf:Bag></dc:subject>
  <digiKam:TagsList><rdf:Seq><rdf:li>Places/Beach</rdf:li></rdf:Seq></digiKam:TagsList>
  <mwg-rs:Regions rdf:parseType='Resource'>
   <mwg-rs:AppliedToDimensions stDim:w='400' stDim:h='300' stDim:unit='pixel'/>
   <mwg-rs:RegionList>
    <rdf:Bag>
     <rdf:li>
      <rdf:Description mwg-rs:Name='Adda' mwg-rs:Type='Face'>
       <mwg-rs:Area stArea:x='0.126' stArea:y='0.168' stArea:w='0.16' stArea:h='0.21'
        stArea:unit='normalized'/>
      </rdf:Description>
     </rdf:li>
     <rdf:li>
      <rdf:Description mwg-rs:Name='Stranger' mwg-rs:Type='Face'>
       <mwg-rs:Area stArea:x='0.8' stArea:y='0.8' stArea:w='0.1' stArea:h='0.1'
        stArea:unit='normalized'/>
      </rdf:Description>
     </rdf:li>
     <rdf:li>
      <rdf:Description mwg-rs:Name='Rex' mwg-rs:Type='Pet'>
       <mwg-rs:Area stArea:x='0.6' stArea:y='0.15' stArea:w='0.1' stArea:h='0.1'
        stArea:unit='normalized'/>
      </rdf:Description>
     </rdf:li>
    </rdf:Bag>
   </mwg-rs:RegionList>
  </mwg-rs:Regions>
 </rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end='w'?>"""


@needs_exiftool
def test_merge_keeps_ratings_keywords_other_namespaces_and_other_regions(
    catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = named
    sidecar = lib / "up.jpg.xmp"
    sidecar.write_text(SIDECAR_WITH_OTHER_TOOLS, encoding="utf-8")
    summary = export_xmp(catalog, XmpExportOptions(keywords=True))
    assert summary.failures == []
    data = exif_read(sidecar, "-a", "-G1", "-XMP:all")
    assert data["XMP-xmp:Rating"] == 4
    assert data["XMP-digiKam:TagsList"] == ["Places/Beach"]
    assert str(data["XMP-darktable:Xmp_version"]) == "5"
    assert str(data["XMP-darktable:Auto_presets_applied"]) == "1"
    # The old "Adda" region sat on Ada's face: replaced, and its name left with it.
    assert data["XMP-dc:Subject"] == ["holiday", "Ada", "Bob"]
    assert sorted(data["XMP-iptcExt:PersonInImage"]) == ["Ada", "Bob"]
    regions = {r["Name"]: r for r in data["XMP-mwg-rs:RegionInfo"]["RegionList"]}
    assert sorted(regions) == ["Ada", "Bob", "Rex", "Stranger"]
    assert regions["Rex"]["Type"] == "Pet"
    assert regions["Stranger"]["Area"]["X"] == pytest.approx(0.8)


@needs_exiftool
def test_second_export_changes_nothing_and_rename_updates_names(
    catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, ids = named
    export_xmp(catalog, XmpExportOptions(keywords=True))
    before = {p.name: (digest(p), p.stat().st_mtime_ns) for p in lib.glob("*.xmp")}
    again = export_xmp(catalog, XmpExportOptions(keywords=True))
    assert again.written == [] and again.unchanged == 3
    assert {p.name: (digest(p), p.stat().st_mtime_ns) for p in lib.glob("*.xmp")} == before
    rename(catalog, ids["ada"], "Ada Lovelace")
    renamed = export_xmp(catalog, XmpExportOptions(keywords=True))
    assert len(renamed.written) == 3
    data = exif_read(lib / "rot8.jpg.xmp", "-XMP-mwg-rs:all", "-XMP-iptcExt:all", "-XMP-dc:all")
    assert sorted(regions_by_name(data)) == ["Ada Lovelace", "Bob"]
    assert sorted(data["PersonInImage"]) == ["Ada Lovelace", "Bob"]
    assert sorted(data["Subject"]) == ["Ada Lovelace", "Bob"]


@needs_exiftool
def test_sidecar_naming_styles(
    tmp_path: Path, catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = named
    export_xmp(catalog, XmpExportOptions(sidecar="base", people=["Bob"]))
    assert sorted(p.name for p in lib.glob("*.xmp")) == ["rot8.xmp", "up.xmp"]
    # auto finds the existing base-named sidecar instead of making a second one
    auto = export_xmp(catalog, XmpExportOptions(sidecar="auto", people=["Bob"]))
    assert auto.written == [] and auto.unchanged == 2
    auto_all = export_xmp(catalog, XmpExportOptions(sidecar="auto"))
    assert sorted(Path(p).name for p in auto_all.written) == ["rot6.jpg.xmp", "rot8.xmp", "up.xmp"]
    with pytest.raises(PhotoclusterError, match="sidecar style"):
        export_xmp(catalog, XmpExportOptions(sidecar="sideways"))


@needs_exiftool
def test_two_photos_sharing_a_base_sidecar_are_not_mixed(
    tmp_path: Path,
    db_path: str,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    lib = tmp_path / "pair"
    make_photo(lib / "x.jpg", [("ada", (20, 20, 60))])
    make_photo(lib / "x.png", [("ada", (40, 40, 60))])
    cat = open_catalog(db_path)
    try:
        scan(cat, fake_options(lib))
        name_people(cat, {"ada": "Ada"})
        summary = export_xmp(cat, XmpExportOptions(sidecar="base"))
    finally:
        cat.close()
    assert [Path(p).name for p in summary.written] == ["x.xmp"]
    assert len(summary.failures) == 1 and "shares the sidecar" in summary.failures[0][1]


@needs_exiftool
def test_in_place_writes_into_the_photo_and_the_next_scan_does_no_work(
    catalog: Catalog,
    named: tuple[Path, dict[str, int]],
    fake_options,
    fake_log: Path,  # type: ignore[no-untyped-def]
) -> None:
    lib, _ = named
    before = digest(lib / "rot6.jpg")
    summary = export_xmp(catalog, XmpExportOptions(in_place=True, people=["Ada"]))
    assert summary.failures == [] and len(summary.written) == 3
    assert not list(lib.glob("*.xmp"))
    assert digest(lib / "rot6.jpg") != before
    data = exif_read(lib / "rot6.jpg", "-XMP-mwg-rs:all", "-Orientation", "-n")
    assert data["Orientation"] == 6  # other metadata untouched
    got = regions_by_name(data)
    assert got["Ada"] == pytest.approx(EXPECTED["rot6.jpg"][1]["Ada"], abs=TOL)
    n = calls(fake_log)
    rescan = scan(catalog, fake_options(lib))
    assert calls(fake_log) == n and rescan.unchanged == 4  # catalog kept in step
    with catalog.session() as s:
        assert s.scalar(select(Person.name).join(Face).limit(1)) is not None  # names kept


def test_missing_exiftool_is_a_clear_error(
    catalog: Catalog, named: tuple[Path, dict[str, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xmp_writer, "find_exiftool", lambda: None)
    with pytest.raises(PhotoclusterError, match="libimage-exiftool-perl"):
        export_xmp(catalog, XmpExportOptions())
    assert not list(named[0].glob("*.xmp"))


@needs_exiftool
def test_broken_existing_sidecar_is_left_alone_with_a_reason(
    catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = named
    (lib / "up.jpg.xmp").write_text("<x:xmpmeta><rdf:RDF>not closed")
    summary = export_xmp(catalog, XmpExportOptions())
    assert [(Path(f).name, "broken XML" in r) for f, r in summary.failures] == [
        ("up.jpg.xmp", True)
    ]
    assert (lib / "up.jpg.xmp").read_text() == "<x:xmpmeta><rdf:RDF>not closed"
    assert len(summary.written) == 2


# --------------------------------------------------------------------------- reading


ATTRIBUTE_FORM = b"""<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF
 xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>
<rdf:Description xmlns:mwg-rs='http://www.metadataworkinggroup.com/schemas/regions/'
 xmlns:stArea='http://ns.adobe.com/xmp/sType/Area#'
 xmlns:stDim='http://ns.adobe.com/xap/1.0/sType/Dimensions#'>
<mwg-rs:Regions>
 <rdf:Description>
  <mwg-rs:AppliedToDimensions stDim:w='400' stDim:h='300' stDim:unit='pixel'/>
  <mwg-rs:RegionList><rdf:Seq>
   <rdf:li rdf:parseType='Resource'>
    <mwg-rs:Name>Ada &amp; Co</mwg-rs:Name><mwg-rs:Type>Face</mwg-rs:Type>
    <mwg-rs:Area><rdf:Description stArea:x='0.125' stArea:y='0.1666' stArea:w='0.15'
     stArea:h='0.2' stArea:unit='normalized'/></mwg-rs:Area>
   </rdf:li>
   <rdf:li><rdf:Description mwg-rs:Name='Bad'><mwg-rs:Area stArea:x='NaN' stArea:y='1'
     stArea:w='1' stArea:h='1'/></rdf:Description></rdf:li>
  </rdf:Seq></mwg-rs:RegionList>
 </rdf:Description>
</mwg-rs:Regions></rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_regions_are_read_from_every_rdf_serialisation() -> None:
    found = regions_from_xmp(parse_xmp(ATTRIBUTE_FORM))
    assert found.applied_to == (400.0, 300.0)
    assert [(r.name, r.type, r.x, r.w) for r in found.regions] == [
        ("Ada & Co", "Face", 0.125, 0.15)
    ]
    assert len(found.skipped) == 1 and "not finite" in found.skipped[0]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<x:xmpmeta xmlns:x='adobe:ns:meta/'>&lol9;</x:xmpmeta>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<x:xmpmeta xmlns:x='adobe:ns:meta/'>&xxe;</x:xmpmeta>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_entities_are_never_expanded(data: bytes) -> None:
    with pytest.raises(XmpError, match="unsafe XML"):
        parse_xmp(data)


@pytest.fixture
def unnamed(tmp_path: Path, db_path: str, fake_options) -> tuple[Path, Catalog]:  # type: ignore[no-untyped-def]
    """The same library in a fresh catalog where nobody has a name yet."""
    lib = build_library(tmp_path / "lib")
    cat = open_catalog(db_path)
    scan(cat, fake_options(lib))
    yield lib, cat
    cat.close()


def faces_by_name(catalog: Catalog) -> dict[str, list[tuple[str, bool]]]:
    result: dict[str, list[tuple[str, bool]]] = {}
    with catalog.session() as s:
        for photo, name, confirmed in s.execute(
            select(Photo.path, Person.name, Face.confirmed)
            .join(Face, Face.photo_id == Photo.id)
            .join(Person, Person.id == Face.person_id)
            .order_by(Photo.path)
        ):
            result.setdefault(name, []).append((Path(photo).name, confirmed))
    return result


def regions_xml(regions: list[tuple[str, tuple[float, float, float, float]]]) -> str:
    items = "".join(
        f"<rdf:li><rdf:Description mwg-rs:Name='{n}' mwg-rs:Type='Face'><mwg-rs:Area "
        f"stArea:x='{x}' stArea:y='{y}' stArea:w='{w}' stArea:h='{h}' stArea:unit='normalized'/>"
        "</rdf:Description></rdf:li>"
        for n, (x, y, w, h) in regions
    )
    return (
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF "
        "xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'><rdf:Description "
        "xmlns:mwg-rs='http://www.metadataworkinggroup.com/schemas/regions/' "
        "xmlns:stArea='http://ns.adobe.com/xmp/sType/Area#'><mwg-rs:Regions "
        "rdf:parseType='Resource'><mwg-rs:RegionList><rdf:Bag>"
        f"{items}</rdf:Bag></mwg-rs:RegionList></mwg-rs:Regions></rdf:Description>"
        "</rdf:RDF></x:xmpmeta>"
    )


def test_import_confirms_named_faces_from_sidecars_and_embedded_xmp(
    unnamed: tuple[Path, Catalog],
) -> None:
    lib, cat = unnamed
    up, rot6 = EXPECTED["up.jpg"][1], EXPECTED["rot6.jpg"][1]
    (lib / "up.xmp").write_text(  # Lightroom-style name, plus a region on no face
        regions_xml(
            [("Ada", up["Ada"][:4]), ("Bob", up["Bob"][:4]), ("Ghost", (0.9, 0.9, 0.05, 0.05))]
        )
    )
    # rot6 carries its regions embedded in the JPEG (displayed orientation).
    with Image.open(lib / "rot6.jpg") as img:
        img.load()
        exif = img.getexif()
        img.save(
            lib / "rot6.jpg",
            quality=95,
            exif=exif,
            xmp=regions_xml([("Ada", rot6["Ada"][:4])]).encode(),
        )
    (lib / "rot8.jpg.xmp").write_bytes(BILLION_LAUGHS)
    (lib / "stray.jpg.xmp").write_text(regions_xml([("Ada", (0.5, 0.5, 0.1, 0.1))]))

    dry = import_xmp(cat, ImportOptions(folder=str(lib), dry_run=True))
    assert dry.assigned == 3 and faces_by_name(cat) == {}

    summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    assert (summary.regions, summary.matched, summary.assigned) == (4, 3, 3)
    assert sorted(summary.people_created) == ["Ada", "Bob"]
    assert summary.unmatched == [(str(lib / "up.jpg"), "Ghost")]
    reasons = {Path(f).name: r for f, r in summary.skipped}
    assert "unsafe XML" in reasons["rot8.jpg.xmp"]
    assert "no photo" in reasons["stray.jpg.xmp"]
    assert faces_by_name(cat) == {
        "Ada": [("rot6.jpg", True), ("up.jpg", True)],
        "Bob": [("up.jpg", True)],
    }
    with cat.session() as s:
        assert {d.actor for d in s.scalars(select(Decision))} == {"import-xmp"}
    again = import_xmp(cat, ImportOptions(folder=str(lib)))
    assert again.assigned == 0 and again.already == 3


def test_import_never_overrides_a_face_the_user_confirmed(unnamed: tuple[Path, Catalog]) -> None:
    lib, cat = unnamed
    with cat.session() as s:
        bob = Person(name="Bob", hidden=False, created_at=datetime(2024, 1, 1))
        s.add(bob)
        s.flush()
        photo = s.scalars(select(Photo).where(Photo.path == str(lib / "cyd.jpg"))).one()
        for face in photo.faces:
            face.person_id, face.confirmed = bob.id, True
    (lib / "cyd.jpg.xmp").write_text(regions_xml([("Cyd", (0.2375, 0.3167, 0.175, 0.2333))]))
    summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    assert summary.conflicts == [(str(lib / "cyd.jpg"), "Cyd", "Bob")]
    assert summary.assigned == 0
    assert faces_by_name(cat) == {"Bob": [("cyd.jpg", True)]}


def test_import_skips_huge_and_broken_sidecars(
    unnamed: tuple[Path, Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    lib, cat = unnamed
    (lib / "up.jpg.xmp").write_text("<x:xmpmeta><unclosed>")
    (lib / "rot8.jpg.xmp").write_text(regions_xml([("Bob", (0.8, 0.1, 0.2, 0.2))]) + " " * 5000)
    monkeypatch.setattr(xmp_mod, "MAX_XMP_BYTES", 4096)
    summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    reasons = {Path(f).name: r for f, r in summary.skipped}
    assert "broken XML" in reasons["up.jpg.xmp"]
    assert "limit" in reasons["rot8.jpg.xmp"]
    assert summary.assigned == 0


@needs_exiftool
def test_round_trip_export_then_import_into_a_fresh_catalog(
    catalog: Catalog,
    named: tuple[Path, dict[str, int]],
    tmp_path: Path,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    lib, _ = named
    export_xmp(catalog, XmpExportOptions())
    fresh = open_catalog(str(tmp_path / "fresh.sqlite3"))
    try:
        scan(fresh, fake_options(lib))
        summary = import_xmp(fresh, ImportOptions(folder=str(lib)))
        assert summary.assigned == 5 and summary.unmatched == []
        assert faces_by_name(fresh) == {
            "Ada": [("rot6.jpg", True), ("rot8.jpg", True), ("up.jpg", True)],
            "Bob": [("rot8.jpg", True), ("up.jpg", True)],
        }
    finally:
        fresh.close()


@needs_exiftool
def test_cli_export_xmp_and_import_xmp(
    db_path: str, catalog: Catalog, named: tuple[Path, dict[str, int]]
) -> None:
    lib, _ = named
    runner = CliRunner()
    result = runner.invoke(app, ["export-xmp", "--db", db_path, "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["written"]) == 3
    result = runner.invoke(app, ["import-xmp", str(lib), "--db", db_path, "--json", "-q"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["matched"] == 5 and data["assigned"] == 5  # named by clustering, now confirmed
    missing = runner.invoke(app, ["import-xmp", str(lib / "nope"), "--db", db_path])
    assert missing.exit_code == 1 and "Folder not found" in missing.stderr


def test_import_waits_for_a_decision_being_made_and_never_overwrites_it(
    unnamed: tuple[Path, Catalog], db_path: str, tmp_path: Path
) -> None:
    """Another process confirms cyd's face as Bob while import-xmp starts: the import waits
    for that writer before it reads, so it sees Bob's confirmed face as a conflict instead of
    overwriting it with a decision planned on what it read before."""
    import subprocess
    import sys
    import time

    lib, cat = unnamed
    (lib / "cyd.jpg.xmp").write_text(regions_xml([("Cyd", (0.2375, 0.3167, 0.175, 0.2333))]))
    holding = tmp_path / "holding"
    script = f"""
import time
from datetime import datetime
from pathlib import Path
from sqlalchemy import select
from photocluster.catalog.db import open_catalog
from photocluster.catalog.models import Person, Photo
cat = open_catalog({db_path!r})
with cat.write_session("assign") as s:
    Path({str(holding)!r}).write_text("yes")
    time.sleep(1.5)
    bob = Person(name="Bob", hidden=False, created_at=datetime(2024, 1, 1))
    s.add(bob)
    s.flush()
    photo = s.scalars(select(Photo).where(Photo.path == {str(lib / "cyd.jpg")!r})).one()
    for face in photo.faces:
        face.person_id, face.confirmed = bob.id, True
cat.close()
"""
    other = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not holding.exists():
            assert other.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        summary = import_xmp(cat, ImportOptions(folder=str(lib)))
    finally:
        assert other.wait(timeout=30) == 0
    assert summary.conflicts == [(str(lib / "cyd.jpg"), "Cyd", "Bob")]
    assert faces_by_name(cat) == {"Bob": [("cyd.jpg", True)]}
