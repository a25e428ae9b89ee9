"""The clustering step for the faces left over: a face left in no person joins its nearest
person when this library's own people say that it is more likely theirs than not (after the
rule steps, before the small pairs).

The rule steps before it (attach within the person's spread, with most of the face's nearest
faces theirs) are written for the worst library: many one-photo strangers among dense people,
where a person's odd photo and a stranger beside them look alike. Where strangers are few (a
family's archive, a folder of well-known people), most faces the rules leave out are people's
odd photos, and leaving them out costs recall for no precision. How many strangers a library
holds is not known in advance, so it is measured:

* **What the evidence says** (a likelihood ratio). Faces of people are looked up as if new
  (left out of their person: their person should come first) and as a stranger would be (their
  person and its faces gone: every candidate is wrong), a fixed sample of ``LOOKUPS``; of those
  lookups, only the ones the rule steps would refuse are kept, since those are what the faces
  left over are. A logistic regression of "the best candidate is right" on the evidence (the
  distance to the candidate's mean face over the candidate's own spread, that distance, the
  runner-up margin, the share of the face's ``ATTACH_NEIGHBOURS`` nearest faces that are
  theirs, the distance to their nearest face) is fitted on them; less the log odds of its
  training share, it gives each face left over the likelihood ratio of "its nearest person's"
  over "somebody else's".
* **How many faces left over are people's** (the prior), estimated from the faces left over
  themselves by expectation-maximisation (Saerens, Latinne & Decaestecker, 2002: adjusting a
  classifier's outputs to new a priori probabilities): the share is the mean posterior, the
  posteriors follow from the share, until they agree. Only faces with a person among their
  nearest faces count: a face near nobody (the others in group photos) has no evidence and no
  one to join, and counted in it made the faces near a person look less likely theirs
  (../shared/faces: share 0.10 of all 194 leftovers, 8 joined; 0.34 of the 164 near a person,
  46 joined, F 0.947 -> 0.958). On ../shared/lfw-dev, whose faces left over are mostly its
  496 one-photo strangers, it comes out near zero (0.016); on its 100 people alone (0.32),
  and on ../shared/faces, well above.
* A face joins its best candidate when the posterior is at least ``threshold``
  (``ATTACH_POSTERIOR``, 0.5: more likely than not), never a person holding a face of its
  photo. Candidates are the people among its nearest faces.

Where strangers are many the prior is near zero and nothing joins; where they are few the
people's odd photos come in. Only in catalogs of ``MUTUAL_MIN_FACES`` faces or more (a few
dozen lookups teach nothing), and only when the refused lookups hold at least ``MIN_RIGHT``
right answers and some wrong ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from photocluster.people.thresholds import ATTACH_NEIGHBOURS, MUTUAL_MIN_FACES

LOOKUPS = 4_000  # faces of people looked up to learn from (a fixed random sample)
WIDE = 64  # nearest faces searched to find a looked-up face's nearest outside its person
MIN_RIGHT = 5  # right answers among the refused lookups needed to learn anything
_CHUNK = 4_096  # faces whose candidates are weighed at once (bounded temporaries)

# rows -> (distances, indices) of each row's nearest faces, nearest first (-1: none)
WideSearch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Rule:
    """The rule steps' limits, to tell which lookups they would refuse (ClusterParams)."""

    spread_ratio: float
    attach_distance: float
    attach_margin: float
    attach_share: float

    def refuses(self, f: np.ndarray) -> np.ndarray:
        rel, d, margin, share = f[:, 0], f[:, 1], f[:, 2], f[:, 3]
        ok = (margin >= self.attach_margin) & (share >= self.attach_share)
        if self.spread_ratio > 0:
            ok &= rel <= self.spread_ratio
        if self.attach_distance > 0:
            ok &= d <= self.attach_distance
        return ~ok


@dataclass
class _People:
    """The clusters as arrays: id -> position, centroid, spread (median distance of members to
    the centroid; a typical one where a cluster has none), size, and the members of position
    ``i``: ``order[start[i] : start[i + 1]]``."""

    pos: np.ndarray  # cluster id -> position (-1: no such cluster)
    cents: np.ndarray
    spread: np.ndarray
    size: np.ndarray
    order: np.ndarray
    start: np.ndarray
    span: int  # cluster ids are below this

    def members(self, i: int) -> np.ndarray:
        return self.order[self.start[i] : self.start[i + 1]]


def _people(labels: np.ndarray, ids: np.ndarray, cents: np.ndarray, spread: np.ndarray) -> _People:
    """The clusters of ``labels`` as arrays, from their ids (sorted), centroids and spreads
    (``clustering.spreads``); a spread of 0 (one face, or copies) becomes a typical one."""
    span = int(ids.max()) + 1
    pos = np.full(span, -1, dtype=np.int64)
    pos[ids] = np.arange(len(ids))
    rows = np.flatnonzero(labels >= 0)
    where = pos[labels[rows]]
    size = np.bincount(where, minlength=len(ids))
    by = np.argsort(where, kind="stable")
    start = np.concatenate([[0], np.cumsum(size)])
    spread = np.array(spread, dtype=np.float64)
    ok = spread > 0
    spread[~ok] = np.median(spread[ok]) if ok.any() else 0.3
    return _People(pos, cents, spread, size, rows[by], start, span)


def _evidence(
    x: np.ndarray,
    rows: np.ndarray,
    near: np.ndarray,
    dist: np.ndarray,
    cand: np.ndarray,
    people: _People,
    own: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The best candidate of each face ``rows[i]`` and its evidence. ``near``/``dist``: its
    nearest faces and their distances; ``cand``: the cluster each of those stands for (-1: none
    or not allowed). ``own``: per row (cluster, centroid, spread, size) to use for that cluster
    instead (a face looked up as if new: its person without it; cluster -1: none)."""
    n, k = cand.shape
    valid = cand >= 0
    p = people.pos[np.where(valid, cand, 0)]
    cent = people.cents[p]
    spread = people.spread[p]
    size = people.size[p].astype(np.float64)
    if own is not None:
        mine = valid & (cand == own[0][:, None])
        cent = np.where(mine[:, :, None], own[1][:, None, :], cent)
        spread = np.where(mine, own[2][:, None], spread)
        size = np.where(mine, own[3][:, None], size)
    d = np.where(valid, np.linalg.norm(x[rows][:, None, :] - cent, axis=2), np.inf)
    at = np.argmin(d, axis=1)
    line = np.arange(n)
    best = np.where(np.isfinite(d[line, at]), cand[line, at], -1)
    db = d[line, at]
    other = np.where(cand != best[:, None], d, np.inf).min(axis=1)
    margin = np.full(n, 0.5)
    both = np.isfinite(other) & np.isfinite(db)
    margin[both] = other[both] - db[both]
    theirs = valid & (cand == best[:, None])
    share = theirs.sum(axis=1) / np.minimum(k, np.maximum(size[line, at], 1))
    nearest = np.where(theirs, dist, np.inf).min(axis=1)
    rel = np.where(np.isfinite(db), db, 0.0) / spread[line, at]
    feats = np.stack([rel, db, margin, share, nearest], axis=1)
    return best, np.where(np.isfinite(feats), feats, 0.0)


def _allowed(
    cand: np.ndarray, rows: np.ndarray, groups: np.ndarray | None, held: np.ndarray, span: int
) -> np.ndarray:
    """``cand`` with -1 where the cluster holds a face of the row's photo (``held``: sorted
    keys photo * ``span`` + cluster of every clustered face)."""
    if groups is None or len(held) == 0:
        return cand
    key = groups[rows][:, None] * span + cand
    at = np.minimum(np.searchsorted(held, key), len(held) - 1)
    hit = (cand >= 0) & (held[at] == key)
    return np.where(hit, -1, cand)


def _lookups(
    x: np.ndarray,
    labels: np.ndarray,
    people: _People,
    sample: np.ndarray,
    wide: WideSearch,
    groups: np.ndarray | None,
    held: np.ndarray,
    rule: Rule,
) -> tuple[np.ndarray, np.ndarray]:
    """Evidence and right/wrong of the lookups of faces ``sample`` that ``rule`` refuses."""
    k = ATTACH_NEIGHBOURS
    feats, right = [], []
    for start in range(0, len(sample), _CHUNK):
        rows = sample[start : start + _CHUNK]
        dist, idx = wide(rows)
        ok = (idx >= 0) & (idx != rows[:, None])
        lab = np.where(ok, labels[np.maximum(idx, 0)], -1)
        mine = labels[rows]
        # As a stranger would be: its person and its person's faces gone.
        gone = ok & (lab != mine[:, None])
        order = np.argsort(~gone, axis=1, kind="stable")[:, :k]
        s_idx = np.take_along_axis(np.where(gone, idx, -1), order, axis=1)
        s_dist = np.take_along_axis(dist, order, axis=1)
        s_cand = _allowed(
            np.take_along_axis(np.where(gone, lab, -1), order, axis=1),
            rows,
            groups,
            held,
            people.span,
        )
        best, f = _evidence(x, rows, s_idx, s_dist, s_cand, people)
        keep = (best >= 0) & rule.refuses(f)
        feats.append(f[keep])
        right.append(np.zeros(int(keep.sum()), dtype=np.int64))
        # As if new: left out of its person (people of three faces or more).
        first = np.argsort(~ok, axis=1, kind="stable")[:, :k]
        n_idx = np.take_along_axis(np.where(ok, idx, -1), first, axis=1)
        n_dist = np.take_along_axis(dist, first, axis=1)
        n_cand = np.take_along_axis(lab, first, axis=1)
        n_cand = np.where(
            n_cand == mine[:, None], n_cand, _allowed(n_cand, rows, groups, held, people.span)
        )
        p = people.pos[mine]
        m = people.size[p].astype(np.float64)
        big = m >= 3
        cent = (people.cents[p] * m[:, None] - x[rows]) / np.maximum(m - 1, 1)[:, None]
        spread = np.array(
            [
                _spread_without(x, people.members(int(i)), int(r), cent[j])
                for j, (i, r) in enumerate(zip(p.tolist(), rows.tolist(), strict=True))
            ]
        )
        spread = np.where(spread > 0, spread, people.spread[p])
        own = (np.where(big, mine, -1), cent, spread, m - 1)
        best, f = _evidence(x, rows, n_idx, n_dist, np.where(big[:, None], n_cand, -1), people, own)
        keep = big & (best >= 0) & rule.refuses(f)
        feats.append(f[keep])
        right.append((best[keep] == mine[keep]).astype(np.int64))
    return np.concatenate(feats), np.concatenate(right)


def _spread_without(x: np.ndarray, members: np.ndarray, row: int, cent: np.ndarray) -> float:
    """The median distance of ``members`` other than ``row`` (up to 500) to ``cent``."""
    members = members[members != row][:500]
    if len(members) == 0:
        return 0.0
    return float(np.median(np.linalg.norm(x[members] - cent, axis=1)))


def sample_rows(n: int) -> np.ndarray:
    """The faces of a catalog of ``n`` whose wide neighbourhoods are kept when the k-NN graph is
    built once for clustering (three times ``LOOKUPS``: the lookups are drawn from those of
    them that end in a cluster)."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(n, min(n, 3 * LOOKUPS), replace=False))


def graph_wide(rows: np.ndarray, dist: np.ndarray, idx: np.ndarray) -> WideSearch:
    """Search answered from the neighbour lists ``dist``/``idx`` kept for faces ``rows``
    (sorted; e.g. the rows of the k-NN graph built for clustering)."""

    def search(asked: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.searchsorted(rows, asked)
        return dist[at], idx[at]

    return search


def logistic_regression(
    x: np.ndarray, y: np.ndarray, c: float = 1.0, iterations: int = 50
) -> tuple[np.ndarray, float]:
    """Coefficients and intercept of an L2-regularised logistic regression of ``y`` (0/1) on
    ``x``: the optimum scikit-learn's ``LogisticRegression(C=c)`` finds (penalty
    ``|w|^2 / 2``, intercept not penalised), by Newton's method in NumPy: five features need no
    import of scikit-learn (~1 s), which clustering avoids up to 4 000 faces."""
    a = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(a.shape[1])
    penalty = np.eye(a.shape[1]) / c
    penalty[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(a @ w, -50, 50)))
        grad = a.T @ (p - y) + penalty @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + penalty + 1e-9 * np.eye(a.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def member_share(llr: np.ndarray, iterations: int = 200) -> tuple[float, np.ndarray]:
    """The share of faces with a candidate that are their candidate's (the prior) and each
    face's posterior, from the log likelihood ratios ``llr`` (-inf: no candidate) by
    expectation-maximisation. Faces with no candidate have no evidence either way and no
    person to join: they are left out of the share (counted in, a library whose leftovers are
    mostly faces far from everyone, as the others in group photos are, would look as if few
    faces near a person were theirs)."""
    has = ~np.isneginf(llr)
    post = np.zeros(len(llr))
    if not has.any():
        return 0.0, post
    known = llr[has]
    share = 0.5
    theirs = np.zeros(len(known))
    for _ in range(iterations):
        theirs = 1 / (1 + np.exp(-np.clip(known + np.log(share / (1 - share)), -50, 50)))
        new = float(np.clip(theirs.mean(), 1e-6, 1 - 1e-6))
        if abs(new - share) < 1e-7:
            share = new
            break
        share = new
    post[has] = theirs
    return share, post


def attach_likely_faces(
    x: np.ndarray,
    labels: np.ndarray,
    clusters: tuple[np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
    rule: Rule,
    near: Callable[[np.ndarray], np.ndarray],
    wide: WideSearch,
    groups: np.ndarray | None = None,
    sample_from: np.ndarray | None = None,
) -> np.ndarray:
    """``labels`` with each face in no person (-1) that is more likely than ``threshold`` its
    best candidate's, joined to it (module docstring). ``clusters``: the ids, centroids and
    spreads of ``labels``' clusters (``clustering.spreads``); ``near``: rows -> their
    ``ATTACH_NEIGHBOURS`` nearest faces (-1: none); ``wide``: rows -> the distances and indices
    of their ``WIDE`` nearest faces; ``sample_from``: the faces the lookups may be drawn from
    (default: every face; above 4 000 faces, those ``wide`` can answer for)."""
    labels = np.asarray(labels).copy()
    left = np.flatnonzero(labels < 0)
    clustered = np.flatnonzero(labels >= 0)
    if threshold <= 0 or len(x) < MUTUAL_MIN_FACES or len(left) == 0 or len(clustered) == 0:
        return labels
    people = _people(labels, *clusters)
    g = None if groups is None else np.asarray(groups, dtype=np.int64)
    held = (
        np.unique(g[clustered] * people.span + labels[clustered])
        if g is not None
        else np.zeros(0, dtype=np.int64)
    )
    pool = clustered if sample_from is None else np.intersect1d(sample_from, clustered)
    rng = np.random.default_rng(0)  # a fixed sample: the same faces give the same people
    sample = np.sort(rng.choice(pool, min(LOOKUPS, len(pool)), replace=False))
    feats, right = _lookups(x, labels, people, sample, wide, g, held, rule)
    if int(right.sum()) < MIN_RIGHT or int(right.sum()) == len(right):
        return labels
    coef, intercept = logistic_regression(feats, right)
    base = float(np.log(right.mean() / (1 - right.mean())))
    best = np.full(len(left), -1, dtype=np.int64)
    llr = np.full(len(left), -np.inf)
    for start in range(0, len(left), _CHUNK):
        rows = left[start : start + _CHUNK]
        idx = near(rows)
        ok = idx >= 0
        dist = np.where(
            ok, np.linalg.norm(x[rows][:, None, :] - x[np.maximum(idx, 0)], axis=2), np.inf
        )
        cand = _allowed(np.where(ok, labels[np.maximum(idx, 0)], -1), rows, g, held, people.span)
        b, f = _evidence(x, rows, idx, dist, cand, people)
        part = slice(start, start + len(rows))
        best[part] = b
        has = b >= 0
        if has.any():
            llr[part][has] = f[has] @ coef + intercept - base
    _share, post = member_share(llr)
    join = (best >= 0) & (post >= threshold)
    labels[left[join]] = best[join]
    return labels
