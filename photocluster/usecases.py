"""What a user does, as one call each over the stages: the functions the CLI calls.

``scan_library`` is ``photocluster scan``: the photos under a folder into the catalog, the new
faces placed into people (incremental clustering with the parameters the catalog remembers), and
the face index brought up to date. Called from Python it leaves the same catalog the command
does. A step after the scan that cannot run (no faces to cluster yet, an index that cannot be
written) is a note in the result, never an error: the scan itself is saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face
from photocluster.errors import PhotoclusterError
from photocluster.index.store import SyncReport, sync_index
from photocluster.ingest.scan import ScanOptions, ScanSummary, scan
from photocluster.people.assign import ClusterChanges, ClusterOptions, cluster_catalog, saved_params
from photocluster.people.params import ClusterParams
from photocluster.progress import Progress


@dataclass
class LibraryScan:
    """What :func:`scan_library` did."""

    scan: ScanSummary
    clustered: ClusterChanges | None = None  # None: not asked for, or not possible (see notes)
    index: SyncReport | None = None  # None: the index could not be brought up to date
    notes: list[str] = field(default_factory=list)  # steps after the scan that did not run


def scan_library(
    catalog: Catalog,
    options: ScanOptions,
    cache_dir: Path,
    *,
    cluster: bool = True,
    progress: Progress | None = None,
) -> LibraryScan:
    """Scan ``options.root`` into the catalog, then cluster the new faces (unless ``cluster`` is
    False), then bring the face index in ``cache_dir`` up to date."""
    result = LibraryScan(scan(catalog, options, progress))
    if cluster:
        result.clustered = cluster_new_faces(catalog, cache_dir, result.notes)
    result.index = update_index(catalog, cache_dir, result.notes)
    return result


def cluster_new_faces(catalog: Catalog, cache_dir: Path, notes: list[str]) -> ClusterChanges | None:
    """Incremental clustering with the remembered parameters; a catalog not ready for it is a
    note, not an error. A catalog without faces is left alone without one: the scan's summary
    already says no face was found."""
    with catalog.session() as session:
        if not session.scalar(select(func.count()).select_from(Face)):
            return None
    try:
        params = saved_params(catalog) or ClusterParams()
        return cluster_catalog(catalog, ClusterOptions(params=params), index_dir=cache_dir)
    except PhotoclusterError as exc:
        notes.append(f"not clustered: {exc}")
        return None


def update_index(catalog: Catalog, cache_dir: Path, notes: list[str]) -> SyncReport | None:
    """Keep `find`'s face index in step; a failure here is a note (`find` rebuilds it)."""
    try:
        _index, report = sync_index(catalog, cache_dir)
    except (OSError, PhotoclusterError) as exc:
        notes.append(f"face index not updated ({exc}); `photocluster index` retries.")
        return None
    if report.not_saved:
        notes.append(f"face index not saved ({report.not_saved}); `find` rebuilds it.")
    return report
