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
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from photocluster.catalog.db import Catalog
from photocluster.catalog.fspath import json_text
from photocluster.catalog.models import Photo
from photocluster.catalog.roots import scanned_roots
from photocluster.errors import PhotoclusterError
from photocluster.export.entries import (
    AUTO,
    EDQUOT,
    HARDLINK,
    MODES,
    SYMLINK,
    PlannedFile,
    content_unchanged,
    create_entry,
    entry_matches,
    entry_record,
    free_name,
    probe_mode,
    replaceable,
)
from photocluster.export.foldernames import clash_key
from photocluster.export.manifest import Manifest, load_manifest, save_manifest
from photocluster.export.plan import (
    Diff,
    PersonRow,
    diff_entries,
    library_conflict,
    photos_by_person,
    plan_files,
    resolve_dest,
    select_people,
)
from photocluster.export.report import build_report
from photocluster.progress import NoProgress, Progress

MANIFEST_FLUSH_EVERY = 500


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


# --------------------------------------------------------------------------- checks


# --------------------------------------------------------------------------- what to export


# --------------------------------------------------------------------------- doing it


def _stopped(exc: OSError, what: str, done: int, total: int) -> ExportStopped:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, EDQUOT):
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
        _check_report_target(options.report_path)  # fail before changing anything
    dest = resolve_dest(options.dest)
    summary = ExportSummary(dest=str(dest), mode=options.mode, dry_run=options.dry_run)
    people, photos = _read_catalog(catalog, dest, options, summary.notes)
    manifest = load_manifest(dest, summary.notes)
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
) -> tuple[list[PersonRow], dict[int, list[tuple[int, str, int, int]]]]:
    """The people to export and their photos; refuses a DEST inside the library."""
    with catalog.session() as session:
        all_paths = [str(p) for p in session.scalars(select(Photo.path))]
        roots = scanned_roots(session)
        people = select_people(session, options.people, options.include_unnamed)
        photos = photos_by_person(session, [p.id for p in people])
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
    diff: Diff
    probed: bool  # DEST was probed (so it exists): there is something to write


def _plan_export(
    dest: Path,
    options: ExportOptions,
    people: list[PersonRow],
    photos: dict[int, list[tuple[int, str, int, int]]],
    manifest: Manifest,
    notes: list[str],
) -> _Plan:
    old, old_folders = manifest.entries, manifest.folders
    # Plan with the mode the previous run settled on for the same request; DEST is probed
    # (a link made and removed, which touches DEST) only when something is to be written.
    known = manifest.mode if manifest.requested == options.mode else None
    mode = known or (SYMLINK if options.mode == AUTO else options.mode)
    planned, folder_of, adopt = plan_files(dest, people, photos, old, old_folders, mode)
    diff = diff_entries(dest, planned, adopt, old, mode)
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
        diff = diff_entries(dest, planned, adopt, old, mode)
    return _Plan(mode, planned, folder_of, diff, probed=True)


def _probe(dest: Path, requested: str, sample: str | None, notes: list[str]) -> str:
    """Create DEST and find the mode it allows (noted when it is not what was asked)."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
        mode, note = probe_mode(dest, requested, sample)
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
        manifest: Manifest,
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
        save_manifest(self.dest, self.state, self.folders_made, self.catalog_url, modes)

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
        if replaceable(target, self.old[rel]):
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
        ours = entry_matches(self.dest / src, rec) and (
            "sha256" in rec or content_unchanged(self.dest / src, rec)  # an older manifest
        )
        if ours and not os.path.lexists(target):
            # A rename, not a new copy: the record keeps the digest of what was written.
            os.rename(self.dest / src, target)
            self.state.pop(src, None)
            self.state[p.rel] = entry_record(target, p, self.mode, sha256=rec.get("sha256"))
            self.summary.moved += 1
            return
        self.state.pop(src, None)
        if replaceable(self.dest / src, rec):
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
                beside = free_name(self.dest, p, self.taken)
                self.taken.add(clash_key(beside.rel))
                self.summary.notes.append(
                    f"{p.rel} changed since photocluster made it, so it was left as it is; "
                    f"the photo's current version is {beside.rel}."
                )
                p, target = beside, self.dest / beside.rel
            elif p.rel in self.old and replaceable(target, self.old[p.rel]):
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
            used = create_entry(target, p, self.mode)
        except FileNotFoundError:
            self.summary.failures.append((p.rel, f"photo not found: {p.source}"))
            return
        if used != self.mode and not any("hard-link" in n for n in self.summary.notes):
            self.summary.notes.append(
                "Some photos are on another filesystem than DEST; those were copied."
            )
        self.state[p.rel] = entry_record(target, p, used, wanted=self.mode)
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


def _report_target(path: str) -> Path:
    return Path(os.path.abspath(os.path.expanduser(path)))


def _check_report_target(path: str) -> None:
    """Refuse a report path that can never be written (a folder, or a path under a file) before
    the export changes anything, with the message :func:`write_report` would give after it."""
    target = _report_target(path)
    if target.is_dir():
        raise PhotoclusterError(f"Cannot write the report {target}: {os.strerror(errno.EISDIR)}")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise PhotoclusterError(f"Cannot write the report {target}: {os.strerror(errno.ENOTDIR)}")


def write_report(catalog: Catalog, path: str) -> str:
    """Write the people report (``photocluster.report/2``) as JSON to ``path``."""
    with catalog.session() as session:
        report = build_report(session)
    target = _report_target(path)
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
