"""Contact sheets: crop geometry, the thumbnail cache, typical-first order, EXIF, missing photos,
the least typical faces on the first page, pages, near duplicates, numbers that stay put."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Photo
from photocluster.decisions.contact_sheet import (
    CropCache,
    SheetNumbers,
    build_contact_sheet,
    crop_square,
    plan_pages,
)
from photocluster.ingest.scan import scan
from tests.fakes import PEOPLE, make_photo
from tests.test_naming import build_library, faces_of, make_person


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [
        ((100, 100, 140, 140), (400, 300), (86, 86, 154, 154)),  # 40 px face + 35% a side
        ((0, 0, 40, 40), (400, 300), (0, 0, 68, 68)),  # pushed inside at the corner
        ((380, 280, 400, 300), (400, 300), (366, 266, 400, 300)),
        ((0, 0, 400, 300), (400, 300), (50, 0, 350, 300)),  # bigger than the photo: shrunk
    ],
)
def test_crop_square(
    box: tuple[int, int, int, int], size: tuple[int, int], expected: tuple[int, int, int, int]
) -> None:
    assert crop_square(box, *size) == expected


def _colour_at_centre(img: Image.Image) -> tuple[int, ...]:
    px = np.asarray(img.convert("RGB"))
    h, w = px.shape[:2]
    return tuple(int(c) for c in px[h // 2, w // 2])


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_second_look_comes_from_the_cache(tmp_path: Path, catalog: Catalog, fake_options) -> None:  # type: ignore[no-untyped-def]
    root = build_library(tmp_path / "lib", {"ada": 7})
    scan(catalog, fake_options(root))
    pid = make_person(catalog, faces_of(catalog, "ada"))
    first = CropCache(tmp_path / "cache")
    with catalog.session() as s:
        sheet = build_contact_sheet(s, pid, tmp_path / "cache", cache=first)
    assert first.decoded == 7
    assert all(f.problem is None for f in sheet.faces)
    assert len(list((tmp_path / "cache" / "faces").rglob("*.jpg"))) == 7
    # A new cache object (a later session) decodes nothing, even with the photos gone.
    for photo in root.iterdir():
        photo.unlink()
    second = CropCache(tmp_path / "cache")
    with catalog.session() as s:
        again = build_contact_sheet(s, pid, tmp_path / "cache", cache=second)
    assert second.decoded == 0
    assert all(f.problem is None for f in again.faces)


def test_crops_show_the_face_and_the_sheet_is_a_numbered_grid(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 8})))
    pid = make_person(catalog, faces_of(catalog, "ada"))
    cache = CropCache(tmp_path / "cache", tile=64)
    with catalog.session() as s:
        sheet = build_contact_sheet(s, pid, tmp_path / "cache", count=7, cache=cache, columns=3)
    assert [f.number for f in sheet.faces] == list(range(1, 8))
    assert sheet.total_faces == 8
    assert sheet.path.parent == tmp_path / "cache" / "sheets"
    assert sheet.path.name.startswith(f"person-{pid}-")
    # p000 and p007 are one photo twice: one tile (number 1) stands for both faces.
    assert sheet.tiles == 7 and len(sheet.faces[0].faces) == 2
    with Image.open(sheet.path) as img:
        # A title line, then 3 columns x 3 rows of 64-px tiles, each with a label strip.
        assert img.width == 4 + 3 * (64 + 4)
        assert img.height == 22 + 4 + 3 * (64 + 18 + 4)
    for path in (tmp_path / "cache" / "faces").rglob("*.jpg"):
        with Image.open(path) as crop:
            assert crop.size == (64, 64)
            assert _close(_colour_at_centre(crop), PEOPLE["ada"])


def test_most_typical_face_first(tmp_path: Path, catalog: Catalog, fake_options) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 5, "bob": 1})))
    odd = faces_of(catalog, "bob")[0]
    pid = make_person(catalog, [*faces_of(catalog, "ada"), odd])
    with catalog.session() as s:
        sheet = build_contact_sheet(s, pid, tmp_path / "cache")
    assert sheet.faces[-1].face_id == odd
    distances = [f.distance for f in sheet.faces]
    assert distances == sorted(distances)
    assert distances[-1] > 0.5 > distances[0]


def test_crops_follow_exif_orientation(tmp_path: Path, catalog: Catalog, fake_options) -> None:  # type: ignore[no-untyped-def]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed rotated 90° clockwise
    # Raw pixels: ada top-left, bob bottom-right; displayed, the boxes are elsewhere.
    make_photo(
        tmp_path / "lib" / "rotated.jpg",
        [("ada", (20, 20, 60)), ("bob", (300, 200, 60))],
        size=(400, 300),
        exif=exif,
    )
    scan(catalog, fake_options(tmp_path / "lib"))
    with catalog.session() as s:
        w, h = s.execute(select(Photo.width, Photo.height)).one()
        ids = list(s.scalars(select(Face.id).order_by(Face.id)))
    assert (w, h) == (300, 400)
    for face_id in ids:
        pid = make_person(catalog, [face_id])
        cache = CropCache(tmp_path / "cache", tile=48)
        with catalog.session() as s:
            sheet = build_contact_sheet(s, pid, tmp_path / "cache", cache=cache)
        assert sheet.faces[0].problem is None
    crops = sorted((tmp_path / "cache" / "faces").rglob("*.jpg"))
    colours = [_colour_at_centre(Image.open(p)) for p in crops]
    assert len(colours) == 2
    assert sorted(
        "ada" if _close(c, PEOPLE["ada"]) else "bob" if _close(c, PEOPLE["bob"]) else "?"
        for c in colours
    ) == ["ada", "bob"]


def test_a_missing_photo_gives_a_placeholder_not_an_error(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = build_library(tmp_path / "lib", {"ada": 3})
    scan(catalog, fake_options(root))
    pid = make_person(catalog, faces_of(catalog, "ada"))
    moved = tmp_path / "elsewhere.png"
    (root / "p001.png").rename(moved)
    cache = CropCache(tmp_path / "cache")
    with catalog.session() as s:
        sheet = build_contact_sheet(s, pid, tmp_path / "cache", cache=cache)
    problems = [f.problem for f in sheet.faces if f.problem]
    assert len(problems) == 1 and "p001.png" in problems[0]
    assert sheet.path.exists()
    # The placeholder is not cached: once the photo is back, its face shows.
    moved.rename(root / "p001.png")
    with catalog.session() as s:
        again = build_contact_sheet(s, pid, tmp_path / "cache", cache=cache)
    assert all(f.problem is None for f in again.faces)


def test_cache_key_is_the_content_hash_so_moved_photos_reuse_crops(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = build_library(tmp_path / "lib", {"ada": 3})
    scan(catalog, fake_options(root))
    pid = make_person(catalog, faces_of(catalog, "ada"))
    with catalog.session() as s:
        build_contact_sheet(s, pid, tmp_path / "cache")
    (root / "moved").mkdir()
    for photo in sorted(root.glob("*.png")):
        photo.rename(root / "moved" / photo.name)
    scan(catalog, fake_options(root))  # follows the moves by content hash
    cache = CropCache(tmp_path / "cache")
    with catalog.session() as s:
        sheet = build_contact_sheet(s, pid, tmp_path / "cache", cache=cache)
    assert len(sheet.faces) == 3 and cache.decoded == 0


def _distinct_faces(root: Path, who: str, n: int, start: int = 0) -> None:
    """n photos of one person, each face at its own place (so no two are near duplicates)."""
    for k in range(start, start + n):
        make_photo(root / f"{who}{k:03d}.png", [(who, (10 + 4 * k, 10 + 3 * (k % 9), 60))])


@pytest.mark.parametrize(
    ("tiles", "count", "pages"),
    [
        (5, 24, [[0, 1, 2, 3, 4]]),
        (10, 6, [[0, 1, 2, 3, 8, 9], [7, 6, 5, 4]]),
        (30, 24, [[*range(16), *range(22, 30)], [21, 20, 19, 18, 17, 16]]),
        (4, 2, [[0, 1], [3, 2]]),
    ],
)
def test_pages_end_with_the_least_typical_and_cover_every_tile(
    tiles: int, count: int, pages: list[list[int]]
) -> None:
    assert plan_pages(tiles, count) == pages
    assert sorted(i for page in pages for i in page) == list(range(tiles))


def test_the_least_typical_faces_are_on_the_first_page(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    """Wrong faces are atypical: with 30 of Ada and 2 strangers, the first sheet of 24 shows
    the strangers (the 24 most typical alone never did), and the pages show every face."""
    root = tmp_path / "lib"
    _distinct_faces(root, "ada", 30)
    make_photo(root / "odd1.png", [("bob", (200, 20, 60))])
    make_photo(root / "odd2.png", [("cyd", (220, 40, 60))])
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        every = list(s.scalars(select(Face.id)))
        odd = set(s.scalars(select(Face.id).where(Face.left >= 200)))
    pid = make_person(catalog, every)
    numbers = SheetNumbers()
    with catalog.session() as s:
        first = build_contact_sheet(s, pid, tmp_path / "cache", numbers=numbers)
        assert first.pages == 2 and first.tiles == 32
        tail = [f for f in first.faces if f.least_typical]
        assert len(first.faces) == 24 and len(tail) == 8
        assert odd <= {f.face_id for f in tail}
        second = build_contact_sheet(s, pid, tmp_path / "cache", page=1, numbers=numbers)
    assert [f.number for f in second.faces] == list(range(25, 33))
    assert {f.face_id for f in first.faces} | {f.face_id for f in second.faces} == set(every)
    assert second.face_ids([3]) == first.face_ids([3])  # a number from page 1 still works


def test_near_duplicates_share_one_tile(tmp_path: Path, catalog: Catalog, fake_options) -> None:  # type: ignore[no-untyped-def]
    """One photo copied into another folder, and burst frames taken seconds apart, are one
    tile; the same two faces taken hours apart are two."""
    root = tmp_path / "lib"
    _distinct_faces(root, "ada", 4)
    (root / "copy").mkdir()
    (root / "copy" / "ada000.png").write_bytes((root / "ada000.png").read_bytes())

    def shot(name: str, when: str, x: int) -> None:
        exif = Image.Exif()
        exif[0x0132] = when  # DateTime
        make_photo(root / name, [("bob", (x, 30, 60))], fmt="JPEG", exif=exif)

    shot("burst1.jpg", "2024:05:01 10:00:00", 150)
    shot("burst2.jpg", "2024:05:01 10:00:03", 190)
    shot("later.jpg", "2024:05:01 15:00:00", 230)
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        rows = s.execute(select(Face.id, Photo.path).join(Photo)).all()
    by_name = {Path(p).name if "copy" not in p else "copy": fid for fid, p in rows}
    ada = make_person(catalog, [by_name[f"ada{k:03d}.png"] for k in range(4)] + [by_name["copy"]])
    bob = make_person(catalog, [by_name["burst1.jpg"], by_name["burst2.jpg"], by_name["later.jpg"]])
    with catalog.session() as s:
        x = {r[0]: r[1] for r in s.execute(select(Face.id, Face.embedding))}
    burst = np.linalg.norm(
        np.frombuffer(x[by_name["burst1.jpg"]], np.float32)
        - np.frombuffer(x[by_name["burst2.jpg"]], np.float32)
    )
    assert 0.12 < burst < 0.2, "frames this far apart are near duplicates only as a burst"
    with catalog.session() as s:
        ada_sheet = build_contact_sheet(s, ada, tmp_path / "cache")
        bob_sheet = build_contact_sheet(s, bob, tmp_path / "cache")
    groups = sorted(sorted(f.faces) for f in ada_sheet.faces)
    assert ada_sheet.tiles == 4 and ada_sheet.total_faces == 5
    assert sorted([by_name["ada000.png"], by_name["copy"]]) in groups
    assert bob_sheet.tiles == 2
    assert sorted([by_name["burst1.jpg"], by_name["burst2.jpg"]]) in [
        sorted(f.faces) for f in bob_sheet.faces
    ]


def test_a_redrawn_sheet_keeps_its_numbers_under_a_new_file_name(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    """After faces leave, the sheet is a new file (a viewer still showing the old one shows
    an old file, not new numbers), the other faces keep their numbers, and a number of a face
    that left says so instead of meaning another face."""
    from photocluster.decisions.log import reject_faces

    root = tmp_path / "lib"
    _distinct_faces(root, "ada", 6)
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        every = list(s.scalars(select(Face.id)))
    pid = make_person(catalog, every)
    numbers = SheetNumbers()
    with catalog.session() as s:
        before = build_contact_sheet(s, pid, tmp_path / "cache", numbers=numbers)
    gone = before.face_ids([2])
    with catalog.session() as s:
        reject_faces(s, gone, person=pid, actor="t")
    with catalog.session() as s:
        after = build_contact_sheet(s, pid, tmp_path / "cache", numbers=numbers)
    assert after.path != before.path and after.path.exists() and not before.path.exists()
    assert {f.number: f.face_id for f in after.faces} == {
        f.number: f.face_id for f in before.faces if f.number != 2
    }
    with pytest.raises(ValueError, match="face 2 is no longer here"):
        after.face_ids([2])
    assert after.face_ids([5]) == before.face_ids([5])
