"""The projection learned from the user's own decisions: learned, checked, stored, looked up.

What it learns from (:func:`training_data`): the *confirmed* faces of named, non-hidden people
(a face is confirmed when the user named its person, merged people or assigned it: the faces
the user saw when deciding) labelled by person, and the rejections from those people as
not-that-person pairs. Unconfirmed faces of a named person are left out: clustering attached
them after the naming, nobody looked at them, and a projection learned from clustering's own
guesses would only learn clustering's mistakes.

:func:`learn_projection` cross-validates every method of :mod:`photocluster.people.learn` on the
user's decisions, folds grouped by person (people held out whole), and stores a row in
``projections`` (:class:`~photocluster.catalog.models.LearnedProjection`) with the figures. The
best learned method is *used* only when its cross-validated gain over the raw embedding (share
of held-out same-person pairs accepted at a 0.1 % false-match rate, or 1 % when there are too
few pairs for 0.1 %) is positive, by more than ``MIN_GAIN`` (half a point: the best of several
methods beats raw by a hair by chance alone); otherwise the row says why and callers get the raw
embedding.
Refused (nothing learned, raw used, the reason stored): fewer than ``MIN_PEOPLE`` named people
with 2+ confirmed faces; faces from more than one embedding model. Contradicting decisions (a
face confirmed in a person that also rejected it) are left out of learning and named.

:func:`current_projection` is what suggestions call: the newest projection if it is used and
was learned on the embedding model of the catalog's faces now, else None (raw).

Placing new faces (`cluster` after a scan) is a different job from verification, and a better
pair metric does not make it better by itself (bench/bench_placement.py: on lfw-dev ``unit``
gains in verification but places 1 point fewer held-out faces right). So a used projection is
also measured at that job (:func:`photocluster.people.learn.cross_validate_placement`: a third
of each named person's confirmed faces held out and placed among the rest by cluster's rule,
raw vs learned) and places new faces only when it places more of them right (by more than
``MIN_GAIN`` of those held out) and none more wrong: :func:`placing_projection`.
:func:`needs_relearn` says when the decisions changed enough (named people changed, or the
confirmed faces or rejections changed by ``RELEARN_SHARE``) or the model changed;
:func:`ensure_projection` relearns then. Distances in the projected space are in raw units
around the same-person range (see :mod:`photocluster.people.learn`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import hold_write_lock, in_chunks
from photocluster.catalog.embeddings import EMBEDDING_DIM, blobs_to_matrix
from photocluster.catalog.models import Face, LearnedProjection, Person, Photo, Rejection
from photocluster.index.store import catalog_encoder
from photocluster.ingest.encoder import model_of
from photocluster.people.clustering import place_faces
from photocluster.people.learn import (
    METHODS,
    RAW,
    LinearMap,
    Negatives,
    PlacementScore,
    cross_validate,
    cross_validate_placement,
    fit,
)
from photocluster.people.params import ClusterParams

MIN_PEOPLE = 4  # named people with 2+ confirmed faces needed (two folds of two people each)
RELEARN_SHARE = 0.10  # relearn when confirmed faces or rejections changed by this share
# The gain (in TAR, 0-1) a learned method must exceed to be used: the best of five methods
# measured on the same folds beats raw by a hair by chance alone.
MIN_GAIN = 0.005
CV_FOLDS = 5
SEED = 0
# A library with more confirmed faces than MAX_LEARN_FACES learns from a sample (fixed by SEED):
# at most MAX_FACES_PER_PERSON of each person, MAX_LEARN_FACES in all. 24 000 confirmed faces
# of 1 000 people (synthetic) took 40 s, the sample 8 s: `name`, which relearns when due, does
# not pause for minutes.
MAX_FACES_PER_PERSON = 40
MAX_LEARN_FACES = 8_000


@dataclass(frozen=True)
class Projection:
    """A used projection: ``transform`` maps raw embeddings (n x 128) into the learned space."""

    id: int
    method: str
    gain: float
    model: str
    map: LinearMap
    places: bool = False  # also used to place new faces (it placed held-out names better)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return self.map.apply(x)


@dataclass
class MethodFigures:
    """One method's cross-validated figures on held-out people (None: not measurable)."""

    method: str
    tar_far_1pct: float | None
    tar_far_01pct: float | None
    rank1: float | None
    gain: float | None


@dataclass
class LearnReport:
    """What :func:`learn_projection` measured and decided (or what the stored row says)."""

    created_at: datetime
    model: str
    method: str  # the best learned method measured ("raw" when none was)
    used: bool
    reason: str
    metric_far: float | None
    raw_score: float | None
    learned_score: float | None
    gain: float | None
    named_faces: int
    people: int
    rejections: int
    left_out: int = 0  # faces of contradicting decisions, left out of learning
    # their ids (a fresh report only; the stored reason names the first of them)
    left_out_faces: list[int] = field(default_factory=list)
    methods: list[MethodFigures] = field(default_factory=list)
    projection_id: int | None = None
    seconds: float | None = None
    usable_now: bool = False  # used, and the catalog's faces are of the model it was learned on
    note: str | None = None  # why a stored projection is not current (model changed)
    # a used projection placing held-out confirmed faces, raw vs learned (None: not measured)
    placement: PlacementScore | None = None
    places: bool = False  # it also places new faces

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat(timespec="seconds")
        return d


@dataclass
class TrainingData:
    """The decisions learned from, with what identifies them."""

    face_ids: np.ndarray  # int64, sorted
    person_ids: np.ndarray  # the person of each face
    x: np.ndarray  # (n, 128) float64, or (0, 128) when embeddings were not loaded
    negatives: Negatives  # labels are person ids
    rejections: int
    models: list[str]
    left_out: list[int]
    contradictions: list[tuple[int, int]]
    fingerprint: str
    people_key: str

    @property
    def people_with_two(self) -> int:
        _, counts = np.unique(self.person_ids, return_counts=True)
        return int(np.sum(counts >= 2))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def training_data(session: Session, *, embeddings: bool = True) -> TrainingData:
    """The confirmed faces of named, non-hidden people and the rejections from those people;
    contradicting pairs (confirmed in a person that rejected the face) left out."""
    named = (Person.name.is_not(None)) & (Person.hidden.is_(False))
    cols: list[Any] = [Face.id, Face.person_id, Face.revision, Photo.encoder]
    if embeddings:
        cols.append(Face.embedding)
    rows = session.execute(
        select(*cols)
        .join(Person, Person.id == Face.person_id)
        .join(Photo, Photo.id == Face.photo_id)
        .where(named, Face.confirmed.is_(True))
        .order_by(Face.id)
    ).all()
    person_of = {r.id: r.person_id for r in rows}
    rej_rows = session.execute(
        select(Rejection.face_id, Rejection.person_id)
        .join(Person, Person.id == Rejection.person_id)
        .where(named)
        .order_by(Rejection.face_id, Rejection.person_id)
    ).all()
    contradictions = [(f, p) for f, p in rej_rows if person_of.get(f) == p]
    bad = {f for f, _ in contradictions}
    rows = [r for r in rows if r.id not in bad]
    rejections = [(f, p) for f, p in rej_rows if person_of.get(f) != p]
    # only rejections from people with faces to learn from
    learned_people = {r.person_id for r in rows}
    rejections = [(f, p) for f, p in rejections if p in learned_people]
    face_ids = np.array([r.id for r in rows], dtype=np.int64)
    person_ids = np.array([r.person_id for r in rows], dtype=np.int64)
    models = sorted({model_of(r.encoder) for r in rows})
    x = np.zeros((0, EMBEDDING_DIM))
    neg_x = np.zeros((0, EMBEDDING_DIM))
    if embeddings and rows:
        x = blobs_to_matrix([r.embedding for r in rows]).astype(np.float64)
        if rejections:
            rej_ids = sorted({f for f, _ in rejections})
            blobs: dict[int, bytes] = {}
            for chunk in in_chunks(rej_ids):
                q = select(Face.id, Face.embedding).where(Face.id.in_(chunk))
                blobs.update({f: b for f, b in session.execute(q)})
            neg_x = blobs_to_matrix([blobs[f] for f, _ in rejections]).astype(np.float64)
    negatives = Negatives(neg_x, np.array([p for _, p in rejections], dtype=np.int64))
    decided = ";".join(f"{r.id}:{r.person_id}:{r.revision}" for r in rows)
    refused = ";".join(f"{f}:{p}" for f, p in rejections)
    return TrainingData(
        face_ids=face_ids,
        person_ids=person_ids,
        x=x,
        negatives=negatives,
        rejections=len(rejections),
        models=models,
        left_out=sorted(bad),
        contradictions=contradictions,
        fingerprint=_sha(f"{','.join(models)}|{decided}|{refused}"),
        people_key=_sha(",".join(str(p) for p in sorted(learned_people))),
    )


def _latest(session: Session) -> LearnedProjection | None:
    return session.scalars(
        select(LearnedProjection).order_by(LearnedProjection.id.desc()).limit(1)
    ).first()


def _catalog_model(session: Session) -> str:
    key = catalog_encoder(session)
    return model_of(key) if key else ""


def _f32(a: np.ndarray) -> bytes:
    return np.asarray(a, dtype="<f4").tobytes()


def _map_of(row: LearnedProjection) -> LinearMap:
    assert row.matrix is not None and row.offset is not None
    matrix = np.frombuffer(row.matrix, dtype="<f4").astype(np.float64)
    offset = np.frombuffer(row.offset, dtype="<f4").astype(np.float64)
    if offset.size != EMBEDDING_DIM or matrix.size != row.dims * EMBEDDING_DIM:
        raise ValueError(f"projection {row.id}: stored matrix has the wrong size")
    return LinearMap(
        row.method,
        matrix.reshape(row.dims, EMBEDDING_DIM),
        offset,
        scale=float(row.scale),
        normalize_input=bool(row.normalize_input),
        normalize_output=bool(row.normalize_output),
    )


def _changed(then: int, now: int) -> bool:
    return abs(now - then) >= RELEARN_SHARE * max(then, 1)


def relearn_reason(session: Session) -> str | None:
    """Why the projection should be learned again, or None when it need not be."""
    row = _latest(session)
    data = training_data(session, embeddings=False)
    if row is None:
        if data.people_with_two >= MIN_PEOPLE:
            return "nothing learned yet"
        return None
    if data.people_with_two < MIN_PEOPLE and not row.used:
        return None  # still nothing to learn from, and nothing in use to retire
    model = _catalog_model(session)
    if model and row.model and model != row.model and data.face_ids.size:
        return f"the faces' embedding model changed ({row.model} -> {model})"
    if data.fingerprint == row.fingerprint:
        return None
    if data.people_key != row.people_key:
        return "the named people changed"
    old = np.frombuffer(row.face_ids, dtype="<i8")
    moved = np.setxor1d(old, data.face_ids).size
    if moved >= RELEARN_SHARE * max(old.size, 1):
        return f"{moved} confirmed faces changed since learning (of {old.size})"
    if _changed(row.rejections, data.rejections):
        return f"rejections changed from {row.rejections} to {data.rejections}"
    return None


def needs_relearn(session: Session) -> bool:
    """True when the decisions changed enough since the stored projection (or the embedding
    model changed, or nothing was learned yet and there is enough to learn from)."""
    return relearn_reason(session) is not None


def current_projection(session: Session) -> Projection | None:
    """The stored projection if it is used and learned on the model of the catalog's faces
    now; None means: use the raw embedding."""
    row = _latest(session)
    if row is None or not row.used or row.matrix is None:
        return None
    if row.model != _catalog_model(session):
        return None
    return Projection(
        row.id, row.method, float(row.gain or 0.0), row.model, _map_of(row), bool(row.places)
    )


def placing_projection(session: Session) -> Projection | None:
    """The current projection if it also places new faces (module docstring), else None."""
    current = current_projection(session)
    return current if current is not None and current.places else None


def _figures(cv_json: str) -> list[MethodFigures]:
    return [MethodFigures(**m) for m in json.loads(cv_json)]


def _report_of(row: LearnedProjection, session: Session) -> LearnReport:
    model = _catalog_model(session)
    usable = bool(row.used and row.matrix is not None and row.model == model)
    note = None
    if row.used and row.model != model:
        note = (
            f"Not used now: learned on embedding model {row.model}, but the catalog's faces now "
            f"come from {model or 'no model (no faces)'}. Run `photocluster learn` to learn "
            "again on the new embeddings."
        )
    return LearnReport(
        created_at=row.created_at,
        model=row.model,
        method=row.method,
        used=bool(row.used),
        reason=row.reason,
        metric_far=row.metric_far,
        raw_score=row.raw_score,
        learned_score=row.learned_score,
        gain=row.gain,
        named_faces=row.named_faces,
        people=row.people,
        rejections=row.rejections,
        left_out=row.left_out,
        methods=_figures(row.cv),
        projection_id=row.id,
        usable_now=usable,
        note=note,
        placement=PlacementScore(**json.loads(row.placement)) if row.placement else None,
        places=bool(row.places),
    )


def stored_report(session: Session) -> LearnReport | None:
    """The newest stored projection as a report (reads only), with whether it is usable now."""
    row = _latest(session)
    return _report_of(row, session) if row is not None else None


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f} %"


def _contradictions_note(data: TrainingData) -> str | None:
    """The faces left out for contradicting decisions and how to settle them (None: none)."""
    if not data.contradictions:
        return None
    shown = ", ".join(f"face {f} (person {p})" for f, p in data.contradictions[:12])
    more = " ..." if len(data.contradictions) > 12 else ""
    return (
        f"Left out {len(data.left_out)} face(s) confirmed in a person that also rejected "
        f"them: {shown}{more}. Assign each to its person again (`photocluster assign`) or "
        "reject it (`photocluster reject`) to settle it."
    )


def _refusal(data: TrainingData) -> str | None:
    """Why nothing is learned from these decisions (embedding models mixed, too few named
    people), or None when learning goes ahead."""
    if len(data.models) > 1:
        return (
            f"Faces come from different embedding models ({', '.join(data.models)}), whose "
            "distances cannot be compared: nothing learned, the raw embedding is used. Scan "
            "again (`photocluster scan DIR`), then `photocluster learn`."
        )
    if data.people_with_two < MIN_PEOPLE:
        return (
            f"Too few decisions to learn from: {data.people_with_two} named people with 2 or "
            f"more confirmed faces (at least {MIN_PEOPLE} needed): the raw embedding is used. "
            "Name more people (`photocluster name`), then `photocluster learn`."
        )
    return None


def _blank_report(data: TrainingData, model: str, created_at: datetime) -> LearnReport:
    """The report before anything is measured: what is learned from, the raw embedding used."""
    return LearnReport(
        created_at=created_at,
        model=model,
        method=RAW,
        used=False,
        reason="",
        metric_far=None,
        raw_score=None,
        learned_score=None,
        gain=None,
        named_faces=int(data.face_ids.size),
        people=data.people_with_two,
        rejections=data.rejections,
        left_out=len(data.left_out),
        left_out_faces=data.left_out,
    )


def _sample(x: np.ndarray, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every face up to ``MAX_LEARN_FACES``; beyond, at most ``MAX_FACES_PER_PERSON`` of each
    person and ``MAX_LEARN_FACES`` in all, drawn with ``seed`` (the same decisions give the same
    sample)."""
    if len(x) <= MAX_LEARN_FACES:
        return x, labels
    rng = np.random.default_rng(seed)
    keep: list[np.ndarray] = []
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        if len(rows) > MAX_FACES_PER_PERSON:
            rows = rng.choice(rows, MAX_FACES_PER_PERSON, replace=False)
        keep.append(rows)
    chosen = np.sort(np.concatenate(keep))
    if len(chosen) > MAX_LEARN_FACES:
        chosen = np.sort(rng.choice(chosen, MAX_LEARN_FACES, replace=False))
    return x[chosen], labels[chosen]


def _cross_validate_and_choose(
    report: LearnReport,
    data: TrainingData,
    *,
    methods: tuple[str, ...],
    folds: int,
    seed: int,
) -> LinearMap | None:
    """Cross-validate ``methods`` on held-out people and write the figures, the best method
    and the decision with its reason into ``report``. Returns the best method fitted on all
    the decisions when its gain exceeds ``MIN_GAIN``, else None (the raw embedding is used)."""
    x, labels = _sample(data.x, data.person_ids, seed)
    cv = cross_validate(x, labels, data.negatives, methods=methods, folds=folds, seed=seed)
    report.methods = [
        MethodFigures(r.method, r.tar.get(0.01), r.tar.get(0.001), r.rank1, r.gain)
        for r in cv.results.values()
    ]
    report.metric_far = cv.metric
    report.raw_score = cv.results[RAW].score
    best = cv.best()
    if best is None or cv.metric is None:
        report.reason = (
            "Not enough different-person pairs among the named people to measure a gain: "
            "the raw embedding is used. Name more people, then `photocluster learn`."
        )
        return None
    report.method = best.method
    report.learned_score = best.score
    report.gain = best.gain
    far = f"{100 * cv.metric:g} %"
    if best.gain is not None and best.gain > MIN_GAIN:
        report.used = True
        report.reason = (
            f"{best.method} accepts {_pct(best.score)} of held-out same-person pairs at "
            f"a {far} false-match rate, the raw embedding {_pct(report.raw_score)}: "
            "used."
        )
        if len(x) < len(data.x):
            report.reason += (
                f" (Measured and learned on a sample of {len(x)} of {len(data.x)} faces.)"
            )
        _measure_placement(report, x, labels, data.negatives, best.method, seed)
        return fit(best.method, x, labels, data.negatives, seed=seed)
    report.reason = (
        f"No gain: the best learned method ({best.method}) accepts "
        f"{_pct(best.score)} of held-out same-person pairs at a {far} false-match "
        f"rate, the raw embedding {_pct(report.raw_score)}: the raw embedding is used."
    )
    return None


def _place(y: np.ndarray, owner: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """New faces placed as `cluster` places them, with the default parameters."""
    return place_faces(y, owner, rows, ClusterParams())


def places_better(score: PlacementScore) -> bool:
    """The learned map places held-out faces better: more right, by more than ``MIN_GAIN`` of
    those held out, and none more wrong (precision first)."""
    return (score.gain or 0.0) > MIN_GAIN and score.wrong <= score.raw_wrong


def _measure_placement(
    report: LearnReport,
    x: np.ndarray,
    labels: np.ndarray,
    negatives: Negatives,
    method: str,
    seed: int,
) -> None:
    """Measure the used ``method`` at placing held-out confirmed faces, decide whether it also
    places new faces, and say so in ``report``."""
    score = cross_validate_placement(x, labels, negatives, method, _place, seed=seed)
    report.placement = score
    if score.gain is None:
        report.reason += " Too few faces per person to measure placing new faces: placed raw."
        return
    report.places = places_better(score)
    figures = (
        f"of {score.held_out} held-out confirmed faces it places {score.right} in their person "
        f"({score.wrong} in another), the raw embedding {score.raw_right} ({score.raw_wrong})"
    )
    if report.places:
        report.reason += f" New faces are placed with it too: {figures}."
    else:
        report.reason += f" New faces are placed on the raw embedding: {figures}."


def _row_of(report: LearnReport, data: TrainingData, chosen: LinearMap | None) -> LearnedProjection:
    """The ``projections`` row for ``report``: the chosen map (none: the identity, no matrix
    stored), what was learned from (to tell later when to relearn) and the figures."""
    return LearnedProjection(
        created_at=report.created_at,
        model=report.model,
        method=report.method,
        dims=chosen.dims if chosen is not None else EMBEDDING_DIM,
        matrix=_f32(chosen.matrix) if chosen is not None else None,
        offset=_f32(chosen.offset) if chosen is not None else None,
        scale=chosen.scale if chosen is not None else 1.0,
        normalize_input=chosen.normalize_input if chosen is not None else False,
        normalize_output=chosen.normalize_output if chosen is not None else False,
        fingerprint=data.fingerprint,
        named_faces=report.named_faces,
        people=report.people,
        rejections=report.rejections,
        left_out=len(data.left_out),
        face_ids=np.asarray(data.face_ids, dtype="<i8").tobytes(),
        people_key=data.people_key,
        metric_far=report.metric_far,
        raw_score=report.raw_score,
        learned_score=report.learned_score,
        gain=report.gain,
        cv=json.dumps([asdict(m) for m in report.methods]),
        used=report.used,
        reason=report.reason,
        placement=json.dumps(asdict(report.placement)) if report.placement else None,
        places=report.places,
    )


def learn_projection(
    session: Session,
    *,
    methods: tuple[str, ...] = METHODS,
    folds: int = CV_FOLDS,
    seed: int = SEED,
    now: datetime | None = None,
) -> LearnReport:
    """Learn, cross-validate and store a projection from the user's decisions (module
    docstring). Holds the write lock from its reads to the caller's commit; the caller owns
    the session and commits. Never raises for bad decisions: the report says what was done."""
    hold_write_lock(session, "learn")
    started = time.perf_counter()
    data = training_data(session)
    model = data.models[0] if len(data.models) == 1 else _catalog_model(session)
    report = _blank_report(data, model, now or _now())
    chosen: LinearMap | None = None
    refusal = _refusal(data)
    if refusal is not None:
        report.reason = refusal
    else:
        chosen = _cross_validate_and_choose(report, data, methods=methods, folds=folds, seed=seed)
    note = _contradictions_note(data)
    if note is not None:
        report.reason = f"{note} {report.reason}"
    report.seconds = round(time.perf_counter() - started, 2)
    row = _row_of(report, data, chosen)
    session.add(row)
    session.flush()
    report.projection_id = row.id
    report.usable_now = report.used
    return report


def ensure_projection(session: Session) -> Projection | None:
    """Relearn when :func:`needs_relearn`, then :func:`current_projection`. The caller owns the
    session and commits (a relearn takes the write lock)."""
    if needs_relearn(session):
        hold_write_lock(session, "learn")
        if needs_relearn(session):  # again under the lock: another process may have learned
            learn_projection(session)
    return current_projection(session)
