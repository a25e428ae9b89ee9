"""Export one folder per person (``DEST/<Name>/``) holding links to (or copies of) their photos.

Plan, then apply. The plan is a pure comparison of what the catalog says DEST should hold with
the manifest DEST keeps of what photocluster itself put there (:data:`MANIFEST_NAME`):

* entries the catalog wants and the manifest has, still intact on disk: left alone;
* entries only the catalog wants: added — or *moved* from an old entry of the same photo (a
  renamed person's folder moves instead of being copied again);
* entries only the manifest has: removed, but only if the file is still exactly what
  photocluster made (a file the user replaced or edited is left alone and reported). For a copy
  "exactly" means its bytes: the manifest keeps the SHA-256 of what was written and a copy is
  hashed before it is deleted or replaced, so an edit that kept the size, the inode and even
  the mtime is still noticed. When a photo changed and its old copy was edited, the new version
  goes beside it under a `` (2)``-style name;
* anything else in DEST (the user's own files and folders) is never touched, never overwritten
  and never deleted. A link that already points where ours would is adopted, so a run that was
  stopped before it could save the manifest still completes on the next run.

Names come from :mod:`photocluster.export.foldernames`; two photos with the same file name in one
folder get `` (2)``-style suffixes, and an entry keeps the name it had in earlier exports.
Running out of space or permission stops the run with a clear message after saving the manifest,
so running the same command again finishes the job.

A run that has nothing to change writes nothing: no probe of the filesystem (the manifest says
which mode the previous run settled on), no manifest rewrite, so no mtime in DEST moves and
backup or sync tools see no change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import filecmp
import hashlib
import json
import os
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.db import Catalog, in_chunks
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.export.foldernames import (
    assign_unique,
    clash_key,
    safe_filename,
    safe_name,
    with_suffix,
)
from photocluster.fspath import json_text
from photocluster.library_roots import scanned_roots
from photocluster.models import Face, Person, Photo
from photocluster.photo_status import PhotoStatus
from photocluster.progress import NoProgress, Progress

MANIFEST_NAME = ".photocluster-export.json"
MANIFEST_SCHEMA = "photocluster.export-manifest/1"
MANIFEST_MAX_BYTES = 256 * 1024 * 1024
MANIFEST_FLUSH_EVERY = 500

SYMLINK = "symlink"
HARDLINK = "hardlink"
COPY = "copy"
AUTO = "auto"
MODES = (AUTO, SYMLINK, HARDLINK, COPY)

_EDQUOT = getattr(errno, "EDQUOT", errno.ENOSPC)  # absent on some platforms
# Errors that will hit every following file too: stop, save the manifest, explain.
_FATAL_ERRNOS = {errno.ENOSPC, _EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
_NO_LINK_ERRNOS = {
    errno.EPERM,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EMLINK,
}


class ExportStopped(PhotoclusterError):
    """The export stopped part way (disk full, permission denied); a re-run completes it."""


@dataclass
class ExportOptions:
    dest: str
    mode: str = AUTO
    people: list[str] = field(default_factory=list)  # names or ids; empty = every named person
    include_unnamed: bool = False
    dry_run: bool = False
    report_path: str | None = None


@dataclass(frozen=True)
class PlannedFile:
    """One file DEST should hold: ``folder/name`` standing for one photo of one person."""

    folder: str
    name: str
    person_id: int
    photo_id: int
    source: str
    source_size: int
    source_mtime_ns: int

    @property
    def rel(self) -> str:
        return f"{self.folder}/{self.name}"


@dataclass(frozen=True)
class Action:
    kind: str  # add | move | update | remove | keep (a changed file left alone)
    rel: str
    source: str | None = None  # the photo (add/update) or the old entry (move)


@dataclass
class ExportSummary:
    dest: str
    mode: str
    dry_run: bool
    people: int = 0
    photos: int = 0
    folders: dict[str, str] = field(default_factory=dict)  # folder -> person label
    actions: list[Action] = field(default_factory=list)
    unchanged: int = 0
    added: int = 0
    moved: int = 0
    updated: int = 0
    removed: int = 0
    kept_changed: list[str] = field(default_factory=list)  # our old entries the user changed
    failures: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.added + self.moved + self.updated + self.removed


# --------------------------------------------------------------------------- the manifest


@dataclass
class _Manifest:
    """What DEST's manifest says: entries (rel -> record) and folders photocluster created."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    requested: str | None = None  # the --mode of the run that wrote it
    mode: str | None = None  # the mode that run settled on (after probing DEST)
    read: bool = False  # False: missing or ignored, so it must be written


def _load_manifest(dest: Path, notes: list[str]) -> _Manifest:
    """The manifest photocluster wrote earlier. Unreadable = empty."""
    path = dest / MANIFEST_NAME
    try:
        st = path.lstat()
    except FileNotFoundError:
        return _Manifest()
    except OSError as exc:
        raise PhotoclusterError(f"Cannot read {path}: {exc.strerror}") from exc
    problem = None
    if not path.is_file() or path.is_symlink():
        problem = "it is not a regular file"
    elif st.st_size > MANIFEST_MAX_BYTES:
        problem = f"it is larger than {MANIFEST_MAX_BYTES // 2**20} MiB"
    if problem is None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("schema") != MANIFEST_SCHEMA:
                problem = f"its schema is {data.get('schema')!r}, not {MANIFEST_SCHEMA!r}"
            else:
                modes = data.get("mode") if isinstance(data.get("mode"), dict) else {}
                return _Manifest(
                    entries={str(k): dict(v) for k, v in data.get("entries", {}).items()},
                    folders={str(f) for f in data.get("folders", [])},
                    requested=modes.get("requested"),
                    mode=modes.get("used"),
                    read=True,
                )
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            problem = f"it cannot be parsed ({exc})"
    notes.append(
        f"Ignoring the export manifest {path}: {problem}. Nothing already in DEST will be "
        "removed; links that match are adopted."
    )
    return _Manifest()


def _save_manifest(
    dest: Path,
    entries: dict[str, dict[str, Any]],
    folders: set[str],
    catalog_url: str,
    modes: tuple[str, str],
) -> None:
    data = {
        "schema": MANIFEST_SCHEMA,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalog": catalog_url,
        "mode": {"requested": modes[0], "used": modes[1]},
        "folders": sorted(folders),
        "entries": {k: entries[k] for k in sorted(entries)},
    }
    tmp = dest / f"{MANIFEST_NAME}.tmp-{os.getpid()}"
    try:
        tmp.write_text(json_text(json.dumps(data, indent=1, ensure_ascii=False)), encoding="utf-8")
        os.replace(tmp, dest / MANIFEST_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- checks


def _is_within(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder if folder == os.sep else folder + os.sep)


def library_conflict(dest: str, photo_paths: list[str], roots: list[str]) -> str | None:
    """Why ``dest`` must not be used, or None. ``dest``, the paths and the roots are absolute.

    ``roots`` are the folders scanned into the catalog (:mod:`photocluster.library_roots`): the
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


def _resolve_dest(dest: str) -> Path:
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


# --------------------------------------------------------------------------- what to export


@dataclass(frozen=True)
class _PersonRow:
    id: int
    name: str | None
    hidden: bool

    @property
    def label(self) -> str:
        return self.name if self.name is not None else f"Unknown {self.id:04d}"


def _select_people(
    session: Session, chosen_people: list[str], include_unnamed: bool
) -> list[_PersonRow]:
    """The people ``chosen_people`` names (names or ids), else every person to export."""
    rows = [
        _PersonRow(r.id, r.name, bool(r.hidden))
        for r in session.execute(select(Person.id, Person.name, Person.hidden).order_by(Person.id))
    ]
    if chosen_people:
        by_name = {r.name: r for r in rows if r.name is not None}
        by_fold: dict[str, list[_PersonRow]] = defaultdict(list)
        for r in rows:
            if r.name is not None:
                by_fold[r.name.casefold()].append(r)
        by_id = {r.id: r for r in rows}
        chosen: dict[int, _PersonRow] = {}
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


def _photos_by_person(
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


def _entry_matches(path: Path, record: dict[str, Any]) -> bool:
    """The file at ``path`` is still the one photocluster made: the same link target, or the
    same inode and size. Cheap (one ``lstat``); a copy may still have been edited in place, so
    deleting or replacing one also needs :func:`_content_unchanged` (see :func:`_replaceable`)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    if record.get("mode") == SYMLINK:
        if not path.is_symlink():
            return False
        try:
            return os.readlink(path) == record.get("source")
        except OSError:
            return False
    if path.is_symlink() or not path.is_file():
        return False
    return st.st_ino == record.get("ino") and st.st_size == record.get("size")


def _sha256(path: Path | str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _content_unchanged(path: Path, record: dict[str, Any]) -> bool:
    """A copy still holds exactly the bytes photocluster wrote (links hold none of their own)."""
    if record.get("mode") != COPY:
        return True
    try:
        digest = record.get("sha256")
        if digest is not None:
            return _sha256(path) == digest
        # A manifest of an earlier version holds no digest: the copy is provably ours only
        # while it still equals the photo as it was when copied.
        source = str(record["source"])
        st = os.stat(source)
        if (st.st_size, st.st_mtime_ns) != (
            record.get("source_size"),
            record.get("source_mtime_ns"),
        ):
            return False
        return filecmp.cmp(path, source, shallow=False)
    except (OSError, KeyError, TypeError, ValueError):
        return False


def _replaceable(path: Path, record: dict[str, Any]) -> bool:
    """Safe to delete or overwrite: still exactly what photocluster made, bytes included."""
    return _entry_matches(path, record) and _content_unchanged(path, record)


def _intact(path: Path, record: dict[str, Any], planned: PlannedFile, mode: str) -> bool:
    """An existing entry can stay as it is: ours, same photo, same mode, source unchanged.

    A copy made because a hard link was impossible (another filesystem) stays a copy."""
    made = record.get("mode")
    if record.get("photo_id") != planned.photo_id:
        return False
    if made != mode and not (mode == HARDLINK and made == COPY and record.get("fallback")):
        return False
    if record.get("source") != planned.source:
        return False
    if not _entry_matches(path, record):
        return False
    if made == SYMLINK:
        return True
    if (
        record.get("source_size") != planned.source_size
        or record.get("source_mtime_ns") != planned.source_mtime_ns
    ):
        return False
    if made == HARDLINK:
        try:
            return os.stat(planned.source).st_ino == record.get("ino")
        except OSError:
            return False
    return True


def _adoptable(path: Path, planned: PlannedFile, mode: str) -> bool:
    """An entry the manifest doesn't know but which is what we'd create (a stopped run)."""
    try:
        if mode == SYMLINK:
            return path.is_symlink() and os.readlink(path) == planned.source
        if path.is_symlink() or not path.is_file():
            return False
        if mode == HARDLINK:
            return os.path.samefile(path, planned.source)
        return path.stat().st_size == planned.source_size and filecmp.cmp(
            path, planned.source, shallow=False
        )
    except OSError:
        return False


def _listdir_keys(folder: Path) -> dict[str, str]:
    try:
        return {clash_key(n): n for n in os.listdir(folder)}
    except OSError:
        return {}


def plan_files(
    dest: Path,
    people: list[_PersonRow],
    photos: dict[int, list[tuple[int, str, int, int]]],
    old: dict[str, dict[str, Any]],
    old_folders: set[str],
    mode: str,
) -> tuple[list[PlannedFile], dict[str, str], set[str]]:
    """Every file DEST should hold, the folder of each person, and entries to adopt."""
    top = _listdir_keys(dest)
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
        on_disk = _listdir_keys(dest / folder)
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
                    if _adoptable(dest / folder / existing, probe, mode):
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


# --------------------------------------------------------------------------- doing it


def _probe_mode(dest: Path, requested: str, sample_source: str | None) -> tuple[str, str | None]:
    """The mode DEST allows and, when it differs from what was asked, why."""
    if requested == COPY:
        return COPY, None
    probe = dest / f".photocluster-probe-{os.getpid()}"
    with contextlib.suppress(OSError):
        probe.unlink()
    if requested in (AUTO, SYMLINK):
        try:
            os.symlink(sample_source or str(dest), probe)
        except OSError as exc:
            if exc.errno in _FATAL_ERRNOS - {errno.EPERM}:
                raise
            return COPY, (
                f"The filesystem of {dest} does not allow symbolic links ({exc.strerror}); "
                "copying the photos instead."
            )
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return SYMLINK, None
    # hardlink
    if sample_source is None:
        return HARDLINK, None
    try:
        os.link(sample_source, probe)
    except OSError as exc:
        if exc.errno in _FATAL_ERRNOS - {errno.EPERM}:
            raise
        why = (
            "it is on a different filesystem from the photos"
            if exc.errno == errno.EXDEV
            else f"hard links are not possible there ({exc.strerror})"
        )
        return COPY, f"Cannot hard-link into {dest}: {why}; copying the photos instead."
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return HARDLINK, None


def _create(target: Path, planned: PlannedFile, mode: str) -> str:
    """Make one entry; returns the mode actually used (hard links fall back to a copy)."""
    if mode == SYMLINK:
        os.symlink(planned.source, target)
        return SYMLINK
    if mode == HARDLINK:
        try:
            os.link(planned.source, target)
            return HARDLINK
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EMLINK) and exc.errno not in _NO_LINK_ERRNOS:
                raise
    tmp = target.with_name(f".{target.name}.photocluster-tmp")
    try:
        shutil.copy2(planned.source, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return COPY


def _record(
    target: Path, planned: PlannedFile, mode: str, *, sha256: str | None = None, wanted: str = ""
) -> dict[str, Any]:
    """The manifest record of an entry just made (or moved: ``sha256`` of the old record)."""
    st = target.lstat()
    record: dict[str, Any] = {
        "photo_id": planned.photo_id,
        "person_id": planned.person_id,
        "source": planned.source,
        "mode": mode,
        "source_size": planned.source_size,
        "source_mtime_ns": planned.source_mtime_ns,
        "ino": st.st_ino,
        "size": st.st_size,
    }
    if mode == COPY:
        record["sha256"] = sha256 or _sha256(target)
    if wanted and wanted != mode:
        record["fallback"] = True  # a link was impossible for this photo: a copy is right
    return record


def _free_name(dest: Path, planned: PlannedFile, taken: set[str]) -> PlannedFile:
    """``planned`` under the first `` (n)`` name that is neither on disk nor ``taken``."""
    base = safe_filename(os.path.basename(planned.source))
    on_disk = _listdir_keys(dest / planned.folder)
    n = 2
    while True:
        name = with_suffix(base, n, is_file=True)
        key = clash_key(name)
        if key not in on_disk and clash_key(f"{planned.folder}/{name}") not in taken:
            return dataclasses.replace(planned, name=name)
        n += 1


def _stopped(exc: OSError, what: str, done: int, total: int) -> ExportStopped:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, _EDQUOT):
        hint = "Free some space"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "Fix the permissions (or choose another DEST)"
    else:
        hint = "Fix the problem"
    return ExportStopped(
        f"Export stopped while {what}: {reason}. {done} of {total} changes were made and "
        f"recorded. {hint}, then run the same command again to finish."
    )


@dataclass
class _Diff:
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


def _diff(
    dest: Path,
    planned: list[PlannedFile],
    adopt: set[str],
    old: dict[str, dict[str, Any]],
    mode: str,
) -> _Diff:
    state: dict[str, dict[str, Any]] = dict(old)
    wanted = {p.rel: p for p in planned}
    keep: set[str] = set()
    adopted = 0
    to_create: list[PlannedFile] = []
    for rel, p in wanted.items():
        rec = old.get(rel)
        if rec is not None and _intact(dest / rel, rec, p, mode):
            keep.add(rel)
        elif rel in adopt:
            state[rel] = _record(dest / rel, p, mode)
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
    return _Diff(state, wanted, len(keep), adopted, removals, moves, adds)


def export_people(
    catalog: Catalog, options: ExportOptions, progress: Progress | None = None
) -> ExportSummary:
    """Bring DEST in line with the catalog: one folder per person. See the module docstring."""
    progress = progress or NoProgress()
    started = time.perf_counter()
    if options.mode not in MODES:
        raise PhotoclusterError(f"Unknown mode {options.mode!r}; use one of {', '.join(MODES)}.")
    if options.report_path:
        _build_report_function()  # fail before changing anything if the report cannot be made
    dest = _resolve_dest(options.dest)
    summary = ExportSummary(dest=str(dest), mode=options.mode, dry_run=options.dry_run)
    people, photos = _read_catalog(catalog, dest, options, summary.notes)
    manifest = _load_manifest(dest, summary.notes)
    plan = _plan_export(dest, options, people, photos, manifest, summary.notes)
    _describe(summary, plan, manifest.entries)
    if options.dry_run:
        summary.removed = sum(1 for a in summary.actions if a.kind == "remove")
        summary.moved = len(plan.diff.moves)
        summary.updated = sum(1 for a in summary.actions if a.kind == "update")
        summary.added = sum(1 for a in summary.actions if a.kind == "add")
    else:
        if plan.probed:  # else nothing to change: touch nothing (not even the manifest)
            _Apply(dest, catalog.url, options.mode, plan, manifest, summary, progress).run()
        if options.report_path:
            summary.report_path = write_report(catalog, options.report_path)
    summary.seconds = time.perf_counter() - started
    return summary


def _read_catalog(
    catalog: Catalog, dest: Path, options: ExportOptions, notes: list[str]
) -> tuple[list[_PersonRow], dict[int, list[tuple[int, str, int, int]]]]:
    """The people to export and their photos; refuses a DEST inside the library."""
    with catalog.session() as session:
        all_paths = [str(p) for p in session.scalars(select(Photo.path))]
        roots = scanned_roots(session)
        people = _select_people(session, options.people, options.include_unnamed)
        photos = _photos_by_person(session, [p.id for p in people])
    why = library_conflict(str(dest), all_paths, roots)
    if why is not None:
        raise PhotoclusterError(
            f"Refusing to export into {dest}: {why}. Choose a DEST outside the scanned folders."
        )
    if not people:
        hint = (
            "Name some people first (`photocluster name`), or pass --include-unnamed."
            if not options.include_unnamed
            else "Run `photocluster cluster` first."
        )
        notes.append(f"No people to export. {hint}")
    return people, photos


# --------------------------------------------------------------------------- the plan


@dataclass
class _Plan:
    """What DEST should hold, in the mode it will be made in, and the way there."""

    mode: str
    planned: list[PlannedFile]
    folder_of: dict[str, str]
    diff: _Diff
    probed: bool  # DEST was probed (so it exists): there is something to write


def _plan_export(
    dest: Path,
    options: ExportOptions,
    people: list[_PersonRow],
    photos: dict[int, list[tuple[int, str, int, int]]],
    manifest: _Manifest,
    notes: list[str],
) -> _Plan:
    old, old_folders = manifest.entries, manifest.folders
    # Plan with the mode the previous run settled on for the same request; DEST is probed
    # (a link made and removed, which touches DEST) only when something is to be written.
    known = manifest.mode if manifest.requested == options.mode else None
    mode = known or (SYMLINK if options.mode == AUTO else options.mode)
    planned, folder_of, adopt = plan_files(dest, people, photos, old, old_folders, mode)
    diff = _diff(dest, planned, adopt, old, mode)
    if options.dry_run:
        if known is None and options.mode in (AUTO, SYMLINK, HARDLINK):
            notes.append(
                f"Dry run: assuming {mode}s work on {dest}; the real run checks and falls back "
                "to copying if they don't."
            )
        return _Plan(mode, planned, folder_of, diff, probed=False)
    if not (diff.work or old_folders - set(folder_of) or not manifest.read or known is None):
        return _Plan(mode, planned, folder_of, diff, probed=False)
    sample = next((ps[0][1] for ps in photos.values() if ps), None)
    probed_mode = _probe(dest, options.mode, sample, notes)
    if probed_mode != mode:
        mode = probed_mode
        planned, folder_of, adopt = plan_files(dest, people, photos, old, old_folders, mode)
        diff = _diff(dest, planned, adopt, old, mode)
    return _Plan(mode, planned, folder_of, diff, probed=True)


def _probe(dest: Path, requested: str, sample: str | None, notes: list[str]) -> str:
    """Create DEST and find the mode it allows (noted when it is not what was asked)."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        mode, note = _probe_mode(dest, requested, sample)
    except OSError as exc:
        raise _stopped(exc, f"preparing {dest}", 0, 0) from exc
    if note:
        notes.append(note)
    elif requested == AUTO:
        notes.append(f"Using symbolic links (the filesystem of {dest} allows them).")
    return mode


def _describe(summary: ExportSummary, plan: _Plan, old: dict[str, dict[str, Any]]) -> None:
    """The plan in the summary: folders, counts, and each action (what a dry run shows)."""
    diff = plan.diff
    summary.mode = plan.mode
    summary.folders = plan.folder_of
    summary.people = len(plan.folder_of)
    summary.photos = len({p.photo_id for p in plan.planned})
    summary.unchanged = diff.unchanged
    for rel in diff.removals:
        if rel not in diff.wanted:
            summary.actions.append(Action("remove", rel, old[rel].get("source")))
    for src, p in diff.moves:
        summary.actions.append(Action("move", p.rel, src))
    for p in diff.adds:
        kind = "update" if p.rel in old else "add"
        summary.actions.append(Action(kind, p.rel, p.source))


# --------------------------------------------------------------------------- applying it


class _Apply:
    """Carries out a plan: removals, then moves, then adds (each frees names the next may
    need), then empty folders of ours. The manifest is saved every
    :data:`MANIFEST_FLUSH_EVERY` changes and at the end, also when the run stops."""

    def __init__(
        self,
        dest: Path,
        catalog_url: str,
        requested: str,
        plan: _Plan,
        manifest: _Manifest,
        summary: ExportSummary,
        progress: Progress,
    ) -> None:
        self.dest, self.catalog_url, self.requested = dest, catalog_url, requested
        self.mode = plan.mode
        self.plan = plan
        self.old = manifest.entries
        self.state = plan.diff.state
        self.wanted = plan.diff.wanted
        self.adds = list(plan.diff.adds)  # moves that cannot be renames join them
        self.folders_made = set(manifest.folders)
        self.summary = summary
        self.progress = progress
        self.total = len(plan.diff.removals) + len(plan.diff.moves) + len(self.adds)
        self.done = 0
        # every name that is, or is about to be, an entry: a new version never takes one
        self.taken = {clash_key(rel) for rel in (*self.wanted, *self.old)}
        self.kept: set[str] = set()  # our entries the user changed: left as they are

    def run(self) -> None:
        self.progress.start(self.total, "Exporting")
        try:
            for rel in self.plan.diff.removals:
                self._remove(rel)
                self._step()
            for src, p in self.plan.diff.moves:
                self._move(src, p)
                self._step()
            for p in self.adds:
                self._add(p)
                self._step()
            self._remove_empty_folders()
        except OSError as exc:
            self.progress.finish()
            with contextlib.suppress(OSError):
                self._flush()
            where = exc.filename or self.dest
            raise _stopped(exc, f"writing {where}", self.done, self.total) from exc
        except BaseException:
            self.progress.finish()
            with contextlib.suppress(OSError):
                self._flush()
            raise
        self.progress.finish()
        try:
            self._flush()
        except OSError as exc:
            raise _stopped(
                exc, f"saving the manifest in {self.dest}", self.done, self.total
            ) from exc

    def _flush(self) -> None:
        modes = (self.requested, self.mode)
        _save_manifest(self.dest, self.state, self.folders_made, self.catalog_url, modes)

    def _step(self) -> None:
        self.done += 1
        self.progress.advance()
        if self.done % MANIFEST_FLUSH_EVERY == 0:
            self._flush()

    def _ensure_folder(self, folder: str) -> None:
        path = self.dest / folder
        if not path.is_dir():
            path.mkdir()
            self.folders_made.add(folder)

    def _keep_changed(self, rel: str) -> None:
        self.kept.add(rel)
        self.summary.kept_changed.append(rel)
        self.summary.actions.append(Action("keep", rel, self.old[rel].get("source")))

    def _remove(self, rel: str) -> None:
        target = self.dest / rel
        if _replaceable(target, self.old[rel]):
            target.unlink()
            if rel not in self.wanted:
                self.summary.removed += 1
        elif os.path.lexists(target):
            self._keep_changed(rel)
        self.state.pop(rel, None)

    def _move(self, src: str, p: PlannedFile) -> None:
        self._ensure_folder(p.folder)
        target = self.dest / p.rel
        rec = self.old[src]
        ours = _entry_matches(self.dest / src, rec) and (
            "sha256" in rec or _content_unchanged(self.dest / src, rec)  # an older manifest
        )
        if ours and not os.path.lexists(target):
            # A rename, not a new copy: the record keeps the digest of what was written.
            os.rename(self.dest / src, target)
            self.state.pop(src, None)
            self.state[p.rel] = _record(target, p, self.mode, sha256=rec.get("sha256"))
            self.summary.moved += 1
            return
        self.state.pop(src, None)
        if _replaceable(self.dest / src, rec):
            (self.dest / src).unlink()
        elif os.path.lexists(self.dest / src):
            self._keep_changed(src)
        self.adds.append(p)

    def _add(self, p: PlannedFile) -> None:
        replaces = p.rel in self.old
        self._ensure_folder(p.folder)
        target = self.dest / p.rel
        if os.path.lexists(target):
            # Only our own entry can be here (the plan avoided every other name): stale and
            # untouched, or changed by the user (then the new version goes beside it).
            if p.rel in self.kept:
                beside = _free_name(self.dest, p, self.taken)
                self.taken.add(clash_key(beside.rel))
                self.summary.notes.append(
                    f"{p.rel} changed since photocluster made it, so it was left as it is; "
                    f"the photo's current version is {beside.rel}."
                )
                p, target = beside, self.dest / beside.rel
            elif p.rel in self.old and _replaceable(target, self.old[p.rel]):
                target.unlink()
            else:
                self.summary.failures.append((p.rel, "a file the user made is in the way"))
                return
        if not os.path.lexists(p.source) or (self.mode != SYMLINK and not os.path.isfile(p.source)):
            self.summary.failures.append(
                (p.rel, f"photo not found: {p.source} (run `photocluster scan` again)")
            )
            return
        try:
            used = _create(target, p, self.mode)
        except FileNotFoundError:
            self.summary.failures.append((p.rel, f"photo not found: {p.source}"))
            return
        if used != self.mode and not any("hard-link" in n for n in self.summary.notes):
            self.summary.notes.append(
                "Some photos are on another filesystem than DEST; those were copied."
            )
        self.state[p.rel] = _record(target, p, used, wanted=self.mode)
        if replaces:
            self.summary.updated += 1
        else:
            self.summary.added += 1

    def _remove_empty_folders(self) -> None:
        """Folders photocluster created that no longer hold a person: removed if empty."""
        for folder in sorted(self.folders_made - set(self.plan.folder_of)):
            path = self.dest / folder
            if path.is_dir():
                try:
                    path.rmdir()
                except OSError:
                    self.summary.notes.append(
                        f"Left the folder {path}: it still holds files photocluster did not make."
                    )
            self.folders_made.discard(folder)


def _build_report_function() -> Any:
    try:
        from photocluster.export.report import build_report
    except ImportError as exc:  # the people report arrives with the clustering work
        raise PhotoclusterError(
            "This version of photocluster cannot write the people report yet; "
            "run the export without --report."
        ) from exc
    return build_report


def write_report(catalog: Catalog, path: str) -> str:
    """Write the people report (``photocluster.report/2``) as JSON to ``path``."""
    build_report = _build_report_function()
    with catalog.session() as session:
        report = build_report(session)
    target = Path(os.path.abspath(os.path.expanduser(path)))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
        tmp.write_text(json_text(text) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise PhotoclusterError(f"Cannot write the report {target}: {exc.strerror}") from exc
    return str(target)
