"""HDBSCAN for large face sets without its quadratic cost: a sparse k-nearest-neighbour graph.

Exact HDBSCAN needs the minimum spanning tree (MST) of the mutual-reachability graph over all
pairs of faces; in 128 dimensions the ``hdbscan`` package cannot prune that (O(n²)). Nearly every
MST edge joins a face to one of its few nearest neighbours, so here:

1. the ``k`` nearest neighbours of every face (:func:`photocluster.index.ann.knn`: exact faiss below
   ``EXACT_KNN`` faces, an HNSW graph beyond);
2. core distance = distance to the ``min_samples``-th neighbour (hdbscan's definition), and
   mutual reachability ``max(core_a, core_b, d(a, b))`` on each k-NN edge;
3. the MST of that sparse graph (scipy). Pieces the k-NN graph leaves apart are joined by the
   cheapest link found between each piece and the pieces whose centroids are nearest (an upper
   bound on the exact link, so pieces still join late, as in exact HDBSCAN);
4. hdbscan's own single-linkage labelling, condensed tree and cluster selection on that tree.

A pure function of arrays, like :mod:`photocluster.people.clustering`, which calls
:func:`knn_hdbscan_labels` above ``clustering`` 's measured size.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from photocluster.index.ann import knn
from photocluster.people import hdbscan_core
from photocluster.people.thresholds import SAME_PERSON

if TYPE_CHECKING:
    from photocluster.people.params import ClusterParams

NOISE = -1
# k -> (distances, indices) of each face's k nearest faces, as knn() returns them; e.g. from the
# face index scan keeps (photocluster.index.store.knn_graph).
Neighbours = Callable[[int], tuple[np.ndarray, np.ndarray]]
# Neighbours per face. Measured on synthetic faces: 15 is 0.01-0.02 pairwise F off exact
# HDBSCAN, 30 within 0.001.
DEFAULT_K = 30
_BLOCK = 65_536  # faces per search call: bounds the temporary (block x k) arrays


def mutual_reachability_mst(
    x: np.ndarray, dist: np.ndarray, idx: np.ndarray, min_samples: int
) -> np.ndarray:
    """The (n-1, 3) MST ``[a, b, weight]`` of the mutual-reachability graph on k-NN edges,
    sorted by weight, with the graph's separate pieces joined (see the module docstring)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    n, k = dist.shape
    core = dist[:, min(min_samples, k - 1)].astype(np.float64)
    finite = np.isfinite(core)
    if not finite.all():
        core[~finite] = core[finite].max() if finite.any() else 1.0
    # Edges in int32 / float32 (the distances are float32 already): at a million faces and
    # k = 30 each edge array is 120 MiB, and this is the peak of the whole clustering.
    keep = (idx >= 0) & (idx != np.arange(n)[:, None])
    rows = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], (n, k))[keep]
    cols = idx[keep].astype(np.int32)
    weight = dist[keep].astype(np.float32)
    del keep
    core32 = core.astype(np.float32)
    np.maximum(weight, core32[rows], out=weight)
    np.maximum(weight, core32[cols], out=weight)
    # scipy treats a stored 0 as "no edge": duplicates far from any other face could hit it.
    np.maximum(weight, np.float32(1e-12), out=weight)
    graph = coo_matrix((weight, (rows, cols)), shape=(n, n)).tocsr()
    del rows, cols, weight
    tree = minimum_spanning_tree(graph).tocoo()
    del graph
    edges = np.column_stack([tree.row, tree.col, tree.data]).astype(np.float64)
    pieces, piece = connected_components(tree, directed=False)
    if pieces > 1:
        edges = np.vstack([edges, _join_pieces(x, core, piece, pieces)])
    return edges[np.argsort(edges[:, 2], kind="stable")]


def _join_pieces(x: np.ndarray, core: np.ndarray, piece: np.ndarray, pieces: int) -> np.ndarray:
    """MST edges joining the k-NN graph's pieces: ``pieces - 1`` rows ``[a, b, weight]``.

    Each piece is offered links to the (up to) 8 pieces with the nearest centroids; a link's
    weight is the mutual reachability of the two faces nearest to each other's centroids.
    Pieces still apart after that (rare) are chained above every other weight.
    """
    import faiss
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components, minimum_spanning_tree

    order = np.argsort(piece, kind="stable")
    bounds = np.searchsorted(piece[order], np.arange(pieces + 1))
    cents = np.zeros((pieces, x.shape[1]), dtype=np.float64)
    np.add.at(cents, piece, x)
    cents /= np.bincount(piece, minlength=pieces)[:, None]
    cents32 = np.ascontiguousarray(cents, dtype=np.float32)
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(cents32)
    _, near = flat.search(cents32, min(pieces, 9))
    # For each piece and each candidate: its member nearest to the candidate's centroid.
    rep: dict[tuple[int, int], int] = {}
    for p in range(pieces):
        members = order[bounds[p] : bounds[p + 1]]
        cand = [int(c) for c in near[p] if c >= 0 and c != p]
        if not cand:
            continue
        for c, b in zip(cand, _nearest_members(x, members, cents[cand]), strict=True):
            rep[(p, c)] = b
    a_list, b_list, w_list, pa, pb = [], [], [], [], []
    for (p, c), a in rep.items():
        found = rep.get((c, p))
        # c did not list p: use c's member nearest to p's centroid
        b = (
            found
            if found is not None
            else _nearest_members(x, order[bounds[c] : bounds[c + 1]], cents[p : p + 1])[0]
        )
        d = float(np.linalg.norm(x[a] - x[b]))
        a_list.append(a)
        b_list.append(b)
        w_list.append(max(core[a], core[b], d, 1e-12))
        pa.append(p)
        pb.append(c)
    graph = coo_matrix((w_list, (pa, pb)), shape=(pieces, pieces)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    pair_edge: dict[tuple[int, int], tuple[int, int, float]] = {}
    for a, b, w, p, c in zip(a_list, b_list, w_list, pa, pb, strict=True):
        key = (min(p, c), max(p, c))
        if key not in pair_edge or w < pair_edge[key][2]:
            pair_edge[key] = (a, b, w)
    out = [pair_edge[(min(p, c), max(p, c))] for p, c in zip(tree.row, tree.col, strict=True)]
    groups, group = connected_components(tree, directed=False)
    if groups > 1:
        top = max([w for _, _, w in out] + [float(core.max())]) * 2 + 1.0
        firsts = [int(order[bounds[np.nonzero(group == g)[0][0]]]) for g in range(groups)]
        out += [(firsts[g], firsts[g + 1], top) for g in range(groups - 1)]
    return np.array(out, dtype=np.float64).reshape(-1, 3)


def _nearest_members(x: np.ndarray, members: np.ndarray, targets: np.ndarray) -> list[int]:
    """For each target point, the member (an index into ``x``) nearest to it (blocked)."""
    best_d = np.full(len(targets), np.inf)
    best = np.zeros(len(targets), dtype=np.int64)
    tt = (targets * targets).sum(axis=1)
    for start in range(0, len(members), _BLOCK):
        part = members[start : start + _BLOCK]
        m = np.asarray(x[part], dtype=np.float64)
        d = (m * m).sum(axis=1)[:, None] - 2.0 * m @ targets.T + tt[None, :]
        arg = np.argmin(d, axis=0)
        val = d[arg, np.arange(len(targets))]
        better = val < best_d
        best_d[better] = val[better]
        best[better] = part[arg[better]]
    return [int(b) for b in best]


def tree_labels(
    mst: np.ndarray,
    min_cluster_size: int,
    *,
    method: str = "eom",
    epsilon: float = 0.0,
    allow_single_cluster: bool = False,
) -> np.ndarray:
    """hdbscan's cluster extraction (condensed tree, stability, selection) on an MST."""
    linkage, _ = hdbscan_core.compiled_steps()
    return hdbscan_core.tree_to_labels(
        np.asarray(linkage.label(mst)), min_cluster_size, method, allow_single_cluster, epsilon
    )


def knn_hdbscan_labels(
    x: np.ndarray,
    params: ClusterParams,
    single: bool = True,
    *,
    k: int = DEFAULT_K,
    exact_knn: bool | None = None,
    neighbours: Neighbours | None = None,
) -> np.ndarray:
    """HDBSCAN labels (-1 = noise) from a k-NN graph: the interface of
    :func:`photocluster.people.clustering.hdbscan_labels`, for large ``x``."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError("embeddings must be a 2-d array (faces x dimensions)")
    n = len(x)
    if n < max(2, params.min_cluster_size):
        return np.full(n, NOISE, dtype=np.int64)
    min_samples = min(params.min_samples, n - 1)
    k = min(n, max(k, min_samples + 1))
    dist, idx = neighbours(k) if neighbours is not None else knn(x, k, exact=exact_knn)
    if dist.shape != (n, k):
        raise ValueError(f"neighbours gave shape {dist.shape}, not {(n, k)}")
    mst = mutual_reachability_mst(x, dist, idx, min_samples)
    del dist, idx
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = tree_labels(
            mst, params.min_cluster_size, method=params.method, epsilon=params.epsilon
        )
        if single and (labels < 0).all():
            # As hdbscan_labels: one tight cluster is accepted as the whole catalog.
            one = tree_labels(
                mst,
                params.min_cluster_size,
                method=params.method,
                epsilon=params.epsilon,
                allow_single_cluster=True,
            )
            members = np.asarray(x[one >= 0], dtype=np.float64)
            if len(members) >= 2 and _spread(members) <= SAME_PERSON:
                labels = one
    return labels


def _spread(x: np.ndarray) -> float:
    """The 90th percentile of pairwise distances (on at most 500 faces)."""
    x = x[:500]
    sq = (x * x).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    return float(np.percentile(d[np.triu_indices(len(x), k=1)], 90))
