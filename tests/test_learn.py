"""`learn`: a projection learned from the user's decisions, used only when cross-validation on
held-out people says it helps; stored, reopened, refused on bad input."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.embeddings import embedding_to_blob
from photocluster.catalog.models import Face, LearnedProjection, Person, Photo, Rejection
from photocluster.cli import app
from photocluster.people import learn
from photocluster.people.projection import (
    MIN_PEOPLE,
    current_projection,
    ensure_projection,
    learn_projection,
    needs_relearn,
    stored_report,
)

runner = CliRunner()
ENCODER = "fake_model;hog;d1600"
NOW = datetime(2026, 12, 3, 6, 0)


def _helpful(people: int = 30, per: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Person means apart in every direction, but one person's faces vary wildly along four
    nuisance directions (think pose): raw distances mix people, whitening them away does not."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(0, 0.1, 128)
    means = centre + rng.normal(0, 0.08, (people, 128))
    labels = np.repeat(np.arange(people), per)
    x = means[labels] + rng.normal(0, 0.02, (people * per, 128))
    x[:, :4] += rng.normal(0, 0.6, (people * per, 4))
    return x, labels


def _hopeless(people: int = 30, per: int = 8, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """People far apart and tight in every direction: raw accepts every same-person pair, so
    no projection can gain."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 0.1, 128) + rng.normal(0, 0.08, (people, 128))
    labels = np.repeat(np.arange(people), per)
    return means[labels] + rng.normal(0, 0.01, (people * per, 128)), labels


# --- pure -------------------------------------------------------------------------------------


def test_cross_validation_finds_the_gain_where_nuisance_directions_hide_people() -> None:
    x, labels = _helpful()
    cv = learn.cross_validate(x, labels, folds=5)
    assert cv.metric == 0.01  # too few different pairs per fold for 0.1 %
    raw = cv.results[learn.RAW].score
    assert raw is not None and raw < 0.6
    best = cv.best()
    assert best is not None and best.gain is not None and best.gain > 0.3
    assert cv.results["wccn"].gain is not None and cv.results["wccn"].gain > 0.3


def test_no_method_gains_where_raw_is_already_perfect() -> None:
    x, labels = _hopeless()
    cv = learn.cross_validate(x, labels, folds=5)
    assert cv.results[learn.RAW].score == 1.0
    assert all(r.gain is not None and r.gain <= 0 for r in cv.results.values())


def test_every_map_keeps_raw_units_and_folds_never_share_a_person() -> None:
    x, labels = _helpful()
    same = np.array([(i, i + 1) for i in range(0, len(x), 8)])
    raw = np.median(np.linalg.norm(x[same[:, 0]] - x[same[:, 1]], axis=1))
    for method in learn.METHODS:
        y = learn.fit(method, x, labels).apply(x)
        assert y.dtype == np.float64
        d = np.median(np.linalg.norm(y[same[:, 0]] - y[same[:, 1]], axis=1))
        assert d == pytest.approx(raw, rel=0.35), method
    fold = learn._fold_of(labels, 5, np.random.default_rng(0))
    for person in np.unique(labels):
        assert len(set(fold[labels == person])) == 1


def test_tpe_uses_rejected_faces_as_negatives() -> None:
    x, labels = _helpful(people=8, per=6)
    neg = learn.Negatives(x[labels == 1][:2] + 0.01, np.array([0, 0]))
    m = learn.fit("tpe", x, labels, neg)
    assert m.normalize_input and m.normalize_output and m.matrix.shape == (128, 128)
    assert not np.allclose(m.matrix, learn.fit("tpe", x, labels).matrix)


# --- the catalog ------------------------------------------------------------------------------


def _photo_face(
    s: Session, path: str, v: np.ndarray, person: int | None = None, encoder: str = ENCODER
) -> int:
    """A photo at ``path`` with one face ``v`` (confirmed in ``person`` when given); its id."""
    photo = Photo(path=path, size=1, mtime_ns=1, status="ok", encoder=encoder, scanned_at=NOW)
    s.add(photo)
    s.flush()
    face = Face(
        photo_id=photo.id,
        left=0,
        top=0,
        right=10,
        bottom=10,
        size=10,
        embedding=embedding_to_blob(v),
        person_id=person,
        confirmed=person is not None,
    )
    s.add(face)
    s.flush()
    return int(face.id)


def _fill(catalog: Catalog, x: np.ndarray, labels: np.ndarray, encoder: str = ENCODER) -> dict:
    """One photo per face, one named person per label, every face confirmed in it."""
    with catalog.session() as s:
        people = {}
        for k in np.unique(labels):
            person = Person(name=f"P{k}", hidden=False, created_at=NOW)
            s.add(person)
            people[int(k)] = person
        s.flush()
        for i, (v, k) in enumerate(zip(x, labels, strict=True)):
            _photo_face(s, f"/lib/{i}.jpg", v, people[int(k)].id, encoder)
        return {k: p.id for k, p in people.items()}


def test_a_projection_that_helps_is_stored_used_and_the_same_after_reopening(
    catalog: Catalog, db_path: str
) -> None:
    x, labels = _helpful()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        assert needs_relearn(s)
        report = learn_projection(s)
    assert report.used and report.gain is not None and report.gain > 0.3
    assert report.method != learn.RAW and report.named_faces == len(x)
    assert report.people == 30 and report.rejections == 0
    with catalog.session() as s:
        projection = current_projection(s)
        assert projection is not None and projection.method == report.method
        assert not needs_relearn(s)
        before = projection.transform(x[:5])
    catalog.close()
    again = open_catalog(db_path)
    try:
        with again.session() as s:
            reopened = current_projection(s)
            assert reopened is not None and reopened.id == projection.id
            assert np.array_equal(reopened.transform(x[:5]), before)
            assert ensure_projection(s) is not None  # nothing changed: nothing relearned
            assert s.scalar(select(LearnedProjection.id).order_by(LearnedProjection.id.desc()))
            assert len(s.scalars(select(LearnedProjection)).all()) == 1
    finally:
        again.close()


def test_without_a_gain_the_raw_embedding_is_used_and_the_report_says_why(
    catalog: Catalog,
) -> None:
    x, labels = _hopeless()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        report = learn_projection(s)
    assert (
        not report.used and "No gain" in report.reason and "raw embedding is used" in report.reason
    )
    with catalog.session() as s:
        assert current_projection(s) is None
        row = s.scalars(select(LearnedProjection)).one()
        assert row.matrix is None and not row.used and row.raw_score == 1.0


def test_too_few_decisions_use_the_raw_embedding_and_say_so(catalog: Catalog) -> None:
    x, labels = _helpful(people=MIN_PEOPLE - 1)
    _fill(catalog, x, labels)
    with catalog.session() as s:
        assert not needs_relearn(s)  # nothing to learn from: ensure_projection writes nothing
        assert ensure_projection(s) is None
        assert s.scalars(select(LearnedProjection)).all() == []
        report = learn_projection(s)
    assert not report.used and report.methods == []
    assert f"Too few decisions to learn from: {MIN_PEOPLE - 1} named people" in report.reason
    with catalog.session() as s:
        assert current_projection(s) is None
        assert not needs_relearn(s)


def test_contradicting_decisions_are_named_and_left_out(catalog: Catalog) -> None:
    x, labels = _helpful()
    people = _fill(catalog, x, labels)
    with catalog.session() as s:
        faces = s.scalars(select(Face).where(Face.person_id == people[0]).order_by(Face.id))
        bad = next(iter(faces))
        s.add(Rejection(face_id=bad.id, person_id=people[0], created_at=NOW))
        # a consistent rejection: a face of person 1 is not person 0
        other = s.scalars(select(Face).where(Face.person_id == people[1])).first()
        assert other is not None
        s.add(Rejection(face_id=other.id, person_id=people[0], created_at=NOW))
        bad_id = bad.id
    with catalog.session() as s:
        report = learn_projection(s)
    assert report.left_out == 1 and report.left_out_faces == [bad_id]
    assert f"face {bad_id} (person {people[0]})" in report.reason
    assert report.named_faces == len(x) - 1 and report.rejections == 1
    assert report.used  # the rest still teaches
    with catalog.session() as s:
        stored = stored_report(s)
    assert stored is not None and stored.left_out == 1 and str(bad_id) in stored.reason


def test_a_projection_learned_on_another_model_is_not_used_until_learned_again(
    catalog: Catalog,
) -> None:
    x, labels = _helpful()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        assert learn_projection(s).used
    with catalog.session() as s:
        s.execute(update(Photo).values(encoder="new_model;hog;d1600"))
    with catalog.session() as s:
        assert current_projection(s) is None
        report = stored_report(s)
        assert report is not None and report.used and not report.usable_now
        assert report.note and "learned on embedding model fake_model" in report.note
        assert needs_relearn(s)
        projection = ensure_projection(s)
    assert projection is not None and projection.model == "new_model"


def test_relearn_when_decisions_change_by_a_tenth(catalog: Catalog) -> None:
    x, labels = _helpful()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        learn_projection(s)
    with catalog.session() as s:
        ids = s.scalars(select(Face.id).order_by(Face.id)).all()
        # one face of each of ten people unconfirmed: under a tenth, no relearn
        s.execute(update(Face).where(Face.id.in_(ids[0:80:8])).values(confirmed=False))
    with catalog.session() as s:
        assert not needs_relearn(s)
        s.execute(update(Face).where(Face.id.in_(ids[1::8])).values(confirmed=False))
    with catalog.session() as s:
        assert needs_relearn(s)  # 40 of 240
        s.execute(update(Face).values(confirmed=True))
        s.execute(update(Person).where(Person.name == "P29").values(name=None))
    with catalog.session() as s:
        assert needs_relearn(s)  # a named person fewer
        s.execute(update(Person).where(Person.name.is_(None)).values(name="P29"))
    with catalog.session() as s:
        assert not needs_relearn(s)
        s.execute(update(Person).where(Person.name == "P28").values(hidden=True))
    with catalog.session() as s:
        assert needs_relearn(s)  # hidden people are not learned from


# --- the command ------------------------------------------------------------------------------


def test_cli_learn_and_report(catalog: Catalog, db_path: str) -> None:
    result = runner.invoke(app, ["learn", "--report", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "Nothing learned yet" in result.stdout
    x, labels = _helpful()
    _fill(catalog, x, labels)
    catalog.close()
    result = runner.invoke(app, ["learn", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "wccn" in result.stdout and "(used for suggestions" in result.stdout
    assert "Learned in" in result.stderr
    result = runner.invoke(app, ["learn", "--report", "--json", "--db", db_path])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["schema"] == "photocluster.learn/1"
    got = doc["projection"]
    assert got["used"] and got["usable_now"] and got["gain"] > 0.3
    assert {m["method"] for m in got["methods"]} == set(learn.METHODS)
    result = runner.invoke(app, ["learn", "--report", "--db", db_path])
    assert result.exit_code == 0 and "(used for suggestions" in result.stdout
    again = open_catalog(db_path)
    with again.session() as s:
        s.execute(update(Photo).values(encoder="new_model;hog;d1600"))
    again.close()
    result = runner.invoke(app, ["learn", "--report", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "not used: the raw embedding is used" in result.stdout
    assert "learned on embedding model fake_model" in " ".join(result.stdout.split())
    assert "embedding model changed" in result.stderr


def test_a_large_library_learns_from_a_fixed_sample() -> None:
    from photocluster.people.projection import MAX_FACES_PER_PERSON, MAX_LEARN_FACES, _sample

    rng = np.random.default_rng(1)
    small = rng.normal(size=(300, 128))
    labels = np.repeat(np.arange(3), 100)
    x, lab = _sample(small, labels, 0)
    assert x is small and lab is labels  # everything while there are few faces
    big = rng.normal(size=(MAX_LEARN_FACES + 4_000, 128))
    labels = np.arange(len(big)) % 150  # 150 people of ~80 faces
    x, lab = _sample(big, labels, 0)
    assert len(x) <= MAX_LEARN_FACES and np.bincount(lab).max() <= MAX_FACES_PER_PERSON
    x2, lab2 = _sample(big, labels, 0)
    assert np.array_equal(x, x2) and np.array_equal(lab, lab2)  # the same decisions, same sample


# --- placing new faces ------------------------------------------------------------------------


def _placeable(people: int = 30, per: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """On dlib's scale (same person ~0.5 apart, people ~0.7), with four nuisance directions
    shared by everyone (think pose): raw, a face's nearest faces are often other people in the
    same pose and cluster's rule leaves it out; whitened, it joins its person."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 0.1, 128) + rng.normal(0, 0.04, (people, 128))
    labels = np.repeat(np.arange(people), per)
    x = means[labels] + rng.normal(0, 0.012, (people * per, 128))
    x[:, :4] += rng.normal(0, 0.15, (people * per, 4))
    return x, labels


def _place(y: np.ndarray, owner: np.ndarray, rows: np.ndarray) -> np.ndarray:
    from photocluster.people.clustering import place_faces
    from photocluster.people.params import ClusterParams

    return place_faces(y, owner, rows, ClusterParams())


def test_placement_is_measured_on_held_out_faces_of_named_people() -> None:
    x, labels = _placeable()
    got = learn.cross_validate_placement(x, labels, None, "wccn", _place)
    assert got.held_out == len(x)  # every face held out once (eight each: folds of 3, 3, 2)
    assert got.raw_wrong == 0 and got.wrong == 0
    assert got.raw_right < 0.8 * len(x) and got.gain is not None and got.gain > 0.05
    same = learn.cross_validate_placement(x, labels, None, learn.RAW, _place)
    assert same.gain == 0 and same.right == same.raw_right == got.raw_right
    folds = learn._face_folds(np.repeat(np.arange(4), [2, 3, 4, 9]), 3, np.random.default_rng(0))
    assert list(folds[:2]) == [-1, -1]  # two faces: never held out
    for start, n in ((2, 3), (5, 4), (9, 9)):
        held = np.bincount(folds[start : start + n], minlength=3)
        assert held.min() >= 1 and (n - held).min() >= 2  # two named in every fold


def test_a_projection_places_new_faces_only_when_it_placed_held_out_names_better(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.people import projection as proj
    from photocluster.people.projection import placing_projection

    x, labels = _placeable()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        report = learn_projection(s)
    assert report.used and report.places and report.placement is not None
    assert report.placement.right > report.placement.raw_right
    assert "New faces are placed with it too" in report.reason
    with catalog.session() as s:
        placing = placing_projection(s)
        stored = stored_report(s)
    assert placing is not None and placing.places and placing.method == report.method
    assert stored is not None and stored.placement == report.placement and stored.places
    # Better pairs, worse placing (one more face in the wrong person): used for suggestions,
    # not for placing.
    worse = learn.PlacementScore(report.method, 240, 100, 0, 200, 1)
    monkeypatch.setattr(proj, "cross_validate_placement", lambda *a, **k: worse)
    with catalog.session() as s:
        again = learn_projection(s)
    assert again.used and not again.places
    assert "New faces are placed on the raw embedding" in again.reason
    with catalog.session() as s:
        assert current_projection(s) is not None and placing_projection(s) is None


def test_without_a_used_projection_nothing_is_placed_with_one(catalog: Catalog) -> None:
    from photocluster.people.projection import placing_projection

    x, labels = _hopeless()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        report = learn_projection(s)
    assert not report.used and not report.places and report.placement is None
    with catalog.session() as s:
        assert placing_projection(s) is None


def _add_faces(catalog: Catalog, x: np.ndarray, first: int) -> list[int]:
    """New photos, one face each, in no person (as a scan writes them)."""
    with catalog.session() as s:
        return [_photo_face(s, f"/lib/new{first + i}.jpg", v) for i, v in enumerate(x)]


def test_cluster_places_new_faces_in_the_learned_space_and_never_moves_confirmed_faces(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from photocluster.people import assign
    from photocluster.people.assign import ClusterOptions, cluster_catalog

    x, labels = _placeable(per=12)
    named = np.arange(len(x)) % 12 < 8  # eight of each person named, four new
    people = _fill(catalog, x[named], labels[named])
    cluster_catalog(catalog, ClusterOptions())  # remembers the last face clustered
    with catalog.session() as s:
        assert learn_projection(s).places
        confirmed = {i: p for i, p in s.execute(select(Face.id, Face.person_id))}
    new = _add_faces(catalog, x[~named], 0)
    truth = {f: people[int(k)] for f, k in zip(new, labels[~named], strict=True)}
    # the same run on the raw embedding (a dry run: the catalog is not changed)
    monkeypatch.setattr(assign, "placing_projection", lambda _s: None)
    raw = cluster_catalog(catalog, ClusterOptions(), dry_run=True)
    monkeypatch.undo()
    changes = cluster_catalog(catalog, ClusterOptions())
    assert raw.placed_with is None and changes.placed_with == "wccn"
    with catalog.session() as s:
        now = {i: p for i, p in s.execute(select(Face.id, Face.person_id))}
    assert all(now[f] == p for f, p in confirmed.items())  # confirmed faces stay
    placed = {f: now[f] for f in new if now[f] in people.values()}
    assert all(p == truth[f] for f, p in placed.items())  # none in the wrong person
    # (the leftovers' clustering, raw as always, may add a few to people after placing)
    assert len(placed) >= changes.matched_to_existing > raw.matched_to_existing + 10


def test_a_projection_learned_before_placement_was_measured_places_nothing_and_says_so(
    catalog: Catalog, db_path: str
) -> None:
    from photocluster.people.projection import placing_projection

    x, labels = _placeable()
    _fill(catalog, x, labels)
    with catalog.session() as s:
        assert learn_projection(s).places
        # what migration 0006 leaves of a row learned before it
        s.execute(update(LearnedProjection).values(placement=None, places=False))
    with catalog.session() as s:
        assert current_projection(s) is not None and placing_projection(s) is None
    catalog.close()
    result = runner.invoke(app, ["learn", "--report", "--db", db_path])
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "new faces are placed on the raw embedding" in said
    assert "Placing new faces was not measured for this projection" in said


def test_cluster_says_when_it_placed_new_faces_with_the_learned_projection(
    catalog: Catalog, db_path: str
) -> None:
    from photocluster.people.assign import ClusterOptions, cluster_catalog

    x, labels = _placeable(per=12)
    named = np.arange(len(x)) % 12 < 8
    _fill(catalog, x[named], labels[named])
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as s:
        assert learn_projection(s).places
    _add_faces(catalog, x[~named], 0)
    catalog.close()
    result = runner.invoke(app, ["cluster", "--dry-run", "--json", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["placed_with"] == "wccn"
    result = runner.invoke(app, ["cluster", "--db", db_path])
    assert result.exit_code == 0, result.output
    assert "placed in the space learned from your names: wccn" in result.stdout
    result = runner.invoke(app, ["cluster", "--json", "--db", db_path])  # nothing new now
    assert json.loads(result.stdout)["placed_with"] is None
