"""Cluster face embeddings into identities: a pure function of arrays (no catalog, no I/O).

Every step that joins faces decides relative to the people and faces around it, never with one
distance for everyone: where dlib's embedding is dense (populations it is weaker on) different
people are closer than any global "same person" distance, and where a person is alone, "nearest
person within a distance" hands a stranger over. Global distances (``thresholds``) are only
caps. Pipeline of :func:`cluster_embeddings` (defaults chosen by measurement on two labelled
sets, see ``ClusterParams`` and the README's "How thresholds were chosen"):

1. HDBSCAN over the 128-d embeddings (Euclidean), which is density-relative itself and leaves
   faces in sparse regions as noise (-1). Then:
   a. a cluster with a member further than ``eject_distance`` from its centroid is re-clustered
      alone (small groups hide inside a parent cluster otherwise);
   b. a cluster is cut in two (average linkage) when its halves rarely look alike: fewer than
      ``split_share`` of the cross pairs within ``SAME_PERSON``, or, for two halves of four
      faces or more, within the halves' own spread (``OWN_PAIRS_PERCENTILE``);
   c. members further than ``eject_distance`` from their centroid, or further than
      ``spread_ratio`` times the cluster's median member distance, become noise;
   d. two clusters whose cross pairs are as close as each one's own photos (at least
      ``merge_share`` of them) are joined;
   e. a cluster whose face pairs are mostly further apart than ``SAME_PERSON`` (fewer than
      ``verify_share`` within it) is not one person: its faces become noise.
2. One face per photo per cluster (cannot-link): the face nearest the centroid stays.
3. Attach (:func:`attach_faces`): a noise face joins the nearest cluster when within
   ``attach_distance`` of its centroid and ``spread_ratio`` times its spread, ``attach_margin``
   clearer than the runner-up, and at least ``attach_share`` of its ``ATTACH_NEIGHBOURS``
   nearest faces are in it (its own neighbourhood says so), never a cluster holding a face of
   its photo. Beyond the spread it still joins when ``attach_mutual`` of those nearest faces
   count it among their own nearest (mutual nearest neighbours; catalogs of
   ``MUTUAL_MIN_FACES`` faces or more). Incremental matching of new faces in
   ``photocluster.people.assign`` uses the same rule.
4. The test of 1e again (attached faces can make a cluster of strangers look like one); a
   cluster whose faces are not nearer one another than to the faces around them (the median
   over its faces of nearest member / nearest other face above ``separation``) is not one
   person either, judged now that each person's leftovers have joined it; the
   optional centroid merge (``merge_distance``, off), cannot-link again, clusters under
   ``min_cluster_size`` become noise.
5. A face still in no cluster joins the cluster among its nearest faces that it more likely
   than ``attach_posterior`` belongs to, as this library's own clusters measure it: a
   likelihood ratio learnt from looking up clustered faces the rules above would refuse, and
   the share of leftover faces near a person that are people's (not strangers), estimated from
   the leftovers themselves (:mod:`photocluster.people.posterior`; catalogs of
   ``MUTUAL_MIN_FACES`` faces or more). Where strangers are many that share is near zero and
   nothing joins.
6. Faces still left over within ``pair_distance`` of each other that are mutual nearest
   neighbours (each among the other's two nearest faces) form small clusters. Last, so that
   two odd photos of a known person join that person (5) rather than becoming a piece of it:
   on ../shared/faces pairing first made 2-photo pieces of Virat Kohli and others (F 0.958
   against 0.966 pairing last; lfw-dev unchanged).

Every step is linear in the number of faces (one sort groups the members of all clusters; no
scan of all faces per cluster), and above ``_BIG`` faces float32 embeddings stay float32 and one
k-NN graph serves HDBSCAN and the nearest-face tests, so a million faces cluster in minutes
within a few times the embedding matrix (``bench/bench_cluster_scale.py``).

Labels are 0..k-1 for clusters and -1 for noise; cluster numbers carry no meaning across runs
(``photocluster.people.assign`` maps them to stable people).
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import numpy as np

from photocluster.people import hdbscan_core, knn_hdbscan, posterior, scipy_lite
from photocluster.people.params import ClusterParams
from photocluster.people.thresholds import (
    ATTACH_NEIGHBOURS,
    MUTUAL_MIN_FACES,
    OWN_PAIRS_PERCENTILE,
    SAME_PERSON,
)

if TYPE_CHECKING:
    from collections.abc import Callable

NOISE = -1

# Above this many faces, HDBSCAN runs on a k-nearest-neighbour graph
# (photocluster.people.knn_hdbscan) instead of the hdbscan package's exact algorithms: in 128
# dimensions those are O(n^2) in memory (generic) or time (Boruvka: 37 s at 10 000 faces).
# Measured on 10 000 synthetic faces around real identities: k-NN path 2.9 s, pairwise F 0.929 vs
# exact 0.930; on the 1 579 real faces of ../shared/faces both give 0.901 before the post-steps.
_BIG = 4000


def as_matrix(embeddings: np.ndarray) -> np.ndarray:
    """The embeddings as a float matrix: float64, except that above ``_BIG`` faces float32 input
    is used as it is (a float64 copy of a million faces is another 1 GiB; distances between
    embeddings need nothing like float64's precision)."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError("embeddings must be a 2-d array (faces x dimensions)")
    if x.dtype == np.float32 and len(x) > _BIG:
        return x
    return np.asarray(x, dtype=np.float64)


def members_by_label(
    labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, list[np.ndarray]]:
    """The cluster ids (sorted) and each one's member indices (ascending), from one sort.
    ``mask``: the faces that count (default: ``labels >= 0``).

    (``np.nonzero(labels == c)`` per cluster is a scan of every face per cluster: 5·10¹⁰
    comparisons for a million faces in 50 000 clusters.)
    """
    idx = np.flatnonzero(labels >= 0 if mask is None else mask)
    order = idx[np.argsort(labels[idx], kind="stable")]
    ids, starts = np.unique(labels[order], return_index=True)
    return ids, np.split(order, starts[1:]) if len(ids) else []


def hdbscan_labels(
    x: np.ndarray,
    params: ClusterParams,
    single: bool = True,
    neighbours: knn_hdbscan.Neighbours | None = None,
) -> np.ndarray:
    """Step 1 alone: HDBSCAN labels (-1 = noise). ``neighbours`` may supply the k-NN graph used
    above ``_BIG`` faces (e.g. from the face index); it is ignored below."""
    x = as_matrix(x)
    n = len(x)
    if n < max(2, params.min_cluster_size):
        return np.full(n, NOISE, dtype=np.int64)
    if n > _BIG:
        return knn_hdbscan.knn_hdbscan_labels(x, params, single, neighbours=neighbours)
    # hdbscan's exact ("generic") algorithm through its compiled steps alone: the same labels
    # as hdbscan.HDBSCAN, without its import of scikit-learn (hdbscan_core)
    tries = (False, True) if single else (False,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels, *one = hdbscan_core.hdbscan_labels(
            x,
            params.min_cluster_size,
            params.min_samples,
            method=params.method,
            epsilon=params.epsilon,
            allow_single_cluster=tries,
        )
    if one and (labels < 0).all():
        # HDBSCAN never returns its root as a cluster unless told to, so a catalog of one
        # person comes back as all noise. Accept the single cluster only if it is tight.
        members = x[one[0] >= 0]
        if len(members) >= 2 and _spread(members) <= SAME_PERSON:
            labels = one[0]
    return labels


def _spread(x: np.ndarray) -> float:
    """The 90th percentile of pairwise distances (on at most 500 faces)."""
    x = x[:500]
    sq = (x * x).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    return float(np.percentile(d[np.triu_indices(len(x), k=1)], 90))


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Renumber clusters 0..k-1 by first appearance, keeping -1 for noise."""
    out = np.full(len(labels), NOISE, dtype=np.int64)
    mask = labels >= 0
    ids, first = np.unique(labels[mask], return_index=True)
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(ids))
    out[mask] = rank[np.searchsorted(ids, labels[mask])]
    return out


def centroids(
    x: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The cluster ids (sorted) and the mean embedding (float64) of each. ``mask``: the faces
    that count (default: ``labels >= 0``)."""
    mask = labels >= 0 if mask is None else mask
    ids, inverse, counts = np.unique(labels[mask], return_inverse=True, return_counts=True)
    if len(ids) == 0:
        return ids, np.zeros((0, x.shape[1]))
    if len(x) <= _BIG:  # no SciPy import: the members added in the same order, the same sums
        sums = np.zeros((len(ids), x.shape[1]), dtype=x.dtype)
        np.add.at(sums, inverse.reshape(-1), x[mask])
        return ids, np.asarray(sums, dtype=np.float64) / counts[:, None]
    from scipy.sparse import csr_matrix

    # clusters x faces indicator times the embeddings: one pass over the members only
    indicator = csr_matrix(
        (np.ones(len(inverse), dtype=x.dtype), (inverse.reshape(-1), np.flatnonzero(mask))),
        shape=(len(ids), len(x)),
    )
    sums = np.asarray(indicator @ x, dtype=np.float64)
    return ids, sums / counts[:, None]


# Entries of a points x centroids distance block: bounds memory whatever the number of people.
_BLOCK_ENTRIES = 1 << 23


def _two_nearest(
    points: np.ndarray, cents: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of the nearest centroid, its distance and the runner-up distance, per point."""
    n = len(points)
    nearest = np.zeros(n, dtype=np.int64)
    d1 = np.full(n, np.inf)
    d2 = np.full(n, np.inf)
    if len(cents) == 0:
        return nearest, d1, d2
    step = max(1, _BLOCK_ENTRIES // len(cents))
    for start in range(0, n, step):
        d = _distances(points[start : start + step], cents)
        rows = np.arange(len(d))
        best = np.argmin(d, axis=1)
        nearest[start : start + len(d)] = best
        d1[start : start + len(d)] = d[rows, best]
        if d.shape[1] > 1:
            d[rows, best] = np.inf
            d2[start : start + len(d)] = d.min(axis=1)
    return nearest, d1, d2


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances, rows of ``a`` x rows of ``b``, in ``a`` 's precision."""
    b = np.asarray(b, dtype=a.dtype if a.dtype == np.float32 else np.float64)
    sa, sb = (a * a).sum(axis=1), (b * b).sum(axis=1)
    return np.sqrt(np.maximum(sa[:, None] + sb[None, :] - 2.0 * a @ b.T, 0.0))


def _loose(x: np.ndarray, members: np.ndarray, distance: float) -> bool:
    centre = x[members].mean(axis=0)
    return bool((np.linalg.norm(x[members] - centre, axis=1) > distance).any())


def split_loose_clusters(x: np.ndarray, labels: np.ndarray, params: ClusterParams) -> np.ndarray:
    """Step 1b: re-cluster, on its own, any cluster with a member too far from its centroid.

    With few faces HDBSCAN's excess-of-mass selection often prefers one parent cluster to two
    small children (three photos of one person next to five of another become one cluster).
    Clustered alone, the parent cannot be chosen (its root), so the children come out.
    """
    labels = labels.copy()
    if params.eject_distance <= 0:
        return labels
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for members in members_by_label(labels)[1]:
        if len(members) < 2 * params.min_cluster_size or not _loose(
            x, members, params.eject_distance
        ):
            continue
        # Here a group of min_cluster_size faces must be able to count as dense.
        sub_params = dataclasses.replace(
            params, min_samples=max(1, min(params.min_samples, params.min_cluster_size - 1))
        )
        sub = hdbscan_labels(x[members], sub_params, single=False)
        if len(np.unique(sub[sub >= 0])) < 2:
            continue
        for k in np.unique(sub).tolist():
            labels[members[sub == k]] = NOISE if k < 0 else next_label
            next_label += 0 if k < 0 else 1
    return labels


# Clusters larger than this are checked for a split on a random sample of this many faces
# (average linkage is quadratic in the faces it looks at).
_SPLIT_SAMPLE = 1000


def _first_half(z: np.ndarray, n: int) -> np.ndarray:
    """Leaves under one side of the last merge of linkage matrix ``z`` over ``n`` leaves (what
    ``fcluster(z, 2, "maxclust")`` gives, without its per-call validation, which cost more than
    the linkage itself on 50 000 small clusters)."""
    first = np.zeros(n, dtype=bool)
    stack = [int(z[-1, 0])]
    while stack:
        node = stack.pop()
        if node < n:
            first[node] = True
        else:
            stack += (int(z[node - n, 0]), int(z[node - n, 1]))
    return first


# SciPy's pair distances, average linkage and connected components, or, in a catalog of up to
# _BIG faces, the same numbers from scipy_lite: importing SciPy (~0.2 s) would cost more than
# the work there; above, SciPy's compiled code is the faster.


def _pdist(x: np.ndarray, small: bool) -> np.ndarray:
    if small:
        return scipy_lite.pdist(np.asarray(x, dtype=np.float64))
    from scipy.spatial.distance import pdist

    return np.asarray(pdist(x))


def _squareform(pairs: np.ndarray, n: int, small: bool) -> np.ndarray:
    if small:
        return scipy_lite.squareform(pairs, n)
    from scipy.spatial.distance import squareform

    return np.asarray(squareform(pairs))


def _average_linkage(pairs: np.ndarray, n: int, small: bool) -> np.ndarray:
    if small:
        return scipy_lite.average_linkage(pairs, n)
    from scipy.cluster.hierarchy import linkage

    return np.asarray(linkage(pairs, "average"))


def _components(n: int, rows: np.ndarray, cols: np.ndarray, small: bool) -> np.ndarray:
    if small:
        return scipy_lite.components(n, rows, cols)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return np.asarray(connected_components(graph, directed=False)[1])


def split_mixed_clusters(
    x: np.ndarray,
    labels: np.ndarray,
    share: float,
    distance: float = SAME_PERSON,
    own_percentile: float | None = OWN_PAIRS_PERCENTILE,
    min_half: int = 4,
) -> np.ndarray:
    """Step 1c: split a cluster made of two groups of faces that do not look alike.

    HDBSCAN's excess-of-mass selection on few faces often keeps two or three people of four or
    five photos each as one cluster, and their members can all be near the mixed centroid, so
    step 1b does not see it. Here each cluster is cut in two by average linkage; the halves are
    two clusters (each checked again; a lone face becomes noise) when fewer than ``share`` of
    the pairs across the cut are within ``distance`` (``SAME_PERSON``), or, when both halves
    have at least ``min_half`` faces (each could be a person), when fewer than ``share`` of them
    are as close as the halves' own photos: within the larger of the two halves'
    ``own_percentile`` pair distances (never beyond ``distance``; ``None``: no such test).
    Clusters above ``_SPLIT_SAMPLE`` faces are cut on a random sample and their other faces go
    with the nearer half.

    The second test is relative because where faces are dense (on ../shared/lfw-dev, a chain
    of twelve people that HDBSCAN keeps as one cluster at min_samples 4) different people's
    pairs are within SAME_PERSON more often than ``share``, but rarely within each one's own
    spread. It is kept to halves that could be people: applied to a single edge face it cut
    off a genuine face as often as a stranger (lfw-dev recall 0.899 -> 0.851).
    """
    labels = labels.copy()
    if share <= 0 or distance <= 0:
        return labels
    small = len(x) <= _BIG
    rng = np.random.default_rng(0)
    next_label = int(labels.max()) + 1 if len(labels) else 0
    todo = list(members_by_label(labels)[1])
    while todo:
        members = todo.pop()
        if len(members) < 2:
            continue
        sample = members
        if len(members) > _SPLIT_SAMPLE:
            sample = np.sort(rng.choice(members, _SPLIT_SAMPLE, replace=False))
        pairs = _pdist(x[sample], small)
        first = _first_half(_average_linkage(pairs, len(sample), small), len(sample))
        if first.all() or not first.any():
            continue  # identical faces: nothing to cut
        square = _squareform(pairs, len(sample), small)
        cross = square[np.ix_(first, ~first)]
        alike = (cross <= distance).mean() >= share
        if alike and own_percentile is not None and min(first.sum(), (~first).sum()) >= min_half:
            own = max(
                float(np.percentile(w[np.triu_indices(len(w), k=1)], own_percentile))
                for w in (square[np.ix_(half, half)] for half in (first, ~first))
            )
            alike = (cross <= min(distance, own)).mean() >= share
        if alike:
            continue
        if len(sample) < len(members):
            halves = np.stack([x[sample[first]].mean(axis=0), x[sample[~first]].mean(axis=0)])
            to_half = _distances(x[members], halves)
            first = to_half[:, 0] <= to_half[:, 1]
        for part in (members[first], members[~first]):
            if len(part) == 1:
                labels[part] = NOISE
            else:
                labels[part] = next_label
                next_label += 1
                todo.append(part)
    return labels


def eject_outliers(x: np.ndarray, labels: np.ndarray, distance: float) -> np.ndarray:
    """Step 1d: members further than ``distance`` from their cluster's centroid become noise.

    Repeated until no member is that far, since each ejection moves the centroid. HDBSCAN keeps
    a lone face in a cluster when the cluster is still joined to it at the density level where
    the cluster forms (common with few faces); such a face is no closer than any stranger.
    """
    labels = labels.copy()
    if distance <= 0:
        return labels
    checking = labels.copy()  # clusters still to check (a cluster that lost no face is done)
    for _ in range(20):
        ids, cents = centroids(x, checking)
        if len(ids) == 0:
            break
        member = np.flatnonzero(checking >= 0)
        where = np.searchsorted(ids, checking[member])
        d = np.empty(len(member))
        for start in range(0, len(member), 65_536):  # bounded temporaries
            part = slice(start, start + 65_536)
            d[part] = np.linalg.norm(x[member[part]] - cents[where[part]], axis=1)
        far = d > distance
        if not far.any():
            break
        # Eject only the worst face of each loose cluster per round: the centroid moves.
        worst: dict[int, tuple[float, int]] = {}
        for i, lab, dist in zip(
            member[far].tolist(), labels[member[far]].tolist(), d[far], strict=True
        ):
            if dist > worst.get(lab, (0.0, -1))[0]:
                worst[lab] = (float(dist), i)
        labels[[i for _, i in worst.values()]] = NOISE
        checking = np.where(np.isin(labels, list(worst)), labels, NOISE)
    return labels


# Rounds of ejection: each ejects the worst member of every cluster that has one too far.
_EJECT_ROUNDS = 20


def _to_centroid(x: np.ndarray, member: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Distance of each face ``member[i]`` to the centroid ``cents[i]`` (bounded temporaries)."""
    d = np.empty(len(member))
    for start in range(0, len(member), 65_536):
        part = slice(start, start + 65_536)
        d[part] = np.linalg.norm(x[member[part]] - cents[part], axis=1)
    return d


def copy_ids(x: np.ndarray) -> np.ndarray:
    """Each face's distinct-embedding id: exact copies (one photo in two folders, a file
    re-saved without change) share one."""
    rows = np.ascontiguousarray(x)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).reshape(-1)
    _, inverse = np.unique(as_bytes, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _counted(labels: np.ndarray, copies: np.ndarray | None) -> np.ndarray:
    """The members that count for a cluster's spread: one face per distinct embedding."""
    mask = labels >= 0
    if copies is None or not mask.any():
        return mask
    member = np.flatnonzero(mask)
    _, first = np.unique(
        np.stack([labels[member], copies[member]], axis=1), axis=0, return_index=True
    )
    out = np.zeros(len(labels), dtype=bool)
    out[member[first]] = True
    return out


def spreads(
    x: np.ndarray, labels: np.ndarray, copies: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cluster ids (sorted), their centroids and each one's spread: the median distance of
    its members to its centroid (one sort for all clusters). With ``copies`` (see
    :func:`copy_ids`), exact copies of a face count once: ten copies of one photo would make a
    person look tight and push their other photos out."""
    counted = _counted(labels, copies)
    ids, cents = centroids(x, labels, counted)
    member = np.flatnonzero(counted)
    if len(ids) == 0:
        return ids, cents, np.zeros(0)
    where = np.searchsorted(ids, labels[member])
    d = _to_centroid(x, member, cents[where])
    order = np.lexsort((d, where))
    ds = d[order]
    _, start, counts = np.unique(where[order], return_index=True, return_counts=True)
    median = (ds[start + (counts - 1) // 2] + ds[start + counts // 2]) / 2
    return ids, cents, median


def eject_beyond_spread(
    x: np.ndarray,
    labels: np.ndarray,
    ratio: float,
    min_faces: int = 4,
    copies: np.ndarray | None = None,
) -> np.ndarray:
    """Step 1e: a member further from its cluster's centroid than ``ratio`` times the median
    distance of the cluster's other members becomes noise (worst first, until none is).

    The limit is the person's own spread, not one distance for everyone: where dlib's
    embedding is dense (populations it was trained on less), people are tight and a stranger
    HDBSCAN kept at the edge of one sits well outside that person's spread, although within any
    global same-person distance. Clusters under ``min_faces`` distinct faces have no spread to
    speak of. With ``copies`` (:func:`copy_ids`) exact copies of a face count once and leave
    together.
    """
    labels = labels.copy()
    if ratio <= 0:
        return labels
    checking = labels.copy()  # clusters still to check (one that lost no face is done)
    for _ in range(_EJECT_ROUNDS):
        counted = _counted(checking, copies)
        ids, cents = centroids(x, checking, counted)
        member = np.flatnonzero(counted)
        if len(member) == 0:
            break
        where = np.searchsorted(ids, checking[member])
        d = _to_centroid(x, member, cents[where])
        order = np.lexsort((d, where))
        ds = d[order]
        _, start, counts = np.unique(where[order], return_index=True, return_counts=True)
        big = counts >= max(3, min_faces)
        start, counts = start[big], counts[big]
        last = start + counts - 1  # the worst member of each cluster
        others_median = (ds[start + (counts - 2) // 2] + ds[start + (counts - 1) // 2]) / 2
        out = ds[last] > ratio * others_median
        if not out.any():
            break
        worst = member[order[last[out]]]
        lost = np.unique(checking[worst])
        if copies is not None:  # the worst face's exact copies in the same cluster go too
            same = np.isin(checking, lost) & np.isin(copies, copies[worst])
            pairs = set(zip(checking[worst].tolist(), copies[worst].tolist(), strict=True))
            worst = np.array(
                [
                    i
                    for i in np.flatnonzero(same).tolist()
                    if (int(checking[i]), int(copies[i])) in pairs
                ],
                dtype=np.int64,
            )
        labels[worst] = NOISE
        checking = np.where(np.isin(labels, lost), labels, NOISE)
    return labels


# Faces per cluster on which merge_alike_clusters measures a share (the share of cross pairs
# within SAME_PERSON is a proportion: 100 x 100 pairs give it to about +-0.05).
_MERGE_SAMPLE = 100
# Nearest other clusters considered for a merge, per cluster.
_MERGE_NEIGHBOURS = 8


def _sample(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(a, _MERGE_SAMPLE, replace=False) if len(a) > _MERGE_SAMPLE else a


def _cross_share(
    x: np.ndarray, a: np.ndarray, b: np.ndarray, distance: float, rng: np.random.Generator
) -> float:
    """Share of face pairs across member sets ``a`` and ``b`` within ``distance``."""
    return float((_distances(x[_sample(a, rng)], x[_sample(b, rng)]) <= distance).mean())


def own_pairs(
    x: np.ndarray, members: np.ndarray, rng: np.random.Generator, percentile: float
) -> float:
    """The ``percentile`` of a cluster's own pair distances (on at most ``_MERGE_SAMPLE`` faces):
    how far apart this person's photos are; 0 for a single face."""
    if len(members) < 2:
        return 0.0
    return float(np.percentile(_pdist(x[_sample(members, rng)], len(x) <= _BIG), percentile))


def merge_alike_clusters(
    x: np.ndarray,
    labels: np.ndarray,
    share: float,
    groups: np.ndarray | None = None,
    distance: float = SAME_PERSON,
    own_percentile: float | None = OWN_PAIRS_PERCENTILE,
) -> np.ndarray:
    """Step 1f: join two clusters when at least ``share`` of the face pairs across them are as
    close as each cluster's own photos are to each other: within the smaller of the two
    clusters' ``own_percentile`` pair distances, and never beyond ``distance``
    (``SAME_PERSON``). ``own_percentile=None`` compares with ``distance`` alone.

    HDBSCAN splits a person whose photos form two dense groups (a run of low-resolution crops,
    an era, a look); this is the split step's test turned round. The limit is the clusters' own
    spread because one global distance chains different people where faces are dense: on
    ../shared/lfw-dev, 1 % of nearby pairs of *different* people's clusters had two thirds of
    their cross pairs within SAME_PERSON (none within their own 90th percentile, 17 % at most),
    while the one person HDBSCAN split on ../shared/faces has 62 %. The tighter cluster's limit,
    not the looser one's: a cluster that kept a stranger or two is loose, and its limit let
    two different people of lfw-dev join at min samples 5 (precision 0.930; 0.974 with the
    tighter limit, and the same result at the defaults on both sets). Candidates are each
    cluster's ``_MERGE_NEIGHBOURS`` nearest clusters whose centroids are within ``distance``.
    Most alike pairs first; a pair whose cluster already grew is measured again as merged so
    far, so no chain joins two groups that do not look alike; two clusters holding faces of one
    photo (``groups``) never join. Shares are measured on at most ``_MERGE_SAMPLE`` faces per
    cluster.
    """
    labels = labels.copy()
    if share <= 0 or distance <= 0:
        return labels
    ids, member_lists = members_by_label(labels)
    if len(ids) < 2:
        return labels
    # one generator for every sample, drawn in a fixed order, so a run is repeatable
    limit = _MergeLimit(x, distance, own_percentile, np.random.default_rng(0))
    found = _alike_pairs(x, labels, member_lists, share, limit)
    if not found:
        return labels
    members = _join_alike(x, found, member_lists, share, groups, limit)
    for c, m in members.items():
        labels[m] = ids[c]
    return labels


def dissolve_unlike_clusters(
    x: np.ndarray, labels: np.ndarray, share: float, distance: float = SAME_PERSON
) -> np.ndarray:
    """Steps 1e and 4: a cluster is one person only when at least ``share`` of its face pairs
    are within ``distance`` (``SAME_PERSON``: the pairs verification calls one person); the
    faces of any other cluster become noise (0 = off). Clusters of two faces are left alone.

    HDBSCAN's clusters are relative to the library: among many one-photo strangers and few
    people, the densest pocket of strangers is as stable as a person. With 10 of
    ../shared/lfw-dev's people among its 496 strangers it made one "person" of 27 different
    East-Asian men and another of 14 strangers: most of their pairs are further apart than any
    two photos of one person usually are (median 0.58-0.62), while 143 of the 144 people with
    three photos or more in the two labelled sets have at least 54 % of their pairs within
    ``SAME_PERSON`` (the one at 29 % passes as clustered in its whole set, not always in a
    smaller library: README, "A family's library"). A cap, not a
    neighbourhood rule: it never joins faces, only refuses a group no verification would
    accept. The dissolved faces stay leftovers, so the later steps (attach, pairs) may still
    place each one by its own neighbourhood. Shares are measured on at most ``_MERGE_SAMPLE``
    faces per cluster.
    """
    labels = labels.copy()
    if share <= 0 or distance <= 0:
        return labels
    _, member_lists = members_by_label(labels)
    rng = np.random.default_rng(0)  # one generator, drawn in cluster order: repeatable
    small = len(x) <= _BIG
    for members in member_lists:
        if len(members) < 3:
            continue
        pairs = _pdist(x[_sample(members, rng)], small)
        if float((pairs <= distance).mean()) < share:
            labels[members] = NOISE
    return labels


def dissolve_unseparated_clusters(
    x: np.ndarray, labels: np.ndarray, ratio: float, nearest: NearestFaces
) -> np.ndarray:
    """Step 4: a cluster is one person only when its faces are nearer one another than
    to the faces around them: per face, the distance to the nearest face of its cluster over the
    distance to the nearest face outside it, and the median of that over the cluster's faces at
    most ``ratio``; the faces of any other cluster become noise (0 = off). Clusters of two faces
    are left alone.

    A silhouette-like test, relative to each face's own surroundings (its ``nearest.k`` nearest
    faces), never one distance: one person's photos are each other's nearest, while a clump of
    one-photo strangers of one population, where dlib's embedding is dense, is only a dense
    patch of a crowd, its faces as near to the crowd around them as to one another. Measured
    (``bench/crowd.py --separation-report``: clustered without either test, on both labelled
    sets and on 15 lfw-dev families, k of its people among all its strangers): the medians of
    591 clusters that were one real person were at most 0.88 (most 0), and 31 of 38 clumps of
    different strangers were above 0.9. A face whose nearest faces are all of its cluster
    counts as apart (its nearest outsider is further than all of them); one whose nearest faces
    are all outside counts as not. Like :func:`dissolve_unlike_clusters` a cap that never joins
    faces: the dissolved faces may still pair by their own neighbourhood. It runs after the
    attach step only: before it, a person's own leftover photos sit around its cluster as
    "outsiders" (a tight synthetic person HDBSCAN kept half of was refused).
    """
    labels = labels.copy()
    if ratio <= 0:
        return labels
    for members, median in zip(*separation(x, labels, nearest), strict=True):
        if median > ratio:
            labels[members] = NOISE
    return labels


def separation(
    x: np.ndarray, labels: np.ndarray, nearest: NearestFaces
) -> tuple[list[np.ndarray], np.ndarray]:
    """The members of each cluster of three faces or more, and per cluster the median over its
    faces of (distance to the nearest face of the cluster / distance to the nearest face outside
    it), both among each face's ``nearest.k`` nearest faces: 0 for a face whose nearest faces
    are all its cluster's, inf for one whose nearest faces are all outside
    (:func:`dissolve_unseparated_clusters`)."""
    tested = [m for m in members_by_label(labels)[1] if len(m) >= 3]
    if not tested:
        return [], np.zeros(0)
    rows = np.concatenate(tested)
    own_ratio = np.empty(len(rows))
    for start in range(0, len(rows), 8192):  # (8192 x k x 128) differences at a time
        part = rows[start : start + 8192]
        near = nearest.of(part)
        valid = near >= 0
        d = np.linalg.norm(x[np.maximum(near, 0)] - x[part][:, None, :], axis=2)
        same = valid & (labels[np.maximum(near, 0)] == labels[part][:, None])
        other = valid & ~same
        d_in = np.where(same, d, np.inf).min(axis=1)
        d_out = np.where(other, d, np.inf).min(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            own_ratio[start : start + len(part)] = np.where(
                np.isinf(d_out), 0.0, d_in / np.maximum(d_out, 1e-12)
            )
    starts = np.cumsum([0] + [len(m) for m in tested])
    medians = np.array([np.median(own_ratio[a:b]) for a, b in itertools.pairwise(starts)])
    return tested, medians


class _MergeLimit:
    """:func:`merge_alike_clusters`' distance for the cross pairs of two clusters: the smaller
    of the two clusters' own pair distances (``percentile``; a single face has none), never
    beyond ``distance``. Each cluster's own is measured once and kept until :meth:`forget`."""

    def __init__(
        self, x: np.ndarray, distance: float, percentile: float | None, rng: np.random.Generator
    ) -> None:
        self.x, self.distance, self.percentile, self.rng = x, distance, percentile, rng
        self._own: dict[int, float] = {}

    def __call__(self, a: np.ndarray, b: np.ndarray, ka: int, kb: int) -> float:
        """The limit for clusters ``ka`` and ``kb`` with members ``a`` and ``b``."""
        if self.percentile is None:
            return self.distance
        for key, m in ((ka, a), (kb, b)):
            if key not in self._own:
                self._own[key] = own_pairs(self.x, m, self.rng, self.percentile)
        spreads_ = [self._own[k] for k in (ka, kb) if self._own[k] > 0]
        return min([self.distance, *spreads_])

    def share(self, a: np.ndarray, b: np.ndarray, ka: int, kb: int) -> float:
        """The share of cross pairs of the two clusters within their limit."""
        return _cross_share(self.x, a, b, self(a, b, ka, kb), self.rng)

    def forget(self, key: int) -> None:
        """Cluster ``key`` grew: its own pairs are measured again when needed."""
        self._own.pop(key, None)


def _alike_pairs(
    x: np.ndarray,
    labels: np.ndarray,
    member_lists: list[np.ndarray],
    share: float,
    limit: _MergeLimit,
) -> list[tuple[float, int, int]]:
    """The candidate pairs of :func:`merge_alike_clusters` (each cluster's ``_MERGE_NEIGHBOURS``
    nearest clusters with a centroid within ``limit.distance``) with at least ``share`` of their
    cross pairs within the limit: (share, cluster, cluster), clusters as positions in
    ``member_lists``, each pair once."""
    _, cents = centroids(x, labels)
    k = min(_MERGE_NEIGHBOURS + 1, len(member_lists))
    if len(x) <= _BIG:  # a few centroids: no scikit-learn import (~1 s) for them
        dist, near = _nearest_centroids(cents, k)
    else:  # its brute force: 5.7 s for 30 000 centroids where _nearest_centroids takes 13 s
        from sklearn.neighbors import NearestNeighbors

        dist, near = NearestNeighbors(n_neighbors=k).fit(cents).kneighbors(cents)
    found: list[tuple[float, int, int]] = []
    for i, j in zip(*np.nonzero(dist <= limit.distance), strict=True):
        a, b = int(i), int(near[i, j])
        if a < b or (a > b and a not in near[b]):  # each pair once
            s = limit.share(member_lists[a], member_lists[b], a, b)
            if s >= share:
                found.append((s, a, b))
    return found


def _nearest_centroids(cents: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each centroid's distances to its ``k`` nearest centroids (itself first, at 0) and their
    indices, nearest first, by exact search in blocks: the neighbours scikit-learn's
    ``NearestNeighbors`` finds, without importing scikit-learn (~1 s); a distance may differ
    from its by about 1e-14 (the same sums in another order)."""
    near = np.empty((len(cents), k), dtype=np.int64)
    dist = np.empty((len(cents), k))
    sq = (cents * cents).sum(axis=1)
    step = max(1, _BLOCK_ENTRIES // len(cents))
    for start in range(0, len(cents), step):
        part = cents[start : start + step]
        # squared distances as _distances computes them; the square root of the k kept only
        d = sq[start : start + step, None] + sq[None, :] - 2.0 * part @ cents.T
        rows = np.arange(len(d))
        d[rows, rows + start] = -1.0  # each centroid its own nearest, as scikit-learn finds it
        if k < d.shape[1]:
            best = np.argpartition(d, k - 1, axis=1)[:, :k]
        else:
            best = np.broadcast_to(np.arange(d.shape[1]), d.shape)
        order = np.argsort(np.take_along_axis(d, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        near[start : start + len(d)] = best
        dist[start : start + len(d)] = np.sqrt(np.maximum(np.take_along_axis(d, best, 1), 0.0))
    dist[:, 0] = 0.0
    return dist, near


def _join_alike(
    x: np.ndarray,
    found: list[tuple[float, int, int]],
    member_lists: list[np.ndarray],
    share: float,
    groups: np.ndarray | None,
    limit: _MergeLimit,
) -> dict[int, np.ndarray]:
    """The pairs ``found`` joined, most alike first (union-find); a pair whose cluster already
    grew is measured again as merged so far; clusters holding faces of one photo (``groups``)
    never join. Each remaining cluster (position in ``member_lists``) with its members."""
    parent = list(range(len(member_lists)))

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    members = dict(enumerate(member_lists))
    photos: dict[int, set[int]] = {}
    if groups is not None:  # only for clusters that may join
        g = np.asarray(groups)
        photos = {c: set(g[members[c]].tolist()) for _, a, b in found for c in (a, b)}
    for _share, a, b in sorted(found, reverse=True):
        ra, rb = root(a), root(b)
        if ra == rb or (groups is not None and photos[ra] & photos[rb]):
            continue
        grown = len(members[ra]) + len(members[rb]) > len(member_lists[a]) + len(member_lists[b])
        # the limit holds each root's own pairs as merged so far
        if grown and limit.share(members[ra], members[rb], ra, rb) < share:
            continue  # measured again as merged so far
        parent[rb] = ra
        members[ra] = np.concatenate([members[ra], members.pop(rb)])
        limit.forget(ra)  # measured again when needed
        if groups is not None:
            photos[ra] |= photos.pop(rb)
    return members


def _exact_nearest(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows of ``x`` nearest each of ``rows`` (itself included), nearest first: exact,
    in float64 NumPy, for catalogs small enough that importing faiss would cost more."""
    data = np.asarray(x, dtype=np.float64)
    norms = (data * data).sum(axis=1)
    out = np.empty((len(rows), k), dtype=np.int64)
    for start in range(0, len(rows), 1024):
        part = rows[start : start + 1024]
        d = norms[part, None] - 2.0 * (data[part] @ data.T) + norms[None, :]
        d[np.arange(len(part)), part] = -1.0  # a face is its own nearest, as faiss finds it
        near = (
            np.argpartition(d, k - 1, axis=1)[:, :k]
            if k < len(data)
            else np.tile(np.arange(len(data)), (len(part), 1))
        )
        order = np.argsort(np.take_along_axis(d, near, axis=1), axis=1, kind="stable")
        out[start : start + len(part)] = np.take_along_axis(near, order, axis=1)
    return out


def _exact_wide(x: np.ndarray) -> posterior.WideSearch:
    """The leftover step's search of each row's ``posterior.WIDE`` nearest faces, exact
    (:func:`_exact_nearest`), with their distances; for catalogs up to ``_BIG`` faces."""

    def search(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = _exact_nearest(x, rows, min(posterior.WIDE + 1, len(x)))
        dist = np.empty(idx.shape)
        for start in range(0, len(rows), 1024):
            part = slice(start, start + 1024)
            dist[part] = np.linalg.norm(x[rows[part]][:, None, :] - x[idx[part]], axis=2)
        return dist, idx

    return search


class NearestFaces:
    """Each face's ``k`` nearest other faces (rows of ``x``; -1 where none), computed on demand
    by exact search, or read from a k-NN graph already built (``graph``: rows x >= k + 1
    neighbour indices, the row itself usually among them)."""

    def __init__(self, x: np.ndarray, k: int, graph: np.ndarray | None = None) -> None:
        self.x, self.k = x, k
        self._graph = graph
        self._index: Any = None
        self._known: dict[int, np.ndarray] = {}

    def of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        out = np.full((len(rows), self.k), -1, dtype=np.int64)
        if len(rows) == 0 or len(self.x) < 2:
            return out
        if self._graph is not None:
            found = self._graph[rows]
        else:
            todo = np.array([r for r in rows.tolist() if r not in self._known], dtype=np.int64)
            if len(todo):
                for r, n in zip(todo.tolist(), self._search(todo), strict=True):
                    self._known[r] = n
            found = np.stack([self._known[r] for r in rows.tolist()])
        for j, (r, n) in enumerate(zip(rows.tolist(), found, strict=True)):
            n = n[(n != r) & (n >= 0)][: self.k]
            out[j, : len(n)] = n
        return out

    def mutual(self, rows: np.ndarray, near: np.ndarray) -> np.ndarray:
        """For each face ``rows[i]`` and each of its nearest faces ``near[i, j]`` (-1: none),
        whether that face counts ``rows[i]`` among its own ``k`` nearest (mutual nearest
        neighbours)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(near.shape, dtype=bool)
        valid = near >= 0
        if valid.any():
            owner = np.broadcast_to(rows[:, None], near.shape)[valid]
            out[valid] = (self.of(near[valid]) == owner[:, None]).any(axis=1)
        return out

    def _search(self, rows: np.ndarray) -> np.ndarray:
        if len(self.x) <= _BIG:
            return _exact_nearest(self.x, rows, min(self.k + 1, len(self.x)))
        import faiss  # heavy import (~0.3 s), only for large catalogs

        if self._index is None:
            data = np.ascontiguousarray(self.x, dtype=np.float32)
            self._index = faiss.IndexFlatL2(data.shape[1])
            self._index.add(data)
        k = min(self.k + 1, len(self.x))
        query = np.ascontiguousarray(self.x[rows], dtype=np.float32)
        out = np.empty((len(rows), k), dtype=np.int64)
        for start in range(0, len(rows), 8192):
            out[start : start + 8192] = self._index.search(query[start : start + 8192], k)[1]
        return out


def attach_faces(
    x: np.ndarray,
    labels: np.ndarray,
    rows: np.ndarray,
    distance: float,
    margin: float = 0.0,
    *,
    ratio: float = 0.0,
    share: float = 0.0,
    near: np.ndarray | None = None,
    forbidden: list[set[int]] | None = None,
    copies: np.ndarray | None = None,
    mutual: int = 0,
    nearest: NearestFaces | None = None,
) -> np.ndarray:
    """The cluster each face ``rows[i]`` (not in one) may join, or -1: the cluster of the
    nearest allowed centroid, when all of these hold:

    * the centroid is within ``distance`` (a global cap: ``ATTACH_DISTANCE``), and within
      ``ratio`` times that cluster's own spread (``SPREAD_RATIO``; 0 = no such limit): a face
      joins a person only as close as that person's own photos are, so a tight person in a
      dense population does not take a stranger who is merely within the global distance;
      beyond the spread, a face still joins when at least ``mutual`` of its nearest faces in
      that cluster count it among their own ``ATTACH_NEIGHBOURS`` nearest (mutual nearest
      neighbours, read from ``nearest``; 0 = never): a person's odd photo is the nearest of
      some of theirs, while a stranger's nearest faces each have their own people nearer;
    * every other centroid is at least ``margin`` further;
    * at least ``share`` of the face's own nearest faces (``near[i]``: indices of rows of
      ``x``, -1 for none; ``ATTACH_NEIGHBOURS`` of them) are in that cluster: the face's
      neighbourhood says it is that person (rank-order evidence), which a stranger standing
      between people does not have;
    * the cluster is not in ``forbidden[i]`` (rejections, another face of the same photo).

    ``copies`` (:func:`copy_ids`): exact copies of a face count once in a cluster's spread.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), NOISE, dtype=np.int64)
    if distance <= 0 or len(rows) == 0:
        return out
    ids, cents, spread = spreads(x, labels, copies)
    if len(ids) == 0:
        return out
    limits = ratio * spread if ratio > 0 else None
    theirs, todo = _voted_rows(labels, len(rows), share, near)

    def assign(which: np.ndarray, caps: np.ndarray | None) -> np.ndarray:
        return assign_to_centroids(
            x[rows[which]],
            cents,
            ids,
            distance,
            margin=margin,
            forbidden=None if forbidden is None else [forbidden[i] for i in which.tolist()],
            limits=caps,
        )

    if len(todo):
        out[todo] = assign(todo, limits)
    if theirs is not None and near is not None:
        agree = ((theirs == out[:, None]) & (near >= 0)).sum(axis=1)
        out[agree < share * near.shape[1]] = NOISE
        if mutual > 0 and nearest is not None and limits is not None and len(todo):
            out = _attach_mutual(out, todo, assign, rows, theirs, near, share, mutual, nearest)
    return out


def place_faces(
    x: np.ndarray,
    owner: np.ndarray,
    rows: np.ndarray,
    params: ClusterParams,
    *,
    forbidden: list[set[int]] | None = None,
    nearest: NearestFaces | None = None,
    copies: np.ndarray | None = None,
) -> np.ndarray:
    """The person each new face ``rows[i]`` joins (-1: none), by :func:`attach_faces` with the
    parameters' rule: how `cluster` places new faces among existing people (``owner``: each
    face's person, -1 none). ``nearest`` defaults to an exact search of ``x``; ``copies`` to
    :func:`copy_ids` of ``x``."""
    rows = np.asarray(rows, dtype=np.int64)
    if nearest is None and params.attach_share > 0:
        nearest = NearestFaces(x, ATTACH_NEIGHBOURS)
    return attach_faces(
        x,
        owner,
        rows,
        params.attach_distance,
        params.attach_margin,
        ratio=params.spread_ratio,
        share=params.attach_share,
        near=None if nearest is None else nearest.of(rows),
        forbidden=forbidden,
        copies=copy_ids(x) if copies is None else copies,
        mutual=params.attach_mutual,
        nearest=nearest,
    )


def _voted_rows(
    labels: np.ndarray, n: int, share: float, near: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray]:
    """:func:`attach_faces`' prefilter: the cluster of each of the faces' nearest faces
    (``near``; -1 where none or noise), and the faces (of ``n``) that can pass the share test:
    those whose nearest faces give some cluster at least ``share`` of their votes. Without the
    share test (``share`` 0 or no ``near``): no labels, every face."""
    if share <= 0 or near is None:
        return None, np.arange(n)
    valid = near >= 0
    theirs = np.where(valid, labels[np.where(valid, near, 0)], NOISE)
    # Only a face whose nearest faces give some cluster enough votes can pass the share test:
    # the others (most strangers) need no centroid search, which is the cost of attaching at a
    # million faces.
    return theirs, np.flatnonzero(_most_voted(theirs)[1] >= share * near.shape[1])


def _most_voted(theirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of cluster labels (-1: none), the label most of them carry and how many carry it
    (-1 and 0 where none is a cluster)."""
    votes = ((theirs[:, :, None] == theirs[:, None, :]) & (theirs[:, None, :] >= 0)).sum(axis=2)
    best = np.argmax(votes, axis=1)
    rows = np.arange(len(theirs))
    return np.where(votes[rows, best] > 0, theirs[rows, best], NOISE), votes[rows, best]


def _attach_mutual(
    out: np.ndarray,
    todo: np.ndarray,
    assign: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    rows: np.ndarray,
    theirs: np.ndarray,
    near: np.ndarray,
    share: float,
    mutual: int,
    nearest: NearestFaces,
) -> np.ndarray:
    """:func:`attach_faces` beyond the spread: faces ``todo`` left out take the nearest centroid
    without the spread limit when their nearest faces still vote for it and at least ``mutual``
    of those count the face among their own nearest.

    Only in a catalog of ``MUTUAL_MIN_FACES`` faces or more: being among a face's few nearest
    is evidence only where they are a small part of the catalog. In a catalog of 40 faces, five
    nearest are an eighth of it, and a person of four photos has the nearest stranger in each of
    their lists whoever it is (small catalogs with strangers: precision 0.993 -> 0.989).
    """
    rest = todo[out[todo] < 0]
    if len(rest) == 0 or len(nearest.x) < MUTUAL_MIN_FACES:
        return out
    # The evidence first (the cluster most of its nearest faces are in, and whether they count
    # it among theirs: read from the k-NN lists), then the centroid search for the few with it.
    cand, count = _most_voted(theirs[rest])
    voted = (theirs[rest] == cand[:, None]) & (cand[:, None] >= 0)
    ok = (cand >= 0) & (count >= max(share * near.shape[1], mutual))
    rest, cand, voted = rest[ok], cand[ok], voted[ok]
    if len(rest) == 0:
        return out
    back = nearest.mutual(rows[rest], near[rest])
    ok = (voted & back).sum(axis=1) >= mutual
    rest, cand = rest[ok], cand[ok]
    if len(rest):
        got = assign(rest, None)
        ok = got == cand
        out[rest[ok]] = got[ok]
    return out


def attach_noise(
    x: np.ndarray,
    labels: np.ndarray,
    distance: float,
    margin: float = 0.0,
    *,
    ratio: float = 0.0,
    share: float = 0.0,
    nearest: NearestFaces | None = None,
    groups: np.ndarray | None = None,
    copies: np.ndarray | None = None,
    mutual: int = 0,
) -> np.ndarray:
    """Step 2: each noise face joins a cluster as :func:`attach_faces` allows (``nearest``:
    needed for ``share`` and ``mutual``), never one that holds a face of its photo
    (``groups``)."""
    labels = labels.copy()
    noise = np.flatnonzero(labels < 0)
    if distance <= 0 or len(noise) == 0:
        return labels
    forbidden = None
    if groups is not None:
        g = np.asarray(groups)
        clustered = np.flatnonzero(labels >= 0)
        shared = np.isin(g[noise], g[clustered])
        if shared.any():  # photos with a face in a cluster and another one left over
            held: dict[int, set[int]] = defaultdict(set)
            for i in clustered[np.isin(g[clustered], g[noise[shared]])].tolist():
                held[int(g[i])].add(int(labels[i]))
            forbidden = [held.get(int(g[i]), set()) for i in noise.tolist()]
    near = nearest.of(noise) if (nearest is not None and share > 0) else None
    labels[noise] = attach_faces(
        x,
        labels,
        noise,
        distance,
        margin,
        ratio=ratio,
        share=share,
        near=near,
        forbidden=forbidden,
        copies=copies,
        mutual=mutual,
        nearest=nearest,
    )
    return labels


def merge_close_clusters(
    x: np.ndarray, labels: np.ndarray, distance: float, groups: np.ndarray | None = None
) -> np.ndarray:
    """Step 3: join clusters whose centroids are within ``distance`` (closest pairs first).

    Two clusters holding faces of the same photo (same ``groups`` value) are never joined.
    """
    labels = labels.copy()
    ids = np.unique(labels[labels >= 0])
    if distance <= 0 or len(ids) < 2:
        return labels
    sums = {int(c): x[labels == c].sum(axis=0) for c in ids}
    counts = {int(c): int((labels == c).sum()) for c in ids}
    photos: dict[int, set[int]] = {}
    if groups is not None:
        for c in ids:
            photos[int(c)] = set(groups[labels == c].tolist())
    parent = {int(c): int(c) for c in ids}
    while True:
        alive = sorted(c for c in parent if parent[c] == c)
        if len(alive) < 2:
            break
        cents = np.stack([sums[c] / counts[c] for c in alive])
        sq = (cents * cents).sum(axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * cents @ cents.T, 0.0))
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=None)
        merged = False
        for flat in order:
            i, j = divmod(int(flat), len(alive))
            if d[i, j] > distance:
                break
            a, b = alive[i], alive[j]
            if groups is not None and photos[a] & photos[b]:
                continue
            parent[b] = a
            sums[a] = sums[a] + sums[b]
            counts[a] += counts[b]
            if groups is not None:
                photos[a] |= photos[b]
            labels[labels == b] = a
            merged = True
            break
        if not merged:
            break
    return labels


def enforce_cannot_link(
    x: np.ndarray, labels: np.ndarray, groups: np.ndarray, reattach_distance: float = 0.0
) -> np.ndarray:
    """Step 4: at most one face per photo (``groups``) in each cluster.

    The face nearest the cluster's centroid stays. Each other one moves to its nearest other
    cluster (by nearest member) within ``reattach_distance`` that holds no face of its photo,
    or becomes noise.
    """
    labels = labels.copy()
    groups = np.asarray(groups)
    clustered = np.flatnonzero(labels >= 0)
    # (cluster, photo) pairs held by more than one face, found by one sort
    pairs = np.stack([labels[clustered], groups[clustered]], axis=1)
    _, inverse, counts = np.unique(pairs, axis=0, return_inverse=True, return_counts=True)
    by_key: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i in clustered[counts[inverse.reshape(-1)] > 1].tolist():
        by_key[(int(labels[i]), int(groups[i]))].append(i)
    clashes = dict(by_key)
    if not clashes:
        return labels
    ids, cent_rows = centroids(x, labels)
    cents = {int(c): cent_rows[j] for j, c in enumerate(ids.tolist())}
    detached: list[int] = []
    for (cluster, _photo), faces in clashes.items():
        d = np.linalg.norm(x[faces] - cents[cluster], axis=1)
        keep = faces[int(np.argmin(d))]
        for i in faces:
            if i != keep:
                labels[i] = NOISE
                detached.append(i)
    if reattach_distance > 0 and detached:
        ids, cent_matrix = centroids(x, labels)
        taken = {(int(labels[i]), int(groups[i])) for i in np.nonzero(labels >= 0)[0].tolist()}
        forbidden = [
            {int(c) for c in ids.tolist() if (int(c), int(groups[i])) in taken} for i in detached
        ]
        moved = assign_to_centroids(
            x[detached], cent_matrix, ids, reattach_distance, margin=0.0, forbidden=forbidden
        )
        for i, lab in zip(detached, moved.tolist(), strict=True):
            if lab >= 0 and (lab, int(groups[i])) not in taken:
                labels[i] = lab
                taken.add((lab, int(groups[i])))
    return labels


def _knn_graph(
    x: np.ndarray, params: ClusterParams, neighbours: knn_hdbscan.Neighbours | None
) -> tuple[np.ndarray, np.ndarray]:
    """The k-NN graph HDBSCAN uses above ``_BIG`` faces, built (or asked for) once."""
    k = min(len(x), max(knn_hdbscan.DEFAULT_K, params.min_samples + 1))
    return neighbours(k) if neighbours is not None else knn_hdbscan.knn(x, k)


def cluster_embeddings(
    embeddings: np.ndarray,
    params: ClusterParams | None = None,
    groups: np.ndarray | None = None,
    neighbours: knn_hdbscan.Neighbours | None = None,
) -> np.ndarray:
    """Label each face with a cluster (0..k-1) or -1 for noise.

    ``groups`` gives each face's photo; faces sharing a value are never in one cluster.
    ``neighbours``: see :func:`hdbscan_labels`.

    Exact copies of a face (one photo in several folders) are clustered once and share the
    label: copies are not independent evidence, and HDBSCAN would take twelve copies of one
    photo for a dense person and leave that person's other photos out.

    The faces are clustered in one order whatever order they come in (their embeddings' byte
    order, which :func:`copy_ids` sorts by anyway): HDBSCAN's tree breaks ties between equal
    mutual-reachability distances by input order, so the same library scanned twice (faces
    numbered as the workers finished) gave different people (lfw-dev: pairwise precision
    0.981-0.990 over six orders). The result is a function of the faces alone; only the
    approximate k-NN graph above 4 000 faces (built in id order) can still differ.
    """
    params = params or ClusterParams()
    x = as_matrix(embeddings)
    if groups is not None and len(groups) != len(x):
        raise ValueError("groups must give one photo per face")
    copies = copy_ids(x)
    _, first = np.unique(copies, return_index=True)  # one row per distinct face, in byte order
    graph = None
    if neighbours is not None and len(first) > _BIG:
        graph = _distinct_neighbours(neighbours, first, copies)
    labels = _cluster_distinct(
        x[first], params, None if groups is None else np.asarray(groups)[first], graph
    )[copies]
    if groups is not None and len(first) < len(x):
        # a copy may sit in a photo whose other face shares its cluster
        labels = enforce_cannot_link(x, labels, np.asarray(groups))
    return _relabel(labels)


def _distinct_neighbours(
    neighbours: knn_hdbscan.Neighbours, first: np.ndarray, copies: np.ndarray
) -> knn_hdbscan.Neighbours:
    """The k-NN graph of the distinct faces (rows ``first``), from the graph of all faces:
    each distinct face's own row, neighbours renumbered, copies of one face kept once (the
    nearest), padded with -1 / inf where fewer than k distinct neighbours remain."""

    def graph(k: int) -> tuple[np.ndarray, np.ndarray]:
        dist, idx = neighbours(k)
        dist, idx = dist[first], idx[first]
        ids = np.where(idx >= 0, copies[np.maximum(idx, 0)], -1)
        order = np.argsort(ids, axis=1, kind="stable")  # equal ids: nearest first
        sorted_ids = np.take_along_axis(ids, order, axis=1)
        repeat = np.zeros(ids.shape, dtype=bool)
        repeat[:, 1:] = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0)
        drop = np.zeros(ids.shape, dtype=bool)
        np.put_along_axis(drop, order, repeat, axis=1)
        drop |= ids < 0
        keep_first = np.argsort(drop, axis=1, kind="stable")  # kept ones first, in order
        out_d = np.take_along_axis(np.where(drop, np.inf, dist), keep_first, axis=1)
        out_i = np.take_along_axis(np.where(drop, -1, ids), keep_first, axis=1)
        return out_d.astype(dist.dtype), out_i.astype(np.int64)

    return graph


def _cluster_distinct(
    x: np.ndarray,
    params: ClusterParams,
    groups: np.ndarray | None,
    neighbours: knn_hdbscan.Neighbours | None,
) -> np.ndarray:
    """:func:`cluster_embeddings` on faces with no exact copies among them."""
    graph = None
    wide: posterior.WideSearch | None = None
    sample_from = None
    if len(x) > _BIG:  # one k-NN graph for HDBSCAN and for each face's nearest faces
        built = [_knn_graph(x, params, neighbours)]
        graph = np.ascontiguousarray(built[0][1][:, : ATTACH_NEIGHBOURS + 1])
        if params.attach_posterior > 0:  # the leftover step's lookups: a sample's wider lists
            sample_from = posterior.sample_rows(len(x))
            wide = posterior.graph_wide(
                sample_from, built[0][0][sample_from], built[0][1][sample_from]
            )

        def cached(_k: int) -> tuple[np.ndarray, np.ndarray]:
            return built.pop()

        labels = hdbscan_labels(x, params, neighbours=cached)
        built.clear()
    else:
        labels = hdbscan_labels(x, params)
    nearest = NearestFaces(x, ATTACH_NEIGHBOURS, graph)
    labels = split_loose_clusters(x, labels, params)
    labels = split_mixed_clusters(x, labels, params.split_share)
    labels = eject_outliers(x, labels, params.eject_distance)
    labels = eject_beyond_spread(x, labels, params.spread_ratio)
    labels = merge_alike_clusters(x, labels, params.merge_share, groups)
    labels = dissolve_unlike_clusters(x, labels, params.verify_share)
    if groups is not None:  # one face per photo before leftovers join, so they know the rule
        labels = enforce_cannot_link(x, labels, np.asarray(groups))
    labels = attach_noise(
        x,
        labels,
        params.attach_distance,
        params.attach_margin,
        ratio=params.spread_ratio,
        share=params.attach_share,
        nearest=nearest,
        groups=groups,
        mutual=params.attach_mutual,
    )
    labels = dissolve_unlike_clusters(x, labels, params.verify_share)
    labels = dissolve_unseparated_clusters(x, labels, params.separation, nearest)
    labels = merge_close_clusters(x, labels, params.merge_distance, groups)
    if groups is not None:
        labels = enforce_cannot_link(x, labels, np.asarray(groups))
        # A cluster left with fewer faces than a cluster needs (e.g. one collage photo showing
        # one person four times) is not a person.
        ids, counts = np.unique(labels[labels >= 0], return_counts=True)
        small = ids[counts < params.min_cluster_size]
        labels[np.isin(labels, small)] = NOISE
    if params.attach_posterior > 0 and len(x) >= MUTUAL_MIN_FACES:
        rule = posterior.Rule(
            params.spread_ratio, params.attach_distance, params.attach_margin, params.attach_share
        )
        labels = posterior.attach_likely_faces(
            x,
            labels,
            spreads(x, labels),
            params.attach_posterior,
            rule,
            nearest.of,
            wide if wide is not None else _exact_wide(x),
            groups,
            sample_from,
        )
        if groups is not None:  # two faces of one photo may have joined one person
            labels = enforce_cannot_link(x, labels, np.asarray(groups))
    labels = pair_close_noise(x, labels, params.pair_distance, groups, nearest)
    return _relabel(labels)


def pair_close_noise(
    x: np.ndarray,
    labels: np.ndarray,
    distance: float,
    groups: np.ndarray | None = None,
    nearest: NearestFaces | None = None,
) -> np.ndarray:
    """Leftover faces within ``distance`` of each other (chained) become a small cluster.

    HDBSCAN needs ``min_samples`` close neighbours before anything is dense, so someone with two
    or three photos is never a cluster; at a strict distance such faces are the same person.
    With ``nearest``, two faces are linked only when each is among the other's two nearest
    faces in the whole catalog (mutual nearest neighbours): in a dense population a stranger is
    often within the distance of someone, but rarely that someone's nearest face. Faces of one
    photo are never linked, and a chain is kept only if it has no two faces of one photo. With
    ``nearest`` the links come from each leftover face's two nearest faces (linear in the
    leftovers); without it, from a radius search.
    """
    labels = labels.copy()
    noise = np.flatnonzero(labels < 0)
    if distance <= 0 or len(noise) < 2:
        return labels
    xn = x[noise]
    g = np.asarray(groups)[noise] if groups is not None else None
    if nearest is not None:
        # Mutual nearest neighbours are found among each face's two nearest faces: no radius
        # search (which grew with the square of the leftovers: minutes at a million faces
        # with many one-photo strangers).
        two = nearest.of(noise)[:, :2]
        position = np.full(len(x), -1, dtype=np.int64)
        position[noise] = np.arange(len(noise))
        rows = np.repeat(np.arange(len(noise)), 2)
        cols = np.where(two.reshape(-1) >= 0, position[np.maximum(two.reshape(-1), 0)], -1)
        keep = cols >= 0
        rows, cols = rows[keep], cols[keep]
        back = (two[cols] == noise[rows][:, None]).any(axis=1)
        close = np.linalg.norm(xn[rows] - xn[cols], axis=1) <= distance
        keep = back & close & (rows != cols)
    else:
        from sklearn.neighbors import NearestNeighbors  # heavy (~1 s): only without `nearest`

        nn = NearestNeighbors(radius=distance).fit(xn)
        neighbours = nn.radius_neighbors(xn, return_distance=False)
        rows = np.repeat(np.arange(len(xn)), [len(n) for n in neighbours])
        cols = np.concatenate(neighbours) if len(neighbours) else np.zeros(0, dtype=np.int64)
        keep = rows != cols
    if g is not None:
        keep &= g[rows] != g[cols]
    rows, cols = rows[keep], cols[keep]
    component = _components(len(xn), rows, cols, len(x) <= _BIG)
    next_label = int(labels.max()) + 1 if (labels >= 0).any() else 0
    for members in members_by_label(component)[1]:
        if len(members) < 2:
            continue
        if g is not None and len(set(g[members].tolist())) < len(members):
            continue  # a chain through two faces of one photo is not one person
        labels[noise[members]] = next_label
        next_label += 1
    return labels


def assign_to_centroids(
    points: np.ndarray,
    cents: np.ndarray,
    cent_labels: np.ndarray,
    max_distance: float,
    margin: float = 0.0,
    forbidden: list[set[int]] | None = None,
    limits: np.ndarray | None = None,
) -> np.ndarray:
    """Each point takes the label of its nearest allowed centroid.

    Only when that centroid is within ``max_distance`` (and within its own ``limits`` entry, if
    given) and every other centroid (allowed or not) is at least ``margin`` further; labels in
    the point's ``forbidden`` set are never given. Returns -1 where no label qualifies.
    """
    points, cents = as_matrix(points), as_matrix(cents)
    cent_labels = np.asarray(cent_labels, dtype=np.int64)
    out = np.full(len(points), NOISE, dtype=np.int64)
    if len(points) == 0 or len(cents) == 0:
        return out
    cap = np.full(len(cents), max_distance)
    if limits is not None:
        cap = np.minimum(cap, np.asarray(limits, dtype=np.float64))
    # Points with nothing forbidden: the nearest centroid and the runner-up, vectorised.
    free = np.array([not (forbidden and forbidden[i]) for i in range(len(points))], dtype=bool)
    if free.any():
        nearest, d1, d2 = _two_nearest(points[free], cents)
        ok = (d1 <= cap[nearest]) & (d2 - d1 >= margin)
        out[np.flatnonzero(free)[ok]] = cent_labels[nearest[ok]]
    rest = np.flatnonzero(~free)
    step = max(1, _BLOCK_ENTRIES // len(cents))
    for start in range(0, len(rest), step):
        block = rest[start : start + step]
        d = _distances(points[block], cents)
        for row in range(d.shape[0]):
            i = int(block[row])
            banned = forbidden[i] if forbidden else set()
            order = np.argsort(d[row])
            best = next((int(j) for j in order if int(cent_labels[j]) not in banned), None)
            if best is None or d[row, best] > cap[best]:
                continue
            others = np.delete(d[row], best)
            if others.size and others.min() - d[row, best] < margin:
                continue
            out[i] = cent_labels[best]
    return out
