"""The use cases as Python calls: scan_library leaves the catalog `photocluster scan` leaves."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person
from photocluster.index.store import index_folder
from photocluster.usecases import scan_library
from tests.fakes import make_photo


def library(root: Path) -> None:
    for name, n in {"ada": 5, "bob": 4}.items():
        for k in range(n):
            make_photo(root / name / f"{k}.png", [(name, (10 + 7 * k, 20 + 3 * k, 40))])


def test_scan_library_scans_clusters_and_indexes(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    library(root)
    cache = tmp_path / "cache"
    result = scan_library(catalog, fake_options(root), cache)
    assert result.scan.new == 9 and result.notes == []
    assert result.clustered is not None and len(result.clustered.people_created) == 2
    assert result.index is not None and result.index.faces == 9
    assert (index_folder(cache) / "meta.json").is_file()
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 2
        assert s.scalar(select(func.count()).where(Face.person_id.is_(None))) == 0


def test_scan_library_without_clustering_and_without_faces(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    library(root)
    result = scan_library(catalog, fake_options(root), tmp_path / "cache", cluster=False)
    assert result.clustered is None and result.notes == []
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 0
    empty = tmp_path / "empty"
    make_photo(empty / "nobody.png", [])
    other = scan_library(catalog, fake_options(empty), tmp_path / "cache")
    assert other.scan.new == 1 and other.clustered is not None  # the catalog has faces


def test_a_scan_that_found_no_face_is_not_told_to_scan(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    """Issue 17: after scanning a folder without faces, no "not clustered: No faces cached yet —
    run `photocluster scan DIR` first" (the user just did)."""
    empty = tmp_path / "empty"
    make_photo(empty / "nobody.png", [])
    result = scan_library(catalog, fake_options(empty), tmp_path / "cache")
    assert result.scan.new == 1 and result.scan.faces_found == 0
    assert result.clustered is None and result.notes == []
