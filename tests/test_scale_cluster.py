"""HDBSCAN on a k-nearest-neighbour graph (photocluster.people.knn_hdbscan) against exact
HDBSCAN."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.evaluation.evaluate import pairwise_prf, singletonise
from photocluster.index.ann import hnsw_search_from, knn
from photocluster.people import clustering
from photocluster.people.clustering import NOISE, hdbscan_labels
from photocluster.people.knn_hdbscan import knn_hdbscan_labels, mutual_reachability_mst
from photocluster.people.params import ClusterParams


def faces(
    people: int, per_person: int, spread: float = 0.35, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Face-like data: identities ~0.9-1.1 apart, within-person distances ~``spread``, with
    uneven sizes and a sprinkling of loners (truth -1, like unlabelled strangers)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(people, 128)) * (0.72 / np.sqrt(128))
    sizes = rng.integers(max(2, per_person // 3), per_person * 2, size=people)
    truth = np.repeat(np.arange(people), sizes)
    x = centres[truth] + rng.normal(size=(len(truth), 128)) * (spread / np.sqrt(2 * 128))
    loners = rng.normal(size=(len(truth) // 20, 128)) * (0.72 / np.sqrt(128))
    x = np.vstack([x, loners]).astype(np.float32)
    truth = np.concatenate([truth, np.full(len(loners), -1)])
    return x, truth


def exact_labels(x: np.ndarray, params: ClusterParams) -> np.ndarray:
    import hdbscan

    return np.asarray(
        hdbscan.HDBSCAN(
            min_cluster_size=params.min_cluster_size,
            min_samples=params.min_samples,
            algorithm="generic",
            core_dist_n_jobs=1,
        ).fit_predict(x.astype(np.float64)),
        dtype=np.int64,
    )


def f_vs_truth(truth: np.ndarray, pred: np.ndarray) -> float:
    # loners in the truth are their own people; noise in a prediction is singletons
    return pairwise_prf(singletonise(truth), singletonise(pred)).f


def test_knn_finds_exact_neighbours_and_self() -> None:
    x, _ = faces(20, 10)
    dist, idx = knn(x, 8, exact=True)
    full = np.linalg.norm(x[:, None, :].astype(np.float64) - x[None, :, :], axis=2)
    want = np.argsort(full, axis=1, kind="stable")[:, :8]
    assert (idx[:, 0] == np.arange(len(x))).all()
    assert np.allclose(np.sort(full, axis=1)[:, :8], dist, atol=1e-5)
    # same neighbour sets (ties aside, which random data has none of)
    assert all(set(a) == set(b) for a, b in zip(idx.tolist(), want.tolist(), strict=True))


def test_approximate_knn_is_close_to_exact() -> None:
    x, _ = faces(60, 40, seed=3)
    dist, idx = knn(x, 10, exact=False)
    _, want = knn(x, 10, exact=True)
    found = idx >= 0
    assert np.isinf(dist[~found]).all() and np.isfinite(dist[found]).all()
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, want, strict=True)])
    assert recall > 0.95
    assert (np.diff(dist, axis=1) >= 0).all()


def test_hnsw_search_from_a_given_row_finds_the_neighbours_there() -> None:
    import faiss

    x, _ = faces(60, 40, seed=4)
    index = faiss.IndexHNSWFlat(128, 16)
    index.add(x)
    index.hnsw.efSearch = 32
    rows = np.arange(0, len(x), 7)
    d2, got = hnsw_search_from(index, x[rows], rows, 10)
    _, want = knn(x, 10, exact=True)
    assert (got[:, 0] == rows).all() and np.allclose(d2[:, 0], 0.0, atol=1e-5)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, want[rows], strict=True)])
    assert recall > 0.95
    # The start matters: on the bottom layer alone, a start in another person's faces often
    # stays there (which is why the k-NN graph starts each face at itself).
    far = (rows + len(x) // 2) % len(x)
    _, from_far = hnsw_search_from(index, x[rows], far, 10)
    assert (from_far[:, 0] == rows).mean() < (got[:, 0] == rows).mean()


@pytest.mark.parametrize("seed", [0, 1])
def test_agrees_with_exact_hdbscan(seed: int) -> None:
    """The issue's bar: pairwise F within 0.01 of exact HDBSCAN (both against the truth)."""
    x, truth = faces(150, 15, seed=seed)
    params = ClusterParams()
    exact = exact_labels(x, params)
    approx = knn_hdbscan_labels(x, params)
    f_exact, f_approx = f_vs_truth(truth, exact), f_vs_truth(truth, approx)
    assert f_exact > 0.8, "the synthetic data should be clusterable at all"
    assert abs(f_exact - f_approx) <= 0.01, (f_exact, f_approx)
    # and the two labellings are nearly the same partition
    assert pairwise_prf(singletonise(exact), singletonise(approx)).f > 0.97


def test_mst_spans_all_faces_even_when_the_knn_graph_falls_apart() -> None:
    # two groups far apart, k smaller than a group: the k-NN graph has several pieces
    x, _ = faces(6, 30, spread=0.2, seed=5)
    x = np.vstack([x, x + 5.0]).astype(np.float32)
    dist, idx = knn(x, 4, exact=True)
    mst = mutual_reachability_mst(x, dist, idx, min_samples=3)
    assert len(mst) == len(x) - 1
    assert (np.diff(mst[:, 2]) >= 0).all(), "sorted by weight"
    # it is a spanning tree: every face is reachable
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((mst[:, 2], (mst[:, 0].astype(int), mst[:, 1].astype(int))), (len(x),) * 2)
    assert connected_components(g, directed=False)[0] == 1
    # the link between the far groups is the heaviest edge, as in the exact MST
    a, b = mst[-1, :2].astype(int)
    assert (a < len(x) // 2) != (b < len(x) // 2)


def test_separated_groups_with_small_k_still_cluster() -> None:
    x, truth = faces(30, 12, spread=0.2, seed=7)
    labels = knn_hdbscan_labels(x, ClusterParams(), k=5)
    assert f_vs_truth(truth, labels) > 0.9


def test_tiny_inputs_are_noise_and_bad_shapes_are_refused() -> None:
    params = ClusterParams()
    assert (knn_hdbscan_labels(np.zeros((2, 128), np.float32), params) == NOISE).all()
    with pytest.raises(ValueError):
        knn_hdbscan_labels(np.zeros(128, np.float32), params)


def test_one_tight_group_is_found_as_the_exact_path_finds_it() -> None:
    # HDBSCAN alone calls a lone group all noise; both paths then accept the single cluster
    rng = np.random.default_rng(0)
    centre = rng.normal(size=128) * (0.72 / np.sqrt(128))
    x = (centre + rng.normal(size=(40, 128)) * (0.25 / np.sqrt(256))).astype(np.float32)
    labels = knn_hdbscan_labels(x, ClusterParams())
    assert (labels != NOISE).any()
    assert (labels == hdbscan_labels(x, ClusterParams())).all()
    assert (knn_hdbscan_labels(x, ClusterParams(), single=False) == NOISE).all()


def test_hdbscan_labels_switches_to_the_knn_graph_above_the_measured_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x, truth = faces(40, 12, seed=2)
    calls: list[int] = []
    import photocluster.people.knn_hdbscan as sc

    real = sc.knn_hdbscan_labels

    def spy(
        x: np.ndarray, params: ClusterParams, single: bool = True, neighbours: object = None
    ) -> np.ndarray:
        calls.append(len(x))
        return real(x, params, single)

    monkeypatch.setattr(sc, "knn_hdbscan_labels", spy)
    monkeypatch.setattr(clustering, "_BIG", len(x) - 1)
    big = hdbscan_labels(x, ClusterParams())
    assert calls == [len(x)]
    monkeypatch.setattr(clustering, "_BIG", len(x) + 1)
    small = hdbscan_labels(x, ClusterParams())
    assert calls == [len(x)], "exact HDBSCAN below the size"
    assert abs(f_vs_truth(truth, big) - f_vs_truth(truth, small)) <= 0.01


def test_a_supplied_knn_graph_is_used_and_checked() -> None:
    x, _ = faces(40, 12, seed=4)
    asked: list[int] = []

    def graph(k: int) -> tuple[np.ndarray, np.ndarray]:
        asked.append(k)
        return knn(x, k, exact=True)

    got = knn_hdbscan_labels(x, ClusterParams(), neighbours=graph)
    assert asked == [30]
    assert (got == knn_hdbscan_labels(x, ClusterParams())).all()
    with pytest.raises(ValueError, match="shape"):
        knn_hdbscan_labels(x, ClusterParams(), neighbours=lambda k: knn(x, k - 1, exact=True))
