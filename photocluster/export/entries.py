"""One entry of DEST: the modes (symbolic link, hard link, copy), whether an entry is still exactly
what photocluster made, and making one."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import filecmp
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from photocluster.export.foldernames import clash_key, safe_filename, with_suffix

SYMLINK = "symlink"
HARDLINK = "hardlink"
COPY = "copy"
AUTO = "auto"
MODES = (AUTO, SYMLINK, HARDLINK, COPY)

EDQUOT = getattr(errno, "EDQUOT", errno.ENOSPC)  # absent on some platforms
# Errors that will hit every following file too: stop, save the manifest, explain.
_FATAL_ERRNOS = {errno.ENOSPC, EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO}
_NO_LINK_ERRNOS = {
    errno.EPERM,
    errno.EOPNOTSUPP,
    errno.ENOTSUP,
    errno.ENOSYS,
    errno.EINVAL,
    errno.EMLINK,
}


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


def entry_matches(path: Path, record: dict[str, Any]) -> bool:
    """The file at ``path`` is still the one photocluster made: the same link target, or the
    same inode and size. Cheap (one ``lstat``); a copy may still have been edited in place, so
    deleting or replacing one also needs :func:`content_unchanged` (see :func:`replaceable`)."""
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


def content_unchanged(path: Path, record: dict[str, Any]) -> bool:
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


def replaceable(path: Path, record: dict[str, Any]) -> bool:
    """Safe to delete or overwrite: still exactly what photocluster made, bytes included."""
    return entry_matches(path, record) and content_unchanged(path, record)


def entry_intact(path: Path, record: dict[str, Any], planned: PlannedFile, mode: str) -> bool:
    """An existing entry can stay as it is: ours, same photo, same mode, source unchanged.

    A copy made because a hard link was impossible (another filesystem) stays a copy."""
    made = record.get("mode")
    if record.get("photo_id") != planned.photo_id:
        return False
    if made != mode and not (mode == HARDLINK and made == COPY and record.get("fallback")):
        return False
    if record.get("source") != planned.source:
        return False
    if not entry_matches(path, record):
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


def adoptable(path: Path, planned: PlannedFile, mode: str) -> bool:
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


def listdir_keys(folder: Path) -> dict[str, str]:
    try:
        return {clash_key(n): n for n in os.listdir(folder)}
    except OSError:
        return {}


def probe_mode(dest: Path, requested: str, sample_source: str | None) -> tuple[str, str | None]:
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


def create_entry(target: Path, planned: PlannedFile, mode: str) -> str:
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


def entry_record(
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


def free_name(dest: Path, planned: PlannedFile, taken: set[str]) -> PlannedFile:
    """``planned`` under the first `` (n)`` name that is neither on disk nor ``taken``."""
    base = safe_filename(os.path.basename(planned.source))
    on_disk = listdir_keys(dest / planned.folder)
    n = 2
    while True:
        name = with_suffix(base, n, is_file=True)
        key = clash_key(name)
        if key not in on_disk and clash_key(f"{planned.folder}/{name}") not in taken:
            return dataclasses.replace(planned, name=name)
        n += 1
