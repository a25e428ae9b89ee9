"""`find PHOTO` on fake-encoder catalogs: verdicts, neighbours, bad input, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.cli import app
from photocluster.errors import PhotoclusterError
from photocluster.index.store import index_folder, sync_index
from photocluster.ingest.encoder import EncoderParams
from photocluster.ingest.scan import scan
from photocluster.people.assign import ClusterOptions, cluster_catalog
from photocluster.people.find import Candidate, find_in_photo, match_faces, verdict
from tests.fakes import FakeEncoder, make_photo
from tests.test_people import library

runner = CliRunner()
PARAMS = EncoderParams()


@pytest.fixture
def named(tmp_path: Path, catalog: Catalog, fake_options) -> Catalog:  # type: ignore[no-untyped-def]
    """ada x5 (named "Ada"), bob x4, cyd x4 (unnamed), dee x1 (unassigned)."""
    library(tmp_path / "photos", {"ada": 5, "bob": 4, "cyd": 4, "dee": 1})
    scan(catalog, fake_options(tmp_path / "photos"))
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as s:
        ada = s.scalar(
            select(Face.person_id)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Photo.path.like("%/ada/%"))
        )
        s.execute(update(Person).where(Person.id == ada).values(name="Ada"))
    return catalog


def _find(catalog: Catalog, cache: Path, photo: Path, top: int = 3):  # type: ignore[no-untyped-def]
    return find_in_photo(catalog, cache, str(photo), FakeEncoder(), PARAMS, top=top)


def test_known_people_are_named_with_their_nearest_photos(named: Catalog, tmp_path: Path) -> None:
    photo = make_photo(
        tmp_path / "new" / "party.png", [("ada", (30, 40, 50)), ("bob", (200, 60, 50))]
    )
    with named.session() as s:
        photos_before = s.scalar(select(func.count(Photo.id)))
    result = _find(named, tmp_path / "cache", photo)
    assert [f.verdict for f in result.faces] == ["known", "known"]
    ada, bob = result.faces
    assert ada.best is not None and ada.best.name == "Ada"
    assert (
        ada.best.centroid_distance < 0.3 < (ada.runner_up.centroid_distance if ada.runner_up else 9)
    )
    assert len(ada.neighbours) == 3
    assert all("/ada/" in n.photo and n.person == "Ada" for n in ada.neighbours)
    assert [n.distance for n in ada.neighbours] == sorted(n.distance for n in ada.neighbours)
    assert bob.best is not None and bob.best.name is None  # clustered, not named yet
    assert all("/bob/" in n.photo for n in bob.neighbours)
    assert ada.box[0] < bob.box[0]
    with named.session() as s:
        assert s.scalar(select(func.count(Photo.id))) == photos_before, "not added to the catalog"
    assert result.index.rebuilt and result.index.faces == 14


def test_a_stranger_is_unknown_and_an_unassigned_face_is_still_listed(
    named: Catalog, tmp_path: Path
) -> None:
    photo = make_photo(tmp_path / "new" / "eve.png", [("eve", (30, 40, 50))])
    (face,) = _find(named, tmp_path / "cache", photo).faces
    assert face.verdict == "unknown"
    assert face.best is None or face.best.centroid_distance > 0.8
    # dee's only face belongs to no person: it is a neighbour, never a person
    photo = make_photo(tmp_path / "new" / "dee.png", [("dee", (60, 40, 50))])
    (face,) = _find(named, tmp_path / "cache", photo).faces
    assert "/dee/" in face.neighbours[0].photo and face.neighbours[0].person_id is None
    assert face.best is None or "dee" not in (face.best.name or "")
    assert face.verdict == "unknown"


def test_verdict_is_relative_to_the_person_and_to_the_faces_neighbourhood() -> None:
    from photocluster.people.thresholds import (
        ATTACH_MARGIN,
        FIND_KNOWN_DISTANCE,
        PAIR_DISTANCE,
        SPREAD_RATIO,
    )

    def c(centroid: float, faces: int = 8, spread: float = 0.30, near: int = 5) -> Candidate:
        return Candidate(1, None, False, centroid, centroid - 0.05, faces, spread, near)

    # a face left out of a person's centroid sits n / (n - 1) further than their own faces do
    limit = SPREAD_RATIO * 0.30 * 8 / 7
    assert limit > FIND_KNOWN_DISTANCE > 0.40
    assert verdict(None, None) == "unknown"
    assert verdict(c(0.40), None) == "known"
    assert verdict(c(0.40), c(0.40 + ATTACH_MARGIN + 0.01)) == "known"
    assert verdict(c(0.40), c(0.40 + ATTACH_MARGIN - 0.01)) == "probably", "close runner-up"
    assert verdict(c(0.40, near=3), None) == "probably", "3 of its 5 nearest faces"
    assert verdict(c(0.40, near=2), None) == "unknown", "a mixed neighbourhood"
    assert verdict(c(FIND_KNOWN_DISTANCE + 0.01, spread=0.40), None) == "unknown", "global cap"
    # a tight person (a dense population): the same distance is beyond their own spread
    tight = 0.20
    assert SPREAD_RATIO * tight * 8 / 7 < 0.40
    assert verdict(c(0.40, spread=tight), None) == "unknown"
    assert verdict(c(0.30, spread=tight), None) == "known"
    # a small person: the neighbourhood counts as many faces as they have
    assert verdict(c(0.30, faces=3, spread=tight, near=3), None) == "known"
    assert verdict(c(0.30, faces=3, spread=tight, near=2), None) == "probably"
    # one face: no spread to compare with, so at most probably, and only very close
    assert verdict(c(PAIR_DISTANCE - 0.01, faces=1, spread=0.0, near=1), None) == "probably"
    assert verdict(c(PAIR_DISTANCE + 0.01, faces=1, spread=0.0, near=1), None) == "unknown"


def photo_with_faces(catalog: Catalog, vectors: np.ndarray) -> list[int]:
    """One photo holding these embeddings as faces (no encoder involved)."""
    from datetime import datetime

    from photocluster.catalog.embeddings import embedding_to_blob

    with catalog.session() as s:
        photo = Photo(
            path=f"/p/{len(vectors)}-{datetime.now().timestamp()}.jpg",
            size=1,
            mtime_ns=1,
            status="ok",
            encoder="fake",
            scanned_at=datetime.now(),
        )
        s.add(photo)
        s.flush()
        faces = [
            Face(photo_id=photo.id, left=0, top=0, right=9, bottom=9, size=9, embedding=blob)
            for blob in map(embedding_to_blob, vectors)
        ]
        s.add_all(faces)
        s.flush()
        return [f.id for f in faces]


def test_a_stranger_within_the_global_distance_of_a_tight_person_is_not_known(
    catalog: Catalog, tmp_path: Path
) -> None:
    """Where faces are dense a person is tight: a stranger near them but outside their own
    spread is not them, while a loose person's face at that same distance still is."""
    from photocluster.people.thresholds import FIND_KNOWN_DISTANCE
    from tests.test_naming import make_person

    e = np.eye(128)
    kim, ada = 0.6 * e[0], -0.6 * e[0]
    # each person's faces: its centroid +- r along its own axes (spread exactly r)
    people = {"Kim": (kim, 0.20, range(1, 5)), "Ada": (ada, 0.33, range(5, 9))}
    for name, (centre, r, axes) in people.items():
        faces = [centre + sign * r * e[k] for k in axes for sign in (1, -1)]
        make_person(
            catalog, [i for v in faces for i in photo_with_faces(catalog, v[None, :])], name
        )
    index, _ = sync_index(catalog, tmp_path / "cache", graph=False)
    queries = np.stack([kim + 0.42 * e[10], kim + 0.20 * e[11], ada + 0.42 * e[12]])
    stranger, genuine, loose = match_faces(catalog, index, queries, [(0, 0, 9, 9)] * 3)
    assert stranger.best is not None and stranger.best.name == "Kim"
    assert stranger.best.centroid_distance <= FIND_KNOWN_DISTANCE, "known by the old rule"
    assert stranger.best.near_faces == 5, "and all its nearest faces are Kim's"
    assert stranger.verdict == "unknown"
    assert genuine.verdict == "known" and genuine.best is not None
    assert genuine.best.name == "Kim"
    assert loose.verdict == "known" and loose.best is not None and loose.best.name == "Ada"
    assert loose.best.centroid_distance == pytest.approx(stranger.best.centroid_distance)


def test_photo_without_faces_unreadable_or_missing_is_a_clear_error(
    named: Catalog, tmp_path: Path
) -> None:
    empty = make_photo(tmp_path / "new" / "wall.png", [])
    with pytest.raises(PhotoclusterError, match="No face found"):
        _find(named, tmp_path / "cache", empty)
    bad = tmp_path / "new" / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(PhotoclusterError, match="Cannot read"):
        _find(named, tmp_path / "cache", bad)
    with pytest.raises(PhotoclusterError, match="No such file"):
        _find(named, tmp_path / "cache", tmp_path / "nope.jpg")


def test_a_catalog_without_faces_is_a_clear_error(catalog: Catalog, tmp_path: Path) -> None:
    photo = make_photo(tmp_path / "new" / "ada.png", [("ada", (30, 40, 50))])
    with pytest.raises(PhotoclusterError, match="no faces to compare"):
        _find(catalog, tmp_path / "cache", photo)


def test_find_follows_the_catalog_after_it_changes(
    named: Catalog,
    tmp_path: Path,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    photo = make_photo(tmp_path / "new" / "fay.png", [("fay", (30, 40, 50))])
    (face,) = _find(named, tmp_path / "cache", photo).faces
    assert face.verdict == "unknown"
    library(tmp_path / "photos", {"fay": 4})
    scan(named, fake_options(tmp_path / "photos"))
    cluster_catalog(named, ClusterOptions())
    result = _find(named, tmp_path / "cache", photo)
    assert result.index.added == 4 and not result.index.rebuilt
    (face,) = result.faces
    assert face.verdict == "known" and all("/fay/" in n.photo for n in face.neighbours)


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def fake_dlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "photocluster.ingest.backends.make_encoder", lambda params: FakeEncoder(params)
    )


def test_cli_find_text_and_json(
    named: Catalog, tmp_path: Path, db_path: str, fake_dlib: None
) -> None:
    photo = make_photo(tmp_path / "new" / "ada.png", [("ada", (30, 40, 50))])
    result = runner.invoke(app, ["find", str(photo), "--db", db_path, "--top", "2"])
    assert result.exit_code == 0, result.stderr
    assert "known — Ada" in result.stdout
    assert result.stdout.count("/ada/") == 2
    assert "Face index built" in result.stderr
    result = runner.invoke(app, ["find", str(photo), "--db", db_path, "--json", "-q"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    (face,) = doc["faces"]
    assert face["verdict"] == "known" and face["best"]["name"] == "Ada"
    assert len(face["neighbours"]) == 5 and doc["index"]["rebuilt"] is False
    assert result.stderr == ""


def test_cli_find_failures_exit_1_with_a_message(
    named: Catalog, tmp_path: Path, db_path: str, fake_dlib: None
) -> None:
    empty = make_photo(tmp_path / "new" / "wall.png", [])
    result = runner.invoke(app, ["find", str(empty), "--db", db_path])
    assert result.exit_code == 1 and "No face found" in result.stderr and result.stdout == ""
    other = tmp_path / "other.sqlite3"
    photo = make_photo(tmp_path / "new" / "ada.png", [("ada", (30, 40, 50))])
    result = runner.invoke(app, ["find", str(photo), "--db", str(other)])
    assert result.exit_code == 1 and f"No catalog at {other}" in result.stderr
    assert not other.exists()
    open_catalog(str(other)).close()  # an empty catalog
    result = runner.invoke(app, ["find", str(photo), "--db", str(other)])
    assert result.exit_code == 1 and "no faces to compare" in result.stderr


def test_cli_index_builds_repairs_and_reports(named: Catalog, db_path: str) -> None:
    from photocluster.settings import Settings

    result = runner.invoke(app, ["index", "--db", db_path, "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rebuilt"] is True and doc["faces"] == 14 and doc["kind"] == "exact"
    folder = index_folder(Settings(db=db_path).cache_dir)
    (folder / "ids.npy").write_bytes(b"\x93NUMPY garbage")
    result = runner.invoke(app, ["index", "--db", db_path])
    assert result.exit_code == 0 and "rebuilt: 14 faces" in result.stdout
    result = runner.invoke(app, ["index", "--db", db_path])
    assert "up to date: 14 faces" in result.stdout


def test_cluster_reuses_the_hnsw_index_for_its_knn_graph(
    tmp_path: Path,
    catalog: Catalog,
    fake_options,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    """Above clustering._BIG faces, cluster asks the face index for neighbours (when HNSW)."""
    from photocluster.index import store as face_index
    from photocluster.people import clustering

    library(tmp_path / "photos", {"ada": 6, "bob": 5, "cyd": 5})
    scan(catalog, fake_options(tmp_path / "photos"))
    monkeypatch.setattr(clustering, "_BIG", 10)
    monkeypatch.setattr(face_index, "ANN_MIN_FACES", 10)
    asked: list[int] = []
    real = face_index.knn_graph

    def spy(index, ids, x, k):  # type: ignore[no-untyped-def]
        asked.append(len(ids))
        return real(index, ids, x, k)

    monkeypatch.setattr("photocluster.people.assign.knn_graph", spy)
    with_index = cluster_catalog(catalog, ClusterOptions(), full=True, index_dir=tmp_path / "c")
    assert asked == [16]
    assert (index_folder(tmp_path / "c") / "hnsw.faiss").exists()
    without = cluster_catalog(catalog, ClusterOptions(), full=True, dry_run=True)
    assert asked == [16], "no index folder: cluster builds its own graph"
    assert len(with_index.people_created) == 3 and without.faces_moved == 0


def test_an_unwritable_index_folder_still_answers_and_says_so(
    named: Catalog, tmp_path: Path, db_path: str, fake_dlib: None
) -> None:
    from photocluster.settings import Settings

    Settings(db=db_path).cache_dir.write_text("a file where the cache folder should be")
    photo = make_photo(tmp_path / "new" / "ada.png", [("ada", (30, 40, 50))])
    result = runner.invoke(app, ["find", str(photo), "--db", db_path, "-q"])
    assert result.exit_code == 0, result.stderr
    assert "known — Ada" in result.stdout
    assert "could not save the face index" in result.stderr
    result = runner.invoke(app, ["index", "--db", db_path])
    assert result.exit_code == 1 and "Cannot save the face index" in result.stderr


def test_cli_find_encodes_with_the_settings_the_catalog_was_scanned_with(
    catalog: Catalog,
    tmp_path: Path,
    db_path: str,
    monkeypatch: pytest.MonkeyPatch,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    """Issue 17: `find` encoded with the default settings whatever the catalog was scanned with."""
    scanned = EncoderParams(detect_size=800, upsample=2)
    library(tmp_path / "photos", {"ada": 4, "bob": 4})
    scan(catalog, fake_options(tmp_path / "photos", params=scanned))
    cluster_catalog(catalog, ClusterOptions())
    used: list[EncoderParams] = []

    def factory(params: EncoderParams) -> FakeEncoder:
        used.append(params)
        return FakeEncoder(params)

    monkeypatch.setattr("photocluster.ingest.backends.make_encoder", factory)
    photo = make_photo(tmp_path / "new" / "ada.png", [("ada", (30, 40, 50))])
    result = runner.invoke(app, ["find", str(photo), "--db", db_path, "-q"])
    assert result.exit_code == 0, result.stderr
    assert used == [scanned]
    assert EncoderParams.from_key(scanned.key("any-model")) == scanned
    assert EncoderParams.from_key("") == EncoderParams()
