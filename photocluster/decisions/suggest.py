"""The name suggested for an unnamed person: the named person whose typical faces are as alike to
this person's as their own photos are (the merge step's test), never one who rejected these
faces; for a small person (up to ``SMALL_PERSON_FACES`` faces), the scored suggestion of
:mod:`photocluster.people.suggestions` when there are enough names to score (:func:`offer`)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.embeddings import EMBEDDING_DIM, blobs_to_matrix
from photocluster.catalog.models import Face, Person, Rejection
from photocluster.decisions.prompter import Suggestion
from photocluster.people import thresholds
from photocluster.people.clustering import own_pairs
from photocluster.people.suggestions import MAYBE, Suggester

SUGGEST_FACES = 32  # typical faces of the unnamed person compared with named people
INDEX_FACES = 64  # typical faces of each named person they are compared with


class NamedIndex:
    """Faces of named, not-hidden people (up to ``INDEX_FACES`` most typical each)."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            select(Face.person_id, Person.name, Face.embedding)
            .join(Person, Person.id == Face.person_id)
            .where(Person.name.is_not(None), Person.hidden.is_(False))
            .order_by(Face.person_id, Face.id)
        ).all()
        self.names = {int(r.person_id): str(r.name) for r in rows}
        blobs: dict[int, list[bytes]] = {}
        for r in rows:
            blobs.setdefault(int(r.person_id), []).append(r.embedding)
        blocks: list[np.ndarray] = []
        people: list[int] = []
        self._own: dict[int, float] = {}  # own pair distances, measured when first needed
        for pid, person_blobs in blobs.items():
            x = blobs_to_matrix(person_blobs).astype(np.float64)
            if len(x) > INDEX_FACES:  # keep the most typical: bounded work per person
                order = np.argsort(np.linalg.norm(x - x.mean(axis=0), axis=1), kind="stable")
                x = x[order[:INDEX_FACES]]
            blocks.append(x)
            people.append(pid)
        self.people = np.array(people, dtype=np.int64)
        sizes = np.array([len(b) for b in blocks], dtype=np.int64)
        self.starts = np.r_[0, np.cumsum(sizes)[:-1]] if len(sizes) else sizes
        self.ends = self.starts + sizes
        self.x = np.vstack(blocks) if blocks else np.zeros((0, EMBEDDING_DIM))
        self.sq = (self.x**2).sum(axis=1)

    def nearest(self, faces: np.ndarray, exclude: Collection[int] = ()) -> tuple[int, float] | None:
        """(person id, median face-to-face distance) of the nearest named person, if any.

        The median over all pairs (these faces x that person's faces) is a typical pair
        distance, so it compares with the face-pair threshold ``SAME_PERSON`` as calibrated
        (a nearest-face minimum would shrink as a person gains faces and invite strangers).
        """
        if len(self.people) == 0 or len(faces) == 0:
            return None
        u = faces.astype(np.float64)
        d2 = (u**2).sum(axis=1)[:, None] + self.sq[None, :] - 2.0 * (u @ self.x.T)
        dist = np.sqrt(np.maximum(d2, 0.0))
        best: tuple[int, float] | None = None
        for pid, lo, hi in zip(self.people.tolist(), self.starts, self.ends, strict=True):
            if pid in exclude:
                continue
            score = float(np.median(dist[:, lo:hi]))
            if best is None or score < best[1]:
                best = (pid, score)
        return best

    def faces_of(self, person_id: int) -> np.ndarray:
        """The (most typical) faces held for a named person."""
        k = int(np.flatnonzero(self.people == person_id)[0])
        return self.x[self.starts[k] : self.ends[k]]

    def own(self, session: Session, person_id: int) -> float:
        """How far apart a named person's own photos are (all of them, not only the typical
        ones held here): read once, when that person is first suggested."""
        if person_id not in self._own:
            blobs = session.scalars(
                select(Face.embedding).where(Face.person_id == person_id).order_by(Face.id)
            ).all()
            self._own[person_id] = _own_pairs(blobs_to_matrix(list(blobs)).astype(np.float64))
        return self._own[person_id]


def _own_pairs(x: np.ndarray) -> float:
    """How far apart a person's own photos are: the ``OWN_PAIRS_PERCENTILE`` of their pair
    distances, as the merge step measures it (on at most 100 faces); 0 for a single face."""
    rng = np.random.default_rng(0)
    return own_pairs(x, np.arange(len(x)), rng, thresholds.OWN_PAIRS_PERCENTILE)


def suggest(
    session: Session, person_id: int, index: NamedIndex, threshold: float | None = None
) -> Suggestion | None:
    """The named person this one most looks like, when the two look as alike as their own photos
    do: the merge step's test (:func:`photocluster.people.clustering.merge_alike_clusters`). At
    least ``MERGE_SHARE`` of the pairs across them (typical faces) must be within the larger of
    the two people's own ``OWN_PAIRS_PERCENTILE`` pair distances, capped at ``threshold``
    (``SAME_PERSON``); when neither has two faces, within ``PAIR_DISTANCE``."""
    cap = thresholds.SAME_PERSON if threshold is None else threshold
    rows = session.execute(
        select(Face.id, Face.embedding).where(Face.person_id == person_id).order_by(Face.id)
    ).all()
    if not rows:
        return None
    x = blobs_to_matrix([r.embedding for r in rows]).astype(np.float64)
    # the most typical faces, as the contact sheet shows them (contact_sheet.typical_faces)
    order = np.argsort(np.linalg.norm(x - x.mean(axis=0), axis=1), kind="stable")
    ranked = [int(rows[i].id) for i in order[:SUGGEST_FACES]]
    faces = x[order[:SUGGEST_FACES]]
    rejected_by = set(
        session.scalars(select(Rejection.person_id).where(Rejection.face_id.in_(ranked)))
    )
    best = index.nearest(faces, exclude=rejected_by | {person_id})
    if best is None:
        return None
    own = max(index.own(session, best[0]), _own_pairs(x))
    limit = min(cap, own if own > 0 else thresholds.PAIR_DISTANCE)
    cross = np.linalg.norm(faces[:, None, :] - index.faces_of(best[0])[None, :, :], axis=2)
    if (cross <= limit).mean() < thresholds.MERGE_SHARE:
        return None
    return Suggestion(best[0], index.names[best[0]], best[1])


def offer(
    session: Session, person_id: int, index: NamedIndex, scored: Suggester | None
) -> Suggestion | None:
    """The name offered for unnamed person ``person_id`` (`name`'s queue). A small person (one
    ``scored`` knows: up to ``SMALL_PERSON_FACES`` faces) is offered as its best named candidate
    with the chance it is them when that is ``MAYBE`` or more, else as nobody: the calibrated
    score knows better than the merge step's test. Bigger people, and every person when there
    are too few names to score, get :func:`suggest`."""
    if scored is not None and scored.calibrated:
        found = scored.person(person_id)
        if found is not None:
            best = found.best
            if best is None or best.score is None or best.score < MAYBE:
                return None
            return Suggestion(best.person_id, best.name, best.distance, best.score)
    return suggest(session, person_id, index)
