"""The face index: nearest catalog faces to a query embedding, exact or approximate.

Two uses, two ways to search (``bench/bench_find.py`` measured both: see the constants):

* ``find`` asks about the few faces of one photo. It always searches exactly (NumPy, blocked so
  memory stays bounded) over ``vectors.npy``, loaded without the graph: at 1 000 000 faces that
  is ~0.4 s to load and 0.13 s per face, with every answer right, where loading the HNSW graph
  alone takes 6.6 s and its recall@10 is 0.87 (efSearch 128) to 0.95 (1 024) (README, "find").
* ``cluster`` needs the k nearest faces of *every* face (HDBSCAN's k-NN graph), where exact
  search is hours at a million faces. From ``ANN_MIN_FACES`` faces on the index also keeps a
  faiss HNSW graph, which ``scan`` extends as it adds faces (:func:`knn_graph`).

The index lives beside the catalog, in ``Settings.cache_dir/face-index``:

* ``ids.npy``: the face id of each row (-1 = the face was deleted since; HNSW cannot drop rows);
* ``revised.npy``: (face id, revision) of each face re-encoded in place (see below);
* ``vectors.npy``: the embeddings, row by row; ``hnsw.faiss``: the graph (HNSW kind only; it
  holds the vectors too, so the HNSW kind takes twice the disk: 1.3 GB at 1 000 000 faces);
* ``meta.json``, written last: format version, kind, encoder, the catalog fingerprint it matches,
  and the size and CRC-32 of the other files. A file that does not match is never trusted: the
  index is rebuilt from the catalog.

Face ids are never reused (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so bringing the
index up to date means adding the faces it lacks and dropping those the catalog no longer has.
One exception: a photo that changed on disk keeps the ids of the faces found in the same place,
with new embeddings. ``scan`` then bumps ``faces.revision``, and the index re-reads every face
whose (id, revision) it has not seen, replacing its row. ``scan`` syncs after writing; ``find``
checks the fingerprint (count, largest and sum of face ids: one indexed query; count and sum of
revisions of the revised faces: one query on a partial index holding only those) and syncs when
it differs. No sync reads all embeddings, however many faces the catalog holds.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog
from photocluster.catalog.embeddings import EMBEDDING_DIM, blobs_to_matrix
from photocluster.catalog.models import Face, Photo
from photocluster.index.ann import hnsw_search_from, new_hnsw

FORMAT = 3  # 2: vectors.npy beside hnsw.faiss too; 3: revised.npy (faces re-encoded in place)
# From this many faces on, search goes through an HNSW graph. Measured at 1 579 (real) to
# 1 000 000 (synthetic) faces by bench/bench_find.py: exact NumPy search costs ~0.1 ms per 1 000
# faces per query, so ~5 ms at 50 000; HNSW answers in < 1 ms with recall@10 >= 0.99 but takes
# ~1 min per 100 000 faces to build on 2 cores.
ANN_MIN_FACES = 50_000
# Search effort of the kept graph (built by photocluster.index.ann.new_hnsw, saved with it, raised
# to the number of faces asked for): the recall figures above were measured with it.
HNSW_EF_SEARCH = 128
# Deleted faces stay in the HNSW graph as tombstones; past this share the graph is rebuilt.
MAX_TOMBSTONES = 0.2
_BLOCK = 32_768  # catalog rows per exact-search block: bounds the (queries x block) matrix
_LOAD_CHUNK = 20_000  # embeddings read from the catalog per query


@dataclass(frozen=True)
class Fingerprint:
    """What the index must match: the catalog's faces, as cheaply summarised as SQL allows."""

    count: int
    max_id: int
    id_sum: int
    revised: int = 0  # faces re-encoded in place (revision > 0)
    revision_sum: int = 0  # grows with every re-encoding

    @classmethod
    def of_catalog(cls, session: Session) -> Fingerprint:
        count, max_id, id_sum = session.execute(
            select(func.count(Face.id), func.max(Face.id), func.sum(Face.id))
        ).one()
        revised, revision_sum = session.execute(
            select(func.count(), func.sum(Face.revision)).where(_REVISED)
        ).one()
        return cls(
            int(count or 0),
            int(max_id or 0),
            int(id_sum or 0),
            int(revised or 0),
            int(revision_sum or 0),
        )

    @classmethod
    def of_ids(cls, ids: np.ndarray, revised: np.ndarray | None = None) -> Fingerprint:
        alive = ids[ids >= 0]
        rev = _no_revisions() if revised is None else revised
        return cls(
            len(alive),
            int(alive.max()) if len(alive) else 0,
            int(alive.sum()),
            len(rev),
            int(rev[:, 1].sum()),
        )


# ``revision > 0`` with a literal 0: SQLite uses the partial index ix_faces_revised only when
# the query's condition matches the index's, which a bound parameter does not.
_REVISED = Face.revision > literal_column("0")


def _no_revisions() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


@dataclass
class SyncReport:
    """What bringing the index up to date did."""

    kind: str  # "exact" | "hnsw"
    faces: int
    added: int = 0
    removed: int = 0
    rebuilt: bool = False
    updated: int = 0  # faces re-encoded in place (photo changed, face kept) whose row was replaced
    reason: str = ""  # why it was rebuilt: missing, corrupt, ...
    not_saved: str = ""  # why the up-to-date index could not be written (it still answers)


class FaceIndex:
    """Face ids and their embeddings, searchable by Euclidean distance."""

    def __init__(
        self,
        ids: np.ndarray,
        vectors: np.ndarray | None,
        hnsw: Any = None,
        revised: np.ndarray | None = None,
    ) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.vectors = vectors  # exact kind only (float32, rows x EMBEDDING_DIM)
        self.hnsw = hnsw  # faiss.IndexHNSWFlat, approximate kind only
        # (face id, revision) of the faces re-encoded in place, as of the vectors held
        self.revised = _no_revisions() if revised is None else revised

    @property
    def kind(self) -> str:
        return "hnsw" if self.hnsw is not None else "exact"

    @property
    def size(self) -> int:
        return int((self.ids >= 0).sum())

    @property
    def tombstones(self) -> int:
        return int((self.ids < 0).sum())

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, *, ann: bool | None = None) -> FaceIndex:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        if ann is None:
            ann = len(ids) >= ANN_MIN_FACES
        if not ann:
            return cls(ids, vectors)
        return cls(ids, None, new_hnsw(vectors, HNSW_EF_SEARCH))

    # -- search -----------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, *, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distances (float32, ascending) and face ids (-1 where fewer than ``k`` exist) of
        the ``k`` faces nearest to each query row; ``exact`` even when there is a graph."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        if self.hnsw is None or exact:
            ids, vectors = self.alive() if self.hnsw is not None else (self.ids, self.vectors)
            assert vectors is not None
            return exact_search(vectors, ids, q, k)
        return self._search_hnsw(q, k)

    def _search_hnsw(
        self, q: np.ndarray, k: int, entry: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        # Tombstones take places in the answer: ask for more, as many more as may be dead.
        want = min(len(self.ids), k + min(self.tombstones, 4 * k))
        self.hnsw.hnsw.efSearch = max(HNSW_EF_SEARCH, want)
        if entry is None:
            d2, rows = self.hnsw.search(q, want)
        else:
            d2, rows = hnsw_search_from(self.hnsw, q, entry, want)
        face = np.where(rows >= 0, self.ids[np.maximum(rows, 0)], -1)
        # alive answers first, each row's order kept; then cut to k
        order = np.argsort(face < 0, axis=1, kind="stable")[:, :k]
        face = np.take_along_axis(face, order, 1)
        dist = np.sqrt(np.maximum(np.take_along_axis(d2, order, 1), 0.0))
        dist[face < 0] = np.inf
        if face.shape[1] < k:  # a catalog smaller than k
            pad = k - face.shape[1]
            face = np.pad(face, ((0, 0), (0, pad)), constant_values=-1)
            dist = np.pad(dist, ((0, 0), (0, pad)), constant_values=np.inf)
        return dist.astype(np.float32), face

    # -- change -----------------------------------------------------------------------------

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        if self.hnsw is not None:
            self.hnsw.add(vectors)
        else:
            assert self.vectors is not None
            self.vectors = np.vstack([self.vectors, vectors])
        self.ids = np.concatenate([self.ids, ids])

    def remove(self, ids: np.ndarray) -> None:
        gone = np.isin(self.ids, ids)
        if self.hnsw is not None:
            self.ids[gone] = -1  # a tombstone: the row stays in the graph
        else:
            assert self.vectors is not None
            self.ids, self.vectors = self.ids[~gone], self.vectors[~gone]

    def alive(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of the faces still in the catalog (for a rebuild)."""
        keep = self.ids >= 0
        if self.hnsw is not None:
            vectors = self.hnsw.reconstruct_n(0, self.hnsw.ntotal)[keep]
        else:
            assert self.vectors is not None
            vectors = self.vectors[keep]
        return self.ids[keep], vectors

    # -- files ------------------------------------------------------------------------------

    def save(self, folder: Path, fingerprint: Fingerprint, encoder: str) -> None:
        """Write the files (each through a temporary name), then ``meta.json`` last."""
        folder.mkdir(parents=True, exist_ok=True)
        files: dict[str, dict[str, int]] = {}
        stale = {"vectors.npy", "hnsw.faiss"}
        files["ids.npy"] = _write(folder / "ids.npy", _npy_bytes(self.ids))
        files["revised.npy"] = _write(folder / "revised.npy", _npy_bytes(self.revised))
        if self.hnsw is not None:
            import faiss

            vectors = self.hnsw.reconstruct_n(0, self.hnsw.ntotal)
            files["vectors.npy"] = _write(folder / "vectors.npy", _npy_bytes(vectors))
            del vectors
            data = faiss.serialize_index(self.hnsw).tobytes()
            files["hnsw.faiss"] = _write(folder / "hnsw.faiss", data)
        else:
            assert self.vectors is not None
            files["vectors.npy"] = _write(folder / "vectors.npy", _npy_bytes(self.vectors))
        meta = {
            "format": FORMAT,
            "kind": self.kind,
            "encoder": encoder,
            "fingerprint": [
                fingerprint.count,
                fingerprint.max_id,
                fingerprint.id_sum,
                fingerprint.revised,
                fingerprint.revision_sum,
            ],
            "files": files,
        }
        _write(folder / "meta.json", json.dumps(meta, indent=1).encode())
        for name in stale - set(files):
            (folder / name).unlink(missing_ok=True)

    @classmethod
    def load(
        cls, folder: Path, encoder: str, *, graph: bool = True
    ) -> tuple[FaceIndex, Fingerprint]:
        """The saved index, or :class:`IndexUnusable` saying why it cannot be trusted.

        ``graph=False``: the ids and vectors only (an exact index, whatever was saved), for a
        few exact queries without the cost of loading the HNSW graph."""
        try:
            meta = json.loads((folder / "meta.json").read_text())
        except FileNotFoundError:
            raise IndexUnusable("missing") from None
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"unreadable meta.json ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexUnusable("written by another version")
        if meta.get("encoder") != encoder:
            raise IndexUnusable("made for other encoder settings")
        try:
            wanted = {"ids.npy", "revised.npy", "vectors.npy"} | (
                {"hnsw.faiss"} if graph else set()
            )
            files = {
                name: _read_checked(folder / name, spec)
                for name, spec in meta["files"].items()
                if name in wanted
            }
            ids = np.load(_bytes_io(files["ids.npy"]), allow_pickle=False)
            revised = np.load(_bytes_io(files["revised.npy"]), allow_pickle=False)
            revised = revised.astype(np.int64, copy=False).reshape(-1, 2)
            fp = Fingerprint(*(int(v) for v in meta["fingerprint"]))
            if meta["kind"] == "hnsw" and graph:
                import faiss

                raw = np.frombuffer(files["hnsw.faiss"], dtype=np.uint8)
                index = cls(ids, None, faiss.deserialize_index(raw), revised)
                rows = index.hnsw.ntotal
            else:
                vectors = _npy_view(files["vectors.npy"])
                index = cls(ids, np.ascontiguousarray(vectors, dtype=np.float32), None, revised)
                rows = len(vectors)
        except IndexUnusable:
            raise
        except Exception as exc:  # any damage at all: never trusted
            raise IndexUnusable(f"damaged ({type(exc).__name__}: {exc})") from None
        if ids.ndim != 1 or rows != len(ids) or Fingerprint.of_ids(ids, revised) != fp:
            raise IndexUnusable("inconsistent files")
        return index, fp


class IndexUnusable(Exception):
    """A saved index that must be rebuilt; the message says why."""


def exact_search(
    vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Blocked brute force: at most (queries x ``_BLOCK``) distances in memory at a time."""
    m = len(q)
    best_d = np.full((m, k), np.inf, dtype=np.float32)
    best_i = np.full((m, k), -1, dtype=np.int64)
    qq = (q.astype(np.float32) ** 2).sum(axis=1)[:, None]
    for start in range(0, len(vectors), _BLOCK):
        block = vectors[start : start + _BLOCK]
        d2 = qq + (block * block).sum(axis=1)[None, :] - 2.0 * (q @ block.T)
        cand_d = np.concatenate([best_d, np.sqrt(np.maximum(d2, 0.0))], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(ids[start : start + _BLOCK], d2.shape)], 1)
        take = min(k, cand_d.shape[1])
        part = np.argpartition(cand_d, take - 1, axis=1)[:, :take]
        best_d[:, :take] = np.take_along_axis(cand_d, part, axis=1)
        best_i[:, :take] = np.take_along_axis(cand_i, part, axis=1)
    order = np.argsort(best_d, axis=1, kind="stable")
    return np.take_along_axis(best_d, order, 1), np.take_along_axis(best_i, order, 1)


def knn_graph(
    index: FaceIndex, ids: np.ndarray, x: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest faces of every catalog face, from the index: distances and positions
    in ``ids`` (sorted face ids; -1 / inf where none), as :func:`ann.knn` gives them.

    Lets ``cluster`` reuse the HNSW graph ``scan`` keeps instead of building one."""
    n = len(ids)
    dist = np.full((n, k), np.inf, dtype=np.float32)
    pos = np.full((n, k), -1, dtype=np.int64)
    # each face's own row in the graph, where its search starts (see hnsw_search_from)
    alive = np.flatnonzero(index.ids >= 0)
    by_id = alive[np.argsort(index.ids[alive])]
    own_row = (
        by_id[np.minimum(np.searchsorted(index.ids[by_id], ids), len(by_id) - 1)]
        if len(alive)
        else None
    )
    for start in range(0, n, _BLOCK * 2):
        block = np.ascontiguousarray(x[start : start + _BLOCK * 2], dtype=np.float32)
        if index.hnsw is not None and own_row is not None:
            d, face = index._search_hnsw(block, k, own_row[start : start + len(block)])
        else:
            d, face = index.search(block, k)
        at = np.minimum(np.searchsorted(ids, face), n - 1)
        ok = (face >= 0) & (ids[at] == face)
        pos[start : start + len(d)] = np.where(ok, at, -1)
        dist[start : start + len(d)] = np.where(ok, d, np.inf)
    return dist, pos


# -- keeping it in step with the catalog ----------------------------------------------------


def index_folder(cache_dir: Path) -> Path:
    return Path(cache_dir) / "face-index"


def catalog_encoder(session: Session) -> str:
    """The encoder key of the catalog's faces (the most common, if several)."""
    row = session.execute(
        select(Photo.encoder, func.count(Face.id))
        .join(Face, Face.photo_id == Photo.id)
        .group_by(Photo.encoder)
        .order_by(func.count(Face.id).desc())
        .limit(1)
    ).first()
    return str(row[0]) if row else ""


def _face_ids(session: Session) -> np.ndarray:
    ids = session.scalars(select(Face.id).order_by(Face.id)).all()
    return np.fromiter(ids, dtype=np.int64, count=len(ids))


def _revised(session: Session) -> np.ndarray:
    """(face id, revision) of every face re-encoded in place, by id (from the partial index)."""
    rows = session.execute(select(Face.id, Face.revision).where(_REVISED).order_by(Face.id)).all()
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def _stale_rows(index: FaceIndex, revised: np.ndarray) -> np.ndarray:
    """Ids of faces the index holds whose embedding was rewritten since (revision unseen)."""
    if not len(revised):
        return np.zeros(0, dtype=np.int64)
    seen = {(int(i), int(r)) for i, r in index.revised}
    changed = [int(i) for i, r in revised if (int(i), int(r)) not in seen]
    return np.intersect1d(np.asarray(changed, dtype=np.int64), index.ids[index.ids >= 0])


def _embeddings(session: Session, ids: np.ndarray) -> np.ndarray:
    """Embeddings of the given faces, in the same order (read in chunks)."""
    parts = []
    for start in range(0, len(ids), _LOAD_CHUNK):
        chunk = [int(i) for i in ids[start : start + _LOAD_CHUNK]]
        rows = dict(
            session.execute(select(Face.id, Face.embedding).where(Face.id.in_(chunk))).all()
        )
        parts.append(blobs_to_matrix([rows[i] for i in chunk]).astype(np.float32))
    return np.vstack(parts) if parts else np.zeros((0, EMBEDDING_DIM), dtype=np.float32)


def sync_index(
    catalog: Catalog, cache_dir: Path, *, rebuild: bool = False, graph: bool = True
) -> tuple[FaceIndex, SyncReport]:
    """The index, brought up to date with the catalog and saved; built if missing or untrusted.

    ``graph=False`` (``find``): when the saved index is up to date, only its ids and vectors
    are loaded (see :meth:`FaceIndex.load`); an index that needs changing is loaded whole."""
    folder = index_folder(cache_dir)
    with catalog.session() as s:
        encoder = catalog_encoder(s)
        fp = Fingerprint.of_catalog(s)
        index: FaceIndex | None = None
        reason = "asked to rebuild" if rebuild else ""
        if not rebuild:
            try:
                index, saved_fp = FaceIndex.load(folder, encoder, graph=graph)
                if saved_fp != fp and not graph:
                    index, saved_fp = FaceIndex.load(folder, encoder)
            except IndexUnusable as exc:
                index, reason = None, str(exc)
        if index is not None and saved_fp == fp:
            return index, SyncReport(_saved_kind(folder, index), index.size)
        ids = _face_ids(s)
        revised = _revised(s)
        if index is None:
            index = FaceIndex.build(ids, _embeddings(s, ids))
            report = SyncReport(index.kind, index.size, added=len(ids), rebuilt=True, reason=reason)
        else:
            have = index.ids[index.ids >= 0]
            new = np.setdiff1d(ids, have, assume_unique=True)
            gone = np.setdiff1d(have, ids, assume_unique=True)
            # Re-encoded in place: the row goes (a tombstone in HNSW) and comes back new.
            changed = np.setdiff1d(_stale_rows(index, revised), gone, assume_unique=True)
            index.remove(np.concatenate([gone, changed]))
            fresh = np.concatenate([new, changed])
            if len(fresh):
                index.add(fresh, _embeddings(s, fresh))
            report = SyncReport(
                index.kind, index.size, added=len(new), removed=len(gone), updated=len(changed)
            )
            wants_ann = index.size >= ANN_MIN_FACES
            too_dead = index.tombstones > MAX_TOMBSTONES * max(1, len(index.ids))
            if wants_ann != (index.kind == "hnsw") or too_dead:
                index = FaceIndex.build(*index.alive())
                report = SyncReport(
                    index.kind,
                    index.size,
                    len(new),
                    len(gone),
                    True,
                    len(changed),
                    "outgrown or too many deleted",
                )
        index.revised = revised
    try:
        index.save(folder, Fingerprint.of_ids(index.ids, index.revised), encoder)
    except OSError as exc:  # read-only or full disk: answer anyway, rebuild next time
        report.not_saved = f"{folder}: {exc.strerror or exc}"
    return index, report


def _saved_kind(folder: Path, index: FaceIndex) -> str:
    """The kind of the index on disk (an HNSW index loaded without its graph is still one)."""
    if index.kind == "hnsw" or not (folder / "hnsw.faiss").exists():
        return index.kind
    return "hnsw"


# -- file helpers ---------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_view(data: bytes) -> np.ndarray:
    """The array in .npy bytes as a read-only view of them (no copy: 0.5 GB at 10⁶ faces)."""

    from numpy.lib import format as npy

    buf = io.BytesIO(data)
    version = npy.read_magic(buf)
    header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, fortran, dtype = header(buf)
    if fortran or dtype.hasobject:
        raise ValueError("unexpected array layout")
    count = int(np.prod(shape))
    return np.frombuffer(data, dtype=dtype, count=count, offset=buf.tell()).reshape(shape)


def _bytes_io(data: bytes) -> Any:

    return io.BytesIO(data)


def _write(path: Path, data: bytes) -> dict[str, int]:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {"size": len(data), "crc32": zlib.crc32(data)}


def _read_checked(path: Path, spec: dict[str, int]) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexUnusable(f"cannot read {path.name} ({exc.strerror})") from None
    if len(data) != spec["size"] or zlib.crc32(data) != spec["crc32"]:
        raise IndexUnusable(f"{path.name} does not match its checksum")
    return data
