"""import-xmp: names on MWG face regions under a folder (sidecars and embedded XMP) become
confirmed faces where a region overlaps a detected face."""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog, hold_write_lock
from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.names import name_key, same_name, tidy_name
from photocluster.decisions.log import assign_faces, find_person_by_name
from photocluster.errors import PhotoclusterError
from photocluster.export.xmp.regions import (
    MIN_OVERLAP,
    Region,
    XmpError,
    not_regular,
    overlap,
    read_embedded,
    read_sidecar,
)
from photocluster.progress import NoProgress, Progress


@dataclass
class ImportOptions:
    folder: str
    min_overlap: float = MIN_OVERLAP
    dry_run: bool = False


@dataclass
class ImportSummary:
    files_read: int = 0
    photos: int = 0
    regions: int = 0
    matched: int = 0
    assigned: int = 0  # faces newly confirmed
    already: int = 0  # faces already confirmed with that name
    people_created: list[str] = field(default_factory=list)
    by_name: dict[str, int] = field(default_factory=dict)
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (photo, name)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # (photo, xmp, catalog)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    dry_run: bool = False
    seconds: float = 0.0


@dataclass
class _FaceRow:
    id: int
    box: tuple[float, float, float, float]  # normalised
    person_id: int | None
    person_name: str | None
    confirmed: bool


def _sidecars_of(path: str, sidecars: dict[str, str]) -> list[str]:
    """Sidecar files (by lower-cased path) that belong to the photo at ``path``."""
    found = []
    for candidate in (path + ".xmp", os.path.splitext(path)[0] + ".xmp"):
        real = sidecars.get(candidate.lower())
        if real and real not in found:
            found.append(real)
    return found


def _dedupe(regions: list[Region]) -> list[Region]:
    """Drop a region repeating an earlier one (same name, same place: sidecar and embedded)."""
    out: list[Region] = []
    for r in regions:
        if not any(o.name == r.name and overlap(o.box(), r.box()) > 0.5 for o in out):
            out.append(r)
    return out


def _walk(folder: str, skipped: list[tuple[str, str]]) -> dict[str, str]:
    """Every ``.xmp`` file under ``folder`` (hidden folders skipped), keyed by lower-cased path.

    Names that are not regular files (FIFOs, sockets, devices, broken links) go to ``skipped``."""
    sidecars: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if os.path.splitext(name)[1].lower() != ".xmp":
                continue
            try:
                why = not_regular(os.stat(path).st_mode)
            except OSError as exc:
                why = f"cannot read: {exc.strerror}"
            if why:
                skipped.append((path, why))
            else:
                sidecars[path.lower()] = path
    return sidecars


def import_xmp(
    catalog: Catalog, options: ImportOptions, progress: Progress | None = None
) -> ImportSummary:
    """Turn names on MWG face regions under a folder into confirmed faces. See module docstring."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    folder = os.path.abspath(os.path.expanduser(options.folder))
    if not os.path.isdir(folder):
        raise PhotoclusterError(f"Folder not found: {folder}")
    summary = ImportSummary(dry_run=options.dry_run)
    sidecars = _walk(folder, summary.skipped)

    with catalog.session() as session:
        if not options.dry_run:
            # before the reads the decisions below are based on: a decision someone makes
            # meanwhile is seen, never overwritten (see db.hold_write_lock)
            hold_write_lock(session, "import-xmp")
        faces = _faces_under(session, folder)
        wanted = _WantedNames()
        used_sidecars: set[str] = set()
        progress.start(len(faces), "Reading XMP")
        for path in sorted(faces):
            progress.advance()
            named = _named_regions(path, sidecars, used_sidecars, summary)
            if named:
                _match_photo(path, named, faces[path], options.min_overlap, wanted, summary)
        progress.finish()
        for sidecar in sorted(set(sidecars.values()) - used_sidecars):
            summary.skipped.append((sidecar, "no photo with faces in the catalog for it"))
        _assign_names(session, wanted, summary, dry_run=options.dry_run)
        if options.dry_run:
            session.rollback()
    summary.seconds = time.perf_counter() - started
    return summary


def _faces_under(session: Session, folder: str) -> dict[str, list[_FaceRow]]:
    """The catalog's faces of the photos under ``folder``, by photo path, boxes normalised."""
    prefix = folder.rstrip(os.sep) + os.sep
    rows = session.execute(
        select(
            Photo.id,
            Photo.path,
            Photo.width,
            Photo.height,
            Face.id,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Face.person_id,
            Person.name,
            Face.confirmed,
        )
        .join(Face, Face.photo_id == Photo.id)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Photo.path.startswith(prefix, autoescape=True))
    ).all()
    faces: dict[str, list[_FaceRow]] = defaultdict(list)
    for r in rows:
        if not r[2] or not r[3]:
            continue
        box = (r[5] / r[2], r[6] / r[3], r[7] / r[2], r[8] / r[3])
        faces[r[1]].append(_FaceRow(r[4], box, r[9], r[10], bool(r[11])))
    return faces


def _named_regions(
    path: str, sidecars: dict[str, str], used_sidecars: set[str], summary: ImportSummary
) -> list[Region]:
    """The named face regions of one photo, from its sidecars and its embedded XMP."""
    regions: list[Region] = []
    for sidecar in _sidecars_of(path, sidecars):
        used_sidecars.add(sidecar)
        try:
            found = read_sidecar(sidecar)
        except XmpError as exc:
            summary.skipped.append((sidecar, str(exc)))
            continue
        summary.files_read += 1
        regions.extend(found.regions)
        summary.skipped.extend((sidecar, why) for why in found.skipped)
    if os.path.isfile(path):
        try:
            embedded = read_embedded(path)
        except XmpError as exc:
            summary.skipped.append((path, str(exc)))
            embedded = None
        if embedded is not None:
            summary.files_read += 1
            regions.extend(embedded.regions)
            summary.skipped.extend((path, why) for why in embedded.skipped)
    return _dedupe([r for r in regions if r.name and (r.type or "Face") == "Face"])


@dataclass
class _WantedNames:
    """Faces to confirm, by name (:func:`names.name_key`), and how often each spelling came."""

    faces: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    spellings: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def add(self, name: str, face_id: int) -> None:
        # one person however the name is spelled (case, spaces)
        self.faces[name_key(name)].append(face_id)
        self.spellings[name_key(name)][tidy_name(name)] += 1


def _match_photo(
    path: str,
    named: list[Region],
    faces: list[_FaceRow],
    min_overlap: float,
    wanted: _WantedNames,
    summary: ImportSummary,
) -> None:
    """Pair one photo's named regions with its faces, best overlap first, one to one."""
    summary.photos += 1
    summary.regions += len(named)
    pairs = sorted(
        ((overlap(r.box(), f.box), i, j) for i, r in enumerate(named) for j, f in enumerate(faces)),
        reverse=True,
    )
    region_done: set[int] = set()
    face_done: set[int] = set()
    for score, i, j in pairs:
        if score < min_overlap:
            break
        if i in region_done or j in face_done:
            continue
        face = faces[j]
        name = str(named[i].name).strip()
        region_done.add(i)
        face_done.add(j)
        summary.matched += 1
        if face.confirmed and same_name(face.person_name, name):
            summary.already += 1
        elif face.confirmed and face.person_id is not None:
            label = face.person_name or f"person {face.person_id}"
            summary.conflicts.append((path, name, label))
        else:
            wanted.add(name, face.id)
    for i, region in enumerate(named):
        if i not in region_done:
            summary.unmatched.append((path, str(region.name)))


def _assign_names(
    session: Session, wanted: _WantedNames, summary: ImportSummary, *, dry_run: bool
) -> None:
    """Confirm the wanted faces as their people (created as needed), under the usual spelling."""
    chosen = {k: wanted.spellings[k].most_common(1)[0][0] for k in wanted.faces}
    for key in sorted(wanted.faces, key=lambda k: chosen[k]):
        name = chosen[key]
        ids = sorted(set(wanted.faces[key]))
        summary.by_name[name] = len(ids)
        if dry_run:
            if find_person_by_name(session, name) is None:
                summary.people_created.append(name)
            summary.assigned += len(ids)
            continue
        existed = find_person_by_name(session, name) is not None
        try:  # an unusable name fails before anything changes
            assign_faces(session, ids, name, actor="import-xmp", create=True)
        except PhotoclusterError as exc:
            summary.skipped.append((name, f"name not imported: {exc}"))
            summary.by_name.pop(name, None)
            continue
        if not existed:
            summary.people_created.append(name)
        summary.assigned += len(ids)
