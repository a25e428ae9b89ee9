"""Metric functions against hand-computed examples, and the eval workflow on fake photos."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from photocluster.catalog.db import Catalog
from photocluster.errors import PhotoclusterError
from photocluster.evaluation.evaluate import (
    bcubed_prf,
    evaluate_catalog,
    label_of,
    nearest_to_label,
    nmi,
    pairwise_prf,
    people_and_strangers,
    singletonise,
    verification,
)
from photocluster.ingest.scan import scan
from photocluster.people.params import ClusterParams
from tests.fakes import make_photo


def test_pairwise_by_hand() -> None:
    truth = np.array([0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 1])
    # predicted pairs: (0,1) (2,3) (2,4) (3,4) -> 4; correct: (0,1) (3,4) -> 2; true pairs 3+1=4
    m = pairwise_prf(truth, pred)
    assert (m.precision, m.recall, m.f) == (0.5, 0.5, 0.5)


def test_noise_counts_as_singletons() -> None:
    truth = np.array([0, 0, 0, 1])
    pred = np.array([0, 0, -1, -1])  # the two noise faces must not be "together"
    assert singletonise(pred).tolist()[:2] == [0, 0] and len(set(singletonise(pred))) == 3
    m = pairwise_prf(truth, pred)
    assert m.precision == 1.0 and m.recall == pytest.approx(1 / 3)


def test_bcubed_by_hand() -> None:
    truth = np.array([0, 0, 1])
    pred = np.array([0, 0, 0])
    # precision per item: 2/3, 2/3, 1/3 -> 5/9; recall: 1, 1, 1
    m = bcubed_prf(truth, pred)
    assert m.precision == pytest.approx(5 / 9) and m.recall == 1.0
    assert m.f == pytest.approx(2 * (5 / 9) / (5 / 9 + 1))


def test_nmi_extremes_and_a_hand_value() -> None:
    t = np.array([0, 0, 1, 1])
    assert nmi(t, np.array([5, 5, 7, 7])) == pytest.approx(1.0)
    assert nmi(t, np.array([0, 1, 0, 1])) == pytest.approx(0.0)
    # truth {2,2}, pred {3,1}: MI = 0.5*log(4/3)+0.25*log(2)+... computed directly
    p = np.array([0, 0, 0, 1])
    h_t = math.log(2)
    h_p = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    mi = (
        0.5 * math.log(0.5 / (0.5 * 0.75))
        + 0.25 * math.log(0.25 / (0.5 * 0.75))
        + 0.25 * (math.log(0.25 / (0.5 * 0.25)))
    )
    assert nmi(t, p) == pytest.approx(mi / ((h_t + h_p) / 2))


def test_verification_by_hand() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    genuine = np.array([True, True, False, True, False, False])
    v = verification(d, genuine, target_fmr=0.0, same_person=0.35)
    assert v.genuine_pairs == 3 and v.impostor_pairs == 3
    assert v.threshold_at_target == pytest.approx(0.25)  # between 0.2 and the first impostor
    assert v.tmr_at_target == pytest.approx(2 / 3)
    assert v.fmr_at_same_person == pytest.approx(1 / 3)
    assert v.auc == pytest.approx(8 / 9)
    with pytest.raises(PhotoclusterError):
        verification(d, np.ones(6, dtype=bool))


def test_labels_come_from_folders() -> None:
    assert label_of("/r/src/ada/1.jpg", "/r") == "ada"
    assert label_of("/r/ada/1.jpg", "/r") == "ada"
    assert label_of("/r/src/_group/1.jpg", "/r") is None
    assert label_of("/r/1.jpg", "/r") is None


def test_eval_on_fake_labelled_folder(tmp_path: Path, catalog: Catalog, fake_options) -> None:
    root = tmp_path / "labelled"
    for src in ("a", "b"):
        for name in ("ada", "bob"):
            for k in range(3):
                make_photo(root / src / name / f"{k}.png", [(name, (10 + 9 * k, 10 + 4 * k, 40))])
    make_photo(root / "a" / "_group" / "g.png", [("ada", (10, 10, 40)), ("cyd", (200, 90, 40))])
    make_photo(root / "a" / "cyd" / "empty.png", [])
    scan(catalog, fake_options(root))
    r = evaluate_catalog(catalog, str(root), ClusterParams())
    assert r.labelled_faces == 12 and r.identities == 2 and r.photos_without_face == 1
    assert r.pairwise.f == pytest.approx(1.0) and r.bcubed.f == pytest.approx(1.0)
    assert r.verification.eer == pytest.approx(0.0)
    assert r.labels.multi_face_photos == 0 and r.labels.largest_unlike_label == 0


def test_eval_sees_a_labelled_photo_whose_largest_face_is_somebody_else(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    """Filed under ada, but bob's face is the larger: a right clustering is scored as wrong,
    and the label check says so (and what the score would be on ada's face)."""
    root = tmp_path / "labelled"
    for name in ("ada", "bob"):
        for k in range(4):
            make_photo(root / name / f"{k}.png", [(name, (10 + 9 * k, 10 + 4 * k, 40))])
    make_photo(root / "ada" / "with-bob.png", [("ada", (10, 10, 30)), ("bob", (200, 90, 60))])
    scan(catalog, fake_options(root))
    r = evaluate_catalog(catalog, str(root), ClusterParams())
    assert r.labelled_faces == 9
    # the scored face of that photo is ada's (nearest ada's one-face photos), not bob's larger one
    assert r.pairwise.f == pytest.approx(1.0) and r.bcubed.f == pytest.approx(1.0)
    assert r.unassigned_share == 0.0
    # the largest-face rule stays as a second figure: bob's face, scored as ada, sits with bob
    assert r.pairwise_largest_face.precision < 1.0
    # verification is over the scored faces too: ada's 5 faces look alike, so no error
    assert r.verification.genuine_pairs == 10 + 6 and r.verification.eer == pytest.approx(0.0)
    check = r.labels
    assert (check.multi_face_photos, check.largest_unlike_label) == (1, 1)
    assert check.nearest_rule == r.pairwise
    # right about every face, the largest-face rule still misses ada's 4 pairs with that photo
    assert check.ceiling.precision == 1.0
    assert check.ceiling.recall == pytest.approx(12 / 16)


def test_eval_without_labelled_photos_is_a_clear_error(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    make_photo(tmp_path / "x" / "_group" / "g.png", [("ada", (10, 10, 40))])
    scan(catalog, fake_options(tmp_path / "x"))
    with pytest.raises(PhotoclusterError, match="No labelled photos"):
        evaluate_catalog(catalog, str(tmp_path / "x"), ClusterParams())


def test_scores_stay_sparse_for_a_million_faces_in_many_clusters() -> None:
    # A dense people x clusters table here would be 50 000 x ~500 000 cells (~190 GiB).
    n = 1_000_000
    truth = np.arange(n) // 20
    pred = truth.copy()
    pred[::2] = -1  # every other face noise: half a million singletons
    prf = pairwise_prf(truth, pred)
    # each person keeps 10 of its 20 faces together: 45 of its 190 pairs
    assert prf.precision == 1.0 and math.isclose(prf.recall, 45 / 190)
    assert bcubed_prf(truth, pred).precision == 1.0
    assert 0.0 < nmi(truth, pred) < 1.0


def test_the_scored_face_is_the_one_nearest_the_labels_one_face_photos() -> None:
    """Photo 3 is filed under ada but shows bob's face first (the larger): ada's face is scored."""
    ada, bob = np.zeros(4), np.ones(4)
    x = np.stack([ada, ada + 0.01, bob, bob + 0.02, ada + 0.03])
    groups = np.array([1, 2, 3, 3, 3])  # photo 3: bob, bob again (a poster), ada
    largest = np.array([0, 1, 2])  # per labelled photo, its largest face
    truth = np.array([0, 0, 0])
    assert nearest_to_label(x, groups, largest, truth).tolist() == [0, 1, 4]
    # a label without a one-face photo keeps the largest face: nothing to compare with
    assert nearest_to_label(x, groups, np.array([2]), np.array([0])).tolist() == [2]


def test_strangers_absorbed_into_a_person_are_not_alone() -> None:
    # labels: ada x3, bob x2, and three strangers (one photo each): cyd, dee, eve
    truth = np.array([0, 0, 0, 1, 1, 2, 3, 4])
    pred = np.array([7, 7, 7, 8, 8, 7, -1, 9])  # cyd joins ada; dee unassigned; eve on her own
    several, strangers = people_and_strangers(truth, pred)
    assert (strangers.count, strangers.absorbed, strangers.left_alone) == (3, 1, 2)
    assert strangers.left_alone_share == pytest.approx(2 / 3)
    # the people with >= 2 photos are scored among themselves: cyd's join is not their error
    assert (several.people, several.faces) == (2, 5)
    assert (several.pairwise.precision, several.pairwise.recall) == (1.0, 1.0)
    # the headline pairwise counts every scored face, each stranger its own class
    assert pairwise_prf(truth, pred).precision == pytest.approx(4 / 7)  # 3 + 1 of 6 + 1 pairs


def test_a_stranger_that_shares_a_person_only_with_another_stranger_is_absorbed() -> None:
    truth = np.array([0, 0, 1, 2])
    pred = np.array([5, 5, 6, 6])  # the two strangers were put together
    several, strangers = people_and_strangers(truth, pred)
    assert (strangers.count, strangers.absorbed, strangers.left_alone_share) == (2, 2, 0.0)
    assert several.pairwise.f == 1.0
    _, none = people_and_strangers(np.array([0, 0]), np.array([1, 1]))
    assert none.count == 0 and none.left_alone_share is None


def test_eval_command_prints_and_writes_the_new_figures(
    tmp_path: Path, fake_options, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `eval` command with the fake encoder: text lines and JSON fields."""
    import json

    from typer.testing import CliRunner

    import photocluster.ingest.scan as scan_mod
    from photocluster.cli import app, people_cmds

    root = tmp_path / "labelled"
    for name in ("ada", "bob"):
        for k in range(4):
            make_photo(root / name / f"{k}.png", [(name, (10 + 9 * k, 10 + 4 * k, 40))])
    make_photo(root / "ada" / "with-bob.png", [("ada", (10, 10, 30)), ("bob", (200, 90, 60))])
    make_photo(root / "cyd" / "once.png", [("cyd", (30, 30, 40))])  # a one-photo stranger
    real_scan = scan_mod.scan
    asked: list[object] = []

    def scanned(catalog: object, options: object, progress: object = None) -> object:
        asked.append(options.encoder_factory)  # type: ignore[attr-defined]
        return real_scan(catalog, fake_options(root))  # type: ignore[arg-type]

    monkeypatch.setattr(scan_mod, "scan", scanned)
    # eval scans with the descriptor code `scan` chooses (ONNX Runtime when it can be had)
    chosen = object()
    monkeypatch.setattr(people_cmds, "encoder_factory", lambda *a: (chosen, "onnx"))
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(root), "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    assert asked == [chosen]
    r = json.loads(result.stdout)
    assert r["version"] == 2
    assert r["pairwise"]["f"] == pytest.approx(1.0)
    assert r["pairwise_largest_face"]["precision"] < 1.0
    assert r["multi_photo_people"]["people"] == 2 and r["multi_photo_people"]["faces"] == 9
    assert set(r["multi_photo_people"]["pairwise"]) == {"precision", "recall", "f"}
    assert r["strangers"] == {"count": 1, "absorbed": 0, "left_alone": 1, "left_alone_share": 1.0}
    assert r["labels"]["multi_face_photos"] == 1 and r["labels"]["largest_unlike_label"] == 1
    result = runner.invoke(app, ["eval", str(root), "-q"])
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "pairwise precision 1.000  recall 1.000  F 1.000" in text
    assert "largest face instead: pairwise precision" in text
    assert "people with 2+ photos (2 people, 9 faces): pairwise precision 1.000" in text
    assert "one-photo strangers 1: 100.0% left alone, 0 absorbed into a person" in text
    assert "labels: in 1 of 1 labelled photos with several faces" in text
