"""Pure: a projection of face embeddings learned from labelled faces, and whether it helps.

Input: embeddings ``x`` (n x 128, dlib's descriptor; Euclidean distance about 0.6 separates one
person from two), a person label per face, and optionally faces known *not* to be a person
(:class:`Negatives`, from the user's rejections). Output: a :class:`LinearMap` per method and,
through :func:`cross_validate`, how each does on people it was not trained on.

Methods (``METHODS``), each a linear map of the embedding (TPE also normalises length):

* ``raw``: the identity, always a candidate; what the rest of photocluster uses.
* ``unit``: the embedding divided by its length (cosine distance): TPE's input, and where TPE
  starts. Learns nothing but the scale.
* ``wccn``: within-class covariance normalisation: whiten the within-person scatter (shrunk
  towards a multiple of the identity, ``SHRINK``), so directions along which one person's faces
  vary (pose, light, age) count less.
* ``lda``: linear discriminant analysis: after that whitening, the directions along which the
  named people's means differ (at most people - 1 of them).
* ``kissme``: a Mahalanobis metric from pairs (Koestinger et al. 2012, "keep it simple and
  straightforward"): the inverse covariance of same-person differences minus that of
  different-person differences (rejections included), negative eigenvalues clipped.
* ``tpe``: the Triplet Probabilistic Embedding (Sankaranarayanan et al. 2016): embeddings
  length-normalised (centring them measured worse), ``W`` (128 x 128) initialised with PCA,
  then learned by stochastic gradient descent on triplets (anchor, positive: same person;
  negative: another person or a face rejected from the anchor's person) so that the projected
  similarity
  ``S(a, b) = (W a / |W a|) . (W b / |W b|)`` of anchor and positive beats that of anchor and
  negative: minimising ``-log p``, ``p = exp(S_ap) / (exp(S_ap) + exp(S_an))`` (the triplet
  probability; ``TPE_SHARPNESS`` scales S), with the hardest of a few sampled negatives;
  early stopping on a fifth of the people held out (the PCA start is kept when nothing
  beats it).

Units: every map is scaled so that the median same-person distance of its training faces after
the map equals their median raw distance. Distances in the learned space therefore read in
"raw units" around the same-person range: a 0.56 threshold means roughly what it means on raw
embeddings, but only roughly — thresholds that matter should be measured in the space used.

:func:`cross_validate` holds out whole people (folds grouped by person: never one person in
both training and test) and measures verification on the held-out people: the share of
same-person pairs accepted at a fixed false-match rate (1 %, and 0.1 % when there are enough
different-person pairs), plus the rank-1 accuracy (a held-out face's nearest other held-out face
is the same person). The gain of a method is its score minus the raw embedding's on the same
folds. Rejections are learned from, never scored on (see :func:`cross_validate`).
Deterministic for a given seed.

The constants were chosen on the people of ``../shared/faces`` and ``../shared/lfw-dev``
(5-fold, 0.1 % false matches): ``SHRINK`` 0.2 / 0.5 / 0.8 / 0.95 gave WCCN 82.96 / 84.30 /
85.49 / 85.63 % on faces (raw 85.67) and 82.04 / 83.83 / 85.20 / 85.46 % on lfw-dev (raw
85.46): the less it moves from raw the better there, 0.8 still lets a library with a few strong
nuisance directions gain (tests/test_learn.py). TPE without early stopping lost 2-7 points to
its own PCA start on both sets; stopped early it keeps the start unless held-out people say
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from threadpoolctl import threadpool_limits

RAW = "raw"
METHODS: tuple[str, ...] = (RAW, "unit", "wccn", "lda", "kissme", "tpe")

SHRINK = 0.8  # covariance shrinkage towards a multiple of the identity (WCCN, LDA, KISSME)
TPE_SHARPNESS = 16.0  # similarities (cosines, in [-1, 1]) are multiplied by this in the loss
TPE_STEPS = 200  # mini-batches of SGD (at most: early stopping)
TPE_CHECK = 25  # steps between validation checks
TPE_DIMS = 128  # output dimensions, the leading PCA ones (96: the same; 64: faces -1.5, lfw +0.8)
TPE_BATCH = 128  # triplets per mini-batch
TPE_RATE = 0.01  # learning rate (with momentum TPE_MOMENTUM)
TPE_MOMENTUM = 0.9
TPE_NEGATIVE_TRIES = 4  # negatives sampled per triplet; the hardest is used
FARS: tuple[float, ...] = (0.01, 0.001)  # false-match rates verification is measured at
MAX_SAME_PAIRS_PER_PERSON = 2_000
MAX_DIFFERENT_PAIRS = 200_000  # measured per fold
MAX_TRAINING_PAIRS = 50_000  # different pairs KISSME learns from


@dataclass(frozen=True)
class LinearMap:
    """``x -> scale * normalise_out(matrix @ (normalise_in(x) - offset))``, row by row.

    ``matrix`` is (dims, 128); ``offset`` (128,). Returns float64.
    """

    method: str
    matrix: np.ndarray
    offset: np.ndarray
    scale: float = 1.0
    normalize_input: bool = False
    normalize_output: bool = False

    @property
    def dims(self) -> int:
        return int(self.matrix.shape[0])

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = np.asarray(x, dtype=np.float64).reshape(-1, self.matrix.shape[1])
        if self.normalize_input:
            y = _unit(y)
        y = (y - self.offset) @ self.matrix.T
        if self.normalize_output:
            y = _unit(y)
        return y * self.scale


@dataclass(frozen=True)
class Negatives:
    """Faces known not to be a person: embeddings ``x`` (m x 128) and, for each, the label of
    the person it was rejected from (labels as in the labelled faces)."""

    x: np.ndarray
    label: np.ndarray

    @staticmethod
    def none(dim: int = 128) -> Negatives:
        return Negatives(np.zeros((0, dim)), np.zeros(0, dtype=np.int64))

    def of(self, keep: np.ndarray) -> Negatives:
        """Only the negatives of the labels in ``keep``."""
        mask = np.isin(self.label, keep)
        return Negatives(self.x[mask], self.label[mask])


def identity(dim: int = 128) -> LinearMap:
    return LinearMap(RAW, np.eye(dim), np.zeros(dim))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _shrunk(cov: np.ndarray, shrink: float | None = None) -> np.ndarray:
    shrink = SHRINK if shrink is None else shrink
    d = cov.shape[0]
    return (1 - shrink) * cov + shrink * (np.trace(cov) / d) * np.eye(d)


def _inv_sqrt(cov: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(cov)
    vals = np.maximum(vals, 1e-12 * max(vals.max(), 1e-12))
    return (vecs / np.sqrt(vals)) @ vecs.T


def _within(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(within-person covariance, the people's labels, their means)."""
    people, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(people), x.shape[1]))
    np.add.at(sums, inverse, x)
    counts = np.bincount(inverse, minlength=len(people)).astype(np.float64)
    means = sums / counts[:, None]
    resid = x - means[inverse]
    return resid.T @ resid / max(len(x) - len(people), 1), people, means


def _pairs(
    labels: np.ndarray, rng: np.random.Generator, max_same: int, max_diff: int
) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (k x 2) of same-person faces (at most ``max_same`` per person) and of
    different-person faces (all when few, else ``max_diff`` drawn at random)."""
    same: list[np.ndarray] = []
    for person in np.unique(labels):
        idx = np.flatnonzero(labels == person)
        if len(idx) < 2:
            continue
        i, j = np.triu_indices(len(idx), 1)
        if len(i) > max_same:
            pick = rng.choice(len(i), max_same, replace=False)
            i, j = i[pick], j[pick]
        same.append(np.stack([idx[i], idx[j]], axis=1))
    n = len(labels)
    if n * (n - 1) // 2 <= max_diff:
        i, j = np.triu_indices(n, 1)
    else:
        i = rng.integers(0, n, max_diff)
        j = rng.integers(0, n, max_diff)
    keep = labels[i] != labels[j]
    diff = np.stack([i[keep], j[keep]], axis=1)
    same_arr = np.concatenate(same) if same else np.zeros((0, 2), dtype=np.int64)
    return same_arr, diff


def _distances(y: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pair of rows: through the Gram matrix when there are many
    pairs of few faces (measuring), pair by pair otherwise, in blocks."""
    if not len(pairs):
        return np.zeros(0)
    if len(pairs) > len(y) and len(y) <= 2_500:
        sq = np.sum(y * y, axis=1)
        d2 = sq[:, None] + sq[None, :] - 2 * (y @ y.T)
        return np.sqrt(np.maximum(d2[pairs[:, 0], pairs[:, 1]], 0.0))
    out = np.empty(len(pairs))
    for start in range(0, len(pairs), 20_000):
        p = pairs[start : start + 20_000]
        out[start : start + len(p)] = np.linalg.norm(y[p[:, 0]] - y[p[:, 1]], axis=1)
    return out


def _scaled(m: LinearMap, x: np.ndarray, labels: np.ndarray, seed: int) -> LinearMap:
    """``m`` scaled so that the median same-person distance of ``x`` is the raw one."""
    rng = np.random.default_rng(seed)
    same, _ = _pairs(labels, rng, MAX_SAME_PAIRS_PER_PERSON, 0)
    if not len(same):
        return m
    raw = float(np.median(_distances(x, same)))
    mapped = float(np.median(_distances(replace(m, scale=1.0).apply(x), same)))
    if mapped <= 0:
        return m
    return replace(m, scale=raw / mapped)


# --- the methods -------------------------------------------------------------------------------


def _fit_wccn(x: np.ndarray, labels: np.ndarray) -> LinearMap:
    cov, _, _ = _within(x, labels)
    return LinearMap("wccn", _inv_sqrt(_shrunk(cov)), np.zeros(x.shape[1]))


def _fit_lda(x: np.ndarray, labels: np.ndarray) -> LinearMap:
    cov, _, means = _within(x, labels)
    white = _inv_sqrt(_shrunk(cov))
    centred = (means - means.mean(axis=0)) @ white.T
    _, vals, vt = np.linalg.svd(centred, full_matrices=False)
    k = max(1, min(len(means) - 1, x.shape[1]))
    keep = vt[:k][vals[:k] > 1e-9 * max(vals[0], 1e-12)] if len(vals) else vt[:1]
    return LinearMap("lda", keep @ white, np.zeros(x.shape[1]))


def _fit_kissme(
    x: np.ndarray, labels: np.ndarray, negatives: Negatives, rng: np.random.Generator
) -> LinearMap:
    same, diff = _pairs(labels, rng, MAX_SAME_PAIRS_PER_PERSON, MAX_TRAINING_PAIRS)
    ds = x[same[:, 0]] - x[same[:, 1]]
    dd = x[diff[:, 0]] - x[diff[:, 1]]
    if len(negatives.x):
        # each rejected face against up to 20 faces of the person it was rejected from
        extra = []
        for face, label in zip(negatives.x, negatives.label, strict=True):
            own = x[labels == label]
            if len(own):
                own = own[rng.permutation(len(own))[:20]]
                extra.append(own - face)
        if extra:
            dd = np.concatenate([dd, *extra])
    cs = _shrunk(ds.T @ ds / max(len(ds), 1))
    cd = _shrunk(dd.T @ dd / max(len(dd), 1))
    metric = np.linalg.inv(cs) - np.linalg.inv(cd)
    vals, vecs = np.linalg.eigh(metric)
    keep = vals > 1e-9 * max(vals.max(), 1e-12)
    if not keep.any():
        return LinearMap("kissme", np.eye(x.shape[1]), np.zeros(x.shape[1]))
    return LinearMap("kissme", (vecs[:, keep] * np.sqrt(vals[keep])).T, np.zeros(x.shape[1]))


def _fit_tpe(
    x: np.ndarray, labels: np.ndarray, negatives: Negatives, rng: np.random.Generator
) -> LinearMap:
    """TPE with early stopping (as the paper does): a fifth of the people (at least two) held
    out for validation, ``W`` checked every ``TPE_CHECK`` steps, the best kept (PCA included)."""
    u = _unit(x)
    offset = np.zeros(x.shape[1])  # centring measured worse on both labelled sets
    # PCA initialisation, all dimensions (dlib's 128 are already compact; with fewer faces than
    # dimensions the basis is completed, so held-out people keep their other directions).
    # (eigenvectors of the 128 x 128 scatter: an SVD of u with the full basis would build an
    # n x n matrix)
    _, vecs = np.linalg.eigh(u.T @ u)
    w = vecs[:, ::-1].T[:TPE_DIMS].copy()
    people = np.unique(labels)
    val_people = rng.choice(people, max(2, len(people) // 5), replace=False)
    val = np.isin(labels, val_people)
    if len(people) - len(val_people) < 2:
        return LinearMap("tpe", w, offset, normalize_input=True, normalize_output=True)
    same, diff = _pairs(labels[val], rng, MAX_SAME_PAIRS_PER_PERSON, MAX_TRAINING_PAIRS)
    far = max(0.01, 2 / max(len(diff), 1))

    def validation(w: np.ndarray) -> float:
        y = _unit(u[val] @ w.T)
        return tar_at_far(_distances(y, same), _distances(y, diff), far) or 0.0

    best_w, best_score = w, validation(w)
    keep = ~val
    neg_keep = np.isin(negatives.label, labels[keep])
    trainer = _tpe_steps(
        u[keep], labels[keep], _unit(negatives.x[neg_keep]), negatives.label[neg_keep], w, rng
    )
    for step, w_now in enumerate(trainer, start=1):
        if step % TPE_CHECK == 0:
            score = validation(w_now)
            if score > best_score:
                best_w, best_score = w_now.copy(), score
    return LinearMap("tpe", best_w, offset, normalize_input=True, normalize_output=True)


def _tpe_steps(
    u: np.ndarray,
    labels: np.ndarray,
    neg_u: np.ndarray,
    neg_label: np.ndarray,
    w: np.ndarray,
    rng: np.random.Generator,
) -> Iterator[np.ndarray]:
    """``W`` after each of ``TPE_STEPS`` mini-batches of SGD on triplets (unit-length ``u``)."""
    velocity = np.zeros_like(w)
    people, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse)
    order = np.argsort(inverse, kind="stable")
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - start[inverse[order]]
    anchors_ok = np.flatnonzero(sizes[inverse] >= 2)
    if not len(anchors_ok) or len(people) < 2:
        return
    neg_by_person = {int(k): np.flatnonzero(neg_label == p) for k, p in enumerate(people)}
    for _ in range(TPE_STEPS):
        a = rng.choice(anchors_ok, TPE_BATCH)
        person = inverse[a]
        # another face of the anchor's person, uniformly
        step = rng.integers(1, sizes[person])
        pos = order[start[person] + (rank[a] + step) % sizes[person]]
        # candidate negatives: other people's faces (a rejected face, when the anchor's person
        # has some, replaces the first candidate)
        cand = rng.integers(0, len(u), (TPE_BATCH, TPE_NEGATIVE_TRIES))
        same_person = inverse[cand] == inverse[a][:, None]
        cand_vec = u[cand]
        if len(neg_u):
            for t, i in enumerate(a):
                rej = neg_by_person.get(int(inverse[i]))
                if rej is not None and len(rej):
                    cand_vec[t, 0] = neg_u[rej[rng.integers(len(rej))]]
                    same_person[t, 0] = False
        ha = _unit(u[a] @ w.T)
        hc = _unit(cand_vec @ w.T)
        sims = np.einsum("bd,bkd->bk", ha, hc)
        sims[same_person] = -np.inf
        best = np.argmax(sims, axis=1)
        valid = np.isfinite(sims[np.arange(len(a)), best])
        if not valid.any():
            yield w
            continue
        av, pv = u[a[valid]], u[pos[valid]]
        nv = cand_vec[np.flatnonzero(valid), best[valid]]
        ya, yp, yn = av @ w.T, pv @ w.T, nv @ w.T
        na, np_, nn = (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12 for v in (ya, yp, yn))
        ha, hp, hn = ya / na, yp / np_, yn / nn
        z = TPE_SHARPNESS * (np.sum(ha * hn, axis=1) - np.sum(ha * hp, axis=1))
        g = (TPE_SHARPNESS / (1.0 + np.exp(-z)))[:, None] / len(av)  # d loss / d (S_an - S_ap)
        ga = _through_unit(ha, na, g * (hn - hp))
        gp = _through_unit(hp, np_, -g * ha)
        gn = _through_unit(hn, nn, g * ha)
        grad = ga.T @ av + gp.T @ pv + gn.T @ nv
        velocity = TPE_MOMENTUM * velocity - TPE_RATE * grad
        w = w + velocity
        yield w


def _through_unit(h: np.ndarray, norm: np.ndarray, grad_h: np.ndarray) -> np.ndarray:
    """The gradient with respect to ``v`` given that with respect to ``h = v / |v|``."""
    return (grad_h - np.sum(grad_h * h, axis=1, keepdims=True) * h) / norm


def fit(
    method: str,
    x: np.ndarray,
    labels: np.ndarray,
    negatives: Negatives | None = None,
    *,
    seed: int = 0,
) -> LinearMap:
    """The ``method``'s map learned from faces ``x`` labelled ``labels`` (and ``negatives``),
    scaled to raw units (module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    negatives = negatives if negatives is not None else Negatives.none(x.shape[1])
    rng = np.random.default_rng(seed)
    if method == RAW:
        return identity(x.shape[1])
    if method == "unit":
        m = LinearMap("unit", np.eye(x.shape[1]), np.zeros(x.shape[1]), normalize_input=True)
    elif method == "wccn":
        m = _fit_wccn(x, labels)
    elif method == "lda":
        m = _fit_lda(x, labels)
    elif method == "kissme":
        m = _fit_kissme(x, labels, negatives, rng)
    elif method == "tpe":
        m = _fit_tpe(x, labels, negatives, rng)
    else:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    return _scaled(m, x, labels, seed)


# --- measuring ---------------------------------------------------------------------------------


def tar_at_far(same: np.ndarray, different: np.ndarray, far: float) -> float | None:
    """Share of same-person distances accepted at the distance where a share ``far`` of the
    different-person distances is accepted; None when there are too few different pairs to
    place that distance (fewer than 2 / far: at 2 / far pairs the threshold is the third
    closest different pair)."""
    if len(same) == 0 or len(different) < 2 / far:
        return None
    k = int(np.floor(far * len(different)))
    threshold = float(np.partition(different, k)[k])  # accept d < threshold: at most k pairs
    return float(np.mean(same < threshold))


def rank1(y: np.ndarray, labels: np.ndarray) -> float | None:
    """Share of faces (of people with 2+ faces) whose nearest other face is the same person."""
    counts = np.unique(labels, return_counts=True)
    multi = np.isin(labels, counts[0][counts[1] >= 2])
    if multi.sum() == 0 or len(np.unique(labels)) < 2:
        return None
    hits = 0
    queries = np.flatnonzero(multi)
    sq = np.sum(y * y, axis=1)
    for start in range(0, len(queries), 1024):
        q = queries[start : start + 1024]
        d = sq[q][:, None] + sq[None, :] - 2 * y[q] @ y.T
        d[np.arange(len(q)), q] = np.inf
        hits += int(np.sum(labels[np.argmin(d, axis=1)] == labels[q]))
    return hits / len(queries)


@dataclass
class FoldScore:
    """One method on one fold's held-out people."""

    tar: dict[float, float | None]
    rank1: float | None
    same_pairs: int
    different_pairs: int


@dataclass
class MethodResult:
    """A method's figures over the folds (pair-weighted means; None where not measurable)."""

    method: str
    tar: dict[float, float | None]
    rank1: float | None
    score: float | None = None  # the figure methods are compared by (see CVResult.metric)
    gain: float | None = None  # score minus raw's score
    folds: list[FoldScore] = field(default_factory=list)


@dataclass
class CVResult:
    """Cross-validation of every method on the same folds."""

    metric: float | None  # the false-match rate whose TAR is the score (None: not measurable)
    folds: int
    results: dict[str, MethodResult]

    def best(self) -> MethodResult | None:
        """The learned method with the highest score (raw excluded), if any was measured."""
        learned = [r for m, r in self.results.items() if m != RAW and r.score is not None]
        return max(learned, key=lambda r: (r.score, -METHODS.index(r.method)), default=None)


def _fold_of(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold number per face; whole people per fold, people shuffled and dealt round-robin
    by size so that folds hold similar numbers of faces."""
    people, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    order = rng.permutation(len(people))
    order = order[np.argsort(-counts[order], kind="stable")]
    fold_of_person = np.empty(len(people), dtype=np.int64)
    fold_of_person[order] = np.arange(len(people)) % folds
    return fold_of_person[inverse]


def score_held_out(
    y: np.ndarray, labels: np.ndarray, rng: np.random.Generator, fars: Sequence[float] = FARS
) -> FoldScore:
    """Verification and rank-1 among faces ``y`` (already mapped) labelled ``labels``."""
    same, diff = _pairs(labels, rng, MAX_SAME_PAIRS_PER_PERSON, MAX_DIFFERENT_PAIRS)
    ds, dd = _distances(y, same), _distances(y, diff)
    return FoldScore(
        tar={f: tar_at_far(ds, dd, f) for f in fars},
        rank1=rank1(y, labels),
        same_pairs=len(ds),
        different_pairs=len(dd),
    )


def _mean(values: list[tuple[float | None, int]]) -> float | None:
    got = [(v, w) for v, w in values if v is not None and w > 0]
    if not got:
        return None
    return float(sum(v * w for v, w in got) / sum(w for _, w in got))


def cross_validate(
    x: np.ndarray,
    labels: np.ndarray,
    negatives: Negatives | None = None,
    *,
    methods: Sequence[str] = METHODS,
    folds: int = 5,
    seed: int = 0,
    fars: Sequence[float] = FARS,
) -> CVResult:
    """Every method fitted on all but one fold of people and measured on that fold.

    ``folds`` is lowered so that each fold holds at least two people. The score is the TAR at
    the smallest false-match rate in ``fars`` measurable on every fold (enough different
    pairs), else the next; None when none is.
    """
    # One BLAS thread: the matrices are small, and threads cost more than they give (on a
    # shared 2-core machine, faces' 1 359 faces: 17 s with OpenBLAS's threads, 4.6 s without).
    with threadpool_limits(limits=1, user_api="blas"):
        return _cross_validate(x, labels, negatives, methods, folds, seed, fars)


def _cross_validate(
    x: np.ndarray,
    labels: np.ndarray,
    negatives: Negatives | None,
    methods: Sequence[str],
    folds: int,
    seed: int,
    fars: Sequence[float],
) -> CVResult:
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels)
    negatives = negatives if negatives is not None else Negatives.none(x.shape[1])
    people = np.unique(labels)
    folds = max(2, min(folds, len(people) // 2))
    rng = np.random.default_rng(seed)
    fold = _fold_of(labels, folds, rng)
    methods = [RAW, *[m for m in methods if m != RAW]]
    results = {m: MethodResult(m, {}, None) for m in methods}
    for k in range(folds):
        train, test = fold != k, fold == k
        train_people = np.unique(labels[train])
        # Rejections teach, but are not measured on: the user rejected them because clustering,
        # on raw distances, got them wrong, so any other metric would look better on them
        # (with simulated rejections, bench_learn.py: CV gains of 8-11 points on lfw-dev that
        # were 1.4 on the people held out).
        neg_train = negatives.of(train_people)
        for m in methods:
            mapped = fit(m, x[train], labels[train], neg_train, seed=seed + k)
            # the same pair sample for every method on a fold
            score = score_held_out(
                mapped.apply(x[test]), labels[test], np.random.default_rng(seed * 1000 + k), fars
            )
            results[m].folds.append(score)
    for r in results.values():
        r.tar = {
            f: (
                _mean([(s.tar[f], s.same_pairs) for s in r.folds])
                if all(s.tar[f] is not None for s in r.folds)
                else None
            )
            for f in fars
        }
        r.rank1 = _mean([(s.rank1, s.same_pairs) for s in r.folds])
    metric = next(
        (f for f in sorted(fars) if results[RAW].tar.get(f) is not None),
        None,
    )
    for r in results.values():
        r.score = r.tar[metric] if metric is not None else None
        raw_score = results[RAW].score
        r.gain = r.score - raw_score if r.score is not None and raw_score is not None else None
    return CVResult(metric=metric, folds=folds, results=results)


@dataclass(frozen=True)
class PlacementScore:
    """Held-out named faces placed the way new faces are placed, raw vs a learned map (counts
    summed over the folds; wrong = placed in another named person)."""

    method: str
    held_out: int
    raw_right: int
    raw_wrong: int
    right: int
    wrong: int

    @property
    def gain(self) -> float | None:
        """Share of held-out faces placed right, learned minus raw (None: nothing held out)."""
        return (self.right - self.raw_right) / self.held_out if self.held_out else None


# (embeddings, owner per face: a person label or -1, rows to place) -> label per row or -1
Placer = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _face_folds(labels: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """A fold per face, dealt within each person, so that every person keeps two named faces
    in every fold (-1: never held out: people with fewer than three faces). ``folds`` >= 3."""
    fold = np.full(len(labels), -1, dtype=np.int64)
    for person in np.unique(labels):
        rows = np.flatnonzero(labels == person)
        if len(rows) >= 3:
            fold[rng.permutation(rows)] = np.arange(len(rows)) % folds  # ceil(n / 3) <= n - 2
    return fold


def cross_validate_placement(
    x: np.ndarray,
    labels: np.ndarray,
    negatives: Negatives | None,
    method: str,
    place: Placer,
    *,
    folds: int = 3,
    seed: int = 0,
) -> PlacementScore:
    """Does ``method`` place a named person's new faces better than the raw embedding?

    A share of each person's faces (one fold in ``folds``, dealt within each person, each
    keeping two or more named) is held out, the map fitted on the rest (and ``negatives``), and
    the held-out faces placed by ``place`` among the rest, once raw and once mapped. Rejections
    teach but are not placed: they are faces the raw embedding got wrong (see
    :func:`cross_validate`)."""
    with threadpool_limits(limits=1, user_api="blas"):
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(labels)
        rng = np.random.default_rng(seed)
        folds = max(3, folds)
        fold = _face_folds(labels, folds, rng)
        counts = np.zeros(4, dtype=np.int64)  # raw right, raw wrong, right, wrong
        held = 0
        for k in range(folds):
            test = np.flatnonzero(fold == k)
            if not len(test):
                continue
            train = fold != k
            owner = np.where(train, labels, -1)
            m = fit(method, x[train], labels[train], negatives, seed=seed)
            truth = labels[test]
            raw, mapped = place(x, owner, test), place(m.apply(x), owner, test)
            counts += [
                np.sum(got == truth) if right else np.sum((got != -1) & (got != truth))
                for got in (raw, mapped)
                for right in (True, False)
            ]
            held += len(test)
        return PlacementScore(method, held, *(int(c) for c in counts))
