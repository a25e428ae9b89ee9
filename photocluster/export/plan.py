"""What DEST should hold: the people and photos to export, a DEST outside the library, file names
kept across runs, and the diff against the manifest."""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import in_chunks
from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.export.entries import (
    PlannedFile,
    adoptable,
    entry_intact,
    entry_record,
    listdir_keys,
)
from photocluster.export.foldernames import (
    assign_unique,
    clash_key,
    safe_filename,
    safe_name,
    with_suffix,
)
from photocluster.export.manifest import MANIFEST_NAME


def _is_within(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder if folder == os.sep else folder + os.sep)


def library_conflict(dest: str, photo_paths: list[str], roots: list[str]) -> str | None:
    """Why ``dest`` must not be used, or None. ``dest``, the paths and the roots are absolute.

    ``roots`` are the folders scanned into the catalog (:mod:`photocluster.catalog.roots`): the
    next scan of one would read whatever is exported inside it as new photos. DEST may not be
    inside one, nor inside a folder holding catalog photos (all a catalog scanned before roots
    were recorded can tell), nor contain catalog photos. Nothing is guessed from where photos
    happen to share a parent folder.
    """
    for p in photo_paths:
        if _is_within(p, dest):
            return f"it contains photos of the catalog (for example {p})"
    scanned = [r for r in roots if _is_within(dest, r)]
    if scanned:
        root = min(scanned, key=len)
        return (
            f"it is inside {root}, a folder scanned into this catalog (`photocluster scan "
            f"{root}`), so the next scan of it would read the exported photos as new ones"
        )
    dirs = {os.path.dirname(p) for p in photo_paths}
    probe = dest
    while True:
        if probe in dirs:
            return (
                f"it is inside {probe}, a folder of catalog photos, so a scan of it would read "
                "the exported photos as new ones"
            )
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def resolve_dest(dest: str) -> Path:
    path = Path(os.path.abspath(os.path.expanduser(dest)))
    # Resolve symlinks in the part that exists so "inside the library" cannot be dodged.
    existing = path
    rest: list[str] = []
    while not existing.exists() and existing != existing.parent:
        rest.append(existing.name)
        existing = existing.parent
    resolved = existing.resolve()
    for part in reversed(rest):
        resolved = resolved / part
    if resolved.exists() and not resolved.is_dir():
        raise PhotoclusterError(f"{resolved} exists and is not a folder; choose another DEST.")
    return resolved


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str | None
    hidden: bool

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"Unknown {self.id:04d}"


def select_people(
    session: Session, chosen_people: list[str], include_unnamed: bool
) -> list[PersonRow]:
    """The people ``chosen_people`` names (names or ids), else every person to export."""
    rows = [
        PersonRow(r.id, r.name, bool(r.hidden))
        for r in session.execute(select(Person.id, Person.name, Person.hidden).order_by(Person.id))
    ]
    if chosen_people:
        by_name = {r.name: r for r in rows if r.name is not None}
        by_fold: dict[str, list[PersonRow]] = defaultdict(list)
        for r in rows:
            if r.name is not None:
                by_fold[r.name.casefold()].append(r)
        by_id = {r.id: r for r in rows}
        chosen: dict[int, PersonRow] = {}
        for sel in chosen_people:
            person = by_name.get(sel)
            if person is None and len(by_fold.get(sel.casefold(), [])) == 1:
                person = by_fold[sel.casefold()][0]
            if person is None and sel.strip().isdigit():
                person = by_id.get(int(sel))
            if person is None:
                raise NotFound(
                    f"No person called {sel!r}. See the names with `photocluster people`, "
                    "or pass a person id."
                )
            chosen[person.id] = person
        return sorted(chosen.values(), key=lambda p: p.id)
    return [r for r in rows if not r.hidden and (r.name is not None or include_unnamed)]


def photos_by_person(
    session: Session, person_ids: list[int]
) -> dict[int, list[tuple[int, str, int, int]]]:
    result: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    for chunk in in_chunks(person_ids):
        rows = session.execute(
            select(Face.person_id, Photo.id, Photo.path, Photo.size, Photo.mtime_ns)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.person_id.in_(chunk), Photo.status == PhotoStatus.OK)
            .distinct()
        ).all()
        for r in rows:
            result[int(r[0] or 0)].append((int(r[1]), str(r[2]), int(r[3]), int(r[4])))
    for photos in result.values():
        photos.sort(key=lambda p: (p[1], p[0]))
    return result


def _derives_from(name: str, base: str) -> bool:
    """``name`` is ``base`` or ``base`` with a clash suffix (so it may be kept across runs)."""
    if clash_key(name) == clash_key(base):
        return True
    stem, dot, ext = base.rpartition(".")
    if not (dot and stem):
        stem, ext = base, ""
    pattern = re.escape(clash_key(stem)) + r" \((\d+)\)"
    if ext:
        pattern += re.escape("." + clash_key(ext))
    return re.fullmatch(pattern, clash_key(name)) is not None


def plan_files(
    dest: Path,
    people: list[PersonRow],
    photos: dict[int, list[tuple[int, str, int, int]]],
    old: dict[str, dict[str, Any]],
    old_folders: set[str],
    mode: str,
) -> tuple[list[PlannedFile], dict[str, str], set[str]]:
    """Every file DEST should hold, the folder of each person, and entries to adopt."""
    top = listdir_keys(dest)
    # A top-level *file* the user owns cannot be our folder; their folders we may share.
    taken = [
        name
        for key, name in top.items()
        if name != MANIFEST_NAME
        and not (dest / name).is_dir()
        and not any(clash_key(f) == key for f in old_folders)
    ]
    wanted = [p for p in people if photos.get(p.id)]
    folders = assign_unique([safe_name(p.label) for p in wanted], taken=taken)
    previous: dict[tuple[int, int], str] = {}
    for rel, rec in old.items():
        with contextlib.suppress(KeyError, TypeError, ValueError):
            previous[(int(rec["person_id"]), int(rec["photo_id"]))] = rel.split("/", 1)[1]
    old_keys = {clash_key(rel) for rel in old}
    planned: list[PlannedFile] = []
    adopt: set[str] = set()
    folder_of: dict[str, str] = {}
    for person, folder in zip(wanted, folders, strict=True):
        folder_of[folder] = person.label
        on_disk = listdir_keys(dest / folder)
        used: set[str] = set()
        names: dict[int, str] = {}
        items = photos[person.id]
        bases = {pid: safe_filename(os.path.basename(path)) for pid, path, _, _ in items}
        # Pass 1: keep the name each photo had in the previous export.
        for pid, _path, _s, _m in items:
            prev = previous.get((person.id, pid))
            if prev and clash_key(prev) not in used and _derives_from(prev, bases[pid]):
                names[pid] = prev
                used.add(clash_key(prev))
        # Pass 2: new entries take the plain name or the first free suffix.
        for pid, path, size, mtime in items:
            if pid in names:
                continue
            base = bases[pid]
            n = 1
            candidate = base
            while True:
                key = clash_key(candidate)
                if key not in used:
                    existing = on_disk.get(key)
                    ours = clash_key(f"{folder}/{existing}") in old_keys if existing else True
                    if existing is None or ours:
                        break
                    probe = PlannedFile(folder, existing, person.id, pid, path, size, mtime)
                    if adoptable(dest / folder / existing, probe, mode):
                        candidate = existing
                        adopt.add(f"{folder}/{existing}")
                        break
                n += 1
                candidate = with_suffix(base, n, is_file=True)
            names[pid] = candidate
            used.add(clash_key(candidate))
        for pid, path, size, mtime in items:
            planned.append(PlannedFile(folder, names[pid], person.id, pid, path, size, mtime))
    return planned, folder_of, adopt


@dataclass
class Diff:
    """What applying a plan would do, before anything is done."""

    state: dict[str, dict[str, Any]]  # the manifest after adopting entries
    wanted: dict[str, PlannedFile]
    unchanged: int
    adopted: int
    removals: list[str]
    moves: list[tuple[str, PlannedFile]]
    adds: list[PlannedFile]

    @property
    def work(self) -> bool:
        return bool(self.adopted or self.removals or self.moves or self.adds)


def diff_entries(
    dest: Path,
    planned: list[PlannedFile],
    adopt: set[str],
    old: dict[str, dict[str, Any]],
    mode: str,
) -> Diff:
    state: dict[str, dict[str, Any]] = dict(old)
    wanted = {p.rel: p for p in planned}
    keep: set[str] = set()
    adopted = 0
    to_create: list[PlannedFile] = []
    for rel, p in wanted.items():
        rec = old.get(rel)
        if rec is not None and entry_intact(dest / rel, rec, p, mode):
            keep.add(rel)
        elif rel in adopt:
            state[rel] = entry_record(dest / rel, p, mode)
            keep.add(rel)
            adopted += 1
        else:
            to_create.append(p)
    stale = [rel for rel in old if rel not in wanted or rel not in keep]
    # Moves: a new entry whose photo sits intact in an entry that goes away (renamed person).
    movable: dict[int, list[str]] = defaultdict(list)
    for rel in stale:
        if rel not in wanted and old[rel].get("mode") == mode:
            movable[int(old[rel].get("photo_id", -1))].append(rel)
    moves: list[tuple[str, PlannedFile]] = []
    adds: list[PlannedFile] = []
    for p in to_create:
        sources = movable.get(p.photo_id)
        if sources and old[sources[0]].get("source") == p.source:
            moves.append((sources.pop(0), p))
        else:
            adds.append(p)
    moved_from = {src for src, _ in moves}
    removals = [rel for rel in stale if rel not in moved_from]
    return Diff(state, wanted, len(keep), adopted, removals, moves, adds)
