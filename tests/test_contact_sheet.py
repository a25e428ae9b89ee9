"""Contact sheets: crop geometry, the thumbnail cache, typical-first order, EXIF, missing photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from photocluster.contact_sheet import CropCache, build_contact_sheet, crop_square
from photocluster.db import Catalog
from photocluster.models import Face, Photo
from photocluster.scan import scan
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
    assert sheet.path == tmp_path / "cache" / "sheets" / f"person-{pid}.jpg"
    with Image.open(sheet.path) as img:
        # 3 columns x 3 rows of 64-px tiles, each with a label strip.
        assert img.width == 4 + 3 * (64 + 4)
        assert img.height == 4 + 3 * (64 + 18 + 4)
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
