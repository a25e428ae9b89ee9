"""`find PHOTO`: who is in a photo that is not in the catalog? Returns data; the CLI prints it.

Each face of the photo is searched in the face index (:mod:`photocluster.face_index`). The
people owning the nearest catalog faces are the candidates; each is scored by the distance from
the face to the person's centroid (their mean embedding) and to their nearest face. The verdict
uses thresholds measured for this open-set question, where the face may be a stranger's
(``thresholds.py``, ``bench/bench_find.py verdicts``):

* ``known``: within ``FIND_KNOWN_DISTANCE`` (0.50) of the person's centroid and at least
  ``ATTACH_MARGIN`` nearer than to the runner-up (91.7 % of in-catalog faces, the person right
  for 99.4 % of them; 0.7 % of strangers);
* ``probably``: within ``ATTACH_DISTANCE`` (0.54) of the centroid, or one of the person's faces
  within ``FIND_PROBABLY_FACE`` (0.51);
* ``unknown``: neither; ``best`` is still the nearest candidate, if any, for the curious.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.analyse import analyse_file
from photocluster.db import Catalog, blobs_to_matrix
from photocluster.encoder import EncoderParams, FaceEncoder
from photocluster.errors import PhotoclusterError
from photocluster.face_index import FaceIndex, SyncReport, sync_index
from photocluster.models import Face, Person, Photo
from photocluster.thresholds import (
    ATTACH_DISTANCE,
    ATTACH_MARGIN,
    FIND_KNOWN_DISTANCE,
    FIND_PROBABLY_FACE,
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


def verdict(best: Candidate | None, runner_up: Candidate | None) -> str:
    if best is None:
        return "unknown"
    margin = (runner_up.centroid_distance if runner_up else np.inf) - best.centroid_distance
    if best.centroid_distance <= FIND_KNOWN_DISTANCE and margin >= ATTACH_MARGIN:
        return "known"
    if best.centroid_distance <= ATTACH_DISTANCE or best.nearest_face <= FIND_PROBABLY_FACE:
        return "probably"
    return "unknown"


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
    if photo.status == "failed":
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
    for d, i in zip(dist.tolist(), ids.tolist(), strict=True):
        n = info.get(int(i))
        if n is None:  # deleted since the index was synced
            continue
        if n.person_id is not None:
            nearest.setdefault(n.person_id, d)
        if len(neighbours) < top:
            neighbours.append(Neighbour(n.face_id, d, n.photo, n.box, n.person_id, n.person))
    candidates = []
    for pid, near in nearest.items():
        person = s.get(Person, pid)
        if person is None:
            continue
        blobs = s.scalars(
            select(Face.embedding).where(Face.person_id == pid).limit(CENTROID_FACES)
        ).all()
        centroid = blobs_to_matrix(list(blobs)).astype(np.float64).mean(axis=0)
        candidates.append(
            Candidate(
                pid,
                person.name,
                bool(person.hidden),
                float(np.linalg.norm(query.astype(np.float64) - centroid)),
                near,
            )
        )
    candidates.sort(key=lambda c: (c.centroid_distance, c.person_id))
    best = candidates[0] if candidates else None
    runner = candidates[1] if len(candidates) > 1 else None
    return FaceAnswer(box, verdict(best, runner), best, runner, neighbours)
