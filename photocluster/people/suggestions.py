"""Suggestions: for each face in no person and each small unnamed person, the named people it may
be, ranked, each with a calibrated score (the chance that it is that person), or "probably nobody
you named". Read only; returns data (`suggestions`, `name`'s queue, the review page).

**Evidence.** For a face and a named candidate person (named, not hidden, never rejected by that
face): its distance to the person's mean face relative to the person's own spread, the distance
itself, the gap to the next nearest named person, and the share of the face's
``ATTACH_NEIGHBOURS`` nearest faces that are theirs: the evidence `cluster` and `find` already
weigh, relative to the person and to the face's neighbourhood. A small unnamed person is weighed
by the median of its faces' evidence (its own faces left out of the neighbourhoods).

**Calibration on the user's own names.** The score is a logistic regression of "it is that
person" on the evidence, fitted on the library's named faces, each looked up twice: once as if
it were new (left out of its person: its person should come first), and once as a stranger
would be (its person never named and its own faces out of its neighbourhood: every candidate is
wrong); every face the user rejected from a named person is a wrong lookup too. So a score is
measured on the very library and names it is used for, never on a benchmark, and every name and
rejection sharpens it. Measured with ``bench/simulated_user.py`` (README): the faces asked about
are harder than the named faces the fit sees (clustering already placed the easy ones), so
scores err low (on ../shared/faces, of suggestions scored 0.5-0.7 all were right); correcting
the fit's share of right answers to the one among the faces asked about (EM, Saerens et al.
2002) was tried and made scores unreliable on both sets. With too few names to measure (fewer
than ``MIN_NAMED`` named people with two faces or more), candidates are ranked without a score
and the note says so.

With a projection learned from the user's decisions in use (:mod:`photocluster.people.learn`),
every distance above is measured in the projected space; the calibration is fitted there too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from functools import partial
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import in_chunks
from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Person, Photo, Rejection
from photocluster.people.find import Candidate as FindCandidate
from photocluster.people.thresholds import ATTACH_NEIGHBOURS
from photocluster.people.unassigned import (
    FaceGroup,
    UnassignedFace,
    UnassignedReview,
    group_faces,
    last_clustered_face,
    review_unassigned,
    unclustered_faces,
)

SMALL_PERSON_FACES = 10  # unnamed people up to this size are suggested as a whole
CANDIDATES = 3  # named people ranked per face or small person
LIKELY = 0.5  # from this score a suggestion is offered as that person; below: probably nobody
MIN_NAMED = 2  # named people with 2+ faces needed to measure scores
TRAIN_FACES = 4_000  # named faces looked up to fit the calibration (a fixed sample)
MEMBER_FACES = 1_000  # faces of a person searched for the one nearest a face
LOO_FACES = 500  # people larger than this are not recomputed without the face left out
STRANGER_NEIGHBOURS = 64  # nearest faces searched to find 5 that are not a face's own person's
FEATURES = (
    "relative distance",
    "distance",
    "gap to next",
    "neighbour share",
    "nearest face",
)

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SuggestedPerson:
    person_id: int
    name: str
    score: float | None  # the chance it is this person; None: too few names to measure
    distance: float  # to the person's mean face (median over a small person's faces)
    relative: float  # that distance over the person's own spread
    share: float  # of the face's nearest faces, the share that are theirs


@dataclass(frozen=True)
class Suggestion:
    """One face in no person (``person_id`` None) or one small unnamed person."""

    face_ids: tuple[int, ...]
    person_id: int | None  # the small unnamed person, if this is one
    candidates: tuple[SuggestedPerson, ...]  # best first

    @property
    def best(self) -> SuggestedPerson | None:
        return self.candidates[0] if self.candidates else None

    @property
    def nobody(self) -> bool:
        """Probably nobody you named: no candidate, or the best is unlikely."""
        b = self.best
        return b is None or (b.score if b.score is not None else 0.0) < LIKELY

    @property
    def score(self) -> float:
        b = self.best
        return b.score if b is not None and b.score is not None else 0.0


@dataclass(frozen=True)
class Calibration:
    examples: int  # (face, candidate) lookups the model was fitted on
    named_people: int
    named_faces: int
    prior: float  # share of right candidates among those lookups
    coef: tuple[float, ...]
    intercept: float


@dataclass
class Suggestions:
    items: list[Suggestion] = field(default_factory=list)
    calibration: Calibration | None = None  # None: too few names, no scores
    space: str = "raw"  # the embedding the distances are in: raw, or the learned projection
    unclustered: int = 0  # faces no clustering has seen yet (not suggested)
    note: str | None = None  # why there are no scores, or no suggestions at all

    def likely(self, min_score: float = LIKELY) -> list[Suggestion]:
        return [s for s in self.items if s.best is not None and s.score >= min_score]


@dataclass
class _Library:
    ids: np.ndarray  # face ids, ascending
    owner: np.ndarray  # person id per face, -1: none
    y: np.ndarray  # embeddings in the space used (float64)
    names: dict[int, str]  # named, not hidden people
    rejected: dict[int, set[int]]  # face row -> people it was rejected from
    centroid: dict[int, np.ndarray]
    spread: dict[int, float]  # median distance of their faces to the centroid
    size: dict[int, int]
    photo: np.ndarray  # photo id per face
    members: dict[int, np.ndarray] = field(default_factory=dict)  # up to MEMBER_FACES each

    def nearest_face(self, y: np.ndarray, pid: int) -> float:
        """Distance from ``y`` to the person's nearest face (the face itself left out)."""
        d = np.linalg.norm(self.members[pid] - y, axis=1)
        d = d[d > 1e-9]
        return float(d.min()) if len(d) else 1.0


def suggest(
    session: Session, *, transform: Transform | None = None, space: str = "raw"
) -> Suggestions:
    """Suggestions for every clustered face in no person and every small unnamed person, most
    likely first (see the module docstring). ``transform`` maps raw embeddings to the space to
    measure in (a learned projection); ``space`` names it."""
    out = Suggestions(space=space, unclustered=unclustered_faces(session))
    last = last_clustered_face(session)
    lib = _load(session, transform)
    if last is None or lib is None:
        out.note = "No clustered faces yet: run `photocluster cluster` first."
        return out
    subjects = _subjects(session, lib, last)
    if not lib.names:
        out.note = "Nobody is named yet: name people first (`photocluster name`)."
        return out
    knn = _Neighbours(lib.y)
    model = _fit(lib, knn)
    rows: list[tuple[tuple[int, ...], int | None, list[_Row]]] = []
    for face_rows, unnamed in subjects:
        rows.append(
            (tuple(int(lib.ids[r]) for r in face_rows), unnamed, _evidence(lib, knn, face_rows))
        )
    if model is None:
        out.note = (
            f"Too few names to measure a score (fewer than {MIN_NAMED} named people with two "
            "faces or more): candidates are ranked by distance only."
        )
    else:
        out.calibration = model.calibration
    for face_ids, unnamed, cands in rows:
        scores = (
            model.score([c.features for c in cands]) if model is not None else [None] * len(cands)
        )
        ranked = sorted(
            (
                SuggestedPerson(c.pid, lib.names[c.pid], s, c.distance, c.relative, c.share)
                for c, s in zip(cands, scores, strict=True)
            ),
            key=lambda p: (-(p.score or 0.0), p.relative, p.person_id),
        )
        out.items.append(Suggestion(face_ids, unnamed, tuple(ranked)))
    out.items.sort(key=lambda s: (s.best is None, -s.score, s.person_id is None, s.face_ids))
    return out


def _load(session: Session, transform: Transform | None) -> _Library | None:
    rows = session.execute(
        select(Face.id, Face.person_id, Face.embedding, Face.photo_id).order_by(Face.id)
    ).all()
    if not rows:
        return None
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    photo = np.array([r[3] for r in rows], dtype=np.int64)
    owner = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64)
    x = blobs_to_matrix([r[2] for r in rows])
    y = np.asarray(transform(x) if transform is not None else x, dtype=np.float64)
    names = {
        int(p.id): str(p.name)
        for p in session.execute(select(Person.id, Person.name, Person.hidden))
        if p.name and not p.hidden
    }
    row_of = {int(f): i for i, f in enumerate(ids.tolist())}
    rejected: dict[int, set[int]] = defaultdict(set)
    for face_id, person_id in session.execute(select(Rejection.face_id, Rejection.person_id)):
        if int(face_id) in row_of:
            rejected[row_of[int(face_id)]].add(int(person_id))
    lib = _Library(ids, owner, y, names, rejected, {}, {}, {}, photo)
    for pid in names:
        members = y[owner == pid]
        if len(members) == 0:
            continue
        c = members.mean(axis=0)
        lib.centroid[pid] = c
        lib.spread[pid] = float(np.median(np.linalg.norm(members - c, axis=1)))
        lib.size[pid] = len(members)
        lib.members[pid] = members[:MEMBER_FACES]
    lib.names = {pid: n for pid, n in names.items() if pid in lib.centroid}
    return lib


def _subjects(session: Session, lib: _Library, last: int) -> list[tuple[np.ndarray, int | None]]:
    """Rows of each face in no person (clustered), and of each small unnamed person."""
    hidden = {int(p) for p in session.scalars(select(Person.id).where(Person.hidden.is_(True)))}
    out: list[tuple[np.ndarray, int | None]] = [
        (np.array([r]), None) for r in np.flatnonzero((lib.owner < 0) & (lib.ids <= last)).tolist()
    ]
    people, counts = np.unique(lib.owner[lib.owner >= 0], return_counts=True)
    for pid, n in zip(people.tolist(), counts.tolist(), strict=True):
        if pid in lib.names or pid in hidden or n > SMALL_PERSON_FACES:
            continue
        out.append((np.flatnonzero(lib.owner == pid), int(pid)))
    return out


class _Neighbours:
    """Exact nearest faces in the space used (faiss, flat)."""

    def __init__(self, y: np.ndarray) -> None:
        import faiss  # heavy import, only when there is something to suggest

        self.data = np.ascontiguousarray(y, dtype=np.float32)
        self.index = faiss.IndexFlatL2(self.data.shape[1])
        self.index.add(self.data)

    def owners(
        self, rows: np.ndarray, owner: np.ndarray, k: int, skip: set[int]
    ) -> list[np.ndarray]:
        """Owners of each row's ``k`` nearest other faces (rows in ``skip`` and the face itself
        left out; exact copies of the face too)."""
        want = min(k + 1 + len(skip), len(self.data))
        d2, found = self.index.search(self.data[rows], want)
        out = []
        for row, d_row, f_row in zip(rows.tolist(), d2, found, strict=True):
            keep = [
                int(owner[f])
                for d, f in zip(d_row.tolist(), f_row.tolist(), strict=True)
                if f >= 0 and f != row and f not in skip and d > 1e-12
            ][:k]
            out.append(np.array(keep, dtype=np.int64))
        return out


@dataclass
class _Row:
    pid: int
    distance: float
    relative: float
    share: float
    features: np.ndarray


def _features(
    d: dict[int, float],
    spread: dict[int, float],
    size: dict[int, int],
    near: np.ndarray,
    top: list[int],
    closest: Callable[[int], float],
) -> list[_Row]:
    """Evidence rows for candidates ``top`` (best first) given distances ``d`` to every
    eligible person's centroid and the owners ``near`` of the face's nearest faces."""
    typical = float(np.median(list(spread.values()))) if spread else 0.3
    rows = []
    for pid in top:
        others = [v for q, v in d.items() if q != pid]
        gap = (min(others) - d[pid]) if others else 0.5
        s = spread[pid] if size[pid] > 1 and spread[pid] > 0 else typical
        share = float(np.sum(near == pid)) / max(1, min(ATTACH_NEIGHBOURS, size[pid]))
        rel = d[pid] / s
        f = np.array([rel, d[pid], gap, share, closest(pid)])
        rows.append(_Row(pid, d[pid], rel, share, f))
    return rows


def _top(d: dict[int, float]) -> list[int]:
    return sorted(d, key=lambda q: (d[q], q))[:CANDIDATES]


def _evidence(lib: _Library, knn: _Neighbours, rows: np.ndarray) -> list[_Row]:
    """Candidates of one face (or of a small person's faces: median evidence) with evidence."""
    banned = set().union(*(lib.rejected.get(int(r), set()) for r in rows.tolist()))
    # One face per photo: a person who already has a face in the photo is not a candidate.
    banned |= {int(p) for p in lib.owner[np.isin(lib.photo, lib.photo[rows])].tolist() if p >= 0}
    pids = [p for p in lib.names if p not in banned]
    if not pids:
        return []
    cents = np.stack([lib.centroid[p] for p in pids])
    dist = np.linalg.norm(lib.y[rows][:, None, :] - cents[None, :, :], axis=2)  # faces x people
    near = knn.owners(
        rows, lib.owner, ATTACH_NEIGHBOURS, set(rows.tolist()) if len(rows) > 1 else set()
    )
    per_face = []
    for i in range(len(rows)):
        d = {p: float(v) for p, v in zip(pids, dist[i].tolist(), strict=True)}
        per_face.append((d, near[i]))
    med = {p: float(v) for p, v in zip(pids, np.median(dist, axis=0).tolist(), strict=True)}
    top = _top(med)
    if len(rows) == 1:
        yv = lib.y[rows[0]]
        return _features(
            per_face[0][0],
            lib.spread,
            lib.size,
            per_face[0][1],
            top,
            partial(lib.nearest_face, yv),
        )
    each = [
        _features(d, lib.spread, lib.size, n, top, partial(lib.nearest_face, lib.y[r]))
        for (d, n), r in zip(per_face, rows.tolist(), strict=True)
    ]
    out = []
    for j, pid in enumerate(top):
        f = np.median(np.stack([e[j].features for e in each]), axis=0)
        out.append(_Row(pid, float(f[1]), float(f[0]), float(f[3]), f))
    return out


class _Model:
    """Logistic regression of 'right candidate' on the evidence, with its prior rescaled."""

    def __init__(self, coef: np.ndarray, intercept: float, cal: Calibration) -> None:
        self.coef, self.intercept, self.calibration = coef, intercept, cal

    def score(self, feats: list[np.ndarray]) -> list[float | None]:
        if not feats:
            return []
        z = np.stack(feats) @ self.coef + self.intercept
        return [float(v) for v in 1.0 / (1.0 + np.exp(-z))]


def _rejected_lookups(
    lib: _Library, knn: _Neighbours, pids: list[int], cents: np.ndarray
) -> list[np.ndarray]:
    """Evidence of each face the user rejected from a named person, against that person: the
    user's own word that it is wrong (up to ``TRAIN_FACES`` of them, the newest rows last)."""
    pairs = [(r, p) for r, ps in sorted(lib.rejected.items()) for p in sorted(ps) if p in lib.names]
    pairs = pairs[-TRAIN_FACES:]
    if not pairs:
        return []
    rows = np.array([r for r, _p in pairs], dtype=np.int64)
    near = knn.owners(rows, lib.owner, ATTACH_NEIGHBOURS, set())
    out = []
    for (row, pid), nbrs in zip(pairs, near, strict=True):
        yv = lib.y[row]
        dist = dict(zip(pids, np.linalg.norm(cents - yv, axis=1).tolist(), strict=True))
        looked = _features(dist, lib.spread, lib.size, nbrs, [pid], partial(lib.nearest_face, yv))
        out.append(looked[0].features)
    return out


def _fit(lib: _Library, knn: _Neighbours) -> _Model | None:
    """The calibration model fitted on the library's named faces (module docstring), or None
    when too few people are named to measure."""
    if sum(1 for p in lib.names if lib.size[p] >= 2) < MIN_NAMED:
        return None
    named_rows = np.flatnonzero(np.isin(lib.owner, list(lib.names)))
    rng = np.random.default_rng(0)  # a fixed sample: the same catalog gives the same scores
    if len(named_rows) > TRAIN_FACES:
        named_rows = np.sort(rng.choice(named_rows, TRAIN_FACES, replace=False))
    near = knn.owners(named_rows, lib.owner, STRANGER_NEIGHBOURS, set())
    pids = list(lib.names)
    cents = np.stack([lib.centroid[p] for p in pids])
    feats: list[np.ndarray] = []
    labels: list[int] = []
    for row, wide in zip(named_rows.tolist(), near, strict=True):
        own = int(lib.owner[row])
        nbrs = wide[:ATTACH_NEIGHBOURS]
        alone = wide[wide != own][:ATTACH_NEIGHBOURS]  # as a stranger: no mates around
        yv = lib.y[row]
        dist = dict(zip(pids, np.linalg.norm(cents - yv, axis=1).tolist(), strict=True))

        closest = partial(lib.nearest_face, yv)
        # As if its person had never been named: every candidate is wrong.
        gone = {p: v for p, v in dist.items() if p != own}
        if gone:
            for r in _features(gone, lib.spread, lib.size, alone, _top(gone), closest):
                feats.append(r.features)
                labels.append(0)
        # As if the face were new: left out of its person.
        n = lib.size[own]
        if n < 2:
            continue
        spread, size = dict(lib.spread), dict(lib.size)
        c = (lib.centroid[own] * n - yv) / (n - 1)
        size[own] = n - 1
        if n <= LOO_FACES:
            members = lib.y[(lib.owner == own)]
            members = members[np.any(members != yv, axis=1)] if n > 2 else members[:1]
            spread[own] = float(np.median(np.linalg.norm(members - c, axis=1)))
        dist[own] = float(np.linalg.norm(yv - c))
        for r in _features(dist, spread, size, nbrs, _top(dist), closest):
            feats.append(r.features)
            labels.append(int(r.pid == own))
    rejected = _rejected_lookups(lib, knn, pids, cents)
    feats += rejected
    labels += [0] * len(rejected)
    y = np.array(labels)
    if len(set(labels)) < 2:
        return None
    from sklearn.linear_model import LogisticRegression  # heavy import, only to fit

    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.stack(feats), y)
    coef = model.coef_[0].astype(np.float64)
    intercept = float(model.intercept_[0])
    prior = float(y.mean())
    cal = Calibration(
        len(y),
        len(lib.names),
        int(np.isin(lib.owner, list(lib.names)).sum()),
        prior,
        tuple(float(v) for v in coef),
        intercept,
    )
    return _Model(coef, intercept, cal)


def with_scores(review: UnassignedReview, result: Suggestions) -> UnassignedReview:
    """``review`` (faces in no person, grouped as `find` weighs them) regrouped by the scored
    suggestions: a face whose best named candidate scores ``LIKELY`` or more is offered as that
    person, with its score; a face nearest a named person that scores below it is probably
    nobody you named. Faces nearest an unnamed or hidden person keep `find`'s verdict. Unchanged
    when there are no scores (too few names)."""
    if result.calibration is None:
        return review
    by_face = {s.face_ids[0]: s for s in result.items if s.person_id is None}
    faces: list[UnassignedFace] = []
    for group in review.groups:
        for f in group.faces:
            s = by_face.get(f.face_id)
            best = s.best if s is not None else None
            if best is None or best.score is None:
                faces.append(f)
            elif best.score >= LIKELY:
                cand = next(
                    (
                        c
                        for c in (f.best, f.runner_up)
                        if c is not None and c.person_id == best.person_id
                    ),
                    FindCandidate(best.person_id, best.name, False, best.distance, best.distance),
                )
                faces.append(replace(f, verdict="probably", best=cand, score=best.score))
            elif f.best is not None and f.best.name is not None and not f.best.hidden:
                faces.append(replace(f, verdict="unknown", score=best.score))
            else:
                faces.append(f)
    return UnassignedReview(group_faces(faces), review.unclustered)


def suggested_group(review: UnassignedReview) -> UnassignedReview:
    """``review`` (from :func:`with_scores`) with every face offered as a named person by its
    score gathered into one group, most likely first, each face offered as its own best: one
    sheet answers many suggestions (`name`). Other groups stay as they are."""
    scored = [
        g for g in review.groups if g.likely and g.score is not None and g.name and not g.hidden
    ]
    if not scored:
        return review
    faces = sorted(
        (f for g in scored for f in g.faces),
        key=lambda f: (-(f.score or 0.0), f.face_id),
    )
    rest = [g for g in review.groups if not any(g is h for h in scored)]
    group = FaceGroup(None, None, False, True, faces, suggested=True)
    return UnassignedReview([group, *rest], review.unclustered)


def review_with_suggestions(
    session: Session, *, exclude: Collection[int] = (), transform: Transform | None = None
) -> UnassignedReview:
    """:func:`review_unassigned` with the scored suggestions (:func:`with_scores`)."""
    review = review_unassigned(session, exclude=exclude)
    if not review.groups:
        return review
    return with_scores(review, suggest(session, transform=transform))


SCHEMA = "photocluster.suggestions/1"


def suggestions_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`as_json`'s output (``suggestions_schema.json`` beside this)."""
    text = resources.files("photocluster.people").joinpath("suggestions_schema.json").read_text()
    return dict(json.loads(text))


def as_json(session: Session, result: Suggestions, min_score: float = 0.0) -> dict[str, Any]:
    """``result`` as the documented JSON (schema :data:`SCHEMA`): the suggestions whose best
    score is at least ``min_score`` (all of them at 0; unscored ones only then), with each
    face's photo and box."""
    shown = [s for s in result.items if s.score >= min_score] if min_score > 0 else result.items
    ids = sorted({f for s in shown for f in s.face_ids})
    where: dict[int, tuple[str, list[int]]] = {}
    for chunk in in_chunks(ids):
        for r in session.execute(
            select(Face.id, Photo.path, Face.left, Face.top, Face.right, Face.bottom)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id.in_(chunk))
        ):
            where[int(r[0])] = (str(r[1]), [int(r[2]), int(r[3]), int(r[4]), int(r[5])])
    cal = result.calibration
    return {
        "schema": SCHEMA,
        "space": result.space,
        "calibration": None
        if cal is None
        else {
            "examples": cal.examples,
            "named_people": cal.named_people,
            "named_faces": cal.named_faces,
        },
        "note": result.note,
        "unclustered_faces": result.unclustered,
        "min_score": min_score,
        "left_out": len(result.items) - len(shown),
        "suggestions": [
            {
                "kind": "face" if s.person_id is None else "person",
                "person_id": s.person_id,
                "faces": [
                    {
                        "id": f,
                        "photo": where[f][0],
                        "box": dict(
                            zip(("left", "top", "right", "bottom"), where[f][1], strict=True)
                        ),
                    }
                    for f in s.face_ids
                    if f in where
                ],
                "nobody": s.nobody,
                "candidates": [
                    {
                        "person_id": c.person_id,
                        "name": c.name,
                        "score": None if c.score is None else round(c.score, 4),
                        "distance": round(c.distance, 4),
                        "relative_distance": round(c.relative, 4),
                        "neighbour_share": round(c.share, 4),
                    }
                    for c in s.candidates
                ],
            }
            for s in shown
        ],
    }


__all__ = [
    "CANDIDATES",
    "LIKELY",
    "SCHEMA",
    "SMALL_PERSON_FACES",
    "Calibration",
    "SuggestedPerson",
    "Suggestion",
    "Suggestions",
    "as_json",
    "suggest",
    "suggestions_schema",
]
