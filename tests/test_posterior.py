"""The clustering step for the faces left over (people.posterior): a face left in no person
joins its nearest person when the library's own people say it is more likely theirs than not;
where strangers are many, the faces left over are mostly strangers and nothing joins."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.evaluation.evaluate import pairwise_prf
from photocluster.people import posterior
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.params import ClusterParams
from photocluster.people.thresholds import MUTUAL_MIN_FACES

OFF = ClusterParams(attach_posterior=0)


def _unit(rng: np.random.Generator) -> np.ndarray:
    u = rng.normal(size=128)
    return u / np.linalg.norm(u)


def library(
    people: int = 40, strangers: int = 0, seed: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """People with a tail: twelve photos 0.2 from their centre and four odd ones 0.30-0.40 out
    (another era, a bad angle: what the rule steps leave out), and ``strangers`` one-photo
    faces elsewhere. Returns the faces, each face's identity, and the rows of the odd photos."""
    rng = np.random.default_rng(seed)
    xs, truth, odd = [], [], []
    for k in range(people):
        centre = _unit(rng) * 0.75
        for j in range(16):
            if j >= 12:
                odd.append(len(xs))
            xs.append(centre + (0.2 if j < 12 else rng.uniform(0.30, 0.40)) * _unit(rng))
            truth.append(k)
    for j in range(strangers):
        xs.append(_unit(rng) * 0.75)
        truth.append(people + j)
    return np.vstack(xs), np.array(truth), np.array(odd)


def test_the_share_of_people_s_faces_is_recovered_from_the_evidence() -> None:
    """Scores s ~ N(+1, 1) for people's faces and N(-1, 1) for strangers have the likelihood
    ratio exp(2s); the EM estimate finds the share they were drawn in."""
    rng = np.random.default_rng(0)
    for share in (0.05, 0.3, 0.8):
        n = 4000
        theirs = rng.random(n) < share
        s = np.where(theirs, rng.normal(1, 1, n), rng.normal(-1, 1, n))
        got, post = posterior.member_share(2 * s)
        assert abs(got - share) < 0.03
        assert np.all(np.diff(post[np.argsort(s)]) >= 0)  # more evidence, more likely
    got, post = posterior.member_share(np.array([-np.inf, -np.inf, 3.0]))
    assert post[0] == 0 and post[1] == 0 and 0 < got < 1
    assert posterior.member_share(np.full(3, -np.inf))[0] == 0


def test_faces_with_no_candidate_do_not_dilute_the_share() -> None:
    """The share is of the faces that have a person to join: faces far from everyone (the
    others in group photos) have no evidence either way, and counting them in would make the
    faces near a person look less likely theirs than they are."""
    rng = np.random.default_rng(0)
    n = 2000
    theirs = rng.random(n) < 0.3
    s = np.where(theirs, rng.normal(1, 1, n), rng.normal(-1, 1, n))
    alone, post_alone = posterior.member_share(2 * s)
    diluted, post = posterior.member_share(np.concatenate([2 * s, np.full(3 * n, -np.inf)]))
    assert abs(diluted - 0.3) < 0.03 and diluted == pytest.approx(alone)
    assert np.array_equal(post[:n], post_alone) and not post[n:].any()
    assert posterior.member_share(np.zeros(0))[0] == 0


def test_people_s_odd_photos_join_where_there_are_no_strangers() -> None:
    x, truth, odd = library()
    assert len(x) >= MUTUAL_MIN_FACES
    off = cluster_embeddings(x, OFF)
    assert (off[odd] < 0).mean() > 0.8  # the premise: the rule steps leave them out
    on = cluster_embeddings(x, ClusterParams())
    q_off, q_on = pairwise_prf(truth, off), pairwise_prf(truth, on)
    assert q_on.precision == 1.0
    assert q_on.recall > 0.95 > 0.7 > q_off.recall
    assert (on[odd] >= 0).mean() > 0.95


def test_two_odd_photos_alike_join_their_person_rather_than_pair_up() -> None:
    """Two odd photos of one person that look alike (one day in sunglasses) are each other's
    nearest faces, close enough for the small-pair step; it runs after this step, so they join
    their person instead of becoming a two-photo piece of them (a merge for the user)."""
    x, truth, odd = library()
    rng = np.random.default_rng(5)
    a, b = odd[0], odd[1]  # the first person's first two odd photos
    person = np.flatnonzero(truth == truth[a])[:12]  # their twelve typical photos
    x[a] = x[person].mean(axis=0) + 0.4 * _unit(rng)
    x[b] = x[a] + 0.05 * _unit(rng)
    on = cluster_embeddings(x, ClusterParams())
    assert len(set(on[person].tolist())) == 1 and on[person[0]] >= 0
    assert on[a] == on[b] == on[person[0]]
    off = cluster_embeddings(x, OFF)  # the rule steps alone: the two pair up on their own
    assert off[a] == off[b] >= 0 and off[a] != off[person[0]]


def test_strangers_stay_alone_and_odd_photos_still_join_among_many_strangers() -> None:
    x, truth, odd = library(strangers=400)
    strangers = np.arange(len(x) - 400, len(x))
    on = cluster_embeddings(x, ClusterParams())
    assert (on[strangers] < 0).all()
    assert (on[odd] >= 0).mean() > 0.95
    assert pairwise_prf(truth, on).precision == 1.0


def test_a_face_never_joins_a_person_holding_a_face_of_its_photo() -> None:
    x, truth, odd = library()
    groups = np.arange(len(x))
    person = truth[odd[0]]
    groups[odd[0]] = groups[np.flatnonzero(truth == person)[0]]  # one photo, two faces
    on = cluster_embeddings(x, ClusterParams(), groups)
    assert on[odd[0]] != on[np.flatnonzero(truth == person)[0]]
    assert (on[odd[1:]] >= 0).mean() > 0.95


@pytest.mark.parametrize("params", [OFF, ClusterParams()])
def test_a_small_catalog_is_left_as_the_rules_leave_it(params: ClusterParams) -> None:
    """Below MUTUAL_MIN_FACES faces a few dozen lookups teach nothing: the step does nothing."""
    x, _truth, _odd = library(people=20)
    assert len(x) < MUTUAL_MIN_FACES
    assert np.array_equal(cluster_embeddings(x, params), cluster_embeddings(x, OFF))


def test_the_threshold_is_a_probability() -> None:
    with pytest.raises(ValueError, match="attach posterior"):
        ClusterParams(attach_posterior=1.0)
    with pytest.raises(ValueError, match="attach posterior"):
        ClusterParams(attach_posterior=-0.1)


def test_the_logistic_regression_is_scikit_learn_s() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 5)) * [1.0, 0.1, 0.05, 0.3, 0.1]
    y = (x @ [1.5, -8.0, 10.0, 2.0, -3.0] + rng.normal(size=600) > 0).astype(int)
    coef, intercept = posterior.logistic_regression(x, y)
    ref = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(x, y)
    assert np.allclose(coef, ref.coef_[0], atol=1e-3)
    assert abs(intercept - ref.intercept_[0]) < 1e-3
