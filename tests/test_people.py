"""cluster_catalog on fake-encoder photos: stable ids, confirmed faces, rejections, same photo."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from photocluster.cli import app
from photocluster.db import Catalog, open_catalog
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.models import Face, Person, Photo, Rejection
from photocluster.people import (
    ClusterOptions,
    cluster_catalog,
    list_people,
    person_photos,
    resolve_person,
)
from photocluster.scan import scan
from tests.fakes import make_photo

OPTS = ClusterOptions()


def library(root: Path, people: dict[str, int], start: int = 0) -> None:
    """``n`` single-face photos per person, each face at its own position (own jitter)."""
    for name, n in people.items():
        for k in range(start, start + n):
            make_photo(root / name / f"{k}.png", [(name, (10 + 7 * k, 20 + 3 * k, 40))])


def owners(catalog: Catalog) -> dict[str, set[int | None]]:
    """Person ids per folder name."""
    out: dict[str, set[int | None]] = {}
    with catalog.session() as s:
        for path, pid in s.execute(
            select(Photo.path, Face.person_id).join(Face, Face.photo_id == Photo.id)
        ):
            out.setdefault(Path(path).parent.name, set()).add(pid)
    return out


@pytest.fixture
def clustered(tmp_path: Path, catalog: Catalog, fake_options):  # type: ignore[no-untyped-def]
    root = tmp_path / "photos"
    library(root, {"ada": 5, "bob": 4, "cyd": 4, "dee": 1})
    scan(catalog, fake_options(root))
    changes = cluster_catalog(catalog, OPTS)
    return root, changes


def test_people_are_found_and_a_lone_face_stays_unassigned(clustered, catalog: Catalog) -> None:
    _root, changes = clustered
    got = owners(catalog)
    assert all(len(got[n]) == 1 and None not in got[n] for n in ("ada", "bob", "cyd"))
    assert len({next(iter(got[n])) for n in ("ada", "bob", "cyd")}) == 3
    assert got["dee"] == {None}
    assert len(changes.people_created) == 3 and changes.unassigned_faces == 1
    with catalog.session() as s:
        rows = list_people(s)
    assert [p.faces for p in rows] == [5, 4, 4]
    assert rows[0].label == "unnamed"


def test_two_faces_of_one_photo_are_never_one_person(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    root = tmp_path / "photos"
    library(root, {"ada": 4, "bob": 4})
    make_photo(root / "mirror" / "twice.png", [("ada", (10, 10, 40)), ("ada", (200, 100, 40))])
    scan(catalog, fake_options(root))
    for full in (False, True):
        cluster_catalog(catalog, OPTS, full=full)
        with catalog.session() as s:
            twice = (
                s.execute(
                    select(Face.person_id).join(Photo).where(Photo.path.endswith("twice.png"))
                )
                .scalars()
                .all()
            )
        assert len(twice) == 2
        assert None in twice or twice[0] != twice[1]


def test_ids_and_names_survive_new_photos_and_full_reclustering(
    clustered, catalog: Catalog, fake_options
) -> None:
    root, _ = clustered
    ada = next(iter(owners(catalog)["ada"]))
    bob = next(iter(owners(catalog)["bob"]))
    with catalog.session() as s:
        s.get(Person, ada).name = "Ada"  # type: ignore[union-attr]
        s.get(Person, bob).hidden = True  # type: ignore[union-attr]
    library(root, {"ada": 2, "eve": 4}, start=10)
    scan(catalog, fake_options(root))
    changes = cluster_catalog(catalog, OPTS)
    assert changes.matched_to_existing == 2  # the new Ada photos joined Ada directly
    got = owners(catalog)
    assert got["ada"] == {ada} and got["bob"] == {bob}
    assert None not in got["eve"] and ada not in got["eve"]
    for _ in range(2):
        changes = cluster_catalog(catalog, OPTS, full=True)
        assert changes.faces_moved == 0 and not changes.people_created
        assert owners(catalog) == got
    with catalog.session() as s:
        assert resolve_person(s, "ada").id == ada
        assert s.get(Person, bob).hidden  # type: ignore[union-attr]


def test_confirmed_faces_and_rejections_hold_across_full(clustered, catalog: Catalog) -> None:
    got = owners(catalog)
    ada, bob = next(iter(got["ada"])), next(iter(got["bob"]))
    with catalog.session() as s:
        faces = {
            Path(p).parent.name + "/" + Path(p).name: f
            for p, f in s.execute(select(Photo.path, Face.id).join(Photo))
        }
        # A human says a Bob photo is Ada (confirmed) and that an Ada photo is not Ada.
        s.execute(
            update(Face).where(Face.id == faces["bob/0.png"]).values(person_id=ada, confirmed=True)
        )
        s.add(Rejection(face_id=faces["ada/1.png"], person_id=ada, created_at=datetime.now()))
    changes = cluster_catalog(catalog, OPTS, full=True)
    with catalog.session() as s:
        assert s.get(Face, faces["bob/0.png"]).person_id == ada  # type: ignore[union-attr]
        assert s.get(Face, faces["ada/1.png"]).person_id != ada  # type: ignore[union-attr]
        assert s.get(Face, faces["ada/2.png"]).person_id == ada  # type: ignore[union-attr]
        assert s.get(Face, faces["bob/1.png"]).person_id == bob  # type: ignore[union-attr]
    assert any(m.face_id == faces["ada/1.png"] for m in changes.moves)
    # The next incremental run does not undo it either.
    cluster_catalog(catalog, OPTS)
    with catalog.session() as s:
        assert s.get(Face, faces["ada/1.png"]).person_id != ada  # type: ignore[union-attr]


def test_dry_run_writes_nothing(tmp_path: Path, catalog: Catalog, fake_options) -> None:
    root = tmp_path / "photos"
    library(root, {"ada": 4, "bob": 4})
    scan(catalog, fake_options(root))
    changes = cluster_catalog(catalog, OPTS, dry_run=True)
    assert changes.faces_moved == 8 and len(changes.people_created) == 2
    with catalog.session() as s:
        assert s.scalars(select(Person)).first() is None
        assert s.scalars(select(Face.person_id).where(Face.person_id.is_not(None))).first() is None


def test_empty_one_face_and_mixed_encoders_are_clear_errors(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    with pytest.raises(PhotoclusterError, match="No faces cached yet"):
        cluster_catalog(catalog, OPTS)
    library(tmp_path / "p", {"ada": 1})
    scan(catalog, fake_options(tmp_path / "p"))
    with pytest.raises(PhotoclusterError, match="Only one face"):
        cluster_catalog(catalog, OPTS)
    library(tmp_path / "p", {"bob": 2})
    scan(catalog, fake_options(tmp_path / "p"))
    with catalog.session() as s:
        s.execute(update(Photo).where(Photo.path.contains("bob")).values(encoder="other;hog"))
    with pytest.raises(PhotoclusterError, match="different encoder models") as err:
        cluster_catalog(catalog, OPTS)
    # which models, how many photos each, and one photo of each: the user knows what to re-scan
    assert "other: 2 photos (e.g. " in str(err.value) and "fake_v1: 1 photo (e.g. " in str(
        err.value
    )
    assert str(tmp_path / "p") in str(err.value)


def test_resolve_person_by_id_and_name(clustered, catalog: Catalog) -> None:
    with catalog.session() as s:
        first = list_people(s)[0]
        s.get(Person, first.id).name = "Ada Lovelace"  # type: ignore[union-attr]
        s.flush()
        assert resolve_person(s, str(first.id)).id == first.id
        assert resolve_person(s, "ada lovelace").id == first.id
        assert len(person_photos(s, resolve_person(s, "Ada Lovelace"))) == 5
        with pytest.raises(NotFound, match="No person with id 999"):
            resolve_person(s, "999")
        with pytest.raises(NotFound, match="No person named 'Zed'"):
            resolve_person(s, "Zed")


def test_cli_cluster_people_show(tmp_path: Path, catalog: Catalog, fake_options, db_path) -> None:
    library(tmp_path / "p", {"ada": 4, "bob": 4})
    scan(catalog, fake_options(tmp_path / "p"))
    runner = CliRunner()
    r = runner.invoke(app, ["cluster", "--db", db_path, "--dry-run", "-q"])
    assert r.exit_code == 0 and "people created: 2" in r.stdout and "dry run" in r.stdout
    r = runner.invoke(app, ["cluster", "--db", db_path, "-q", "--json"])
    assert r.exit_code == 0 and '"faces_moved": 8' in r.stdout
    r = runner.invoke(app, ["people", "--db", db_path])
    assert r.exit_code == 0 and r.stdout.count("unnamed") == 2
    r = runner.invoke(app, ["show", "1", "--db", db_path])
    assert r.exit_code == 0 and r.stdout.count(".png") == 4
    r = runner.invoke(app, ["show", "Nobody", "--db", db_path])
    assert r.exit_code == 1 and "No person named 'Nobody'" in r.stderr
    r = runner.invoke(app, ["cluster", "--db", db_path, "--min-cluster-size", "1"])
    assert r.exit_code != 0


def test_postgresql_catalog_clusters_too(tmp_path: Path, pg_url: str, fake_options) -> None:
    cat = open_catalog(pg_url)
    try:
        library(tmp_path / "p", {"ada": 4, "bob": 4, "cyd": 1})
        scan(cat, fake_options(tmp_path / "p"))
        changes = cluster_catalog(cat, OPTS)
        assert len(changes.people_created) == 2 and changes.unassigned_faces == 1
        again = cluster_catalog(cat, OPTS, full=True)
        assert again.faces_moved == 0
        with cat.session() as s:
            assert [p.faces for p in list_people(s)] == [4, 4]
    finally:
        cat.close()


def test_cluster_help_states_the_real_defaults() -> None:
    from typer.testing import CliRunner

    from photocluster.cli import app
    from photocluster.clustering import ClusterParams

    d = ClusterParams()
    text = " ".join(CliRunner().invoke(app, ["cluster", "--help"]).stdout.split())
    assert f"min cluster size {d.min_cluster_size}, min samples {d.min_samples}" in text
    assert f"attach distance {d.attach_distance}, pair distance {d.pair_distance}" in text
    assert f"split share {d.split_share}, merge share {d.merge_share}, merge distance off" in text
    assert d.merge_distance == 0  # "merge distance off"


def test_parameters_given_to_cluster_are_remembered_for_later_runs(
    tmp_path: Path, db_path: str, fake_options
) -> None:
    from typer.testing import CliRunner

    from photocluster.cli import app
    from photocluster.clustering import ClusterParams
    from photocluster.db import open_catalog
    from photocluster.people import saved_params

    for i in range(3):
        make_photo(tmp_path / "lib" / f"a{i}.png", [("ada", (20 + i, 20, 60))])
    cat = open_catalog(db_path)
    scan(cat, fake_options(tmp_path / "lib"))
    assert saved_params(cat) is None
    runner = CliRunner()
    result = runner.invoke(app, ["cluster", "--db", db_path, "--min-cluster-size", "7", "-q"])
    assert result.exit_code == 0, result.stderr
    remembered = saved_params(cat)
    assert remembered is not None and remembered.min_cluster_size == 7
    # A later run without options keeps 7 and changes only what it is told.
    runner.invoke(
        app, ["cluster", "--db", db_path, "--attach-distance", "0.5", "--merge-share", "0.6", "-q"]
    )
    remembered = saved_params(cat)
    assert remembered is not None
    assert (remembered.min_cluster_size, remembered.attach_distance) == (7, 0.5)
    assert remembered.merge_share == 0.6
    # A dry run remembers nothing; --defaults forgets.
    runner.invoke(app, ["cluster", "--db", db_path, "--min-samples", "9", "--dry-run", "-q"])
    assert saved_params(cat).min_samples == 3  # type: ignore[union-attr]
    runner.invoke(app, ["cluster", "--db", db_path, "--defaults", "-q"])
    assert saved_params(cat) == ClusterParams()
    bad = runner.invoke(app, ["cluster", "--db", db_path, "--method", "nope"])
    assert bad.exit_code == 1 and "eom" in bad.stderr
    bad = runner.invoke(app, ["cluster", "--db", db_path, "--merge-share", "1.5"])
    assert bad.exit_code == 2 and "merge-share" in bad.stderr  # typer's range check
    cat.close()


def test_incremental_and_full_runs_agree_on_a_fresh_catalog_with_small_people(
    tmp_path: Path, fake_options
) -> None:
    """Someone with two photos becomes a person after a plain scan, as after `cluster --full`."""
    from photocluster.people import ClusterOptions, cluster_catalog

    for i in range(5):
        make_photo(tmp_path / "lib" / f"ada{i}.png", [("ada", (20 + i, 20, 60))])
    for i in range(2):
        make_photo(tmp_path / "lib" / f"bob{i}.png", [("bob", (200, 30 + i, 60))])
    counts = []
    for full in (False, True):
        cat = open_catalog(str(tmp_path / f"c{full}.sqlite3"))
        scan(cat, fake_options(tmp_path / "lib"))
        changes = cluster_catalog(cat, ClusterOptions(), full=full)
        counts.append(sorted(changes.people_created.values()))
        cat.close()
    assert counts[0] == counts[1] == [2, 5]


def test_counts_in_messages_agree_with_their_number() -> None:
    from photocluster.cli.common import count

    assert count(1, "face") == "1 face" and count(0, "face") == "0 faces"
    assert count(1, "person", "people") == "1 person" and count(3, "person", "people") == "3 people"
