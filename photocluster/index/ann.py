"""Nearest faces among many: the k-NN graph of a face set, and the one faiss HNSW set-up.

Both the face index (:mod:`photocluster.index.store`, kept on disk beside the catalog) and the
large-scale clustering (:mod:`photocluster.people.knn_hdbscan`, a graph built for one run) build
their HNSW graphs here, with the same links per node and construction effort. Each keeps its own
search effort (``efSearch``), measured for its own use: see :data:`KNN_EF_SEARCH` and
``face_index.HNSW_EF_SEARCH``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Below this many faces the k-NN graph is computed exactly (faiss flat search, BLAS): 18 s at
# 100 000 faces, but ~26 min extrapolated at 1 000 000. Beyond it, an HNSW graph (faiss), chosen
# by bench/bench_cluster_scale.py knn: at 100 000 faces IVF-Flat gave recall@30 0.72 in 5.6 s
# (nprobe 16) or 0.82 in 12 s (nprobe 64), HNSW M 32 0.94 in 13 s; at 1 000 000 IVF-Flat
# (nprobe 16) fell to 0.44 in 160 s.
EXACT_KNN = 150_000
HNSW_M = 32  # links per node: 16 gave recall@30 0.87 on the k-NN graph, 32 gave 0.94
HNSW_EF_CONSTRUCTION = 80
# Search effort of a k-NN graph built for one clustering run (at least 2 k): the figures above
# and in hnsw_search_from were measured with it.
KNN_EF_SEARCH = 64
_BLOCK = 65_536  # faces per search call: bounds the temporary (block x k) arrays


def new_hnsw(vectors: np.ndarray, ef_search: int) -> Any:
    """A faiss HNSW graph (M :data:`HNSW_M`, efConstruction :data:`HNSW_EF_CONSTRUCTION`)
    holding ``vectors`` (float32 rows), searched with ``ef_search``."""
    import faiss  # heavy import (~0.3 s), only when a graph is built

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexHNSWFlat(x.shape[1], HNSW_M)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.hnsw.efSearch = ef_search
    index.add(x)
    return index


def knn(x: np.ndarray, k: int, *, exact: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances (float32) and indices (int64) of each row's ``k`` nearest rows.

    The row itself is normally among them (distance 0). A neighbour not found (possible with an
    approximate index) has index -1 and distance +inf.
    """
    import faiss  # heavy import (~0.3 s), only when a graph is built

    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    k = min(k, n)
    if exact is None:
        exact = n <= EXACT_KNN
    index: faiss.Index
    if exact:
        index = faiss.IndexFlatL2(dim)
        index.add(x)
    else:
        index = new_hnsw(x, ef_search=max(KNN_EF_SEARCH, 2 * k))
    dist = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, _BLOCK):
        block = x[start : start + _BLOCK]
        if exact:
            d, i = index.search(block, k)
        else:  # every face is in the graph: start each search at the face itself
            d, i = hnsw_search_from(index, block, np.arange(start, start + len(block)), k)
        dist[start : start + len(d)] = d
        idx[start : start + len(i)] = i
    missing = idx < 0
    np.sqrt(np.maximum(dist, 0.0, out=dist), out=dist)
    dist[missing] = np.inf
    return dist, idx


def hnsw_search_from(
    index: Any, queries: np.ndarray, entry: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """faiss HNSW search (squared distances, rows) on the bottom layer only, each query starting
    from a given row of the graph instead of descending from the top.

    For the k-NN graph of the indexed faces themselves, the natural start is the face's own
    row: measured at 1 000 000 synthetic faces (M 32, efSearch 64, same cost), the usual
    top-down search missed the face's own region for 16 % of faces (recall@1 0.84, recall@30
    0.78); starting from the face gave recall@30 0.83, recall@4 0.92.
    """
    import faiss  # heavy import (~0.3 s), only when a graph is searched

    q = np.ascontiguousarray(queries, dtype=np.float32)
    start = np.ascontiguousarray(entry, dtype=np.int32)
    start_d = np.zeros(len(q), dtype=np.float32)
    dist = np.empty((len(q), k), dtype=np.float32)
    rows = np.empty((len(q), k), dtype=np.int64)
    index.search_level_0(
        len(q),
        faiss.swig_ptr(q),
        k,
        faiss.swig_ptr(start),
        faiss.swig_ptr(start_d),
        faiss.swig_ptr(dist),
        faiss.swig_ptr(rows),
    )
    return dist, rows
