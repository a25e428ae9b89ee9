"""`find PHOTO`: who is in a photo that is not in the catalog? Returns data; the CLI prints it.

Each face of the photo is searched in the face index (:mod:`photocluster.index.store`). The
people owning the nearest catalog faces are the candidates; each is scored by the distance from
the face to the person's centroid (their mean embedding) and to their nearest face, by the
person's own spread, and by how many of the face's nearest catalog faces are theirs. The verdict
asks what `cluster` asks before a face joins a person, relative to that person and to the face's
neighbourhood rather than one global distance, because where dlib's embedding is dense
(East-Asian faces, children) people are tight and strangers sit within any global distance of
them (``bench/bench_find.py verdicts``, on ../shared/faces and ../shared/lfw-dev):

* ``known``: within ``FIND_KNOWN_DISTANCE`` (0.50) of the person's centroid, within
  ``SPREAD_RATIO`` (1.5) times their own spread (:func:`own_spread`), at least ``ATTACH_MARGIN``
  nearer than to the runner-up, and ``FIND_KNOWN_SHARE`` (4 of 5) of the face's
  ``ATTACH_NEIGHBOURS`` nearest catalog faces theirs. lfw-dev: 2.4 % of strangers (10.6 % with
  the old global rule), in-catalog faces right 91.1 %; ../shared/faces: right 99.6 %.
* ``probably``: the same distances without the margin, and ``ATTACH_SHARE`` (3 of 5) of the
  nearest faces theirs. A person of one face has no spread: at most ``probably``, within
  ``PAIR_DISTANCE`` of that face when it is among the nearest.
* ``unknown``: neither; ``best`` is still the nearest candidate, if any, for the curious.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog
from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.errors import PhotoclusterError
from photocluster.index.store import FaceIndex, SyncReport, catalog_encoder, sync_index
from photocluster.ingest.analyse import analyse_file
from photocluster.ingest.encoder import EncoderParams, FaceEncoder
from photocluster.people.thresholds import (
    ATTACH_MARGIN,
    ATTACH_NEIGHBOURS,
    ATTACH_SHARE,
    FIND_KNOWN_DISTANCE,
    FIND_KNOWN_SHARE,
    PAIR_DISTANCE,
    SPREAD_RATIO,
)

# Nearest faces looked at for candidate people (at least; more when more are asked for).
CANDIDATE_FACES = 50
# A person's centroid is taken over at most this many of their faces.
CENTROID_FACES = 5_000


@dataclass
class Neighbour:
    face_id: int
    distance: float
    photo: str
    box: tuple[int, int, int, int]
    person_id: int | None
    person: str | None


@dataclass
class Candidate:
    person_id: int
    name: str | None
    hidden: bool
    centroid_distance: float
    nearest_face: float
    faces: int = 0  # the person's faces the centroid and spread are taken over
    spread: float = 0.0  # median distance of those faces to their centroid (0: one face)
    near_faces: int = 0  # how many of the face's ATTACH_NEIGHBOURS nearest catalog faces are theirs


@dataclass
class FaceAnswer:
    box: tuple[int, int, int, int]
    verdict: str  # known | probably | unknown
    best: Candidate | None
    runner_up: Candidate | None
    neighbours: list[Neighbour] = field(default_factory=list)


@dataclass
class FindResult:
    photo: str
    width: int | None
    height: int | None
    faces: list[FaceAnswer]
    index: SyncReport


def own_spread(c: Candidate) -> float:
    """How far a new photo of this person may typically sit from their centroid: the median
    distance of their faces to it, corrected for each face being part of that centroid (a face
    left out sits ``n / (n - 1)`` times further from the mean of the others; a genuine face
    looked up then sits at 1.0x this, measured). 0 for a person of one face: no spread known."""
    return c.spread * c.faces / (c.faces - 1) if c.faces > 1 else 0.0


def neighbour_share(c: Candidate) -> float:
    """Share of the face's ``ATTACH_NEIGHBOURS`` nearest catalog faces that are this person's,
    out of as many as the person has (a person of three faces can hold at most three)."""
    return c.near_faces / max(1, min(ATTACH_NEIGHBOURS, c.faces))


def verdict(best: Candidate | None, runner_up: Candidate | None) -> str:
    """known / probably / unknown: relative to the person's own spread and the face's own
    neighbourhood, under one global cap (see the module docstring)."""
    if best is None:
        return "unknown"
    d = best.centroid_distance
    if best.faces < 2:  # no spread to compare with: at most a probable match to that one face
        near_one = d <= PAIR_DISTANCE and best.near_faces >= 1
        return "probably" if near_one else "unknown"
    if d > FIND_KNOWN_DISTANCE or d > SPREAD_RATIO * own_spread(best):
        return "unknown"
    margin = (runner_up.centroid_distance if runner_up else np.inf) - d
    share = neighbour_share(best)
    if margin >= ATTACH_MARGIN and share >= FIND_KNOWN_SHARE:
        return "known"
    return "probably" if share >= ATTACH_SHARE else "unknown"


def catalog_params(catalog: Catalog) -> EncoderParams:
    """The encoder settings most of the catalog's faces were found with (the defaults for a
    catalog without faces): a photo looked up is encoded as the catalog's photos were."""
    with catalog.session() as session:
        return EncoderParams.from_key(catalog_encoder(session))


def find_in_photo(
    catalog: Catalog,
    cache_dir: Path,
    path: str,
    encoder: FaceEncoder,
    params: EncoderParams,
    *,
    top: int = 5,
) -> FindResult:
    """Faces of ``path`` matched against the catalog (which is not changed, bar its index)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PhotoclusterError(f"Cannot read {path}: {exc.strerror}") from exc
    # Exact search over the saved vectors: a few queries do not pay for loading the graph.
    index, report = sync_index(catalog, cache_dir, graph=False)
    if index.size == 0:
        raise PhotoclusterError(
            "The catalog has no faces to compare with: run `photocluster scan DIR` first."
        )
    photo = analyse_file(path, st.st_size, st.st_mtime_ns, encoder, params)
    if photo.status == PhotoStatus.FAILED:
        raise PhotoclusterError(f"Cannot read {path}: {photo.error}")
    if not photo.faces:
        raise PhotoclusterError(f"No face found in {path}.")
    queries = np.stack([f.embedding for f in photo.faces])
    answers = match_faces(catalog, index, queries, [f.box for f in photo.faces], top=top)
    return FindResult(path, photo.width, photo.height, answers, report)


def match_faces(
    catalog: Catalog,
    index: FaceIndex,
    queries: np.ndarray,
    boxes: list[tuple[int, int, int, int]],
    *,
    top: int = 5,
) -> list[FaceAnswer]:
    """Best person, verdict and nearest catalog faces for each query embedding."""
    queries = np.asarray(queries, dtype=np.float32).reshape(len(boxes), -1)
    dist, ids = index.search(queries, max(top, CANDIDATE_FACES), exact=True)
    with catalog.session() as s:
        info = _face_info(s, {int(i) for i in ids.ravel() if i >= 0})
        return [
            _answer(s, box, q, d, i, info, top)
            for box, q, d, i in zip(boxes, queries, dist, ids, strict=True)
        ]


def _face_info(s: Session, ids: set[int]) -> dict[int, Neighbour]:
    rows = s.execute(
        select(
            Face.id,
            Photo.path,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Face.person_id,
            Person.name,
        )
        .join(Photo, Photo.id == Face.photo_id)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Face.id.in_(sorted(ids)))
    ).all()
    return {
        int(r[0]): Neighbour(int(r[0]), 0.0, r[1], (r[2], r[3], r[4], r[5]), r[6], r[7])
        for r in rows
    }


def _answer(
    s: Session,
    box: tuple[int, int, int, int],
    query: np.ndarray,
    dist: np.ndarray,
    ids: np.ndarray,
    info: dict[int, Neighbour],
    top: int,
) -> FaceAnswer:
    neighbours: list[Neighbour] = []
    nearest: dict[int, float] = {}
    near: Counter[int] = Counter()  # owners of the ATTACH_NEIGHBOURS nearest faces
    seen = 0
    for d, i in zip(dist.tolist(), ids.tolist(), strict=True):
        n = info.get(int(i))
        if n is None:  # deleted since the index was synced
            continue
        if seen < ATTACH_NEIGHBOURS and n.person_id is not None:
            near[n.person_id] += 1
        seen += 1
        if n.person_id is not None:
            nearest.setdefault(n.person_id, d)
        if len(neighbours) < top:
            neighbours.append(Neighbour(n.face_id, d, n.photo, n.box, n.person_id, n.person))
    candidates = []
    for pid, closest in nearest.items():
        person = s.get(Person, pid)
        if person is None:
            continue
        blobs = s.scalars(
            select(Face.embedding).where(Face.person_id == pid).limit(CENTROID_FACES)
        ).all()
        x = blobs_to_matrix(list(blobs)).astype(np.float64)
        centroid = x.mean(axis=0)
        candidates.append(
            Candidate(
                pid,
                person.name,
                bool(person.hidden),
                float(np.linalg.norm(query.astype(np.float64) - centroid)),
                closest,
                len(x),
                float(np.median(np.linalg.norm(x - centroid, axis=1))),
                near[pid],
            )
        )
    candidates.sort(key=lambda c: (c.centroid_distance, c.person_id))
    best = candidates[0] if candidates else None
    runner = candidates[1] if len(candidates) > 1 else None
    return FaceAnswer(box, verdict(best, runner), best, runner, neighbours)
