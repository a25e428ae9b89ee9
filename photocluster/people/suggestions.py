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
wrong); every face the user rejected from a named person is a wrong lookup too, and so is every
face of a person nobody named yet, looked up as a stranger (the sample is drawn from all faces
in people, so named and not-yet-named faces weigh as they do in the library). Those last are
the library's own look-alikes: where people of one population crowd a named person, a face as
near that person as they are is often one of them, and the score says so (lfw-dev with 10, 20,
40 or 60 of its people named at random, six draws each, ``bench/suggestion_calibration.py
--part-way``: of suggestions scored 0.7-0.85, 65 % of 68 were right without them, 86 % of 22
with them; 0.5-0.7: 54 % of 144, 63 % of 82). So a score is measured on the very library and
names it is used for, never on a benchmark, and every name and rejection sharpens it. Measured
with ``bench/simulated_user.py`` (README): the faces asked about are harder than the named
faces the fit sees (clustering already placed the easy ones), so scores err low (on
../shared/faces, of suggestions scored 0.5-0.7 all were right; part-way through naming there,
more so); correcting the fit's share of right answers to the one among the faces asked about
(EM, Saerens et al. 2002) was tried and made scores unreliable on both sets. With too few names
to measure (fewer than ``MIN_NAMED`` named people with two faces or more), candidates are
ranked without a score and the note says so.

With a projection learned from the user's decisions in use (:mod:`photocluster.people.projection`:
only when it measurably helps on the user's own held-out names), every distance above is
measured in the projected space; the calibration is fitted there too.
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import in_chunks
from photocluster.catalog.models import Face, Person, Photo, Rejection
from photocluster.index.ann import EXACT_KNN, KNN_EF_SEARCH, hnsw_search_from, new_hnsw
from photocluster.index.store import FaceIndex
from photocluster.people.find import Candidate as FindCandidate
from photocluster.people.projection import Projection, current_projection
from photocluster.people.thresholds import ATTACH_NEIGHBOURS
from photocluster.people.unassigned import (
    CatalogFaces,
    FaceGroup,
    UnassignedFace,
    UnassignedReview,
    group_faces,
    last_clustered_face,
    read_faces,
    review_unassigned,
    unclustered_faces,
)

SMALL_PERSON_FACES = 10  # unnamed people up to this size are suggested as a whole
CANDIDATES = 3  # named people ranked per face or small person
LIKELY = 0.5  # from this score a suggestion is offered as that person; below: probably nobody
# From this score a face is still shown as maybe that person (`name`'s second sheet, where Enter
# accepts nothing): a chance of one in five that it is them (bench/simulated_user.py --min-score).
MAYBE = 0.2
MIN_NAMED = 2  # named people with 2+ faces needed to measure scores
REFIT_SHARE = 0.1  # Suggester: fit again once what the fit learnt from changed by this share
TRAIN_FACES = 4_000  # named faces looked up to fit the calibration (a fixed sample)
MEMBER_FACES = 1_000  # faces of a person searched for the one nearest a face
LOO_FACES = 500  # people larger than this are not recomputed without the face left out
STRANGER_NEIGHBOURS = 64  # nearest faces searched to find 5 that are not a face's own person's

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


@dataclass
class _Library:
    """The catalog's faces in the space used, and the named people as arrays (position ``i``
    in ``pids``): centroid, spread (median distance of their faces to it), size."""

    ids: np.ndarray  # face ids, ascending
    owner: np.ndarray  # person id per face, -1: none
    photo: np.ndarray  # photo id per face
    y: np.ndarray  # embeddings in the space used (float32: a million faces in 0.5 GB)
    names: dict[int, str]  # named, not hidden people with faces
    pids: np.ndarray  # their ids, ascending
    cents: np.ndarray  # P x dims
    spread: np.ndarray  # P
    size: np.ndarray  # P
    members: list[np.ndarray]  # up to MEMBER_FACES faces of each
    rejected: dict[int, set[int]]  # face row -> people it was rejected from
    in_photo: dict[int, set[int]]  # photo id -> people with a face in it

    @functools.cached_property
    def typical(self) -> float:
        """The spread of a typical named person (for a person of one face, who has none)."""
        ok = (self.size > 1) & (self.spread > 0)
        return float(np.median(self.spread[ok])) if ok.any() else 0.3

    def nearest_face(self, y: np.ndarray, i: int) -> float:
        """Distance from ``y`` to person ``i``'s nearest face (the face itself left out)."""
        d = np.linalg.norm(self.members[i] - y, axis=1)
        d = d[d > 1e-9]
        return float(d.min()) if len(d) else 1.0

    def centroid_distances(self, rows: np.ndarray) -> np.ndarray:
        """len(rows) x P distances to every named person's mean face."""
        out = np.empty((len(rows), len(self.pids)))
        cc = (self.cents**2).sum(axis=1)
        for start in range(0, len(rows), 4096):
            q = self.y[rows[start : start + 4096]]
            d2 = (q**2).sum(axis=1)[:, None] + cc[None, :] - 2.0 * (q @ self.cents.T)
            out[start : start + len(q)] = np.sqrt(np.maximum(d2, 0.0))
        return out


def suggest(
    session: Session,
    *,
    learned: bool = True,
    transform: Transform | None = None,
    space: str = "raw",
    index: FaceIndex | None = None,
    faces: CatalogFaces | None = None,
) -> Suggestions:
    """Suggestions for every clustered face in no person and every small unnamed person, most
    likely first (see the module docstring). ``learned``: measure in the projection learned
    from the user's decisions when one is in use (:func:`projection.current_projection`; this
    never relearns). ``transform`` maps raw embeddings to another space to measure in instead;
    ``space`` names it. ``index``: the face index (`index.store.sync_index`), whose graph, when
    it has one, finds each face's nearest faces in the raw embedding without building one.
    ``faces``: the catalog's faces already read (`unassigned.read_faces`), else read here."""
    if transform is None and learned:
        proj = current_projection(session)
        if proj is not None:
            transform, space = proj.transform, f"learned ({proj.method})"
    out = Suggestions(space=space, unclustered=unclustered_faces(session))
    last = last_clustered_face(session)
    lib = _load(session, transform, faces)
    if last is None or lib is None:
        out.note = "No clustered faces yet: run `photocluster cluster` first."
        return out
    if not lib.names:
        out.note = "Nobody is named yet: name people first (`photocluster name`)."
        return out
    subjects = _subjects(session, lib, last)
    knn = _Neighbours(lib.y, lib.ids, index if transform is None else None)
    model = _fit(lib, knn)
    looked = _evidence(lib, knn, subjects)
    if model is None:
        out.note = (
            f"Too few names to measure a score (fewer than {MIN_NAMED} named people with two "
            "faces or more): candidates are ranked by distance only."
        )
    else:
        out.calibration = model.calibration
    for (rows, unnamed), cands in zip(subjects, looked, strict=True):
        out.items.append(_suggestion(lib, model, rows, unnamed, cands))
    out.items.sort(key=lambda s: (s.best is None, -s.score, s.person_id is None, s.face_ids))
    return out


class Suggester:
    """Suggestions for small unnamed people one at a time (`name`'s queue of people): what
    :func:`suggest` says of that person, without weighing every face in no person each time.

    The faces (in the space :func:`suggest` measures in) and their nearest-face search are
    loaded once: answers change people, not faces. :meth:`renew`, after answers, reads again
    who owns each face, the named people and the rejections (so the candidates and their
    evidence are always today's), and fits the calibration again only when the faces of named
    people and the rejections from them changed by ``REFIT_SHARE`` of what it was fitted on (or
    there was no fit): a fit costs seconds on a large library (at 100 000 faces with 1 000
    named people, 4 s), and one name more barely moves it. Faces changed since (a scan), or
    another learned projection in use, load everything again."""

    def __init__(
        self, session: Session, *, learned: bool = True, index: FaceIndex | None = None
    ) -> None:
        self._learned, self._index = learned, index
        self._load(session)

    @property
    def calibrated(self) -> bool:
        """Scores are measured (enough names to fit the calibration)."""
        return self.model is not None

    def _projection(self, session: Session) -> Projection | None:
        return current_projection(session) if self._learned else None

    def _load(self, session: Session) -> None:
        proj = self._projection(session)
        self.projection = proj.id if proj is not None else None
        self.model: _Model | None = None
        self.lib = _load(session, proj.transform if proj is not None else None)
        if self.lib is None:
            return
        self.knn = _Neighbours(self.lib.y, self.lib.ids, self._index if proj is None else None)
        self._read_unnamed(session)
        self._refit()

    def _read_unnamed(self, session: Session) -> None:
        self.unnamed = set(
            session.scalars(
                select(Person.id).where(Person.name.is_(None), Person.hidden.is_(False))
            )
        )

    def _basis(self) -> tuple[np.ndarray, int]:
        """What a fit learns from: the named person of each face (-2: a person nobody named,
        -1: none), and how many rejections from named people there are."""
        assert self.lib is not None
        lib = self.lib
        named = np.where(lib.owner >= 0, -2, -1)
        theirs = np.isin(lib.owner, lib.pids)
        named[theirs] = lib.owner[theirs]
        rejections = sum(len(people & lib.names.keys()) for people in lib.rejected.values())
        return named, rejections

    def _refit(self) -> None:
        assert self.lib is not None
        self.model = _fit(self.lib, self.knn)
        self._fitted = self._basis()

    def renew(self, session: Session) -> None:
        """Catch up with the decisions taken since (see the class docstring)."""
        proj = self._projection(session)
        ids, owner = _owners(session)
        lib = self.lib
        if (
            lib is None
            or (proj.id if proj is not None else None) != self.projection
            or not np.array_equal(ids, lib.ids)
        ):
            self._load(session)
            return
        self.lib = _library(session, ids, owner, lib.photo, lib.y)
        self._read_unnamed(session)
        named, rejections = self._basis()
        then, then_rejections = self._fitted
        changed = int(np.sum(named != then)) + abs(rejections - then_rejections)
        basis = int(np.sum(then != -1)) + then_rejections
        if self.model is None or changed >= REFIT_SHARE * max(basis, 1):
            self._refit()

    def person(self, person_id: int) -> Suggestion | None:
        """The suggestion for the small unnamed person ``person_id``, as :func:`suggest` makes
        it; None when that is not a small unnamed, not hidden person (as of the last read)."""
        lib = self.lib
        if lib is None or person_id not in self.unnamed:
            return None
        rows = np.flatnonzero(lib.owner == person_id)
        if not 0 < len(rows) <= SMALL_PERSON_FACES:
            return None
        (cands,) = _evidence(lib, self.knn, [(rows, person_id)])
        return _suggestion(lib, self.model, rows, person_id, cands)


def _suggestion(
    lib: _Library, model: _Model | None, rows: np.ndarray, unnamed: int | None, cands: list[_Row]
) -> Suggestion:
    """The subject of faces ``rows`` (a small unnamed person, or one face) with its candidates
    (from :func:`_evidence`) scored by ``model`` (None: unscored) and ranked."""
    scores = model.score([c.features for c in cands]) if model is not None else [None] * len(cands)
    ranked = sorted(
        (
            SuggestedPerson(c.pid, lib.names[c.pid], s, c.distance, c.relative, c.share)
            for c, s in zip(cands, scores, strict=True)
        ),
        key=lambda p: (-(p.score or 0.0), p.relative, p.person_id),
    )
    return Suggestion(tuple(int(lib.ids[r]) for r in rows), unnamed, tuple(ranked))


def _owners(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """Face ids and each face's person (-1: none), in face id order: what answers change."""
    rows = session.execute(select(Face.id, Face.person_id).order_by(Face.id)).all()
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    owner = np.array([-1 if r[1] is None else r[1] for r in rows], dtype=np.int64)
    return ids, owner


def _load(
    session: Session, transform: Transform | None, faces: CatalogFaces | None = None
) -> _Library | None:
    """The library in the space of ``transform``, of ``faces`` when they were read already."""
    if faces is None:
        faces = read_faces(session)
    if faces is None:
        return None
    y = np.asarray(transform(faces.x) if transform is not None else faces.x, dtype=np.float32)
    return _library(session, faces.ids, faces.owner, faces.photo, y)


def _library(
    session: Session, ids: np.ndarray, owner: np.ndarray, photo: np.ndarray, y: np.ndarray
) -> _Library:
    """The named people (not hidden, with faces) of faces ``ids`` owned as ``owner`` say, in
    the space of ``y``, with the rejections and who is in each photo."""
    named = {
        int(p.id): str(p.name)
        for p in session.execute(select(Person.id, Person.name, Person.hidden))
        if p.name and not p.hidden
    }
    order = np.argsort(owner, kind="stable")
    people, starts = np.unique(owner[order], return_index=True)
    ends = np.r_[starts[1:], len(order)]
    pids, cents, spread, size, members = [], [], [], [], []
    for pid, lo, hi in zip(people.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if pid not in named:
            continue
        faces = y[order[lo:hi]]
        c = faces.mean(axis=0, dtype=np.float64)
        pids.append(pid)
        cents.append(c)
        spread.append(float(np.median(np.linalg.norm(faces - c, axis=1))))
        size.append(hi - lo)
        members.append(faces[:MEMBER_FACES])
    row_of = {int(f): i for i, f in enumerate(ids.tolist())}
    rejected: dict[int, set[int]] = defaultdict(set)
    for face_id, person_id in session.execute(select(Rejection.face_id, Rejection.person_id)):
        if int(face_id) in row_of:
            rejected[row_of[int(face_id)]].add(int(person_id))
    in_photo: dict[int, set[int]] = defaultdict(set)
    for r in np.flatnonzero(owner >= 0).tolist():
        in_photo[int(photo[r])].add(int(owner[r]))
    dims = y.shape[1]
    return _Library(
        ids,
        owner,
        photo,
        y,
        {p: named[p] for p in pids},
        np.array(pids, dtype=np.int64),
        np.array(cents) if cents else np.zeros((0, dims)),
        np.array(spread),
        np.array(size, dtype=np.int64),
        members,
        rejected,
        in_photo,
    )


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
    """Nearest faces in the space used: the face index's HNSW graph when it is given, holds every
    face and the space is the raw embedding (no graph to build: what a large library has, from
    `scan`); else exact up to ``ann.EXACT_KNN`` faces, else an HNSW graph built here. Graphs are
    searched from each face's own row (as `cluster` builds its k-NN graph)."""

    def __init__(self, y: np.ndarray, ids: np.ndarray, index: FaceIndex | None = None) -> None:
        import faiss  # heavy import, only when there is something to suggest

        self.data = np.ascontiguousarray(y, dtype=np.float32)
        self.ids = ids
        self.graph: FaceIndex | None = None
        if index is not None and index.hnsw is not None:
            alive = np.flatnonzero(index.ids >= 0)
            by_id = alive[np.argsort(index.ids[alive], kind="stable")]
            at = np.minimum(np.searchsorted(index.ids[by_id], ids), max(len(by_id) - 1, 0))
            if len(by_id) and np.array_equal(index.ids[by_id[at]], ids):
                self.graph, self.own_row = index, by_id[at]
                return
        self.exact = len(self.data) <= EXACT_KNN
        if self.exact:
            self.index = faiss.IndexFlatL2(self.data.shape[1])
            self.index.add(self.data)
        else:
            self.index = new_hnsw(self.data, KNN_EF_SEARCH)

    def search(self, rows: np.ndarray, k: int) -> np.ndarray:
        """Rows of each row's ``k`` nearest other faces (-1: none): the face itself and exact
        copies of it left out."""
        want = min(k + 1, len(self.data))
        out = np.full((len(rows), want), -1, dtype=np.int64)
        for start in range(0, len(rows), 16_384):
            block = rows[start : start + 16_384]
            q = self.data[block]
            if self.graph is not None:
                d, face = self.graph._search_hnsw(q, want, self.own_row[block])
                at = np.minimum(np.searchsorted(self.ids, face), len(self.ids) - 1)
                found = np.where((face >= 0) & (self.ids[at] == face), at, -1)
                found[(d <= 1e-6) | (found == block[:, None])] = -1
                out[start : start + len(block)] = found
                continue
            if self.exact:
                d2, found = self.index.search(q, want)
            else:
                d2, found = hnsw_search_from(self.index, q, block, want)
            found[(d2 <= 1e-12) | (found == block[:, None])] = -1
            out[start : start + len(block)] = found
        return out

    def owners(self, rows: np.ndarray, owner: np.ndarray, k: int) -> list[np.ndarray]:
        """Owners of each row's ``k`` nearest other faces (the face itself and exact copies of
        it left out)."""
        return [owner[f[f >= 0]][:k] for f in self.search(rows, k)]


@dataclass
class _Row:
    pid: int
    distance: float
    relative: float
    share: float
    features: np.ndarray


def _top(lib: _Library, d: np.ndarray) -> list[tuple[int, float, float]]:
    """The ``CANDIDATES`` nearest people by ``d`` (inf: not a candidate), each as (position,
    distance, distance to the nearest *other* candidate; +0.5 when there is none)."""
    ok = np.flatnonzero(np.isfinite(d))
    if not len(ok):
        return []
    k = min(CANDIDATES + 1, len(ok))
    near = ok[np.argpartition(d[ok], k - 1)[:k]] if len(ok) > k else ok
    near = near[np.lexsort((lib.pids[near], d[near]))][:k]
    first = float(d[near[0]])
    second = float(d[near[1]]) if len(near) > 1 else first + 0.5
    return [
        (int(i), float(d[i]), second if j == 0 else first) for j, i in enumerate(near[:CANDIDATES])
    ]


def _features(
    lib: _Library,
    top: list[tuple[int, float, float]],
    near: np.ndarray,
    yv: np.ndarray,
    own: tuple[int, float, int] | None = None,
) -> list[_Row]:
    """Evidence rows for candidates ``top`` (from :func:`_top`) given the owners ``near`` of
    the face's nearest faces; ``own``: (position, spread, size) of the face's own person with
    the face left out."""
    typical = lib.typical
    rows = []
    for i, d, runner in top:
        spread, size = (
            (own[1], own[2]) if own is not None and own[0] == i else (lib.spread[i], lib.size[i])
        )
        s = spread if size > 1 and spread > 0 else typical
        pid = int(lib.pids[i])
        share = float(np.sum(near == pid)) / max(1, min(ATTACH_NEIGHBOURS, int(size)))
        rel = d / s
        f = np.array([rel, d, runner - d, share, lib.nearest_face(yv, i)])
        rows.append(_Row(pid, d, rel, share, f))
    return rows


def _banned(lib: _Library, rows: np.ndarray) -> np.ndarray:
    """Positions of people who are no candidate for these faces: a person one of them was
    rejected from, or who already has a face in one of their photos (one face per photo)."""
    people: set[int] = set()
    for r in rows.tolist():
        people |= lib.rejected.get(int(r), set())
        people |= lib.in_photo.get(int(lib.photo[r]), set())
    return np.flatnonzero(np.isin(lib.pids, list(people)))


def _evidence(
    lib: _Library, knn: _Neighbours, subjects: list[tuple[np.ndarray, int | None]]
) -> list[list[_Row]]:
    """Candidates of each subject with evidence (a small person: the median over its faces)."""
    if not subjects:
        return []
    rows = np.concatenate([r for r, _u in subjects])
    dist = lib.centroid_distances(rows)
    found = knn.search(rows, ATTACH_NEIGHBOURS + SMALL_PERSON_FACES)
    out: list[list[_Row]] = []
    at = 0
    for face_rows, _unnamed in subjects:
        n = len(face_rows)
        d = dist[at : at + n].copy()
        d[:, _banned(lib, face_rows)] = np.inf
        block = found[at : at + n]
        ok = (block >= 0) & ~np.isin(block, face_rows)
        near = [lib.owner[b[m]][:ATTACH_NEIGHBOURS] for b, m in zip(block, ok, strict=True)]
        at += n
        top = _top(lib, np.median(d, axis=0))
        each = [
            _features(
                lib, [(i, float(d[j, i]), _runner(d[j], i)) for i, _d, _r in top], near[j], lib.y[r]
            )
            for j, r in enumerate(face_rows.tolist())
        ]
        if n == 1:
            out.append(each[0])
            continue
        merged = []
        for k, (i, _d, _r) in enumerate(top):
            f = np.median(np.stack([e[k].features for e in each]), axis=0)
            merged.append(_Row(int(lib.pids[i]), float(f[1]), float(f[0]), float(f[3]), f))
        out.append(merged)
    return out


def _runner(d: np.ndarray, i: int) -> float:
    """Distance to the nearest candidate other than position ``i`` (+0.5 beyond it if none)."""
    others = np.delete(d, i)
    others = others[np.isfinite(others)]
    return float(others.min()) if len(others) else float(d[i]) + 0.5


class _Model:
    """Logistic regression of 'right candidate' on the evidence."""

    def __init__(self, coef: np.ndarray, intercept: float, cal: Calibration) -> None:
        self.coef, self.intercept, self.calibration = coef, intercept, cal

    def score(self, feats: list[np.ndarray]) -> list[float | None]:
        if not feats:
            return []
        z = np.stack(feats) @ self.coef + self.intercept
        return [float(v) for v in 1.0 / (1.0 + np.exp(-z))]


def _rejected_lookups(lib: _Library, knn: _Neighbours) -> list[np.ndarray]:
    """Evidence of each face the user rejected from a named person, against that person: the
    user's own word that it is wrong (up to ``TRAIN_FACES`` of them, the newest rows last)."""
    pos = {int(p): i for i, p in enumerate(lib.pids.tolist())}
    pairs = [(r, pos[p]) for r, ps in sorted(lib.rejected.items()) for p in sorted(ps) if p in pos]
    pairs = pairs[-TRAIN_FACES:]
    if not pairs:
        return []
    rows = np.array([r for r, _i in pairs], dtype=np.int64)
    near = knn.owners(rows, lib.owner, ATTACH_NEIGHBOURS)
    dist = lib.centroid_distances(rows)
    out = []
    for j, ((row, i), nbrs) in enumerate(zip(pairs, near, strict=True)):
        top = [(i, float(dist[j, i]), _runner(dist[j], i))]
        out.append(_features(lib, top, nbrs, lib.y[row])[0].features)
    return out


def _fit(lib: _Library, knn: _Neighbours) -> _Model | None:
    """The calibration model fitted on the library's named faces (module docstring), or None
    when too few people are named to measure."""
    if int(np.sum(lib.size >= 2)) < MIN_NAMED:
        return None
    pos = {int(p): i for i, p in enumerate(lib.pids.tolist())}
    rows = np.flatnonzero(lib.owner >= 0)
    rng = np.random.default_rng(0)  # a fixed sample: the same catalog gives the same scores
    if len(rows) > TRAIN_FACES:
        rows = np.sort(rng.choice(rows, TRAIN_FACES, replace=False))
    near = knn.owners(rows, lib.owner, STRANGER_NEIGHBOURS)
    dist = lib.centroid_distances(rows)
    feats: list[np.ndarray] = []
    labels: list[int] = []
    for j, (row, wide) in enumerate(zip(rows.tolist(), near, strict=True)):
        own_pid = int(lib.owner[row])
        own = pos.get(own_pid)
        yv = lib.y[row]
        d = dist[j].copy()
        # As a stranger would be: its person never named, its mates not around.
        gone = d.copy()
        if own is not None:
            gone[own] = np.inf
        alone = wide[wide != own_pid][:ATTACH_NEIGHBOURS]
        for r in _features(lib, _top(lib, gone), alone, yv):
            feats.append(r.features)
            labels.append(0)
        if own is None:
            continue  # a face of a person not named: a stranger to every named person
        # As if the face were new: left out of its person.
        n = int(lib.size[own])
        if n < 2:
            continue
        c = (lib.cents[own] * n - yv) / (n - 1)
        spread = float(lib.spread[own])
        if n <= LOO_FACES:
            members = lib.y[lib.owner == own_pid]
            members = members[np.any(members != yv, axis=1)] if n > 2 else members[:1]
            spread = float(np.median(np.linalg.norm(members - c, axis=1)))
        d[own] = float(np.linalg.norm(yv - c))
        for r in _features(lib, _top(lib, d), wide[:ATTACH_NEIGHBOURS], yv, (own, spread, n - 1)):
            feats.append(r.features)
            labels.append(int(r.pid == own_pid))
    rejected = _rejected_lookups(lib, knn)
    feats += rejected
    labels += [0] * len(rejected)
    y = np.array(labels)
    if len(set(labels)) < 2:
        return None
    from sklearn.linear_model import LogisticRegression  # heavy import, only to fit

    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.stack(feats), y)
    coef = model.coef_[0].astype(np.float64)
    intercept = float(model.intercept_[0])
    cal = Calibration(
        len(y),
        len(lib.names),
        int(np.isin(lib.owner, lib.pids).sum()),
        float(y.mean()),
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
                cand = _as_candidate(f, best)
                faces.append(replace(f, verdict="probably", best=cand, score=best.score))
            elif f.best is not None and f.best.name is not None and not f.best.hidden:
                cand = _as_candidate(f, best) if best.score >= MAYBE else f.best
                faces.append(replace(f, verdict="unknown", best=cand, score=best.score))
            else:
                faces.append(f)
    return UnassignedReview(group_faces(faces), review.unclustered)


def _as_candidate(face: UnassignedFace, best: SuggestedPerson) -> FindCandidate:
    """The suggested person as `find` weighed them for this face (its nearest or runner-up
    person), or with the suggestion's distance when `find` did not weigh them."""
    for c in (face.best, face.runner_up):
        if c is not None and c.person_id == best.person_id:
            return c
    return FindCandidate(best.person_id, best.name, False, best.distance, best.distance)


def suggested_group(review: UnassignedReview) -> UnassignedReview:
    """``review`` (from :func:`with_scores`) with the faces offered as a named person by their
    score gathered into two groups, most likely first, each face offered as its own best: the
    likely ones (``LIKELY`` or more), then the maybes (``MAYBE`` or more). One sheet answers many
    suggestions (`name`). Other groups, and their other faces, stay as they are."""
    likely: list[UnassignedFace] = []
    maybe: list[UnassignedFace] = []
    rest: list[FaceGroup] = []
    for g in review.groups:
        named = g.person_id is not None and g.name is not None and not g.hidden
        keep: list[UnassignedFace] = []
        for f in g.faces:
            if not named or f.score is None:
                keep.append(f)
            elif g.likely and f.score >= LIKELY:
                likely.append(f)
            elif not g.likely and f.score >= MAYBE:
                maybe.append(f)
            else:
                keep.append(f)
        if keep:
            rest.append(g if len(keep) == len(g.faces) else replace(g, faces=keep))

    def order(f: UnassignedFace) -> tuple[float, int]:
        return (-(f.score or 0.0), f.face_id)

    groups = [
        FaceGroup(None, None, False, likely_, sorted(faces, key=order), suggested=kind)
        for kind, likely_, faces in (("likely", True, likely), ("maybe", False, maybe))
        if faces
    ]
    return UnassignedReview([*groups, *rest], review.unclustered)


def review_with_suggestions(
    session: Session,
    *,
    exclude: Collection[int] = (),
    learned: bool = True,
    index: FaceIndex | None = None,
) -> UnassignedReview:
    """:func:`review_unassigned` with the scored suggestions (:func:`with_scores`); the faces
    are read from the catalog once for both."""
    if last_clustered_face(session) is None:  # nothing weighed: no faces to read
        return review_unassigned(session, exclude=exclude)
    faces = read_faces(session)
    review = review_unassigned(session, exclude=exclude, faces=faces)
    if not review.groups:
        return review
    return with_scores(review, suggest(session, learned=learned, index=index, faces=faces))


SCHEMA = "photocluster.suggestions/1"


def suggestions_schema() -> dict[str, Any]:
    """The JSON Schema of :func:`as_json`'s output (``suggestions_schema.json`` beside this)."""
    text = resources.files("photocluster.people").joinpath("suggestions_schema.json").read_text()
    return dict(json.loads(text))


def shown_items(result: Suggestions, min_score: float) -> list[Suggestion]:
    """The suggestions whose best score is at least ``min_score`` (all of them at 0)."""
    return [s for s in result.items if s.score >= min_score] if min_score > 0 else result.items


def face_places(session: Session, face_ids: Collection[int]) -> dict[int, tuple[str, list[int]]]:
    """Each face's photo path and box (left, top, right, bottom)."""
    where: dict[int, tuple[str, list[int]]] = {}
    for chunk in in_chunks(sorted(face_ids)):
        for r in session.execute(
            select(Face.id, Photo.path, Face.left, Face.top, Face.right, Face.bottom)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.id.in_(chunk))
        ):
            where[int(r[0])] = (str(r[1]), [int(r[2]), int(r[3]), int(r[4]), int(r[5])])
    return where


def as_json(session: Session, result: Suggestions, min_score: float = 0.0) -> dict[str, Any]:
    """``result`` as the documented JSON (schema :data:`SCHEMA`): the suggestions whose best
    score is at least ``min_score`` (all of them at 0; unscored ones only then), with each
    face's photo and box."""
    shown = shown_items(result, min_score)
    where = face_places(session, {f for s in shown for f in s.face_ids})
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
    "MAYBE",
    "SCHEMA",
    "SMALL_PERSON_FACES",
    "Calibration",
    "SuggestedPerson",
    "Suggester",
    "Suggestion",
    "Suggestions",
    "as_json",
    "suggest",
    "suggestions_schema",
]
