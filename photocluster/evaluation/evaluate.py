"""Quality metrics for clustering and verification, and the `eval` workflow on a labelled folder.

Metric functions are pure (arrays in, numbers out). Conventions:

* ``truth`` and ``pred`` are integer label arrays over the same faces. In ``pred`` a negative
  label is noise; every noise face counts as its own singleton cluster (so leaving a face
  unassigned costs recall, never precision).
* Pairwise precision/recall/F count unordered pairs of faces put together; BCubed averages the
  per-face precision/recall (Bagga & Baldwin 1998); NMI is the arithmetic-mean normalised mutual
  information.
* Verification: every pair of labelled faces is a genuine (same label) or impostor pair; the ROC
  is over their Euclidean distances.

:func:`evaluate_catalog` measures a catalog holding a labelled folder (``<person>/<photos>``,
nested sources allowed, folders starting with ``_`` are unlabelled extras) after clustering it
with the same defaults as ``cluster``. Each labelled photo with a face contributes one *scored
face*: the face of that photo nearest the mean of its label's one-face photos
(:func:`nearest_to_label`; the photo's only face when it has one, its largest face when the
label has no one-face photo). In web-scraped sets a photo's largest face is often somebody else
(a spouse, an opponent), so every headline figure (pairwise, BCubed, NMI, unassigned share,
verification) is over the scored faces; the largest-face rule (the headline before
``EVAL_SCHEMA_VERSION`` 2) stays as a second pairwise figure and in the label check.

Labels are also split by how many labelled photos (with a face) they have. A label with exactly
one is a *stranger*; it is *left alone* when its scored face is unassigned or its person holds
no other scored face, and *absorbed* otherwise. The people-with-several-photos figure is
pairwise precision/recall/F over the scored faces of labels with at least two photos only; the
headline pairwise covers every scored face (each stranger a class of its own).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select

from photocluster.catalog.embeddings import EMBEDDING_DIM, blobs_to_matrix
from photocluster.catalog.models import Face, Photo
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.errors import PhotoclusterError
from photocluster.ingest.analyse import analyse_file
from photocluster.people.assign import ClusterOptions, cluster_catalog
from photocluster.people.thresholds import SAME_PERSON


def singletonise(pred: np.ndarray) -> np.ndarray:
    """Give every noise face (negative label) a fresh label of its own."""
    pred = np.asarray(pred, dtype=np.int64).copy()
    noise = pred < 0
    if noise.any():
        start = (pred.max() + 1) if (~noise).any() else 0
        pred[noise] = np.arange(start, start + int(noise.sum()))
    return pred


@dataclass(frozen=True)
class _Contingency:
    """The non-empty cells of the (truth x pred) table, kept sparse: with a million faces a dense
    table (people x clusters) would take tens of GiB."""

    t: np.ndarray  # per face: its truth class, 0..T-1
    p: np.ndarray  # per face: its predicted cluster, 0..C-1
    cell: np.ndarray  # per face: its cell, an index into the arrays below
    cell_t: np.ndarray  # per cell: truth class
    cell_p: np.ndarray  # per cell: predicted cluster
    counts: np.ndarray  # per cell: faces in it
    rows: np.ndarray  # per truth class: faces
    cols: np.ndarray  # per predicted cluster: faces


def _contingency(truth: np.ndarray, pred: np.ndarray) -> _Contingency:
    _, t = np.unique(truth, return_inverse=True)
    _, p = np.unique(pred, return_inverse=True)
    t, p = t.reshape(-1), p.reshape(-1)
    width = int(p.max()) + 1
    keys, cell, counts = np.unique(
        t.astype(np.int64) * width + p, return_inverse=True, return_counts=True
    )
    return _Contingency(
        t=t,
        p=p,
        cell=cell.reshape(-1),
        cell_t=keys // width,
        cell_p=keys % width,
        counts=counts,
        rows=np.bincount(t),
        cols=np.bincount(p),
    )


def _pairs(n: np.ndarray) -> float:
    return float((n * (n - 1) // 2).sum())


def _f(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f: float


def pairwise_prf(truth: np.ndarray, pred: np.ndarray) -> PRF:
    """Pairwise precision, recall and F1 (noise in ``pred`` as singletons).

    With no pair on one side the corresponding score is 1.0 (nothing was wrongly joined / nothing
    needed joining).
    """
    truth, pred = np.asarray(truth), singletonise(pred)
    if truth.shape != pred.shape:
        raise ValueError("truth and pred must have the same length")
    if truth.size == 0:
        return PRF(1.0, 1.0, 1.0)
    table = _contingency(truth, pred)
    together = _pairs(table.counts)
    pred_pairs, true_pairs = _pairs(table.cols), _pairs(table.rows)
    p = together / pred_pairs if pred_pairs else 1.0
    r = together / true_pairs if true_pairs else 1.0
    return PRF(p, r, _f(p, r))


def bcubed_prf(truth: np.ndarray, pred: np.ndarray) -> PRF:
    """BCubed precision, recall and F1, averaged over faces (noise in ``pred`` as singletons)."""
    truth, pred = np.asarray(truth), singletonise(pred)
    if truth.size == 0:
        return PRF(1.0, 1.0, 1.0)
    table = _contingency(truth, pred)
    shared = table.counts[table.cell].astype(float)
    p = float((shared / table.cols[table.p]).mean())
    r = float((shared / table.rows[table.t]).mean())
    return PRF(p, r, _f(p, r))


def nmi(truth: np.ndarray, pred: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean of the entropies; 1.0 = identical)."""
    truth, pred = np.asarray(truth), singletonise(pred)
    n = truth.size
    if n == 0:
        return 1.0
    table = _contingency(truth, pred)
    rows, cols = table.rows, table.cols
    pij = table.counts / n
    outer = rows[table.cell_t] * cols[table.cell_p] / (n * n)
    mi = float((pij * np.log(pij / outer)).sum())
    h_t = float(-(rows / n * np.log(rows / n)).sum())
    h_p = float(-(cols / n * np.log(cols / n)).sum())
    if h_t == 0.0 and h_p == 0.0:
        return 1.0
    denom = (h_t + h_p) / 2
    return max(0.0, mi / denom) if denom > 0 else 0.0


@dataclass(frozen=True)
class Verification:
    """ROC summary over all labelled pairs, by Euclidean distance (accept when distance <= t)."""

    genuine_pairs: int
    impostor_pairs: int
    auc: float
    eer: float
    eer_threshold: float
    target_fmr: float
    threshold_at_target: float
    tmr_at_target: float  # share of genuine pairs accepted at that threshold
    fmr_at_same_person: float  # at the configured SAME_PERSON threshold
    tmr_at_same_person: float
    same_person: float


def pair_distances(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances of all unordered pairs and whether each pair is genuine (same label)."""
    x = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    iu = np.triu_indices(len(x), k=1)
    sq = (x * x).sum(axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    dist = np.sqrt(np.maximum(d2[iu], 0.0))
    same = labels[iu[0]] == labels[iu[1]]
    return dist, same


def verification(
    distances: np.ndarray, genuine: np.ndarray, target_fmr: float = 0.001, same_person: float = 0.6
) -> Verification:
    """ROC over pair distances: AUC, equal-error rate and threshold, threshold for a target FMR.

    The threshold at the target is the largest distance that accepts at most ``target_fmr`` of the
    impostor pairs.
    """
    d = np.asarray(distances, dtype=np.float64)
    g = np.asarray(genuine, dtype=bool)
    n_gen, n_imp = int(g.sum()), int((~g).sum())
    if n_gen == 0 or n_imp == 0:
        raise PhotoclusterError(
            "Verification needs pairs of the same person and of different people: label at least "
            "two photos of one person and one photo of another."
        )
    order = np.argsort(d, kind="mergesort")
    ds, gs = d[order], g[order]
    # Accepting everything up to and including index k: cumulative true/false matches.
    tm = np.cumsum(gs) / n_gen
    fm = np.cumsum(~gs) / n_imp
    # Only cut between distinct distances.
    last = np.r_[ds[1:] != ds[:-1], True]
    tm_c, fm_c, th_c = np.r_[0.0, tm[last]], np.r_[0.0, fm[last]], np.r_[0.0, ds[last]]
    auc = float(((fm_c[1:] - fm_c[:-1]) * (tm_c[1:] + tm_c[:-1]) / 2).sum())  # trapezoids
    fnmr = 1.0 - tm_c
    k = int(np.argmin(np.abs(fnmr - fm_c)))
    eer = float((fnmr[k] + fm_c[k]) / 2)
    ok = np.nonzero(fm_c <= target_fmr)[0]
    j = int(ok[-1])
    # A threshold between the last accepted and the next distance: the midpoint.
    idx_in_ds = np.searchsorted(ds, th_c[j], side="right")
    nxt = ds[idx_in_ds] if idx_in_ds < len(ds) else th_c[j]
    threshold = float((th_c[j] + nxt) / 2) if j > 0 else float(ds[0] / 2)
    at_same = d <= same_person
    return Verification(
        genuine_pairs=n_gen,
        impostor_pairs=n_imp,
        auc=auc,
        eer=eer,
        eer_threshold=float(th_c[k]),
        target_fmr=target_fmr,
        threshold_at_target=threshold,
        tmr_at_target=float(tm_c[j]),
        fmr_at_same_person=float((at_same & ~g).sum() / n_imp),
        tmr_at_same_person=float((at_same & g).sum() / n_gen),
        same_person=same_person,
    )


@dataclass(frozen=True)
class ClusterQuality:
    faces: int
    identities: int
    pairwise: PRF
    bcubed: PRF
    nmi: float
    unassigned_share: float
    clusters: int


def cluster_quality(truth: np.ndarray, pred: np.ndarray) -> ClusterQuality:
    """All clustering metrics for one labelling (negative ``pred`` = unassigned)."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    return ClusterQuality(
        faces=int(truth.size),
        identities=int(np.unique(truth).size),
        pairwise=pairwise_prf(truth, pred),
        bcubed=bcubed_prf(truth, pred),
        nmi=nmi(truth, pred),
        unassigned_share=float((pred < 0).mean()) if pred.size else 0.0,
        clusters=int(np.unique(pred[pred >= 0]).size),
    )


# --- labelled folders -------------------------------------------------------------------------


def label_of(path: str, root: str) -> str | None:
    """The person a photo under ``root`` is labelled with: its parent folder's name.

    ``None`` for photos directly under ``root`` or in a folder whose name starts with ``_``.
    The label is shared across sources: ``a/ada/1.jpg`` and ``b/ada/2.jpg`` are the same person.
    """
    rel = os.path.relpath(path, root)
    parts = Path(rel).parts
    if len(parts) < 2 or parts[0] == "..":
        return None
    folder = parts[-2]
    if folder.startswith("_"):
        return None
    return folder


@dataclass
class LabelledFaces:
    """The largest face of each labelled photo, in catalog order (`eval` scores the face of the
    photo nearest its label instead: :func:`nearest_to_label`)."""

    face_ids: list[int]
    labels: list[str]
    embeddings: np.ndarray
    photos_labelled: int
    photo_ids: list[int] = field(default_factory=list)
    photos_without_face: list[str] = field(default_factory=list)
    photos_failed: list[str] = field(default_factory=list)


def nearest_to_label(
    x: np.ndarray, groups: np.ndarray, idx: np.ndarray, truth: np.ndarray
) -> np.ndarray:
    """Per labelled face (row ``idx[j]`` of ``x``, label ``truth[j]``): the face of its photo
    (``groups``: each row's photo) nearest the mean of its label's *one-face* photos, which are
    unambiguous; the face itself where the photo has one face or the label no one-face photo."""
    rows_of = _rows_by_photo(groups)
    single = np.array([len(rows_of[groups[i]]) == 1 for i in idx.tolist()], dtype=bool)
    out = idx.copy()
    for j, i in enumerate(idx.tolist()):
        candidates = rows_of[groups[i]]
        if len(candidates) == 1:
            continue
        own = (truth == truth[j]) & single
        if not own.any():
            continue
        centre = x[idx[own]].mean(axis=0)
        out[j] = candidates[int(np.argmin(np.linalg.norm(x[candidates] - centre, axis=1)))]
    return out


def _rows_by_photo(groups: np.ndarray) -> dict[Any, np.ndarray]:
    """Each photo's rows, from one sort (not a scan of every face per photo)."""
    order = np.argsort(groups, kind="stable")
    photos, starts = np.unique(groups[order], return_index=True)
    return dict(zip(photos.tolist(), np.split(order, starts[1:]), strict=True))


@dataclass(frozen=True)
class LabelCheck:
    """How far the largest-face rule is from the label, on photos with several faces.

    In web-scraped sets the largest face of a photo filed under someone is sometimes somebody
    else (a spouse, an opponent, a false detection); a right clustering is then scored as wrong.
    """

    multi_face_photos: int  # labelled photos with several faces
    largest_unlike_label: int  # of those: another face is nearer the label's one-face photos
    nearest_rule: PRF  # scored on the face nearest its label (eval's headline pairwise)
    # a clustering right about every face, by the largest-face rule: those largest faces are
    # somebody else, so they count as strangers (singletons)
    ceiling: PRF


def label_check(
    x: np.ndarray,
    groups: np.ndarray,
    idx: np.ndarray,
    truth: np.ndarray,
    pred: np.ndarray,
    nearest: np.ndarray | None = None,
) -> LabelCheck:
    """``x``/``groups``/``pred``: every face (embedding, photo, cluster or -1); ``idx``: the rows
    of the labelled (largest) faces, ``truth`` their labels; ``nearest``: the rows
    :func:`nearest_to_label` gives, when the caller has them already."""
    rows_of = _rows_by_photo(groups)
    if nearest is None:
        nearest = nearest_to_label(x, groups, idx, truth)
    changed = nearest != idx
    alone = np.asarray(truth).copy()
    alone[changed] = -1
    return LabelCheck(
        multi_face_photos=sum(1 for i in idx.tolist() if len(rows_of[groups[i]]) > 1),
        largest_unlike_label=int(changed.sum()),
        nearest_rule=pairwise_prf(truth, pred[nearest]),
        ceiling=pairwise_prf(truth, alone),
    )


@dataclass(frozen=True)
class MultiPhotoPeople:
    """The labels with at least two labelled photos (with a face), scored among themselves."""

    people: int
    faces: int
    pairwise: PRF  # over the scored faces of these labels only (strangers left out)


@dataclass(frozen=True)
class Strangers:
    """The labels with exactly one labelled photo (with a face): does clustering leave them be?

    A stranger is *left alone* when its scored face is unassigned or its person holds no other
    scored face; *absorbed* when its person holds at least one other scored face.
    """

    count: int
    absorbed: int
    left_alone: int
    left_alone_share: float | None  # left_alone / count; None when there is no stranger


def people_and_strangers(truth: np.ndarray, pred: np.ndarray) -> tuple[MultiPhotoPeople, Strangers]:
    """Split the scored faces (``truth`` labels, ``pred`` clusters or -1) by photos per label:
    pairwise P/R/F over the labels with >= 2 faces, and how many one-face labels stay alone."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    _, t, per_label = np.unique(truth, return_inverse=True, return_counts=True)
    t = t.reshape(-1)
    several = per_label[t] >= 2
    stranger = ~several
    # scored faces per person (unassigned faces belong to nobody)
    assigned = pred >= 0
    owners, per_person = np.unique(pred[assigned], return_counts=True)
    company = np.zeros(pred.shape, dtype=np.int64)
    company[assigned] = per_person[np.searchsorted(owners, pred[assigned])]
    absorbed = int((stranger & assigned & (company >= 2)).sum())
    count = int(stranger.sum())
    return (
        MultiPhotoPeople(
            people=int((per_label >= 2).sum()),
            faces=int(several.sum()),
            pairwise=pairwise_prf(truth[several], pred[several]),
        ),
        Strangers(
            count=count,
            absorbed=absorbed,
            left_alone=count - absorbed,
            left_alone_share=(count - absorbed) / count if count else None,
        ),
    )


# Bumped when a field of eval's JSON changes meaning or disappears (new fields keep it).
# 1 (no "version" field): scored the largest face of each labelled photo. 2: scores the face
# nearest its label's one-face photos; adds pairwise_largest_face, multi_photo_people, strangers.
EVAL_SCHEMA_VERSION = 2


@dataclass
class EvalResult:
    """What `eval` measured. Every figure but ``pairwise_largest_face`` and ``labels`` is over
    the scored faces (one per labelled photo with a face: the face nearest its label)."""

    root: str
    catalog: str
    photos: int
    photos_labelled: int
    photos_without_face: int
    photos_failed: int
    faces: int
    labelled_faces: int
    identities: int
    people: int
    unassigned_share: float  # over scored faces
    pairwise: PRF
    bcubed: PRF
    nmi: float
    verification: Verification
    params: dict[str, Any]
    labels: LabelCheck
    pairwise_largest_face: PRF  # the same clustering scored on each photo's largest face
    multi_photo_people: MultiPhotoPeople
    strangers: Strangers

    def as_dict(self) -> dict[str, Any]:
        return {"version": EVAL_SCHEMA_VERSION, **asdict(self)}


ScanRunner = Callable[[str], None]


def labelled_faces(session: Any, root: str) -> LabelledFaces:
    """The labelled face of every labelled photo under ``root`` (its largest face)."""
    root = os.path.abspath(root)
    prefix = root.rstrip(os.sep) + os.sep
    photos = session.execute(
        select(Photo.id, Photo.path, Photo.status)
        .where(Photo.path.startswith(prefix, autoescape=True))
        .order_by(Photo.id)
    ).all()
    faces = session.execute(
        select(Face.id, Face.photo_id, Face.size, Face.embedding)
        .join(Photo, Face.photo_id == Photo.id)
        .where(Photo.path.startswith(prefix, autoescape=True))
        .order_by(Face.id)
    ).all()
    largest: dict[int, Any] = {}
    for f in faces:
        cur = largest.get(f.photo_id)
        if cur is None or f.size > cur.size:
            largest[f.photo_id] = f
    ids: list[int] = []
    labels: list[str] = []
    blobs: list[bytes] = []
    result = LabelledFaces([], [], np.zeros((0, EMBEDDING_DIM), np.float32), 0)
    for p in photos:
        label = label_of(p.path, root)
        if label is None:
            continue
        result.photos_labelled += 1
        if p.status == PhotoStatus.FAILED:
            result.photos_failed.append(p.path)
            continue
        face = largest.get(p.id)
        if face is None:
            result.photos_without_face.append(p.path)
            continue
        ids.append(face.id)
        labels.append(label)
        blobs.append(face.embedding)
        result.photo_ids.append(p.id)
    result.face_ids, result.labels, result.embeddings = ids, labels, blobs_to_matrix(blobs)
    return result


def evaluate_catalog(catalog: Any, root: str, params: Any, target_fmr: float = 0.001) -> EvalResult:
    """Cluster a catalog holding a labelled folder (``--full``) and measure it on the scored
    faces (each labelled photo's face nearest its label; see the module docstring)."""
    root = os.path.abspath(root)
    with catalog.session() as session:
        lab = labelled_faces(session, root)
    if not lab.face_ids:
        raise PhotoclusterError(
            f"No labelled photos with a face under {root}: put each person's photos in a folder "
            "named after them (LABELLED_DIR/<person>/<photos>; folders starting with _ are "
            "unlabelled extras)."
        )
    cluster_catalog(catalog, ClusterOptions(params=params), full=True)
    with catalog.session() as session:
        owner = {r[0]: r[1] for r in session.execute(select(Face.id, Face.person_id))}
        photos = session.scalar(select(func.count()).select_from(Photo)) or 0
        faces = session.scalar(select(func.count()).select_from(Face)) or 0
        people = len({p for p in owner.values() if p is not None})
        # every face of the labelled photos, for the label check (by folder, not by a list of
        # ids: a large labelled set would pass SQLite's limit on bound parameters)
        labelled_photos = set(lab.photo_ids)
        rows = [
            r
            for r in session.execute(
                select(Face.id, Face.photo_id, Face.embedding)
                .join(Photo, Face.photo_id == Photo.id)
                .where(Photo.path.startswith(root.rstrip(os.sep) + os.sep, autoescape=True))
                .order_by(Face.id)
            )
            if r.photo_id in labelled_photos
        ]
    names = sorted(set(lab.labels))
    index_of = {name: k for k, name in enumerate(names)}
    truth = np.array([index_of[x] for x in lab.labels])
    row_of = {r.id: k for k, r in enumerate(rows)}
    x = blobs_to_matrix([r.embedding for r in rows])
    groups = np.array([r.photo_id for r in rows])
    largest = np.array([row_of[i] for i in lab.face_ids])
    pred_all = np.array([owner.get(r.id) or -1 for r in rows])
    scored = nearest_to_label(x, groups, largest, truth)
    pred = pred_all[scored]
    quality = cluster_quality(truth, pred)
    check = label_check(x, groups, largest, truth, pred_all, nearest=scored)
    several, strangers = people_and_strangers(truth, pred)
    d, g = pair_distances(x[scored], truth)
    ver = verification(d, g, target_fmr=target_fmr, same_person=SAME_PERSON)
    return EvalResult(
        root=root,
        catalog=catalog.url,
        photos=photos,
        photos_labelled=lab.photos_labelled,
        photos_without_face=len(lab.photos_without_face),
        photos_failed=len(lab.photos_failed),
        faces=faces,
        labelled_faces=len(lab.face_ids),
        identities=len(names),
        people=people,
        unassigned_share=quality.unassigned_share,
        pairwise=quality.pairwise,
        bcubed=quality.bcubed,
        nmi=quality.nmi,
        verification=ver,
        params=asdict(params),
        labels=check,
        pairwise_largest_face=pairwise_prf(truth, pred_all[largest]),
        multi_photo_people=several,
        strangers=strangers,
    )


def encode_largest_face(path: str, encoder: Any, params: Any) -> np.ndarray:
    """The embedding of the largest face in one photo (for `compare`)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PhotoclusterError(f"Cannot read {path}: {exc.strerror}") from exc
    result = analyse_file(path, st.st_size, st.st_mtime_ns, encoder, params)
    if result.status == PhotoStatus.FAILED:
        raise PhotoclusterError(f"Cannot read {path}: {result.error}")
    if not result.faces:
        raise PhotoclusterError(f"No face found in {path}.")
    face = max(result.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return np.asarray(face.embedding, dtype=np.float64)
