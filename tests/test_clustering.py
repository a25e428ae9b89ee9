"""The pure clustering core: HDBSCAN + attach + cannot-link on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.people.clustering import (
    NOISE,
    _relabel,
    as_matrix,
    assign_to_centroids,
    attach_noise,
    centroids,
    cluster_embeddings,
    enforce_cannot_link,
    members_by_label,
    merge_alike_clusters,
    merge_close_clusters,
    split_mixed_clusters,
)
from photocluster.people.params import ClusterParams


def blobs(sizes: list[int], spread: float = 0.05, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Identities ~1.0 apart (like dlib strangers), faces ``spread`` around each centre."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k, n in enumerate(sizes):
        centre = rng.normal(size=128)
        centre *= 0.75 / np.linalg.norm(centre)
        xs.append(centre + rng.normal(scale=spread / np.sqrt(128), size=(n, 128)))
        ys += [k] * n
    return np.vstack(xs), np.array(ys)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return (
        len({(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True)})
        == len(set(a.tolist()))
        == len(set(b.tolist()))
    )


def test_separated_identities_are_recovered_exactly() -> None:
    x, truth = blobs([6, 5, 4, 8])
    labels = cluster_embeddings(x, ClusterParams())
    assert (labels >= 0).all()
    assert same_partition(labels, truth)


def test_a_lone_stranger_stays_noise() -> None:
    x, _ = blobs([6, 6])
    stranger = np.random.default_rng(9).normal(size=(1, 128))
    labels = cluster_embeddings(np.vstack([x, 0.75 * stranger / np.linalg.norm(stranger)]))
    assert labels[-1] == NOISE
    assert (labels[:-1] >= 0).all()


def test_two_faces_of_one_photo_never_share_a_cluster() -> None:
    x, _truth = blobs([5, 5])
    groups = np.arange(len(x))
    groups[1] = groups[0]  # faces 0 and 1 (same identity) come from one photo
    labels = cluster_embeddings(x, ClusterParams(), groups)
    assert labels[0] != labels[1] or labels[0] == NOISE
    kept = [i for i in (0, 1) if labels[i] == labels[2]]
    assert len(kept) == 1


def test_cannot_link_keeps_the_face_nearest_the_centroid_and_reattaches_the_other() -> None:
    x = np.zeros((6, 2))
    x[:3] = [[0, 0], [0.1, 0], [0, 0.1]]  # cluster 0 around the origin
    x[3:] = [[1, 1], [1.1, 1], [1, 1.1]]  # cluster 1
    labels = np.array([0, 0, 0, 1, 1, 1])
    x = np.vstack([x, [[0.02, 0.02]], [[0.9, 0.9]]])
    labels = np.r_[labels, 0, 0]  # face 7 was wrongly put with cluster 0
    groups = np.array([0, 1, 2, 3, 4, 5, 6, 6])  # faces 6 and 7 share a photo
    out = enforce_cannot_link(x, labels, groups, reattach_distance=0.5)
    assert out[6] == 0  # nearest the centroid of cluster 0: stays
    assert out[7] == 1  # moved to its nearest other cluster
    out = enforce_cannot_link(x, labels, groups, reattach_distance=0.0)
    assert out[7] == NOISE


def test_attach_needs_distance_and_margin() -> None:
    x = np.array([[0.0, 0], [0.1, 0], [2.0, 0], [2.1, 0], [0.3, 0], [1.05, 0]])
    labels = np.array([0, 0, 1, 1, NOISE, NOISE])
    out = attach_noise(x, labels, distance=0.5, margin=0.1)
    assert out[4] == 0  # near cluster 0, far from 1
    assert out[5] == NOISE  # halfway: too far and ambiguous
    assert (attach_noise(x, labels, distance=0.0) == labels).all()


def test_merge_joins_close_centroids_but_not_across_a_shared_photo() -> None:
    x = np.array([[0.0, 0], [0.1, 0], [0.3, 0], [0.4, 0], [5.0, 0], [5.1, 0]])
    labels = np.array([0, 0, 1, 1, 2, 2])
    out = merge_close_clusters(x, labels, distance=0.5)
    assert out[0] == out[2] and out[4] != out[0]
    groups = np.array([0, 1, 1, 3, 4, 5])  # clusters 0 and 1 share photo 1
    out = merge_close_clusters(x, labels, distance=0.5, groups=groups)
    assert out[0] != out[2]


def test_tiny_inputs_are_all_noise_not_errors() -> None:
    assert cluster_embeddings(np.zeros((0, 128))).shape == (0,)
    assert (cluster_embeddings(np.ones((1, 128))) == NOISE).all()


def test_a_single_tight_identity_is_one_cluster() -> None:
    x, _ = blobs([5])
    labels = cluster_embeddings(x)
    assert (labels == 0).all()


def test_assign_to_centroids_respects_forbidden_distance_and_margin() -> None:
    cents = np.array([[0.0, 0], [1.0, 0]])
    pts = np.array([[0.1, 0], [0.1, 0], [0.5, 0], [3.0, 0]])
    got = assign_to_centroids(
        pts, cents, np.array([7, 9]), 0.6, margin=0.1, forbidden=[set(), {7}, set(), set()]
    )
    assert got.tolist() == [7, NOISE, NOISE, NOISE]  # 2nd: 7 forbidden and 9 too far


@pytest.mark.parametrize(
    "kwargs",
    [{"min_cluster_size": 1}, {"min_samples": 0}, {"method": "flat"}, {"attach_distance": -1}],
)
def test_bad_parameters_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ClusterParams(**kwargs)  # type: ignore[arg-type]


# --- pairing leftover faces (someone with two or three photos is a person too) ---------------


def _unit(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=128)
    return v / np.linalg.norm(v)


def test_two_close_leftover_faces_become_a_small_person() -> None:
    from photocluster.people.clustering import pair_close_noise

    a = _unit(1)
    x = np.stack([a, a + 0.01 * _unit(2), _unit(3), _unit(4)])  # 2 alike, 2 strangers (~1.4)
    labels = np.full(4, -1)
    out = pair_close_noise(x, labels, 0.45, np.array([10, 11, 12, 13]))
    assert out[0] == out[1] >= 0
    assert out[2] == -1 and out[3] == -1


def test_pairing_never_links_faces_of_one_photo_nor_chains_through_them() -> None:
    from photocluster.people.clustering import pair_close_noise

    a = _unit(5)
    x = np.stack([a, a + 0.01 * _unit(6), a + 0.02 * _unit(7)])
    labels = np.full(3, -1)
    same_photo = pair_close_noise(x[:2], labels[:2], 0.45, np.array([1, 1]))
    assert (same_photo == -1).all()
    # 0 and 2 share a photo; 1 links both: the chain would put one photo twice in a person.
    chained = pair_close_noise(x, labels, 0.45, np.array([1, 2, 1]))
    assert (chained == -1).all()


def test_pairing_leaves_clustered_faces_alone_and_can_be_switched_off() -> None:
    from photocluster.people.clustering import pair_close_noise

    a = _unit(8)
    x = np.stack([a, a + 0.01 * _unit(9), a + 0.01 * _unit(10)])
    labels = np.array([0, -1, -1])
    out = pair_close_noise(x, labels, 0.45, np.array([1, 2, 3]))
    assert out[0] == 0 and out[1] == out[2] and out[1] not in (-1, 0)
    assert (pair_close_noise(x, labels, 0.0, None) == labels).all()


def test_cluster_embeddings_makes_a_person_of_two_photos() -> None:
    a, b = _unit(11), _unit(12)
    rng = np.random.default_rng(0)
    big = np.stack([a + 0.05 * rng.normal(size=128) / 11 for _ in range(12)])
    pair = np.stack([b, b + 0.01 * _unit(13)])
    x = np.vstack([big, pair])
    groups = np.arange(len(x))
    with_pairs = cluster_embeddings(x, ClusterParams(), groups)
    assert with_pairs[-1] == with_pairs[-2] >= 0
    assert with_pairs[-1] != with_pairs[0]
    without = cluster_embeddings(x, ClusterParams(pair_distance=0), groups)
    assert without[-1] == without[-2] == -1


def test_members_by_label_groups_each_cluster_in_index_order() -> None:
    labels = np.array([2, -1, 0, 2, 5, 0, -1, 2])
    ids, members = members_by_label(labels)
    assert ids.tolist() == [0, 2, 5]
    assert [m.tolist() for m in members] == [[2, 5], [0, 3, 7], [4]]
    ids, members = members_by_label(labels, labels != 0)  # a mask: noise counts, 0 does not
    assert ids.tolist() == [-1, 2, 5] and members[0].tolist() == [1, 6]
    assert members_by_label(np.full(3, -1))[1] == []


def test_centroids_are_the_member_means_and_a_mask_can_count_placeholders() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 128)).astype(np.float32)
    labels = rng.integers(-3, 6, size=50)
    ids, cents = centroids(x, labels)
    assert ids.tolist() == sorted(set(labels[labels >= 0].tolist()))
    for c, row in zip(ids.tolist(), cents, strict=True):
        assert np.allclose(row, x[labels == c].astype(np.float64).mean(axis=0), atol=1e-6)
    ids, cents = centroids(x, labels, labels != -1)  # people and negative placeholders
    assert -3 in ids.tolist() and -1 not in ids.tolist()
    assert np.allclose(cents[0], x[labels == -3].mean(axis=0), atol=1e-6)


def test_relabel_numbers_clusters_by_first_appearance() -> None:
    assert _relabel(np.array([7, -1, 3, 7, 9, 3])).tolist() == [0, -1, 1, 0, 2, 1]
    assert _relabel(np.array([-1, -1])).tolist() == [-1, -1]


@pytest.mark.slow
def test_many_points_take_the_vectorised_path_and_agree_with_the_rule() -> None:
    rng = np.random.default_rng(4)
    cents = rng.normal(size=(300, 128))
    pts = cents[rng.integers(0, 300, size=2000)] + rng.normal(scale=0.03, size=(2000, 128))
    pts[::7] = rng.normal(size=(len(pts[::7]), 128)) * 3  # far from everyone
    labels = np.arange(100, 400)
    got = assign_to_centroids(pts, cents, labels, 0.8, margin=0.1)
    d = np.linalg.norm(pts[:, None, :] - cents[None, :, :], axis=2)
    order = np.sort(d, axis=1)
    want = np.where(
        (order[:, 0] <= 0.8) & (order[:, 1] - order[:, 0] >= 0.1), labels[d.argmin(axis=1)], NOISE
    )
    assert (got == want).all()
    assert (got[::7] == NOISE).all() and (got != NOISE).sum() > 1500


def test_large_float32_input_is_not_copied_and_clusters_like_float64() -> None:
    x, truth = blobs([30] * 150, spread=0.25, seed=5)  # 4 500 faces: the k-NN graph path
    x32 = x.astype(np.float32)
    assert as_matrix(x32) is x32  # above _BIG a float32 matrix is used as it is
    assert as_matrix(x32[:100]).dtype == np.float64
    a = cluster_embeddings(x32)
    b = cluster_embeddings(x32.astype(np.float64))
    assert same_partition(a, b)
    assert same_partition(a, truth)


def test_two_small_people_hdbscan_keeps_together_are_split() -> None:
    """HDBSCAN (excess of mass) keeps two people of three photos each as one cluster here."""
    x, truth = blobs([6, 3, 3], spread=0.1, seed=0)
    groups = np.arange(len(x))
    # (the verification test off too: it would leave the mixed cluster's faces unassigned)
    before = cluster_embeddings(x, ClusterParams(split_share=0, verify_share=0), groups)
    assert len({int(v) for v in before[6:]}) == 1 and before[6] >= 0, "the failure this fixes"
    labels = cluster_embeddings(x, ClusterParams(), groups)
    assert (labels >= 0).all()
    assert same_partition(labels, truth)


def test_split_mixed_clusters_cuts_until_each_part_looks_alike() -> None:
    x, truth = blobs([5, 4, 3], spread=0.3, seed=2)
    lone = _unit(40) * 0.75
    x = np.vstack([x, lone])
    truth = np.append(truth, 3)
    one_cluster = np.zeros(len(x), dtype=np.int64)
    labels = split_mixed_clusters(x, one_cluster, share=0.2)
    assert labels[-1] == NOISE  # a face alike to no other is not a person of its own
    assert same_partition(labels[:-1], truth[:-1])
    # Off, or one person's faces only: nothing changes.
    assert (split_mixed_clusters(x, one_cluster, share=0.0) == 0).all()
    one_person = np.where(truth == 0, 0, NOISE)
    assert (split_mixed_clusters(x, one_person, share=0.2) == one_person).all()
    same_face = np.zeros((4, 128))
    assert (split_mixed_clusters(same_face, np.zeros(4, np.int64), share=0.2) == 0).all()


def test_split_mixed_clusters_samples_big_clusters_and_places_every_face(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import photocluster.people.clustering as clustering

    monkeypatch.setattr(clustering, "_SPLIT_SAMPLE", 12)
    x, truth = blobs([40, 30], spread=0.3, seed=5)
    labels = split_mixed_clusters(x, np.zeros(len(x), dtype=np.int64), share=0.2)
    assert (labels >= 0).all()
    assert same_partition(labels, truth)


def test_split_share_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="split share"):
        ClusterParams(split_share=1.5)
    with pytest.raises(ValueError, match="split share"):
        ClusterParams(split_share=-0.1)


def test_first_half_is_scipys_two_cluster_cut() -> None:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    from photocluster.people.clustering import _first_half

    rng = np.random.default_rng(4)
    for n in (2, 3, 17, 60):
        z = linkage(pdist(rng.normal(size=(n, 8))), "average")
        mine = _first_half(z, n).astype(int)
        assert same_partition(mine, fcluster(z, 2, "maxclust"))


def _along(offsets: list[float], sizes: list[int], spread: float = 0.05) -> np.ndarray:
    """Groups of faces whose centres lie on one line, ``offsets`` apart from the first."""
    rng = np.random.default_rng(3)
    direction = _unit(11)
    base = _unit(12) * 0.75
    return np.vstack(
        [
            base + off * direction + rng.normal(scale=spread / np.sqrt(128), size=(n, 128))
            for off, n in zip(offsets, sizes, strict=True)
        ]
    )


def test_merge_alike_clusters_joins_one_persons_two_groups_only() -> None:
    x, truth = blobs([10, 10], spread=0.3, seed=6)
    # person 0 came out as two clusters (0 and 1); person 1 is cluster 2
    labels = np.where(truth == 0, np.arange(len(x)) % 2, 2)
    merged = merge_alike_clusters(x, labels, share=0.5)
    assert same_partition(merged, truth)
    # off: nothing changes
    assert (merge_alike_clusters(x, labels, share=0.0) == labels).all()
    # noise stays noise
    with_noise = labels.copy()
    with_noise[[0, 15]] = NOISE
    got = merge_alike_clusters(x, with_noise, share=0.5)
    assert got[0] == NOISE and got[15] == NOISE
    assert len(set(got[1:10].tolist())) == 1 and got[1] != got[16]


def test_merge_alike_clusters_never_joins_two_faces_of_one_photo() -> None:
    x, _ = blobs([10], spread=0.3, seed=7)
    labels = np.arange(len(x)) % 2
    groups = np.arange(len(x))
    groups[1] = groups[0]  # faces 0 (cluster 0) and 1 (cluster 1) are in one photo
    assert (merge_alike_clusters(x, labels, share=0.5, groups=groups) == labels).all()
    assert len(set(merge_alike_clusters(x, labels, share=0.5).tolist())) == 1


def test_merge_alike_clusters_does_not_chain_through_a_middle_group() -> None:
    """A looks like B and B like C, but A not like C: joined clusters are measured again."""
    x = _along([0.0, 0.35, 0.7], [10, 5, 10])
    labels = np.repeat([0, 1, 2], [10, 5, 10])
    # with one global distance (own_percentile=None) A-B and B-C look alike
    merged = merge_alike_clusters(x, labels, share=0.5, own_percentile=None)
    assert merged[0] != merged[-1]  # A and C stay apart
    assert merged[10] in (merged[0], merged[-1])  # B joined one of them


def test_merge_alike_clusters_keeps_tight_people_apart_where_faces_are_dense() -> None:
    """Three tight people 0.35 apart (well within SAME_PERSON): a dense population. Their cross
    pairs are all within the global distance, yet far outside each one's own photos: no join."""
    x = _along([0.0, 0.35, 0.7], [10, 5, 10])
    labels = np.repeat([0, 1, 2], [10, 5, 10])
    assert (merge_alike_clusters(x, labels, share=0.5) == labels).all()
    # a person whose photos form two loose groups close together still joins
    y = _along([0.0, 0.1], [10, 10], spread=0.3)
    two = np.repeat([0, 1], [10, 10])
    assert len(set(merge_alike_clusters(y, two, share=0.5).tolist())) == 1


def test_merge_share_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="merge share"):
        ClusterParams(merge_share=1.5)
    with pytest.raises(ValueError, match="merge share"):
        ClusterParams(merge_share=-0.1)


@pytest.mark.parametrize("seed", range(6))
def test_hdbscan_core_gives_hdbscans_own_labels(seed: int) -> None:
    """HDBSCAN without the hdbscan package's scikit-learn import (people.hdbscan_core): the
    labels of hdbscan.HDBSCAN's generic algorithm, over the parameters `cluster` takes."""
    import warnings

    import hdbscan
    from sklearn.metrics import pairwise_distances

    from photocluster.people import hdbscan_core

    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, size=int(rng.integers(3, 15))).tolist()
    x, _ = blobs(sizes, spread=float(rng.uniform(0.05, 0.6)), seed=seed)
    x = np.vstack([x, x[:3]])  # exact copies too
    assert np.array_equal(hdbscan_core.euclidean_distances(x), pairwise_distances(x))
    for mcs, ms, method, eps in [(2, 1, "eom", 0.0), (4, 3, "eom", 0.0), (3, 2, "leaf", 0.2)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for single in (False, True):
                expected = hdbscan.HDBSCAN(
                    min_cluster_size=mcs,
                    min_samples=ms,
                    cluster_selection_epsilon=eps,
                    cluster_selection_method=method,
                    algorithm="generic",
                    allow_single_cluster=single,
                ).fit_predict(x)
                (got,) = hdbscan_core.hdbscan_labels(
                    x, mcs, ms, method=method, epsilon=eps, allow_single_cluster=(single,)
                )
                assert np.array_equal(got, expected)


def test_nearest_centroids_are_scikit_learns() -> None:
    from sklearn.neighbors import NearestNeighbors

    from photocluster.people.clustering import _nearest_centroids

    x, _ = blobs([1] * 300, spread=0.0, seed=3)
    x += np.random.default_rng(3).normal(scale=0.1, size=x.shape)
    for k in (1, 2, 9):
        dist, near = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
        got_dist, got_near = _nearest_centroids(x, k)
        assert np.array_equal(got_near, near)
        assert np.allclose(got_dist, dist, rtol=0, atol=1e-7)  # itself: 0 here, ~1e-8 there


@pytest.mark.parametrize("seed", range(4))
def test_scipy_lite_gives_scipys_numbers(seed: int) -> None:
    """Small catalogs cluster without importing SciPy (people.scipy_lite): its pair
    distances, average linkage and connected components, bit for bit, ties and copies too."""
    from scipy.cluster.hierarchy import linkage
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial.distance import pdist, squareform

    from photocluster.people import scipy_lite

    rng = np.random.default_rng(seed)
    x, _ = blobs(rng.integers(1, 9, size=6).tolist(), spread=0.3, seed=seed)
    for points in (x, np.round(x, 1), np.vstack([x[:4], x[:4]]), x[:2]):
        pairs = pdist(points)
        assert np.array_equal(scipy_lite.pdist(points), pairs)
        assert np.array_equal(scipy_lite.squareform(pairs, len(points)), squareform(pairs))
        assert np.array_equal(
            scipy_lite.average_linkage(pairs, len(points)), linkage(pairs, "average")
        )
    n = 40
    rows, cols = rng.integers(0, n, 30), rng.integers(0, n, 30)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    expected = connected_components(graph, directed=False)[1]
    assert np.array_equal(scipy_lite.components(n, rows, cols), expected)
