"""Walk a folder tree for image files: recursive, symlink-loop safe, hidden folders optional.

Yields plain data; unreadable folders are reported, not raised (one bad folder never stops a scan).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from photocluster.errors import PhotoclusterError
from photocluster.ingest.imaging import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, as reached (symlinks not resolved)
    size: int
    mtime_ns: int


@dataclass
class WalkReport:
    """What the walk passed over, for the scan summary."""

    skipped_by_extension: Counter[str] = field(default_factory=Counter)
    hidden_skipped: int = 0
    duplicates_skipped: int = 0  # the same file reached twice (hard link or symlink)
    unreadable_dirs: list[tuple[str, str]] = field(default_factory=list)
    loops_skipped: int = 0
    sidecars: int = 0  # XMP sidecars (ours from export-xmp, or another tool's): not photos

    @property
    def skipped_files(self) -> int:
        return sum(self.skipped_by_extension.values())


def resolve_root(root: str | os.PathLike[str]) -> Path:
    """The absolute root to scan, or a clear error when it cannot be scanned."""
    path = Path(root).expanduser()
    if not path.exists():
        raise PhotoclusterError(f"Folder not found: {path}")
    if not path.is_dir():
        raise PhotoclusterError(f"Not a folder: {path} (scan takes a folder of photos)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise PhotoclusterError(f"Cannot read folder {path}: permission denied")
    return Path(os.path.abspath(path))


def walk_images(
    root: Path, report: WalkReport, *, include_hidden: bool = False
) -> Iterator[FileEntry]:
    """Image files under ``root`` in a stable (sorted) order."""
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[tuple[int, int]] = set()
    try:
        st = root.stat()
        seen_dirs.add((st.st_dev, st.st_ino))
    except OSError as exc:
        raise PhotoclusterError(f"Cannot read folder {root}: {exc.strerror}") from exc
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            report.unreadable_dirs.append((folder, exc.strerror or str(exc)))
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith(".") and not include_hidden:
                report.hidden_skipped += 1
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError as exc:
                # A symlink that leads back to itself (a -> a, a -> b -> a), or one whose target
                # cannot be examined: skipped, and counted with the other skipped files.
                loop = exc.errno == errno.ELOOP
                report.skipped_by_extension["(symlink loop)" if loop else "(unreadable)"] += 1
                continue
            if is_dir:
                try:
                    dst = entry.stat()
                except OSError as exc:
                    report.unreadable_dirs.append((entry.path, exc.strerror or str(exc)))
                    continue
                key = (dst.st_dev, dst.st_ino)
                if key in seen_dirs:
                    report.loops_skipped += 1
                    continue
                seen_dirs.add(key)
                subdirs.append(entry.path)
                continue
            ext = os.path.splitext(entry.name)[1].lower()
            if ext == ".xmp":
                report.sidecars += 1
                continue
            if ext not in IMAGE_EXTENSIONS:
                report.skipped_by_extension[ext or "(none)"] += 1
                continue
            try:
                fst = entry.stat()
            except OSError:
                # A dangling symlink or a file that vanished: nothing to read.
                report.skipped_by_extension["(unreadable)"] += 1
                continue
            if not stat.S_ISREG(fst.st_mode):
                # A FIFO or device named like a photo: reading it could block forever.
                report.skipped_by_extension["(not a regular file)"] += 1
                continue
            fkey = (fst.st_dev, fst.st_ino)
            if fkey in seen_files:
                report.duplicates_skipped += 1
                continue
            seen_files.add(fkey)
            yield FileEntry(entry.path, fst.st_size, fst.st_mtime_ns)
        stack.extend(reversed(subdirs))
