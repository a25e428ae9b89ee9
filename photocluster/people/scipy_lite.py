"""The few SciPy functions the clustering rule uses, in NumPy, for catalogs small enough that
importing SciPy (about 0.2 s: ``scipy.sparse`` alone is 0.1 s) costs more than the work.

Each gives SciPy's numbers bit for bit (``tests/test_clustering.py`` compares them), by doing
the same arithmetic in the same order: :func:`pdist` sums each pair's squared differences one
dimension after the other, as ``scipy.spatial.distance.pdist`` does; :func:`average_linkage` is
``scipy.cluster.hierarchy.linkage(method="average")``'s nearest-neighbour-chain algorithm with
its update and tie rules and its relabelling; :func:`components` numbers connected components
as ``scipy.sparse.csgraph.connected_components`` does (by their lowest node).
:mod:`photocluster.people.clustering` uses them up to its ``_BIG`` faces, SciPy above.
"""

from __future__ import annotations

import numpy as np

# Pairs summed at once in :func:`pdist` (a block of rows x all faces): 8 MiB per array.
_BLOCK_ENTRIES = 1 << 20


def pdist(x: np.ndarray) -> np.ndarray:
    """Condensed Euclidean distances between the rows of float64 ``x`` (pairs (0, 1), (0, 2),
    ..., (1, 2), ...), each the square root of a sequential sum over the dimensions (one
    vectorised addition per dimension, over a block of rows' pairs at a time)."""
    n, dim = x.shape
    out = np.empty(n * (n - 1) // 2)
    at = 0
    xt = np.ascontiguousarray(x.T)  # dimensions first: each one's values contiguous
    step = max(1, _BLOCK_ENTRIES // max(1, n))
    for start in range(0, n - 1, step):
        block = xt[:, start : start + step]
        acc = np.zeros((block.shape[1], n))
        for j in range(dim):
            diff = block[j][:, None] - xt[j][None, :]
            acc += diff * diff
        for i in range(block.shape[1]):
            row = start + i
            if row < n - 1:
                out[at : at + n - 1 - row] = np.sqrt(acc[i, row + 1 :])
                at += n - 1 - row
    return out


def squareform(condensed: np.ndarray, n: int) -> np.ndarray:
    """The symmetric ``n`` x ``n`` matrix of condensed distances, zeros on the diagonal."""
    square = np.zeros((n, n))
    upper = np.triu_indices(n, k=1)
    square[upper] = condensed
    square[upper[1], upper[0]] = condensed
    return square


def average_linkage(condensed: np.ndarray, n: int) -> np.ndarray:
    """The (n - 1, 4) linkage matrix of average linkage (UPGMA) over ``n`` points."""
    d = squareform(condensed, n)
    size = np.ones(n, dtype=np.int64)
    z = np.empty((n - 1, 4))
    chain: list[int] = []
    for k in range(n - 1):
        if not chain:
            chain.append(int(np.flatnonzero(size > 0)[0]))
        while True:  # along the chain of nearest neighbours until two are mutual
            x = chain[-1]
            y, current = (chain[-2], d[x, chain[-2]]) if len(chain) > 1 else (-1, np.inf)
            row = np.where((size > 0) & (np.arange(n) != x), d[x], np.inf)
            best = int(np.argmin(row))  # the first of equals, as SciPy's strict "<" keeps
            if row[best] < current:
                y, current = best, row[best]
            if len(chain) > 1 and y == chain[-2]:
                break
            chain.append(y)
        del chain[-2:]
        x, y = min(x, y), max(x, y)
        nx, ny = int(size[x]), int(size[y])
        z[k] = (x, y, current, nx + ny)
        size[x] = 0
        size[y] = nx + ny
        others = (size > 0) & (np.arange(n) != y)
        new = (nx * d[others, x] + ny * d[others, y]) / (nx + ny)
        d[others, y] = new
        d[y, others] = new
    z = z[np.argsort(z[:, 2], kind="mergesort")]
    _relabel_clusters(z, n)
    return z


def _relabel_clusters(z: np.ndarray, n: int) -> None:
    """SciPy's ``label``: the clusters each row merges, named as a sorted linkage names them
    (leaves 0..n-1, the cluster made by row i is n + i; smaller id first), and their sizes."""
    parent = np.arange(2 * n - 1)
    sizes = np.ones(2 * n - 1, dtype=np.int64)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = int(parent[root])
        while parent[a] != root:
            a, parent[a] = int(parent[a]), root
        return root

    for i in range(n - 1):
        a, b = find(int(z[i, 0])), find(int(z[i, 1]))
        z[i, 0], z[i, 1] = min(a, b), max(a, b)
        parent[a] = parent[b] = n + i
        sizes[n + i] = sizes[a] + sizes[b]
        z[i, 3] = sizes[n + i]


def components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The connected component of each of ``n`` nodes joined by edges ``rows[i]``-``cols[i]``,
    numbered 0, 1, ... in the order of each component's lowest node."""
    parent = np.arange(n)

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = int(parent[a])
        return a

    for a, b in zip(rows.tolist(), cols.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.array([find(a) for a in range(n)], dtype=np.int64)
    _, first, inverse = np.unique(roots, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]
