"""The face index behind `find`: exact and HNSW search, files, staleness and damage."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, select

from photocluster.catalog.db import Catalog
from photocluster.catalog.embeddings import embedding_to_blob
from photocluster.catalog.models import Face, Photo
from photocluster.index import store as face_index
from photocluster.index.store import (
    FaceIndex,
    Fingerprint,
    IndexUnusable,
    exact_search,
    index_folder,
    sync_index,
)


def points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 10), 128)) * (0.72 / np.sqrt(128))
    return (centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, 128)) * 0.02).astype(
        np.float32
    )


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.linalg.norm(q[:, None, :].astype(np.float64) - x[None, :, :], axis=2)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), ids[order]


def test_exact_search_matches_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(face_index, "_BLOCK", 37)  # many blocks, and a ragged last one
    x = points(500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    q = points(20, seed=1)
    dist, got = exact_search(x, ids, q, 7)
    want_d, want_i = brute(x, ids, q, 7)
    assert np.allclose(dist, want_d, atol=1e-4)
    assert (got == want_i).all()


def test_exact_search_pads_when_the_catalog_is_smaller_than_k() -> None:
    x = points(3)
    dist, ids = exact_search(x, np.array([5, 6, 7]), x[:1], 5)
    assert ids[0, 0] == 5 and dist[0, 0] == pytest.approx(0.0, abs=1e-3)
    assert (ids[0, 3:] == -1).all() and np.isinf(dist[0, 3:]).all()


def test_hnsw_recall_against_exact_and_tombstones() -> None:
    x = points(3000)
    ids = np.arange(3000, dtype=np.int64) * 2 + 1
    ann = FaceIndex.build(ids, x, ann=True)
    assert ann.kind == "hnsw"
    q = x[::97] + 0.001
    _, want = exact_search(x, ids, q, 10)
    _, got = ann.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want, strict=True)])
    assert recall >= 0.99
    # deleted faces never come back, and the answer is still k long
    ann.remove(want[:, 0])
    _, after = ann.search(q, 10)
    assert not np.isin(after, want[:, 0]).any()
    assert (after >= 0).all()
    assert ann.size == 3000 - len(set(want[:, 0].tolist())) and ann.tombstones > 0


def test_save_and_load_round_trip_both_kinds(tmp_path: Path) -> None:
    x = points(300)
    ids = np.arange(1, 301, dtype=np.int64)
    for ann in (False, True):
        index = FaceIndex.build(ids, x, ann=ann)
        index.save(tmp_path / str(ann), Fingerprint.of_ids(ids), "enc-1")
        loaded, fp = FaceIndex.load(tmp_path / str(ann), "enc-1")
        assert fp == Fingerprint(300, 300, int(ids.sum()))
        assert loaded.kind == index.kind
        q = x[:5]
        assert (loaded.search(q, 3)[1] == index.search(q, 3)[1]).all()


@pytest.mark.parametrize(
    "damage",
    ["truncate", "flip", "meta_garbage", "meta_missing", "encoder", "format", "file_missing"],
)
def test_damaged_or_foreign_index_files_are_never_trusted(tmp_path: Path, damage: str) -> None:
    x = points(200)
    ids = np.arange(1, 201, dtype=np.int64)
    FaceIndex.build(ids, x, ann=True).save(tmp_path, Fingerprint.of_ids(ids), "enc-1")
    data = tmp_path / "hnsw.faiss"
    meta = tmp_path / "meta.json"
    encoder = "enc-1"
    if damage == "truncate":
        data.write_bytes(data.read_bytes()[:1000])
    elif damage == "flip":
        raw = bytearray(data.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        data.write_bytes(bytes(raw))
    elif damage == "meta_garbage":
        meta.write_text("{not json")
    elif damage == "meta_missing":
        meta.unlink()
    elif damage == "encoder":
        encoder = "enc-2"
    elif damage == "format":
        m = json.loads(meta.read_text())
        m["format"] = 99
        meta.write_text(json.dumps(m))
    elif damage == "file_missing":
        data.unlink()
    with pytest.raises(IndexUnusable):
        FaceIndex.load(tmp_path, encoder)


# -- kept in step with a real catalog ---------------------------------------------------------


def _add_faces(catalog: Catalog, vectors: np.ndarray, encoder: str = "fake") -> list[int]:
    with catalog.session() as s:
        photo = Photo(
            path=f"/p/{datetime.now().timestamp()}-{len(vectors)}.jpg",
            size=1,
            mtime_ns=1,
            status="ok",
            encoder=encoder,
            scanned_at=datetime.now(),
        )
        s.add(photo)
        s.flush()
        faces = [
            Face(
                photo_id=photo.id,
                left=0,
                top=0,
                right=10,
                bottom=10,
                size=10,
                embedding=embedding_to_blob(v),
            )
            for v in vectors
        ]
        s.add_all(faces)
        s.flush()
        return [f.id for f in faces]


def test_sync_builds_then_follows_added_and_deleted_faces(catalog: Catalog, tmp_path: Path) -> None:
    x = points(120)
    first = _add_faces(catalog, x[:100])
    index, report = sync_index(catalog, tmp_path)
    assert report.rebuilt and report.reason == "missing" and report.faces == 100
    # unchanged: loaded, not rebuilt
    _, report = sync_index(catalog, tmp_path)
    assert not report.rebuilt and report.added == report.removed == 0
    # 20 new faces, 10 deleted
    new = _add_faces(catalog, x[100:])
    with catalog.session() as s:
        s.execute(delete(Face).where(Face.id.in_(first[:10])))
    index, report = sync_index(catalog, tmp_path)
    assert (report.added, report.removed, report.rebuilt) == (20, 10, False)
    _, got = index.search(x[100:101], 1)
    assert got[0, 0] == new[0]
    _, got = index.search(x[:1], 1)
    assert got[0, 0] != first[0], "a deleted face is never an answer"
    # what was saved is what the catalog holds
    with catalog.session() as s:
        assert FaceIndex.load(index_folder(tmp_path), "fake")[1] == Fingerprint.of_catalog(s)


def test_sync_rebuilds_a_damaged_index_and_switches_kind_at_the_measured_size(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x = points(80)
    _add_faces(catalog, x[:40])
    sync_index(catalog, tmp_path)
    (index_folder(tmp_path) / "vectors.npy").write_bytes(b"garbage")
    index, report = sync_index(catalog, tmp_path)
    assert report.rebuilt and "checksum" in report.reason and index.size == 40
    monkeypatch.setattr(face_index, "ANN_MIN_FACES", 60)
    _add_faces(catalog, x[40:])
    index, report = sync_index(catalog, tmp_path)
    assert index.kind == "hnsw" and report.rebuilt and index.size == 80
    assert (index_folder(tmp_path) / "vectors.npy").exists()  # for find, beside the graph
    assert (index_folder(tmp_path) / "hnsw.faiss").exists()
    with catalog.session() as s:
        wanted = s.scalars(select(Face.id).order_by(Face.id)).all()
    _, got = index.search(x, 1)
    assert got[:, 0].tolist() == list(wanted)


def test_sync_rebuilds_when_too_many_faces_were_deleted(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(face_index, "ANN_MIN_FACES", 10)
    ids = _add_faces(catalog, points(50))
    sync_index(catalog, tmp_path)
    with catalog.session() as s:
        s.execute(delete(Face).where(Face.id.in_(ids[:5])))
    index, report = sync_index(catalog, tmp_path)
    assert not report.rebuilt and index.tombstones == 5
    with catalog.session() as s:
        s.execute(delete(Face).where(Face.id.in_(ids[5:20])))
    index, report = sync_index(catalog, tmp_path)
    assert report.rebuilt and index.tombstones == 0 and index.size == 30


def test_empty_catalog_gives_an_empty_index(catalog: Catalog, tmp_path: Path) -> None:
    index, report = sync_index(catalog, tmp_path)
    assert index.size == 0 and report.faces == 0
    _dist, ids = index.search(points(1), 3)
    assert (ids == -1).all()


def test_knn_graph_from_the_index_gives_row_positions_like_scale_cluster_knn() -> None:
    from photocluster.index.ann import knn
    from photocluster.index.store import knn_graph

    x = points(2000, seed=4)
    ids = np.arange(2000, dtype=np.int64) * 3 + 7
    index = FaceIndex.build(ids, x, ann=True)
    index.remove(ids[-5:])  # faces the index has but the clustering does not see
    dist, pos = knn_graph(index, ids[:-5], x[:-5], 10)
    want_d, want = knn(x[:-5], 10, exact=True)
    assert pos.shape == (1995, 10) and (pos < 1995).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(pos, want, strict=True)])
    assert recall > 0.95
    assert (pos[:, 0] == np.arange(1995)).mean() > 0.99, "a face is its own nearest"
    assert np.allclose(dist[:, 1], want_d[:, 1], atol=1e-3)


def test_find_loads_the_vectors_without_the_graph_and_searches_exactly(
    catalog: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(face_index, "ANN_MIN_FACES", 10)
    x = points(300, seed=6)
    _add_faces(catalog, x[:200])
    sync_index(catalog, tmp_path)  # saves an HNSW index
    index, report = sync_index(catalog, tmp_path, graph=False)
    assert index.kind == "exact" and report.kind == "hnsw" and not report.rebuilt
    with catalog.session() as s:
        wanted = np.array(s.scalars(select(Face.id).order_by(Face.id)).all())
    d, got = index.search(x[:200], 3)
    assert (got[:, 0] == wanted).all() and np.allclose(d[:, 0], 0.0, atol=1e-3)
    # the graph is not even read: damage to it alone does not matter to find...
    (index_folder(tmp_path) / "hnsw.faiss").write_bytes(b"garbage")
    _, report = sync_index(catalog, tmp_path, graph=False)
    assert not report.rebuilt
    # ...but whoever needs the graph finds the damage and rebuilds
    index, report = sync_index(catalog, tmp_path)
    assert report.rebuilt and "checksum" in report.reason and index.kind == "hnsw"
    # a stale index is loaded whole, brought up to date and saved, graph included
    _add_faces(catalog, x[200:])
    index, report = sync_index(catalog, tmp_path, graph=False)
    assert report.added == 100 and not report.rebuilt and index.size == 300
    assert FaceIndex.load(index_folder(tmp_path), "fake")[0].kind == "hnsw"
    # and an exact search on an in-memory HNSW index skips its tombstones
    index.remove(wanted[:5])
    _, got = index.search(x[:5], 1, exact=True)
    assert not set(got[:, 0].tolist()) & set(wanted[:5].tolist())
