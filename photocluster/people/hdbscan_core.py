"""hdbscan's own compiled steps, without the ``hdbscan`` package's import of scikit-learn.

``import hdbscan`` imports scikit-learn (and through it most of SciPy): about 1 s, where
clustering a catalog of a hundred faces takes milliseconds. What HDBSCAN's exact ("generic")
algorithm needs is NumPy and two of the package's compiled modules, ``_hdbscan_linkage``
(the minimum spanning tree, the single-linkage tree) and ``_hdbscan_tree`` (condensed tree,
stability, cluster selection), which import NumPy alone. :func:`compiled_steps` loads just those
two; the few lines of Python around them in ``hdbscan.hdbscan_`` (``_hdbscan_generic``,
``_tree_to_labels``) and scikit-learn's Euclidean distance matrix are written out here, step for
step, so the labels are the package's own (``tests/test_clustering.py`` compares them with
``hdbscan.HDBSCAN`` on real and random embeddings).

A pure function of arrays, used by :mod:`photocluster.people.clustering` up to its measured size
and by :mod:`photocluster.people.knn_hdbscan` for the cluster extraction above it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np


def compiled_steps() -> tuple[Any, Any]:
    """hdbscan's ``_hdbscan_linkage`` and ``_hdbscan_tree`` modules.

    Loaded under a stand-in for the ``hdbscan`` package, so that its ``__init__`` (which imports
    scikit-learn) does not run; the stand-in is removed at once, and a later ``import hdbscan``
    loads the package in full, reusing these two modules. If the package is loaded already, or
    this does not work with the installed hdbscan, the modules come from the package itself.
    """
    if "hdbscan" not in sys.modules:
        spec = importlib.util.find_spec("hdbscan")
        if spec is not None and spec.submodule_search_locations is not None:
            stand_in = types.ModuleType("hdbscan")
            stand_in.__path__ = list(spec.submodule_search_locations)
            sys.modules["hdbscan"] = stand_in
            try:
                return (
                    importlib.import_module("hdbscan._hdbscan_linkage"),
                    importlib.import_module("hdbscan._hdbscan_tree"),
                )
            except ImportError:
                pass
            finally:
                if sys.modules.get("hdbscan") is stand_in:
                    del sys.modules["hdbscan"]
    import hdbscan  # noqa: F401  # the whole package (scikit-learn too): the fallback

    return (
        importlib.import_module("hdbscan._hdbscan_linkage"),
        importlib.import_module("hdbscan._hdbscan_tree"),
    )


def euclidean_distances(x: np.ndarray) -> np.ndarray:
    """All pairwise distances of the rows of float64 ``x``, computed as scikit-learn's
    ``pairwise_distances(x, metric="euclidean")`` computes them (the same operations in the same
    order, so the same bits): ``-2 x xᵀ + |x|² + |x|²ᵀ``, negatives to 0, the diagonal 0, sqrt."""
    xx = np.einsum("ij,ij->i", x, x)[:, None]
    distances = -2 * (x @ x.T)
    distances += xx
    distances += xx.T
    np.maximum(distances, 0, out=distances)
    np.fill_diagonal(distances, 0)
    return np.sqrt(distances, out=distances)


def single_linkage_tree(x: np.ndarray, min_samples: int) -> np.ndarray:
    """``hdbscan.hdbscan_._hdbscan_generic`` for the Euclidean metric (alpha 1): mutual
    reachability over all pairs, its minimum spanning tree (Prim), sorted by weight, as a
    single-linkage tree. ``min_samples`` as ``hdbscan.hdbscan`` passes it (at most n - 1, at
    least 1)."""
    linkage, _ = compiled_steps()
    distance = euclidean_distances(x)
    # hdbscan._hdbscan_reachability.mutual_reachability (which imports scikit-learn itself)
    min_points = min(len(distance) - 1, min_samples)
    core = np.partition(distance, min_points, axis=0)[min_points]
    np.maximum(distance, core, out=distance)
    np.maximum(distance, core[:, None], out=distance)
    mst = linkage.mst_linkage_core(distance)
    mst = mst[np.argsort(mst.T[2]), :]
    return np.asarray(linkage.label(mst))


def tree_to_labels(
    single_linkage: np.ndarray,
    min_cluster_size: int,
    method: str = "eom",
    allow_single_cluster: bool = False,
    epsilon: float = 0.0,
) -> np.ndarray:
    """``hdbscan.hdbscan_._tree_to_labels``'s labels (no persistence simplification, no
    maximum cluster size, no maximum epsilon: hdbscan's defaults): the condensed tree, each
    cluster's stability, the selected clusters; -1 for noise."""
    _, tree = compiled_steps()
    condensed = tree.condense_tree(single_linkage, min_cluster_size)
    stability = tree.compute_stability(condensed)
    labels = tree.get_clusters(
        condensed, stability, method, allow_single_cluster, False, epsilon, 0, float("inf")
    )[0]
    return np.asarray(labels, dtype=np.int64)


def hdbscan_labels(
    x: np.ndarray,
    min_cluster_size: int,
    min_samples: int,
    *,
    method: str = "eom",
    epsilon: float = 0.0,
    allow_single_cluster: tuple[bool, ...] = (False,),
) -> list[np.ndarray]:
    """``hdbscan.HDBSCAN(algorithm="generic", metric="euclidean", ...).fit_predict(x)`` for
    float64 ``x``, once per value of ``allow_single_cluster`` (the tree is built once)."""
    n = len(x)
    single_linkage = single_linkage_tree(x, max(1, min(n - 1, min_samples)))
    return [
        tree_to_labels(single_linkage, min_cluster_size, method, single, float(epsilon))
        for single in allow_single_cluster
    ]
