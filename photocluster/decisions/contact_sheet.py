"""Contact sheets: a grid of numbered face crops, the most typical first and the least typical
last, one tile per near-duplicate group, paged when a person has more faces than fit.

Which faces: a person's faces are ranked by distance to their mean embedding. Near duplicates
(the same photo copied or re-encoded, burst frames: ``NEAR_DUPLICATE`` apart, or
``BURST_DISTANCE`` when taken within ``BURST_SECONDS``) share one tile, shown by their most
typical face. When the tiles do not fit on one sheet of ``count``, the first page holds the most
typical two thirds and the least typical third (wrong faces are atypical, so they are never
hidden behind a page of look-alikes); the later pages hold the rest, from the least typical
inward (:func:`plan_pages`).

Numbers stay with their tiles: a :class:`SheetNumbers` given back to the next drawing of the same
subject keeps every number on the faces it was first printed on, and a new drawing gets a new
file name (the old one is removed), so a viewer still showing an older sheet can never make a
number mean another face.

Crops come from a thumbnail cache under ``Settings.cache_dir / "faces"``, keyed by the photo's
content hash and the face box, so a face is decoded from its photo once and every later look (the
next session, an undo, a re-shown person) only reads a small JPEG. Crops are cut from the upright
photo (EXIF orientation applied by :func:`photocluster.ingest.imaging.load_view`), matching the
face boxes, which are in displayed pixels. A photo that is gone or unreadable gives a placeholder
tile and a reason, never an exception.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import in_chunks
from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Photo
from photocluster.ingest.imaging import UnreadableImage, load_view

DEFAULT_COUNT = 24
DEFAULT_TILE = 128
CROP_MARGIN = 0.35  # extra context on each side of the face box, as a share of its size
_LABEL_HEIGHT = 18
_HEADER_HEIGHT = 22
# Near duplicates share a tile. On ../shared/faces (1 559 faces) 84 pairs of faces are closer
# than 0.2; of the 53 looked at (all 48 from 0.12 to 0.2), every one was one shot twice
# (re-encoded, resized, cropped, recoloured, mirrored) or two frames of one moment. Between 0.2
# and 0.26 are such copies but also two shots of one event. 0.12 alone keeps clear of that edge;
# burst frames (taken seconds apart, so one moment) are grouped up to 0.2.
NEAR_DUPLICATE = 0.12
BURST_DISTANCE = 0.2
BURST_SECONDS = 10


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
    number: int  # as printed on the sheet; stays with this tile while its subject is shown
    face_id: int  # the face drawn: the most typical of its near-duplicate group
    distance: float  # to the person's mean embedding (or as ranked by the caller)
    problem: str | None = None  # why the tile is a placeholder
    group: tuple[int, ...] = ()  # every face the tile stands for: itself and its near duplicates
    least_typical: bool = False  # one of the least typical faces on a first page

    @property
    def faces(self) -> tuple[int, ...]:
        return self.group or (self.face_id,)


class SheetNumbers:
    """The numbers printed for one subject (a person, a group of faces) while it is shown.

    A tile keeps its number across drawings (after faces leave, on another page), and a number
    once printed keeps meaning the faces it was printed on, so an answer typed while looking at an
    older drawing still means what the human saw. New tiles get the next unused numbers.
    """

    def __init__(self) -> None:
        self.by_face: dict[int, int] = {}  # the face drawn on a tile -> its number
        self.groups: dict[int, tuple[int, ...]] = {}  # number -> the faces of its tile
        self.next = 1

    def number(self, face_id: int, group: tuple[int, ...]) -> int:
        n = self.by_face.get(face_id)
        if n is None:
            n, self.next = self.next, self.next + 1
            self.by_face[face_id] = n
        self.groups[n] = group
        return n


@dataclass(frozen=True)
class ContactSheet:
    person_id: int | None  # None for a sheet of faces in no person
    path: Path
    faces: list[SheetFace]  # the tiles on this sheet, in drawing order
    total_faces: int  # faces of the subject
    tiles: int = 0  # tiles of the subject over all pages (near duplicates share one)
    page: int = 0  # from 0
    pages: int = 1
    numbers: Mapping[int, tuple[int, ...]] = field(default_factory=dict)  # every number so far
    current: frozenset[int] = frozenset()  # faces of the subject when drawn

    def face_ids(self, numbers: Sequence[int]) -> list[int]:
        """The faces of these tile numbers (a tile stands for its near duplicates too), still
        in the subject. A number never printed, or whose faces all left, is a ValueError."""
        known = dict(self.numbers) or {f.number: f.faces for f in self.faces}
        current = self.current or frozenset(f for g in known.values() for f in g)
        bad = [n for n in numbers if n not in known]
        if bad:
            raise ValueError(
                f"no face numbered {', '.join(map(str, bad))} on this sheet "
                f"(numbers shown: {number_ranges([f.number for f in self.faces])})"
            )
        out: list[int] = []
        for n in numbers:
            here = [f for f in known[n] if f in current]
            if not here:
                raise ValueError(f"face {n} is no longer here (it was moved or removed)")
            out.extend(here)
        return list(dict.fromkeys(out))


def number_ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7, 9, 10]`` as ``"1-3, 7, 9-10"``."""
    ordered = sorted(set(numbers))
    if not ordered:
        return "none"
    parts: list[str] = []
    start = prev = ordered[0]
    for n in [*ordered[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


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


def compose(
    tiles: Sequence[tuple[int, int, Image.Image]],
    tile: int,
    columns: int,
    *,
    title: str | None = None,
    marked: Sequence[int] = (),
    extra: Mapping[int, int] | None = None,
    captions: Mapping[int, str] | None = None,
) -> Image.Image:
    """A grid of ``(number, face_id, crop)`` tiles, each with its number and face id.

    ``title``: a line above the grid; ``marked``: tile numbers drawn in orange (the least
    typical); ``extra``: near duplicates each tile stands for, printed as ``+2``; ``captions``:
    a line under a tile (by face id) instead of its face id, cut to the tile's width (what
    follows a tab in it is never cut: "Ada Lovelace\t0.91").
    """
    rows = max(1, math.ceil(len(tiles) / columns))
    cols = max(1, min(columns, len(tiles)))
    pad = 4
    top = _HEADER_HEIGHT if title else 0
    cell_w, cell_h = tile + pad, tile + _LABEL_HEIGHT + pad
    sheet = Image.new("RGB", (cols * cell_w + pad, top + rows * cell_h + pad), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    big, small = _font(16), _font(11)
    if title:
        draw.text((pad + 2, 4), title, fill=(230, 230, 230), font=_font(13))
    orange = set(marked)
    for i, (number, face_id, crop) in enumerate(tiles):
        x = pad + (i % cols) * cell_w
        y = top + pad + (i // cols) * cell_h
        sheet.paste(crop, (x, y))
        label_w = 10 * len(str(number)) + 8
        draw.rectangle((x, y, x + label_w, y + 20), fill=(170, 70, 0) if number in orange else 0)
        draw.text((x + 4, y + 1), str(number), fill=(255, 255, 80), font=big)
        more = (extra or {}).get(number, 0)
        label = f"face {face_id}" + (f" +{more}" if more else "")
        caption = (captions or {}).get(face_id)
        if caption is not None:  # "text\tkept": the text is cut to fit, never what is kept
            text, _tab, kept = caption.partition("\t")
            kept = (f" {kept}" if kept else "") + (f" +{more}" if more else "")
            label = text + kept
            while len(text) > 1 and draw.textlength(label, font=small) > tile - 4:
                text = text[:-1]
                label = text.rstrip() + "…" + kept
        draw.text((x + 2, y + tile + 2), label, fill=(170, 170, 170), font=small)
    return sheet


@dataclass(frozen=True)
class _Ranked:
    """A subject's faces in ranking order with what near-duplicate grouping needs."""

    ids: list[int]
    distance: np.ndarray
    x: np.ndarray  # embeddings, float32
    photo: np.ndarray
    taken: list[datetime | None]


def _load_ranked(session: Session, ranked: Sequence[tuple[int, float]]) -> _Ranked:
    ids = [int(f) for f, _d in ranked]
    rows: dict[int, tuple[bytes, int, datetime | None]] = {}
    for chunk in in_chunks(ids):
        for r in session.execute(
            select(Face.id, Face.embedding, Face.photo_id, Photo.taken_at)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id.in_(chunk))
        ):
            rows[int(r[0])] = (r[1], int(r[2]), r[3])
    keep = [(f, d) for f, d in ranked if int(f) in rows]
    ids = [int(f) for f, _d in keep]
    x = blobs_to_matrix([rows[i][0] for i in ids])  # (0, EMBEDDING_DIM) when empty
    return _Ranked(
        ids,
        np.array([d for _f, d in keep], dtype=np.float64),
        x,
        np.array([rows[i][1] for i in ids], dtype=np.int64),
        [rows[i][2] for i in ids],
    )


def near_duplicate_groups(
    x: np.ndarray, photo: np.ndarray, taken: Sequence[datetime | None]
) -> list[list[int]]:
    """Rows of ``x`` (in ranking order) grouped into near duplicates, each group led by its
    first row: a row joins the first earlier leader within ``NEAR_DUPLICATE``, or within
    ``BURST_DISTANCE`` when both photos were taken within ``BURST_SECONDS``; never a face of
    its own photo. Pairwise distances in blocks (BLAS), so thousands of faces take milliseconds."""
    n = len(x)
    if n == 0:
        return []
    xf = np.asarray(x, dtype=np.float32)
    sq = (xf * xf).sum(axis=1)
    close: list[np.ndarray] = []
    for start in range(0, n, 1024):
        block = xf[start : start + 1024]
        d2 = sq[start : start + len(block), None] + sq[None, :] - 2.0 * (block @ xf.T)
        for k, row in enumerate(d2):
            near = np.flatnonzero(row < BURST_DISTANCE**2)
            close.append(near[near > start + k])  # later rows only: leaders come first
    stamp = [t.timestamp() if t is not None else None for t in _naive(taken)]
    leader = np.full(n, -1, dtype=np.int64)
    groups: list[list[int]] = []
    for i in range(n):
        if leader[i] >= 0:
            continue
        leader[i] = i
        group = [i]
        for j in close[i].tolist():
            if leader[j] >= 0 or photo[j] == photo[i]:
                continue
            d = float(np.linalg.norm(xf[i] - xf[j]))
            burst = (
                stamp[i] is not None
                and stamp[j] is not None
                and abs(stamp[i] - stamp[j]) <= BURST_SECONDS
            )
            if d < NEAR_DUPLICATE or (burst and d < BURST_DISTANCE):
                leader[j] = i
                group.append(j)
        groups.append(sorted(group))
    return groups


def _naive(taken: Sequence[datetime | None]) -> list[datetime | None]:
    return [t.replace(tzinfo=None) if t is not None else None for t in taken]


def plan_pages(tiles: int, count: int) -> list[list[int]]:
    """Which ranked tiles (indices, most typical first) go on each page of ``count``.

    All fit: one page, in order. Otherwise the first page is the ``count - count // 3`` most
    typical and the ``count // 3`` least typical, and the later pages the rest, from the least
    typical inward.
    """
    if count < 1:
        raise ValueError("a contact sheet needs at least one face")
    if tiles <= count:
        return [list(range(tiles))]
    tail = count // 3
    head = count - tail
    first = [*range(head), *range(tiles - tail, tiles)]
    rest = list(range(tiles - tail - 1, head - 1, -1))
    return [first, *(rest[i : i + count] for i in range(0, len(rest), count))]


def first_page_faces(ranked: Sequence[tuple[int, float]], count: int) -> list[int]:
    """The faces the first page will most likely draw (near duplicates not yet grouped): what
    is worth cutting ahead of time."""
    page = plan_pages(len(ranked), count)[0]
    return [int(ranked[i][0]) for i in page]


def build_contact_sheet(
    session: Session,
    person_id: int,
    cache_dir: Path,
    *,
    count: int = DEFAULT_COUNT,
    tile: int = DEFAULT_TILE,
    columns: int = 6,
    cache: CropCache | None = None,
    page: int = 0,
    numbers: SheetNumbers | None = None,
) -> ContactSheet:
    """Draw page ``page`` of ``person_id``'s faces (see the module docstring); return what is
    on it. The image goes to ``cache_dir/sheets/person-<id>-<digest>.jpg``."""
    return build_faces_sheet(
        session,
        typical_faces(session, person_id),
        cache_dir,
        subject=f"person-{person_id}",
        person_id=person_id,
        title=f"Person {person_id}",
        count=count,
        tile=tile,
        columns=columns,
        cache=cache,
        page=page,
        numbers=numbers,
    )


def _page_plan(tiles: int, count: int, page: int) -> tuple[list[list[int]], int, set[int]]:
    """The pages of ``tiles`` ranked tiles (:func:`plan_pages`), ``page`` clamped to them, and
    the tiles marked least typical: the last ``count // 3`` on a first page of several."""
    pages = plan_pages(tiles, count)
    page = min(max(page, 0), len(pages) - 1)
    tail: set[int] = set()
    if page == 0 and len(pages) > 1:
        tail = set(range(tiles - count // 3, tiles))
    return pages, page, tail


def _page_faces(
    session: Session,
    data: _Ranked,
    groups: Sequence[Sequence[int]],
    on_page: Sequence[int],
    tail: set[int],
    numbers: SheetNumbers,
    cache: CropCache,
) -> tuple[list[tuple[int, int, Image.Image]], list[SheetFace]]:
    """The tiles of the groups ``on_page`` (each drawn as its most typical face, numbered by
    ``numbers``, its crop from ``cache``) and what each stands for."""
    leaders = [data.ids[groups[g][0]] for g in on_page]
    requests = {r.face_id: r for r in crop_requests(session, leaders)}
    tiles: list[tuple[int, int, Image.Image]] = []
    faces: list[SheetFace] = []
    for g in on_page:
        members = tuple(data.ids[i] for i in groups[g])
        leader = members[0]
        number = numbers.number(leader, members)
        img, problem = cache.get(requests[leader])
        tiles.append((number, leader, img))
        dist = float(data.distance[groups[g][0]])
        faces.append(SheetFace(number, leader, dist, problem, members, g in tail))
    return tiles, faces


def _sheet_path(cache_dir: Path, subject: str, drawn: object) -> Path:
    """``cache_dir/sheets/<subject>-<digest>.jpg``, the digest of what is ``drawn``; the folder
    is made and older drawings of the same subject are removed."""
    digest = hashlib.sha1(repr(drawn).encode()).hexdigest()[:10]
    folder = Path(cache_dir) / "sheets"
    path = folder / f"{subject}-{digest}.jpg"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{subject}-*.jpg"):
        if old != path:
            old.unlink(missing_ok=True)
    return path


def _draw(
    tiles: Sequence[tuple[int, int, Image.Image]],
    faces: Sequence[SheetFace],
    tile: int,
    columns: int,
    heading: str | None,
    captions: Mapping[int, str] | None,
) -> Image.Image:
    """The sheet's image: the tiles composed (least typical marked, near duplicates counted),
    or a placeholder when there is no face."""
    if not tiles:
        return _placeholder(tile, "no faces")
    return compose(
        tiles,
        tile,
        columns,
        title=heading,
        marked=[f.number for f in faces if f.least_typical],
        extra={f.number: len(f.faces) - 1 for f in faces},
        captions=captions,
    )


def build_faces_sheet(
    session: Session,
    ranked: Sequence[tuple[int, float]],
    cache_dir: Path,
    *,
    subject: str,
    person_id: int | None = None,
    title: str | None = None,
    count: int = DEFAULT_COUNT,
    tile: int = DEFAULT_TILE,
    columns: int = 6,
    cache: CropCache | None = None,
    page: int = 0,
    numbers: SheetNumbers | None = None,
    captions: Mapping[int, str] | None = None,
) -> ContactSheet:
    """Draw page ``page`` (clamped to the last) of the faces ``ranked`` ((face id, distance),
    most typical first) as ``cache_dir/sheets/<subject>-<digest>.jpg``; older drawings of the
    same subject are removed. ``numbers``: the numbering to continue (kept by the caller while
    the subject is shown); ``captions``: a line under a face's tile instead of its id."""
    if count < 1:
        raise ValueError("a contact sheet needs at least one face")
    numbers = numbers if numbers is not None else SheetNumbers()
    data = _load_ranked(session, ranked)
    groups = near_duplicate_groups(data.x, data.photo, data.taken)
    pages, page, tail = _page_plan(len(groups), count, page)
    cache = cache or CropCache(cache_dir, tile)
    tiles, faces = _page_faces(session, data, groups, pages[page], tail, numbers, cache)
    heading = _heading(title, len(data.ids), len(groups), page, len(pages), count)
    drawn = (
        heading,
        cache.tile,
        columns,
        [(f.number, f.faces, f.problem) for f in faces],
        sorted((captions or {}).items()),
    )
    path = _sheet_path(cache_dir, subject, drawn)
    _draw(tiles, faces, cache.tile, columns, heading, captions).save(
        path, format="JPEG", quality=88
    )
    return ContactSheet(
        person_id,
        path,
        faces,
        total_faces=len(data.ids),
        tiles=len(groups),
        page=page,
        pages=len(pages),
        numbers=dict(numbers.groups),
        current=frozenset(data.ids),
    )


def _heading(
    title: str | None, faces: int, tiles: int, page: int, pages: int, count: int
) -> str | None:
    if title is None:
        return None
    what = f"{title}: {faces} face{'s' if faces != 1 else ''}"
    if tiles < faces:
        what += f" ({tiles} after near duplicates)"
    if pages == 1:
        return what
    if page == 0:
        return f"{what}, page 1/{pages}: most typical, then the {count // 3} least (orange)"
    return f"{what}, page {page + 1}/{pages}: the next least typical"


__all__ = [
    "BURST_DISTANCE",
    "DEFAULT_COUNT",
    "DEFAULT_TILE",
    "NEAR_DUPLICATE",
    "ContactSheet",
    "CropCache",
    "CropRequest",
    "SheetFace",
    "SheetNumbers",
    "build_contact_sheet",
    "build_faces_sheet",
    "compose",
    "crop_requests",
    "crop_square",
    "first_page_faces",
    "near_duplicate_groups",
    "number_ranges",
    "plan_pages",
    "typical_faces",
]
