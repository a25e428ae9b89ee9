"""Contact sheets: a grid of numbered face crops of one person, the most typical face first.

Crops come from a thumbnail cache under ``Settings.cache_dir / "faces"``, keyed by the photo's
content hash and the face box, so a face is decoded from its photo once and every later look (the
next session, an undo, a re-shown person) only reads a small JPEG. Crops are cut from the upright
photo (EXIF orientation applied by :func:`photocluster.imaging.load_view`), matching the face boxes,
which are in displayed pixels. A photo that is gone or unreadable gives a placeholder tile and a
reason, never an exception.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.db import blobs_to_matrix
from photocluster.imaging import UnreadableImage, load_view
from photocluster.models import Face, Photo

DEFAULT_COUNT = 24
DEFAULT_TILE = 128
CROP_MARGIN = 0.35  # extra context on each side of the face box, as a share of its size
_LABEL_HEIGHT = 18


@dataclass(frozen=True)
class CropRequest:
    """Where one face is: enough to cut and cache its crop without the database."""

    face_id: int
    path: str
    content_hash: str | None
    mtime_ns: int
    width: int | None  # displayed size of the photo, if known
    height: int | None
    box: tuple[int, int, int, int]  # left, top, right, bottom in displayed pixels


@dataclass(frozen=True)
class SheetFace:
    number: int  # as printed on the sheet, from 1
    face_id: int
    distance: float  # to the person's mean embedding
    problem: str | None = None  # why the tile is a placeholder


@dataclass(frozen=True)
class ContactSheet:
    person_id: int
    path: Path
    faces: list[SheetFace]
    total_faces: int

    def face_ids(self, numbers: Sequence[int]) -> list[int]:
        """Face ids for tile numbers; a number not on the sheet is a ValueError naming it."""
        by_number = {f.number: f.face_id for f in self.faces}
        bad = [n for n in numbers if n not in by_number]
        if bad:
            raise ValueError(
                f"no face numbered {', '.join(map(str, bad))} on this sheet "
                f"(numbers go from 1 to {len(self.faces)})"
            )
        return [by_number[n] for n in numbers]


def typical_faces(session: Session, person_id: int) -> list[tuple[int, float]]:
    """Every face of a person with its distance to the person's mean embedding, nearest first."""
    rows = session.execute(
        select(Face.id, Face.embedding).where(Face.person_id == person_id).order_by(Face.id)
    ).all()
    if not rows:
        return []
    matrix = blobs_to_matrix([r.embedding for r in rows])
    dist = np.linalg.norm(matrix - matrix.mean(axis=0), axis=1)
    order = np.argsort(dist, kind="stable")
    return [(int(rows[i].id), float(dist[i])) for i in order]


def crop_requests(session: Session, face_ids: Sequence[int]) -> list[CropRequest]:
    """What :class:`CropCache` needs for these faces, in the order given."""
    if not face_ids:
        return []
    rows = session.execute(
        select(
            Face.id,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Photo.path,
            Photo.content_hash,
            Photo.mtime_ns,
            Photo.width,
            Photo.height,
        )
        .join(Photo, Photo.id == Face.photo_id)
        .where(Face.id.in_(list(face_ids)))
    ).all()
    by_id = {
        r.id: CropRequest(
            face_id=r.id,
            path=r.path,
            content_hash=r.content_hash,
            mtime_ns=r.mtime_ns,
            width=r.width,
            height=r.height,
            box=(r.left, r.top, r.right, r.bottom),
        )
        for r in rows
    }
    return [by_id[i] for i in face_ids if i in by_id]


def crop_square(
    box: tuple[int, int, int, int], width: int, height: int, margin: float = CROP_MARGIN
) -> tuple[int, int, int, int]:
    """A square around ``box`` with ``margin`` context, moved (then shrunk) to fit the photo."""
    left, top, right, bottom = box
    side = max(right - left, bottom - top, 1)
    side = min(round(side * (1 + 2 * margin)), width, height)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = min(max(round(cx - side / 2), 0), width - side)
    y0 = min(max(round(cy - side / 2), 0), height - side)
    return x0, y0, x0 + side, y0 + side


class CropCache:
    """Face crops as small JPEGs on disk, cut once per (photo content, box, tile size)."""

    def __init__(self, cache_dir: Path, tile: int = DEFAULT_TILE) -> None:
        self.root = Path(cache_dir) / "faces"
        self.tile = tile
        self.decoded = 0  # photos decoded (cache misses), for tests and benchmarks

    def key(self, req: CropRequest) -> Path:
        ident = req.content_hash or hashlib.sha1(f"{req.path}\0{req.mtime_ns}".encode()).hexdigest()
        left, top, right, bottom = req.box
        name = f"{ident}-{left}-{top}-{right}-{bottom}-{self.tile}.jpg"
        return self.root / ident[:2] / name

    def get(self, req: CropRequest) -> tuple[Image.Image, str | None]:
        """The crop (from cache, else cut and cached) or a placeholder and the reason."""
        path = self.key(req)
        try:
            with Image.open(path) as cached:
                cached.load()
                return cached.convert("RGB"), None
        except (OSError, ValueError):
            pass
        try:
            crop = self._cut(req)
        except (OSError, UnreadableImage) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            return _placeholder(self.tile, "missing"), f"{req.path}: {reason}"
        self._store(path, crop)
        return crop, None

    def warm(self, requests: Sequence[CropRequest]) -> int:
        """Cut and cache the crops not cached yet; returns how many were cut."""
        cut = 0
        for req in requests:
            if not self.key(req).exists():
                _img, problem = self.get(req)
                cut += problem is None
        return cut

    def _cut(self, req: CropRequest) -> Image.Image:
        data = Path(req.path).read_bytes()
        self.decoded += 1
        if req.width and req.height:
            x0, y0, x1, y1 = crop_square(req.box, req.width, req.height)
            # Decode only as large as the tile needs (JPEG DCT scaling does most of the work).
            need = self.tile / max(x1 - x0, 1)
            long_side = None if need >= 1 else math.ceil(max(req.width, req.height) * need) + 2
            view = load_view(data, long_side)
        else:
            view = load_view(data, None)
            h, w = view.pixels.shape[:2]
            x0, y0, x1, y1 = crop_square(req.box, w, h)
        s = view.scale
        h, w = view.pixels.shape[:2]
        px0, py0 = max(0, int(x0 * s)), max(0, int(y0 * s))
        px1, py1 = min(w, max(px0 + 1, round(x1 * s))), min(h, max(py0 + 1, round(y1 * s)))
        region = Image.fromarray(view.pixels[py0:py1, px0:px1])
        return region.resize((self.tile, self.tile), Image.Resampling.LANCZOS)

    def _store(self, path: Path, crop: Image.Image) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash or a second process never leaves half a JPEG.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                crop.save(fh, format="JPEG", quality=88)
            os.replace(tmp, path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)


def _placeholder(tile: int, text: str) -> Image.Image:
    img = Image.new("RGB", (tile, tile), (60, 60, 60))
    draw = ImageDraw.Draw(img)
    draw.text((8, tile // 2 - 6), text, fill=(220, 220, 220), font=_font(12))
    return img


_fonts: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    if size not in _fonts:
        try:
            _fonts[size] = ImageFont.load_default(size=size)
        except (TypeError, OSError, ImportError):  # Pillow without FreeType: fixed bitmap font
            _fonts[size] = ImageFont.load_default()
    return _fonts[size]


def compose(tiles: Sequence[tuple[int, int, Image.Image]], tile: int, columns: int) -> Image.Image:
    """A grid of ``(number, face_id, crop)`` tiles, each with its number and face id."""
    rows = max(1, math.ceil(len(tiles) / columns))
    cols = max(1, min(columns, len(tiles)))
    pad = 4
    cell_w, cell_h = tile + pad, tile + _LABEL_HEIGHT + pad
    sheet = Image.new("RGB", (cols * cell_w + pad, rows * cell_h + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    big, small = _font(16), _font(11)
    for i, (number, face_id, crop) in enumerate(tiles):
        x = pad + (i % cols) * cell_w
        y = pad + (i // cols) * cell_h
        sheet.paste(crop, (x, y))
        draw.rectangle((x, y, x + 26, y + 20), fill=(0, 0, 0))
        draw.text((x + 4, y + 1), str(number), fill=(255, 255, 80), font=big)
        draw.text((x + 2, y + tile + 2), f"face {face_id}", fill=(170, 170, 170), font=small)
    return sheet


def build_contact_sheet(
    session: Session,
    person_id: int,
    cache_dir: Path,
    *,
    count: int = DEFAULT_COUNT,
    tile: int = DEFAULT_TILE,
    columns: int = 6,
    cache: CropCache | None = None,
) -> ContactSheet:
    """Write the sheet of ``person_id``'s ``count`` most typical faces; return what is on it.

    The image goes to ``cache_dir/sheets/person-<id>.jpg`` (overwritten each time).
    """
    if count < 1:
        raise ValueError("a contact sheet needs at least one face")
    ranked = typical_faces(session, person_id)
    shown = ranked[:count]
    requests = {r.face_id: r for r in crop_requests(session, [fid for fid, _d in shown])}
    cache = cache or CropCache(cache_dir, tile)
    tiles: list[tuple[int, int, Image.Image]] = []
    faces: list[SheetFace] = []
    for number, (face_id, dist) in enumerate(shown, start=1):
        img, problem = cache.get(requests[face_id])
        tiles.append((number, face_id, img))
        faces.append(SheetFace(number, face_id, dist, problem))
    path = Path(cache_dir) / "sheets" / f"person-{person_id}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    if tiles:
        compose(tiles, cache.tile, columns).save(path, format="JPEG", quality=88)
    else:
        _placeholder(cache.tile, "no faces").save(path, format="JPEG")
    return ContactSheet(person_id, path, faces, total_faces=len(ranked))


__all__ = [
    "DEFAULT_COUNT",
    "DEFAULT_TILE",
    "ContactSheet",
    "CropCache",
    "CropRequest",
    "SheetFace",
    "build_contact_sheet",
    "compose",
    "crop_requests",
    "crop_square",
    "typical_faces",
]
