"""Faces in no person, made reviewable: each with its best candidate person and a verdict,
grouped by that person. Read only; returns data (`name`'s last section, `show unassigned`).

A face is in no person when clustering found nobody it clearly belongs to (often someone seen in
one photo only), when a human rejected it, or when the one-face-per-photo rule detached it. Each
such face is weighed exactly as `find` weighs a face of a new photo
(:func:`photocluster.people.find.verdict`): the people owning its ``CANDIDATE_FACES`` nearest
catalog faces are the candidates, each scored by the distance to their mean face against their own
spread, the margin to the runner-up and how many of the face's ``ATTACH_NEIGHBOURS`` nearest faces
are theirs. ``known`` / ``probably``: the face is offered as that person; ``unknown``: it is
probably nobody you named, and says so (its nearest person is still given, for the curious). A
person who rejected the face is never its candidate. Hidden people are candidates (a face of a
stranger you hid can join them), and say they are hidden.

Faces the last clustering has not seen yet (scanned since) are left out and counted: `cluster`
places them first.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Meta, Person, Photo, Rejection
from photocluster.people.find import CANDIDATE_FACES, Candidate, own_spread, verdict
from photocluster.people.thresholds import ATTACH_NEIGHBOURS, SPREAD_RATIO

# The meta key `cluster` writes after each run (photocluster.people.assign.META_LAST_FACE).
_LAST_FACE = "cluster.last_face_id"


@dataclass(frozen=True)
class UnassignedFace:
    face_id: int
    photo: str
    box: tuple[int, int, int, int]
    verdict: str  # known | probably | unknown, as `find` says it
    best: Candidate | None  # nearest person by their mean face (None: no person near at all)
    runner_up: Candidate | None
    score: float | None = None  # the suggestion's score for ``best`` (people.suggestions), if any


@dataclass(frozen=True)
class Evidence:
    """Why a group is (or is not) its nearest person, in `find`'s terms (medians over faces)."""

    known: int  # faces whose verdict is known
    probably: int
    unknown: int
    distance: float  # to the person's mean face
    limit: float | None  # SPREAD_RATIO x the person's own spread; None: one face, no spread
    near_faces: int  # of the face's ATTACH_NEIGHBOURS nearest faces, how many are theirs
    of: int  # out of (the person may have fewer faces than ATTACH_NEIGHBOURS)


@dataclass(frozen=True)
class FaceGroup:
    """Unassigned faces with the same nearest person and the same answer about them."""

    person_id: int | None  # their nearest person; None: nobody near at all
    name: str | None
    hidden: bool
    likely: bool  # the verdict is known/probably: offer them as this person
    faces: list[UnassignedFace]  # most likely first (nearest that person's mean face)
    # Scored suggestions of several named people, "likely" or "maybe": each face is offered as
    # its own ``best`` (person_id is None then); see people.suggestions.suggested_group.
    suggested: str = ""

    @property
    def score(self) -> float | None:
        """The median suggestion score of the faces, when they have scores."""
        scores = [f.score for f in self.faces if f.score is not None]
        return float(np.median(scores)) if scores else None

    @property
    def label(self) -> str:
        """Who the group is, in words: 'Ada Lovelace', 'person 7', 'Rex (hidden)', 'nobody'."""
        if self.suggested:
            return "who each probably is" if self.suggested == "likely" else "who each may be"
        if self.person_id is None:
            return "nobody"
        who = self.name or f"person {self.person_id}"
        return who + (" (hidden)" if self.hidden else "")

    def evidence(self) -> Evidence | None:
        """The medians behind the verdicts of these faces; None when nobody is near."""
        best = [f.best for f in self.faces if f.best is not None]
        if not best:
            return None
        verdicts = [f.verdict for f in self.faces]
        spread = own_spread(best[0])
        return Evidence(
            known=verdicts.count("known"),
            probably=verdicts.count("probably"),
            unknown=verdicts.count("unknown"),
            distance=float(np.median([c.centroid_distance for c in best])),
            limit=SPREAD_RATIO * spread if spread > 0 else None,
            near_faces=int(np.median([c.near_faces for c in best])),  # rounded down
            of=min(ATTACH_NEIGHBOURS, best[0].faces),
        )


@dataclass(frozen=True)
class CatalogFaces:
    """Every face of the catalog as arrays, in face id order (row ``i`` is face ``ids[i]``):
    read once for whoever weighs the faces in no person (:func:`review_unassigned`, and
    `people.suggestions` after it)."""

    ids: np.ndarray
    owner: np.ndarray  # person id per face, -1: none
    photo: np.ndarray  # photo id per face
    x: np.ndarray  # raw embeddings, float32


def read_faces(session: Session) -> CatalogFaces | None:
    """Every face of the catalog (:class:`CatalogFaces`); None when there is none."""
    rows = session.execute(
        select(Face.id, Face.person_id, Face.embedding, Face.photo_id).order_by(Face.id)
    ).all()
    if not rows:
        return None
    return CatalogFaces(
        np.array([r[0] for r in rows], dtype=np.int64),
        np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64),
        np.array([r[3] for r in rows], dtype=np.int64),
        blobs_to_matrix([r[2] for r in rows]),
    )


@dataclass
class UnassignedReview:
    groups: list[FaceGroup] = field(default_factory=list)
    unclustered: int = 0  # faces no clustering has seen yet (not reviewed here)

    @property
    def faces(self) -> int:
        return sum(len(g.faces) for g in self.groups)


def last_clustered_face(session: Session) -> int | None:
    """The newest face id the last clustering saw; None when faces were never clustered.

    A catalog whose people were made otherwise (before this was recorded, by import-xmp)
    counts as clustered: its faces have been placed by someone.
    """
    row = session.get(Meta, _LAST_FACE)
    if row is not None:
        return int(row.value)
    if session.scalar(select(func.count()).select_from(Person)):
        return int(session.scalar(select(func.max(Face.id))) or 0)
    return None


def unclustered_faces(session: Session) -> int:
    """Faces the last clustering has not seen (all of them when it never ran)."""
    last = last_clustered_face(session)
    query = select(func.count()).select_from(Face)
    if last is not None:
        query = query.where(Face.id > last)
    return int(session.scalar(query) or 0)


def review_unassigned(
    session: Session, *, exclude: Collection[int] = (), faces: CatalogFaces | None = None
) -> UnassignedReview:
    """Every clustered face in no person (but ``exclude``), weighed and grouped: groups offered
    as a person first (largest first), then the faces probably nobody you named, by their nearest
    person, then faces with nobody near at all. ``faces``: the catalog's faces already read
    (:func:`read_faces`), else read here."""
    last = last_clustered_face(session)
    review = UnassignedReview(unclustered=unclustered_faces(session))
    if last is None:
        return review
    if faces is None:
        faces = read_faces(session)
    if faces is None:
        return review
    ids, owner, x = faces.ids, faces.owner, faces.x
    skip = set(exclude)
    todo = np.flatnonzero((owner < 0) & (ids <= last))
    todo = np.array([i for i in todo.tolist() if int(ids[i]) not in skip], dtype=np.int64)
    if len(todo) == 0:
        return review
    people = {
        int(p.id): (p.name, bool(p.hidden))
        for p in session.execute(select(Person.id, Person.name, Person.hidden))
    }
    stats = _person_stats(x, owner)
    rejected: dict[int, set[int]] = defaultdict(set)
    for face_id, person_id in session.execute(select(Rejection.face_id, Rejection.person_id)):
        rejected[int(face_id)].add(int(person_id))
    where = {
        int(r[0]): (str(r[1]), (int(r[2]), int(r[3]), int(r[4]), int(r[5])))
        for r in session.execute(
            select(Face.id, Photo.path, Face.left, Face.top, Face.right, Face.bottom)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.person_id.is_(None))
        )
    }
    dist, nbr = _nearest(x, todo, CANDIDATE_FACES)
    weighed: list[UnassignedFace] = []
    for row, d_row, n_row in zip(todo.tolist(), dist, nbr, strict=True):
        fid = int(ids[row])
        best, runner = _candidates(
            x[row], d_row, n_row, owner, stats, people, rejected.get(fid, set())
        )
        photo, box = where[fid]
        weighed.append(UnassignedFace(fid, photo, box, verdict(best, runner), best, runner))
    review.groups = group_faces(weighed)
    return review


def group_faces(faces: list[UnassignedFace]) -> list[FaceGroup]:
    """Faces grouped by (nearest person, likely or not); see :func:`review_unassigned`."""
    by_key: dict[tuple[int | None, bool], list[UnassignedFace]] = defaultdict(list)
    for f in faces:
        pid = f.best.person_id if f.best is not None else None
        by_key[(pid, f.verdict != "unknown")].append(f)
    groups = []
    for (pid, likely), members in by_key.items():
        members.sort(
            key=lambda f: (f.best.centroid_distance if f.best is not None else 0.0, f.face_id)
        )
        best = members[0].best
        groups.append(
            FaceGroup(
                pid,
                best.name if best is not None else None,
                bool(best.hidden) if best is not None else False,
                likely,
                members,
            )
        )
    groups.sort(
        key=lambda g: (
            0 if g.likely else 1 if g.person_id is not None else 2,
            g.hidden,
            -len(g.faces),
            g.person_id or 0,
        )
    )
    return groups


@dataclass
class _Stats:
    centroid: dict[int, np.ndarray]
    spread: dict[int, float]  # median distance of their faces to their centroid
    size: dict[int, int]


def _person_stats(x: np.ndarray, owner: np.ndarray) -> _Stats:
    """Each person's mean face, spread and size, as `find` measures them."""
    stats = _Stats({}, {}, {})
    assigned = np.flatnonzero(owner >= 0)
    if len(assigned) == 0:
        return stats
    order = assigned[np.argsort(owner[assigned], kind="stable")]
    people, starts = np.unique(owner[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    for pid, lo, hi in zip(people.tolist(), starts.tolist(), ends.tolist(), strict=True):
        members = x[order[lo:hi]].astype(np.float64)
        centroid = members.mean(axis=0)
        stats.centroid[pid] = centroid
        stats.spread[pid] = float(np.median(np.linalg.norm(members - centroid, axis=1)))
        stats.size[pid] = hi - lo
    return stats


def _nearest(x: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and rows of each of ``rows``' ``k`` nearest other faces (exact; -1 padding)."""
    import faiss  # heavy import, only when there is something to review

    data = np.ascontiguousarray(x, dtype=np.float32)
    index = faiss.IndexFlatL2(data.shape[1])
    index.add(data)
    want = min(k + 1, len(data))
    d2, found = index.search(np.ascontiguousarray(data[rows]), want)
    return np.sqrt(np.maximum(d2, 0.0)), found


def _candidates(
    query: np.ndarray,
    dist: np.ndarray,
    rows: np.ndarray,
    owner: np.ndarray,
    stats: _Stats,
    people: dict[int, tuple[str | None, bool]],
    rejected: set[int],
) -> tuple[Candidate | None, Candidate | None]:
    """Best and runner-up person for one face, from its nearest faces (``find``'s evidence)."""
    near: Counter[int] = Counter()  # owners of the ATTACH_NEIGHBOURS nearest faces
    nearest: dict[int, float] = {}
    seen = 0
    for d, r in zip(dist.tolist(), rows.tolist(), strict=True):
        if r < 0 or d <= 1e-6:  # padding, the face itself, or an exact copy of it
            continue
        pid = int(owner[r])
        if seen < ATTACH_NEIGHBOURS and pid >= 0:
            near[pid] += 1
        seen += 1
        if pid >= 0:
            nearest.setdefault(pid, d)
    q = query.astype(np.float64)
    candidates = [
        Candidate(
            pid,
            people.get(pid, (None, False))[0],
            people.get(pid, (None, False))[1],
            float(np.linalg.norm(q - stats.centroid[pid])),
            closest,
            stats.size[pid],
            stats.spread[pid],
            near[pid],
        )
        for pid, closest in nearest.items()
        if pid not in rejected and pid in stats.centroid
    ]
    candidates.sort(key=lambda c: (c.centroid_distance, c.person_id))
    best = candidates[0] if candidates else None
    runner = candidates[1] if len(candidates) > 1 else None
    return best, runner


__all__ = [
    "CatalogFaces",
    "Evidence",
    "FaceGroup",
    "UnassignedFace",
    "UnassignedReview",
    "group_faces",
    "last_clustered_face",
    "read_faces",
    "review_unassigned",
    "unclustered_faces",
]
