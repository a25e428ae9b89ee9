"""export-xmp: each photo's named faces written as MWG face regions (a sidecar, or the photo
itself), merged with what the XMP already holds; a photo whose XMP already says the same is not
rewritten."""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.decisions.log import find_person_by_name
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.export.xmp.exiftool import (
    INSTALL_EXIFTOOL,
    READ_TAGS,
    ExifTool,
    as_list,
    exif_error,
    find_exiftool,
)
from photocluster.export.xmp.regions import (
    MAX_XMP_BYTES,
    MIN_OVERLAP,
    SIDECAR_STYLES,
    Region,
    XmpError,
    face_region,
    overlap,
    parse_xmp,
    sidecar_for,
)
from photocluster.ingest.analyse import hash_file
from photocluster.progress import NoProgress, Progress


@dataclass
class XmpExportOptions:
    sidecar: str = "auto"  # auto | ext | base
    in_place: bool = False
    keywords: bool = False
    people: list[str] = field(default_factory=list)  # names or ids; empty = every named person
    dry_run: bool = False


@dataclass
class XmpExportSummary:
    photos: int = 0
    written: list[str] = field(default_factory=list)  # files created or updated
    unchanged: int = 0
    regions: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    dry_run: bool = False
    seconds: float = 0.0


@dataclass
class _PhotoFaces:
    photo_id: int
    path: str
    width: int
    height: int
    regions: list[Region] = field(default_factory=list)


def _named_faces(session: Session, people: list[str]) -> list[_PhotoFaces]:
    q = (
        select(
            Photo.id,
            Photo.path,
            Photo.width,
            Photo.height,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Person.id,
            Person.name,
        )
        .join(Face, Face.photo_id == Photo.id)
        .join(Person, Person.id == Face.person_id)
        .where(Person.name.is_not(None), Photo.status == PhotoStatus.OK)
    )
    if people:
        ids = []
        for ref in people:
            if ref.strip().isdigit():
                found = session.get(Person, int(ref))
            else:
                found = find_person_by_name(session, ref)
            if found is None or found.name is None:
                raise NotFound(f"No named person {ref!r} (see `photocluster people`).")
            ids.append(found.id)
        q = q.where(Person.id.in_(ids))
    else:
        q = q.where(Person.hidden.is_(False))
    photos: dict[int, _PhotoFaces] = {}
    for r in session.execute(q.order_by(Photo.path, Face.left, Face.top)):
        if not r[2] or not r[3]:
            continue
        pf = photos.setdefault(r[0], _PhotoFaces(r[0], r[1], r[2], r[3]))
        pf.regions.append(face_region(r[4], r[5], r[6], r[7], r[2], r[3], r[9]))
    return sorted(photos.values(), key=lambda p: p.path)


def _region_json(r: Region) -> dict[str, Any]:
    return {
        "Area": {"X": r.x, "Y": r.y, "W": r.w, "H": r.h, "Unit": "normalized"},
        "Name": r.name,
        "Type": r.type or "Face",
    }


def _json_region_box(item: dict[str, Any]) -> tuple[float, float, float, float] | None:
    area = item.get("Area")
    if not isinstance(area, dict):
        return None
    try:
        x, y, w, h = (float(area[k]) for k in ("X", "Y", "W", "H"))
    except (KeyError, TypeError, ValueError):
        return None
    return (x - w / 2, y - h / 2, x + w / 2, y + h / 2)


def _same(a: Any, b: Any) -> bool:
    """Equal JSON values, numbers compared as numbers (exiftool prints 0.5 for 0.500000)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        fa, fb = float(a), float(b)
        return abs(fa - fb) < 1e-6
    except (TypeError, ValueError):
        return str(a) == str(b)


def _minus(values: Iterable[str], drop: set[str]) -> list[str]:
    return [v for v in values if v not in drop]


def _plus(values: list[str], add: Iterable[str]) -> list[str]:
    out = list(values)
    for v in add:
        if v not in out:
            out.append(v)
    return out


def plan_xmp(
    existing: dict[str, Any], ours: _PhotoFaces, keywords: bool
) -> tuple[dict[str, Any], list[str], list[str] | None]:
    """The merged RegionInfo, PersonInImage and (if asked) dc:subject for one photo."""
    info = existing.get("RegionInfo") if isinstance(existing.get("RegionInfo"), dict) else {}
    assert isinstance(info, dict)
    old_list = info.get("RegionList") if isinstance(info.get("RegionList"), list) else []
    assert isinstance(old_list, list)
    our_boxes = [r.box() for r in ours.regions]
    kept: list[Any] = []
    replaced_names: set[str] = set()
    for item in old_list:
        box = _json_region_box(item) if isinstance(item, dict) else None
        is_face = isinstance(item, dict) and str(item.get("Type", "Face")) == "Face"
        if box and is_face and any(overlap(box, b) >= MIN_OVERLAP for b in our_boxes):
            if item.get("Name") is not None:
                replaced_names.add(str(item["Name"]))
            continue
        kept.append(item)
    our_names = [r.name for r in ours.regions if r.name]
    new_info = {
        "AppliedToDimensions": {"W": ours.width, "H": ours.height, "Unit": "pixel"},
        "RegionList": kept + [_region_json(r) for r in ours.regions],
    }
    people = _plus(_minus(as_list(existing.get("PersonInImage")), replaced_names), our_names)
    subject = None
    if keywords:
        subject = _plus(_minus(as_list(existing.get("Subject")), replaced_names), our_names)
    return new_info, people, subject


def export_xmp(
    catalog: Catalog,
    options: XmpExportOptions,
    progress: Progress | None = None,
    exiftool: str | None = None,
) -> XmpExportSummary:
    """Write MWG face regions for every photo with named faces. See the module docstring."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    if options.sidecar not in SIDECAR_STYLES:
        raise PhotoclusterError(
            f"Unknown sidecar style {options.sidecar!r}; use {', '.join(SIDECAR_STYLES)}."
        )
    executable = exiftool or find_exiftool()
    if executable is None:
        raise PhotoclusterError(INSTALL_EXIFTOOL)
    with catalog.session() as session:
        photos = _named_faces(session, options.people)
    summary = XmpExportSummary(photos=len(photos), dry_run=options.dry_run)

    # Several photos may map to one sidecar (IMG_1.jpg and IMG_1.cr2 with base names).
    owner: dict[str, str] = {}
    jobs: list[tuple[str, _PhotoFaces]] = []
    for pf in photos:
        target = pf.path if options.in_place else sidecar_for(pf.path, options.sidecar)
        if target in owner:
            summary.failures.append(
                (pf.path, f"shares the sidecar {target} with {owner[target]}; use --sidecar ext")
            )
            continue
        owner[target] = pf.path
        jobs.append((target, pf))

    touched: list[int] = []
    progress.start(len(jobs), "Writing XMP")
    try:
        with ExifTool(executable) as tool, tempfile.TemporaryDirectory() as tmp:
            for target, pf in jobs:
                try:
                    if _export_one(tool, tmp, target, pf, options, summary):
                        touched.append(pf.photo_id)
                except XmpError as exc:
                    summary.failures.append((target, str(exc)))
                progress.advance()
    finally:
        progress.finish()
    if options.in_place and touched and not options.dry_run:
        _refresh_photos(catalog, touched)
    summary.seconds = time.perf_counter() - started
    return summary


def _export_one(
    tool: ExifTool,
    tmp: str,
    target: str,
    pf: _PhotoFaces,
    options: XmpExportOptions,
    summary: XmpExportSummary,
) -> bool:
    """Merge and write one file; True if it changed."""
    if options.in_place and not os.path.isfile(target):
        raise XmpError("photo not found (run `photocluster scan` again)")
    existing: dict[str, Any] = {}
    if os.path.lexists(target):
        if not os.path.isfile(target):
            raise XmpError("is not a regular file")
        if not options.in_place:
            size = os.path.getsize(target)
            if size > MAX_XMP_BYTES:
                raise XmpError(f"existing sidecar is larger than {MAX_XMP_BYTES // 2**20} MiB")
            with open(target, "rb") as fh:
                try:
                    parse_xmp(fh.read())
                except XmpError as exc:
                    raise XmpError(f"existing sidecar left unchanged: {exc}") from exc
        stdout, stderr = tool.run(["-j", "-struct", "-charset", "UTF8", *READ_TAGS, target])
        error = exif_error(stderr)
        if error:
            raise XmpError(f"exiftool cannot read it: {error}")
        try:
            # Keep numbers as text: a name like "1984" must stay a string.
            rows = json.loads(stdout or "[]", parse_float=str, parse_int=str)
            existing = rows[0] if rows else {}
        except (ValueError, IndexError) as exc:
            raise XmpError(f"exiftool output was not JSON: {exc}") from exc
    info, people, subject = plan_xmp(existing, pf, options.keywords)
    summary.regions += len(pf.regions)
    same = (
        _same(existing.get("RegionInfo"), info)
        and as_list(existing.get("PersonInImage")) == people
        and (subject is None or as_list(existing.get("Subject")) == subject)
    )
    if same:
        summary.unchanged += 1
        return False
    if options.dry_run:
        summary.written.append(target)
        return False
    record: dict[str, Any] = {"SourceFile": "*", "XMP-mwg-rs:RegionInfo": info}
    extra: list[str] = []
    if people:
        record["XMP-iptcExt:PersonInImage"] = people
    else:
        extra.append("-XMP-iptcExt:PersonInImage=")
    if subject is not None:
        if subject:
            record["XMP-dc:Subject"] = subject
        else:
            extra.append("-XMP-dc:Subject=")
    job = os.path.join(tmp, "tags.json")
    with open(job, "w", encoding="utf-8") as fh:
        json.dump([record], fh, ensure_ascii=False)
    _stdout, stderr = tool.run(
        ["-overwrite_original", "-charset", "UTF8", f"-j={job}", *extra, target]
    )
    error = exif_error(stderr)
    if error:
        raise XmpError(f"exiftool could not write it: {error}")
    summary.written.append(target)
    return True


def _refresh_photos(catalog: Catalog, photo_ids: list[int]) -> None:
    """After writing into photos, record their new size/mtime/hash so scan sees them unchanged."""
    with catalog.session() as session:
        for pid in photo_ids:
            photo = session.get(Photo, pid)
            if photo is None:
                continue
            try:
                st = os.stat(photo.path)
                photo.content_hash = hash_file(photo.path)
            except OSError:
                continue
            photo.size = st.st_size
            photo.mtime_ns = st.st_mtime_ns
