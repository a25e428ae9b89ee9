"""The export manifest: what photocluster itself put in DEST (entries, the folders it made, the
mode it settled on), read defensively and written atomically."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from photocluster.catalog.fspath import json_text
from photocluster.errors import PhotoclusterError

MANIFEST_NAME = ".photocluster-export.json"
MANIFEST_SCHEMA = "photocluster.export-manifest/1"
MANIFEST_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Manifest:
    """What DEST's manifest says: entries (rel -> record) and folders photocluster created."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    folders: set[str] = field(default_factory=set)
    requested: str | None = None  # the --mode of the run that wrote it
    mode: str | None = None  # the mode that run settled on (after probing DEST)
    read: bool = False  # False: missing or ignored, so it must be written


def load_manifest(dest: Path, notes: list[str]) -> Manifest:
    """The manifest photocluster wrote earlier. Unreadable = empty."""
    path = dest / MANIFEST_NAME
    try:
        st = path.lstat()
    except FileNotFoundError:
        return Manifest()
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
                return Manifest(
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
    return Manifest()


def save_manifest(
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
