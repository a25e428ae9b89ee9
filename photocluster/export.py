"""Export one folder per person (``DEST/<Name>/``) holding links to (or copies of) their photos.

Plan, then apply. The plan is a pure comparison of what the catalog says DEST should hold with
the manifest DEST keeps of what photocluster itself put there (:data:`MANIFEST_NAME`):

* entries the catalog wants and the manifest has, still intact on disk: left alone;
* entries only the catalog wants: added — or *moved* from an old entry of the same photo (a
  renamed person's folder moves instead of being copied again);
* entries only the manifest has: removed, but only if the file is still exactly what
  photocluster made (a file the user replaced or edited is left alone and reported);
* anything else in DEST (the user's own files and folders) is never touched, never overwritten
  and never deleted. A link that already points where ours would is adopted, so a run that was
  stopped before it could save the manifest still completes on the next run.

Names come from :mod:`photocluster.foldernames`; two photos with the same file name in one
folder get `` (2)``-style suffixes, and an entry keeps the name it had in earlier exports.
Running out of space or permission stops the run with a clear message after saving the manifest,
so running the same command again finishes the job.
"""

from __future__ import annotations

import contextlib
import errno
import filecmp
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

from photocluster.db import Catalog
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.foldernames import assign_unique, clash_key, safe_filename, safe_name, with_suffix
from photocluster.models import Face, Person, Photo, PhotoStatus
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


def _load_manifest(dest: Path, notes: list[str]) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """Entries (rel -> record) and folders photocluster created earlier. Unreadable = empty."""
    path = dest / MANIFEST_NAME
    try:
        st = path.lstat()
    except FileNotFoundError:
        return {}, set()
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
                entries = {str(k): dict(v) for k, v in data.get("entries", {}).items()}
                return entries, {str(f) for f in data.get("folders", [])}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            problem = f"it cannot be parsed ({exc})"
    notes.append(
        f"Ignoring the export manifest {path}: {problem}. Nothing already in DEST will be "
        "removed; links that match are adopted."
    )
    return {}, set()


def _save_manifest(
    dest: Path, entries: dict[str, dict[str, Any]], folders: set[str], catalog_url: str
) -> None:
    data = {
        "schema": MANIFEST_SCHEMA,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "catalog": catalog_url,
        "folders": sorted(folders),
        "entries": {k: entries[k] for k in sorted(entries)},
    }
    tmp = dest / f"{MANIFEST_NAME}.tmp-{os.getpid()}"
    try:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, dest / MANIFEST_NAME)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --------------------------------------------------------------------------- checks


def _is_within(path: str, folder: str) -> bool:
    folder = folder.rstrip(os.sep) or os.sep
    return path == folder or path.startswith(folder if folder == os.sep else folder + os.sep)


def library_conflict(dest: str, photo_paths: list[str]) -> str | None:
    """Why ``dest`` must not be used, or None. ``dest`` and the paths are absolute.

    The catalog does not store which folder was scanned, so the library is taken to be the
    deepest folder holding every photo (unless that is ``/``), plus every folder that holds
    photos directly. DEST may not be inside either, and may not contain catalog photos.
    """
    if not photo_paths:
        return None
    dirs = {os.path.dirname(p) for p in photo_paths}
    for p in photo_paths:
        if _is_within(p, dest):
            return f"it contains photos of the catalog (for example {p})"
    common = os.path.commonpath(list(dirs))
    if common not in (os.sep, str(Path.home())) and _is_within(dest, common):
        return (
            f"it is inside the photo library {common}, so the next scan would find the "
            "exported links as new photos"
        )
    probe = dest
    while True:
        if probe in dirs:
            return f"it is inside {probe}, a folder of the photo library"
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


def _select_people(session: Session, options: ExportOptions) -> list[_PersonRow]:
    rows = [
        _PersonRow(r.id, r.name, bool(r.hidden))
        for r in session.execute(select(Person.id, Person.name, Person.hidden).order_by(Person.id))
    ]
    if options.people:
        by_name = {r.name: r for r in rows if r.name is not None}
        by_fold: dict[str, list[_PersonRow]] = defaultdict(list)
        for r in rows:
            if r.name is not None:
                by_fold[r.name.casefold()].append(r)
        by_id = {r.id: r for r in rows}
        chosen: dict[int, _PersonRow] = {}
        for sel in options.people:
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
    return [r for r in rows if not r.hidden and (r.name is not None or options.include_unnamed)]


def _photos_by_person(
    session: Session, person_ids: list[int]
) -> dict[int, list[tuple[int, str, int, int]]]:
    result: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
    for i in range(0, len(person_ids), 500):
        chunk = person_ids[i : i + 500]
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
    """The file at ``path`` is still exactly what photocluster made (safe to remove/replace)."""
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


def _intact(path: Path, record: dict[str, Any], planned: PlannedFile, mode: str) -> bool:
    """An existing entry can stay as it is: ours, same photo, same mode, source unchanged."""
    if record.get("photo_id") != planned.photo_id or record.get("mode") != mode:
        return False
    if record.get("source") != planned.source:
        return False
    if not _entry_matches(path, record):
        return False
    if mode == SYMLINK:
        return True
    if (
        record.get("source_size") != planned.source_size
        or record.get("source_mtime_ns") != planned.source_mtime_ns
    ):
        return False
    if mode == HARDLINK:
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


def _record(target: Path, planned: PlannedFile, mode: str) -> dict[str, Any]:
    st = target.lstat()
    return {
        "photo_id": planned.photo_id,
        "person_id": planned.person_id,
        "source": planned.source,
        "mode": mode,
        "source_size": planned.source_size,
        "source_mtime_ns": planned.source_mtime_ns,
        "ino": st.st_ino,
        "size": st.st_size,
    }


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

    with catalog.session() as session:
        all_paths = [str(p) for p in session.scalars(select(Photo.path))]
        people = _select_people(session, options)
        photos = _photos_by_person(session, [p.id for p in people])
    why = library_conflict(str(dest), all_paths)
    if why is not None:
        raise PhotoclusterError(
            f"Refusing to export into {dest}: {why}. Choose a DEST outside the photo library."
        )
    if not people:
        hint = (
            "Name some people first (`photocluster name`), or pass --include-unnamed."
            if not options.include_unnamed
            else "Run `photocluster cluster` first."
        )
        summary.notes.append(f"No people to export. {hint}")

    old, old_folders = _load_manifest(dest, summary.notes)
    sample = next((ps[0][1] for ps in photos.values() if ps), None)
    if options.dry_run:
        mode = SYMLINK if options.mode == AUTO else options.mode
        if options.mode in (AUTO, SYMLINK, HARDLINK):
            summary.notes.append(
                f"Dry run: assuming {mode}s work on {dest}; the real run checks and falls back "
                "to copying if they don't."
            )
    else:
        try:
            dest.mkdir(parents=True, exist_ok=True)
            mode, note = _probe_mode(dest, options.mode, sample)
        except OSError as exc:
            raise _stopped(exc, f"preparing {dest}", 0, 0) from exc
        if note:
            summary.notes.append(note)
        elif options.mode == AUTO:
            summary.notes.append(f"Using symbolic links (the filesystem of {dest} allows them).")
    summary.mode = mode

    planned, folder_of, adopt = plan_files(dest, people, photos, old, old_folders, mode)
    summary.folders = folder_of
    summary.people = len(folder_of)
    summary.photos = len({p.photo_id for p in planned})

    # ---- diff
    state: dict[str, dict[str, Any]] = dict(old)
    wanted = {p.rel: p for p in planned}
    keep: set[str] = set()
    to_create: list[PlannedFile] = []
    for rel, p in wanted.items():
        rec = old.get(rel)
        if rec is not None and _intact(dest / rel, rec, p, mode):
            keep.add(rel)
        elif rel in adopt:
            state[rel] = _record(dest / rel, p, mode)
            keep.add(rel)
        else:
            to_create.append(p)
    summary.unchanged = len(keep)
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

    for rel in removals:
        kind = "update" if rel in wanted else "remove"
        if kind == "remove":
            summary.actions.append(Action("remove", rel, old[rel].get("source")))
    for src, p in moves:
        summary.actions.append(Action("move", p.rel, src))
    for p in adds:
        kind = "update" if p.rel in old else "add"
        summary.actions.append(Action(kind, p.rel, p.source))

    if options.dry_run:
        summary.removed = sum(1 for a in summary.actions if a.kind == "remove")
        summary.moved = len(moves)
        summary.updated = sum(1 for a in summary.actions if a.kind == "update")
        summary.added = sum(1 for a in summary.actions if a.kind == "add")
        summary.seconds = time.perf_counter() - started
        return summary

    # ---- apply: removals, then moves, then adds (each frees names the next may need)
    folders_made = set(old_folders)
    total = len(removals) + len(moves) + len(adds)
    done = 0
    progress.start(total, "Exporting")

    def flush() -> None:
        _save_manifest(dest, state, folders_made, catalog.url)

    def step() -> None:
        nonlocal done
        done += 1
        progress.advance()
        if done % MANIFEST_FLUSH_EVERY == 0:
            flush()

    def ensure_folder(folder: str) -> None:
        path = dest / folder
        if not path.is_dir():
            path.mkdir()
            folders_made.add(folder)

    try:
        for rel in removals:
            target = dest / rel
            rec = old[rel]
            if _entry_matches(target, rec):
                target.unlink()
                if rel not in wanted:
                    summary.removed += 1
            elif target.exists() or target.is_symlink():
                summary.kept_changed.append(rel)
                summary.actions.append(Action("keep", rel, rec.get("source")))
            state.pop(rel, None)
            step()
        for src, p in moves:
            ensure_folder(p.folder)
            target = dest / p.rel
            if _entry_matches(dest / src, old[src]) and not (
                target.exists() or target.is_symlink()
            ):
                os.rename(dest / src, target)
                state.pop(src, None)
                state[p.rel] = _record(target, p, mode)
                summary.moved += 1
            else:
                state.pop(src, None)
                if _entry_matches(dest / src, old[src]):
                    (dest / src).unlink()
                adds.append(p)
            step()
        for p in adds:
            ensure_folder(p.folder)
            target = dest / p.rel
            if target.exists() or target.is_symlink():
                # Only our own stale entry can be here (the plan avoided every other name).
                rec = old.get(p.rel)
                if rec is not None and _entry_matches(target, rec):
                    target.unlink()
                else:
                    summary.failures.append((p.rel, "a file the user made is in the way"))
                    step()
                    continue
            if not os.path.lexists(p.source) or (mode != SYMLINK and not os.path.isfile(p.source)):
                summary.failures.append(
                    (p.rel, f"photo not found: {p.source} (run `photocluster scan` again)")
                )
                step()
                continue
            try:
                used = _create(target, p, mode)
            except FileNotFoundError:
                summary.failures.append((p.rel, f"photo not found: {p.source}"))
                step()
                continue
            if used != mode and not any("hard-link" in n for n in summary.notes):
                summary.notes.append(
                    "Some photos are on another filesystem than DEST; those were copied."
                )
            state[p.rel] = _record(target, p, used)
            if p.rel in old:
                summary.updated += 1
            else:
                summary.added += 1
            step()
        # Folders photocluster created that no longer hold a person: remove if empty.
        for folder in sorted(folders_made - set(folder_of)):
            path = dest / folder
            if not path.is_dir():
                folders_made.discard(folder)
                continue
            try:
                path.rmdir()
                folders_made.discard(folder)
            except OSError:
                summary.notes.append(
                    f"Left the folder {path}: it still holds files photocluster did not make."
                )
                folders_made.discard(folder)
    except OSError as exc:
        progress.finish()
        with contextlib.suppress(OSError):
            flush()
        where = exc.filename or dest
        raise _stopped(exc, f"writing {where}", done, total) from exc
    except BaseException:
        progress.finish()
        with contextlib.suppress(OSError):
            flush()
        raise
    progress.finish()
    try:
        flush()
    except OSError as exc:
        raise _stopped(exc, f"saving the manifest in {dest}", done, total) from exc

    if options.report_path:
        summary.report_path = write_report(catalog, options.report_path)
    summary.seconds = time.perf_counter() - started
    return summary


def _build_report_function() -> Any:
    try:
        from photocluster.report import build_report
    except ImportError as exc:  # the people report arrives with the clustering work
        raise PhotoclusterError(
            "This version of photocluster cannot write the people report yet; "
            "run the export without --report."
        ) from exc
    return build_report


def write_report(catalog: Catalog, path: str) -> str:
    """Write the people report (``photocluster.report/1``) as JSON to ``path``."""
    build_report = _build_report_function()
    with catalog.session() as session:
        report = build_report(session)
    target = Path(os.path.abspath(os.path.expanduser(path)))
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise PhotoclusterError(f"Cannot write the report {target}: {exc.strerror}") from exc
    return str(target)
