"""Scan a folder into the catalog: incremental, move-aware, resumable, one transaction per batch.

Plan (walk + compare with the catalog) -> record moves and deletions -> analyse new and changed
photos on an executor -> the calling process writes results in batches. Re-running after an
interruption continues where it stopped, because finished photos are already in the catalog
with their size and mtime.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog, in_chunks
from photocluster.catalog.embeddings import embedding_to_blob
from photocluster.catalog.fspath import printable
from photocluster.catalog.models import Face, Photo
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.catalog.roots import remember_root
from photocluster.errors import Interrupted
from photocluster.ingest.analyse import PhotoResult, hash_file
from photocluster.ingest.backends import make_encoder
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.executors import EncoderFactory, Executor, Task, make_executor
from photocluster.ingest.walker import FileEntry, WalkReport, resolve_root, walk_images
from photocluster.progress import NoProgress, Progress

ExecutorFactory = Callable[[int, EncoderFactory, EncoderParams], Executor]


@dataclass
class ScanOptions:
    root: str
    params: EncoderParams = field(default_factory=EncoderParams)
    jobs: int = 0  # 0 = every core
    batch_size: int = 32
    batch_seconds: float = 10.0
    include_hidden: bool = False
    retry_failed: bool = False
    encoder_factory: EncoderFactory = make_encoder
    executor_factory: ExecutorFactory = make_executor

    def effective_jobs(self) -> int:
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)


@dataclass
class ScanSummary:
    root: str
    seen: int = 0
    new: int = 0
    changed: int = 0
    moved: int = 0
    unchanged: int = 0
    removed: int = 0
    processed: int = 0
    faces_found: int = 0
    no_faces: int = 0  # photos read in this run in which no face was found
    failed: Counter[str] = field(default_factory=Counter)
    walk: WalkReport = field(default_factory=WalkReport)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    failed_earlier: int = 0  # unchanged photos still failed from an earlier run (not retried)

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())


@dataclass
class _Known:
    id: int
    size: int
    mtime_ns: int
    encoder: str
    status: str
    content_hash: str | None


@dataclass
class ScanPlan:
    todo: list[FileEntry]
    new: set[str]
    moves: list[tuple[int, FileEntry, str]]  # photo id, new file, content hash
    removals: list[int]
    unchanged: int
    seen: int
    unchanged_failed: int = 0  # unchanged files that failed on an earlier run


def _under(root: Path) -> str:
    return str(root).rstrip(os.sep) + os.sep


def failure_category(reason: str | None) -> str:
    """Group failure reasons for summaries: the part before the first colon."""
    return (reason or "unknown error").split(":", 1)[0].strip()


def plan_scan(
    session: Session, root: Path, files: list[FileEntry], key: str, retry_failed: bool
) -> ScanPlan:
    """Compare the walk with the catalog. Hashes only files that may be moves."""
    known = _known_under(session, root)
    todo: list[FileEntry] = []
    candidates: list[FileEntry] = []  # paths the catalog does not know: new, or moved here
    unchanged = unchanged_failed = 0
    for f in files:
        k = known.get(f.path)
        if k is None:
            candidates.append(f)
        elif (
            k.size == f.size
            and k.mtime_ns == f.mtime_ns
            and k.encoder == key
            and not (retry_failed and k.status == PhotoStatus.FAILED)
        ):
            unchanged += 1
            unchanged_failed += k.status == PhotoStatus.FAILED
        else:
            todo.append(f)
    on_disk = {f.path for f in files}
    missing = {p: k for p, k in known.items() if p not in on_disk}
    moves, new = _moves(session, root, candidates, missing)
    todo.extend(f for f in candidates if f.path in new)
    moved_ids = {source for source, _f, _digest in moves}
    removals = [k.id for k in missing.values() if k.id not in moved_ids]
    todo.sort(key=lambda f: f.path)
    return ScanPlan(todo, new, moves, removals, unchanged, len(files), unchanged_failed)


def _known_under(session: Session, root: Path) -> dict[str, _Known]:
    """The catalog's photos under ``root``, by path."""
    rows = session.execute(
        select(
            Photo.id,
            Photo.path,
            Photo.size,
            Photo.mtime_ns,
            Photo.encoder,
            Photo.status,
            Photo.content_hash,
        ).where(Photo.path.startswith(_under(root), autoescape=True))
    ).all()
    return {
        r.path: _Known(r.id, r.size, r.mtime_ns, r.encoder, r.status, r.content_hash) for r in rows
    }


def _moves(
    session: Session, root: Path, candidates: list[FileEntry], missing: dict[str, _Known]
) -> tuple[list[tuple[int, FileEntry, str]], set[str]]:
    """Moves (a candidate whose content equals a photo no longer where it was: under ``root``,
    or anywhere else in the catalog) and the candidates that are new."""
    sizes = {f.size for f in candidates}
    by_size: dict[int, list[tuple[int, str, str | None]]] = {}
    for path, k in missing.items():
        if k.size in sizes and k.status != PhotoStatus.FAILED:
            by_size.setdefault(k.size, []).append((k.id, path, k.content_hash))
    for chunk in in_chunks(sorted(sizes)):
        for r in session.execute(
            select(Photo.id, Photo.path, Photo.size, Photo.content_hash, Photo.status).where(
                Photo.size.in_(chunk), ~Photo.path.startswith(_under(root), autoescape=True)
            )
        ):
            if r.status != PhotoStatus.FAILED and not os.path.exists(r.path):
                by_size.setdefault(r.size, []).append((r.id, r.path, r.content_hash))
    sources: dict[tuple[int, str], int] = {}
    for size, entries in by_size.items():
        for photo_id, _path, digest in entries:
            if digest:
                sources.setdefault((size, digest), photo_id)
    moves: list[tuple[int, FileEntry, str]] = []
    moved_ids: set[int] = set()
    new: set[str] = set()
    for f in candidates:
        if f.size in by_size:
            try:
                digest = hash_file(f.path)
            except OSError:
                digest = ""
            source = sources.get((f.size, digest))
            if source is not None and source not in moved_ids:
                moved_ids.add(source)
                moves.append((source, f, digest))
                continue
        new.add(f.path)
    return moves, new


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_result(session: Session, result: PhotoResult, key: str) -> int:
    """Record one analysed photo. Idempotent: writing the same result twice changes nothing.

    A re-analysed photo keeps the ids (and so the names and decisions) of faces whose boxes
    overlap the new ones; faces no longer found are removed.
    """
    photo = session.execute(select(Photo).where(Photo.path == result.path)).scalar_one_or_none()
    now = datetime.now()
    if photo is None:
        photo = Photo(path=result.path, scanned_at=now, size=0, mtime_ns=0, status="", encoder="")
        session.add(photo)
    photo.size, photo.mtime_ns = result.size, result.mtime_ns
    photo.content_hash = result.content_hash
    photo.width, photo.height, photo.taken_at = result.width, result.height, result.taken_at
    photo.status = result.status
    photo.error = None if result.error is None else printable(result.error)
    photo.encoder, photo.scanned_at = key, now
    session.flush()
    old = list(session.execute(select(Face).where(Face.photo_id == photo.id)).scalars())
    used: set[int] = set()
    for found in result.faces:
        best, best_iou = None, 0.5
        for face in old:
            if face.id in used:
                continue
            iou = _iou((face.left, face.top, face.right, face.bottom), found.box)
            if iou >= best_iou:
                best, best_iou = face, iou
        if best is None:
            best = Face(photo_id=photo.id, confirmed=False)
            session.add(best)
        else:
            used.add(best.id)
        best.left, best.top, best.right, best.bottom = found.box
        best.size = found.box[2] - found.box[0]
        blob = embedding_to_blob(found.embedding)
        if best.id is not None and best.embedding != blob:
            best.revision = (best.revision or 0) + 1  # re-encoded in place: see face_index
        best.embedding = blob
    stale = [f.id for f in old if f.id not in used]
    if stale:
        session.execute(delete(Face).where(Face.id.in_(stale)))
    return len(result.faces)


def _apply_moves_and_removals(session: Session, plan: ScanPlan) -> None:
    for photo_id, entry, digest in plan.moves:
        photo = session.get(Photo, photo_id)
        if photo is None:
            continue
        clash = session.execute(select(Photo).where(Photo.path == entry.path)).scalar_one_or_none()
        if clash is not None:
            session.delete(clash)
            session.flush()
        photo.path, photo.size, photo.mtime_ns = entry.path, entry.size, entry.mtime_ns
        photo.content_hash = digest
    for chunk in in_chunks(plan.removals):
        session.execute(delete(Photo).where(Photo.id.in_(chunk)))


def scan(catalog: Catalog, options: ScanOptions, progress: Progress | None = None) -> ScanSummary:
    """Bring the catalog in line with the photos under ``options.root``."""
    progress = progress or NoProgress()
    started = time.monotonic()
    root = resolve_root(options.root)
    key = options.params.key(options.encoder_factory(options.params).model_id)
    summary = ScanSummary(root=str(root))
    files = list(walk_images(root, summary.walk, include_hidden=options.include_hidden))
    with catalog.write_session(f"scan {root}") as session:
        plan = plan_scan(session, root, files, key, options.retry_failed)
        if not files and plan.removals:
            summary.warnings.append(
                f"No photos found under {root}, so the {len(plan.removals)} catalogued there were "
                "kept (is the drive mounted?)."
            )
            plan.removals = []
        _apply_moves_and_removals(session, plan)
        remember_root(session, str(root))  # export refuses a DEST inside it
    summary.seen, summary.unchanged = plan.seen, plan.unchanged
    summary.failed_earlier = plan.unchanged_failed
    summary.moved, summary.removed = len(plan.moves), len(plan.removals)
    tasks = [Task(f.path, f.size, f.mtime_ns) for f in plan.todo]
    if not tasks:
        summary.seconds = time.monotonic() - started
        return summary

    executor = options.executor_factory(
        min(options.effective_jobs(), len(tasks)), options.encoder_factory, options.params
    )
    progress.start(len(tasks), "Scanning")
    # Results wait here, owned by this function, until a batch is full: ``size`` photos or
    # ``batch_seconds``, whichever first. On Ctrl-C whatever waits is written too.
    pending: list[PhotoResult] = []
    try:
        batch_started = time.monotonic()
        for result in executor.run(tasks):
            pending.append(result)
            progress.advance()
            if (
                len(pending) >= options.batch_size
                or time.monotonic() - batch_started >= options.batch_seconds
            ):
                # Ctrl-C waits for the commit and the count, so a batch is never half counted.
                # The write lock is waited for where Ctrl-C still stops the wait.
                with catalog.write_lock(f"scan {root}"), _sigint_deferred():
                    _write_batch(catalog, pending, key, plan, summary)
                    pending, batch_started = [], time.monotonic()
        if pending:
            with catalog.write_lock(f"scan {root}"), _sigint_deferred():
                _write_batch(catalog, pending, key, plan, summary)
                pending = []
    except KeyboardInterrupt:
        # Every result that reached this process is analysed: keep it, in one transaction,
        # before stopping the workers (which may take a moment). A second Ctrl-C can still cut
        # short the wait for the write lock (another writer may hold it), not the write.
        if pending:
            with (
                contextlib.suppress(KeyboardInterrupt),
                catalog.write_lock(f"scan {root}"),
                _sigint_deferred(reraise=False),
            ):
                _write_batch(catalog, pending, key, plan, summary)
        executor.close()
        progress.finish()
        raise Interrupted(
            f"Scan interrupted: {summary.processed} of {len(tasks)} photos analysed and saved. "
            "Run the same command again to continue.",
            done=summary.processed,
        ) from None
    finally:
        executor.close()
    progress.finish()
    summary.seconds = time.monotonic() - started
    return summary


@contextlib.contextmanager
def _sigint_deferred(*, reraise: bool = True) -> Iterator[None]:
    """Hold a Ctrl-C that arrives during a short step until the step is done, then raise it
    (or drop it, with ``reraise=False``). Main thread only; elsewhere SIGINT never arrives."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and reraise:
        raise KeyboardInterrupt


def _write_batch(
    catalog: Catalog, batch: list[PhotoResult], key: str, plan: ScanPlan, summary: ScanSummary
) -> None:
    counts = Counter[str]()
    faces = 0
    failed = Counter[str]()
    with catalog.write_session("scan") as session:
        for result in batch:
            faces += write_result(session, result, key)
            counts["new" if result.path in plan.new else "changed"] += 1
            if result.status == PhotoStatus.FAILED:
                failed[failure_category(result.error)] += 1
            elif result.status == PhotoStatus.NO_FACES:
                counts["no_faces"] += 1
    # Only count what was committed.
    summary.new += counts["new"]
    summary.changed += counts["changed"]
    summary.faces_found += faces
    summary.no_faces += counts["no_faces"]
    summary.failed.update(failed)
    summary.processed += len(batch)
