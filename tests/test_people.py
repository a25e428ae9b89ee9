"""cluster_catalog on fake-encoder photos: stable ids, confirmed faces, rejections, same photo."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person, Photo, Rejection
from photocluster.cli import app
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.ingest.scan import scan
from photocluster.people.assign import ClusterOptions, cluster_catalog
from photocluster.people.queries import list_people, person_photos, resolve_person
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
    from photocluster.people.params import ClusterParams

    d = ClusterParams()
    text = " ".join(CliRunner().invoke(app, ["cluster", "--help"]).stdout.split())
    assert f"min cluster size {d.min_cluster_size}, min samples {d.min_samples}" in text
    assert f"attach distance {d.attach_distance}, pair distance {d.pair_distance}" in text
    assert f"split share {d.split_share}, merge share {d.merge_share}, verify share" in text
    assert f"verify share {d.verify_share}, separation {d.separation}, attach posterior" in text
    assert f"attach posterior {d.attach_posterior}, merge distance off" in text
    assert d.merge_distance == 0  # "merge distance off"


def test_parameters_given_to_cluster_are_remembered_for_later_runs(
    tmp_path: Path, db_path: str, fake_options
) -> None:
    from typer.testing import CliRunner

    from photocluster.catalog.db import open_catalog
    from photocluster.cli import app
    from photocluster.people.assign import saved_params
    from photocluster.people.params import ClusterParams

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
    # Only what differs from the built-in defaults is stored: a better default in a later
    # version reaches this catalog for every parameter its user did not change.
    from photocluster.catalog.models import Meta
    from photocluster.people.assign import META_PARAMS

    with cat.session() as s:
        stored = json.loads(s.get(Meta, META_PARAMS).value)  # type: ignore[union-attr]
    assert stored == {
        "format": 2,
        "changed": {"min_cluster_size": 7, "attach_distance": 0.5, "merge_share": 0.6},
    }
    runner.invoke(app, ["cluster", "--db", db_path, "--defaults", "-q"])
    assert saved_params(cat) == ClusterParams()
    # A catalog written before (every field stored) keeps what it stored.
    with cat.session() as s:
        old = {**dataclasses.asdict(ClusterParams()), "min_samples": 5}
        s.get(Meta, META_PARAMS).value = json.dumps(old)  # type: ignore[union-attr]
        s.commit()
    assert saved_params(cat) == ClusterParams(min_samples=5)
    bad = runner.invoke(app, ["cluster", "--db", db_path, "--method", "nope"])
    assert bad.exit_code == 1 and "eom" in bad.stderr
    bad = runner.invoke(app, ["cluster", "--db", db_path, "--merge-share", "1.5"])
    assert bad.exit_code == 2 and "merge-share" in bad.stderr  # typer's range check
    cat.close()


def test_incremental_and_full_runs_agree_on_a_fresh_catalog_with_small_people(
    tmp_path: Path, fake_options
) -> None:
    """Someone with two photos becomes a person after a plain scan, as after `cluster --full`."""
    from photocluster.people.assign import ClusterOptions, cluster_catalog

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


# --- `cluster --full` follows the new clustering -------------------------------------------------


def faces_by_key(catalog: Catalog) -> dict[str, tuple[int, int | None, bool]]:
    """'folder/file' -> (face id, person id, confirmed), for single-face photos."""
    with catalog.session() as s:
        rows = s.execute(select(Photo.path, Face.id, Face.person_id, Face.confirmed).join(Photo))
        return {
            f"{Path(p).parent.name}/{Path(p).name}": (fid, pid, bool(c)) for p, fid, pid, c in rows
        }


def grouping(catalog: Catalog, among: set[str]) -> tuple[set[frozenset[str]], set[str]]:
    """The faces ``among`` grouped by person (ids dropped), and those unassigned."""
    groups: dict[int, set[str]] = {}
    unassigned = set()
    for key, (_fid, pid, _c) in faces_by_key(catalog).items():
        if key not in among:
            continue
        if pid is None:
            unassigned.add(key)
        else:
            groups.setdefault(pid, set()).add(key)
    return {frozenset(g) for g in groups.values()}, unassigned


def keys(name: str, n: int) -> set[str]:
    return {f"{name}/{k}.png" for k in range(n)}


def test_full_splits_a_wrongly_merged_unnamed_person_as_a_fresh_catalog_would(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:
    root = tmp_path / "photos"
    library(root, {"ada": 5, "bob": 5, "cyd": 4, "dee": 4, "eve": 1})
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, OPTS)
    face = faces_by_key(catalog)
    ada, x, cyd, dee = (face[f"{n}/0.png"][1] for n in ("ada", "bob", "cyd", "dee"))
    with catalog.session() as s:
        s.get(Person, ada).name = "Ada"  # type: ignore[union-attr]
        # Earlier parameters merged bob, cyd and the lone eve into one person, hidden by the user.
        s.execute(
            update(Face)
            .where(Face.id.in_([face[k][0] for k in keys("cyd", 4) | {"eve/0.png"}]))
            .values(person_id=x)
        )
        s.delete(s.get(Person, cyd))
        s.get(Person, x).hidden = True  # type: ignore[union-attr]
        s.execute(update(Face).where(Face.id == face["bob/0.png"][0]).values(confirmed=True))

    changes = cluster_catalog(catalog, OPTS, full=True)

    fresh = open_catalog(str(tmp_path / "fresh.sqlite3"))
    try:
        scan(fresh, fake_options(root))
        cluster_catalog(fresh, OPTS, full=True)
        unnamed = set(face) - keys("ada", 5)
        assert grouping(catalog, unnamed) == grouping(fresh, unnamed)
    finally:
        fresh.close()
    # The exact partition, not only the same as fresh: bob and cyd apart, eve unassigned.
    assert grouping(catalog, unnamed) == (
        {frozenset(keys("bob", 5)), frozenset(keys("cyd", 4)), frozenset(keys("dee", 4))},
        {"eve/0.png"},
    )
    after = faces_by_key(catalog)
    assert {after[k][1] for k in keys("ada", 5)} == {ada}
    assert {after[k][1] for k in keys("bob", 5)} == {x}  # the largest overlap keeps the id
    assert after["bob/0.png"][2]  # still confirmed
    assert {after[k][1] for k in keys("dee", 4)} == {dee}
    new_cyd = after["cyd/0.png"][1]
    assert new_cyd not in (None, x, ada, dee) and new_cyd in changes.people_created
    with catalog.session() as s:
        assert s.get(Person, ada).name == "Ada"  # type: ignore[union-attr]
        assert s.get(Person, x).hidden  # type: ignore[union-attr]
        assert not s.get(Person, new_cyd).hidden  # type: ignore[union-attr]
    assert changes.named_leaving == []
    # A second run changes nothing.
    assert cluster_catalog(catalog, OPTS, full=True).faces_moved == 0


@pytest.fixture
def named_mixup(tmp_path: Path, catalog: Catalog, fake_options):  # type: ignore[no-untyped-def]
    """Ada (named) holds ada/0-4, bob/0, bob/1 (confirmed), all of cyd and the lone eve; an
    unnamed person holds bob/2-4; ada/5 is unassigned. Returns (root, ids of Ada and bob's)."""
    root = tmp_path / "photos"
    library(root, {"ada": 6, "bob": 5, "cyd": 4, "eve": 1})
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, OPTS)
    face = faces_by_key(catalog)
    ada, bob, cyd = (face[f"{n}/0.png"][1] for n in ("ada", "bob", "cyd"))
    to_ada = {"bob/0.png", "bob/1.png", "eve/0.png"} | keys("cyd", 4)
    with catalog.session() as s:
        s.get(Person, ada).name = "Ada"  # type: ignore[union-attr]
        s.execute(
            update(Face).where(Face.id.in_([face[k][0] for k in to_ada])).values(person_id=ada)
        )
        s.execute(update(Face).where(Face.id == face["bob/1.png"][0]).values(confirmed=True))
        s.execute(update(Face).where(Face.id == face["ada/5.png"][0]).values(person_id=None))
        s.delete(s.get(Person, cyd))
    return root, ada, bob


def test_named_people_keep_their_faces_unless_reassigned(named_mixup, catalog: Catalog) -> None:
    _root, ada, bob = named_mixup
    before = faces_by_key(catalog)
    kept = {k for k, (_f, pid, _c) in before.items() if pid == ada}
    changes = cluster_catalog(catalog, OPTS, full=True)
    after = faces_by_key(catalog)
    # Ada keeps every face and gains ada/5 through matching; bob's person is untouched.
    assert {k for k, (_f, pid, _c) in after.items() if pid == ada} == kept | {"ada/5.png"}
    assert {k for k, (_f, pid, _c) in after.items() if pid == bob} == keys("bob", 5) - {
        "bob/0.png",
        "bob/1.png",
    }
    assert changes.named_leaving == [] and not changes.people_created

    changes = cluster_catalog(catalog, OPTS, full=True, reassign_named=True)
    after = faces_by_key(catalog)
    assert {k for k, (_f, pid, _c) in after.items() if pid == ada} == keys("ada", 6) | {
        "bob/1.png"  # confirmed: never moves
    }
    assert {k for k, (_f, pid, _c) in after.items() if pid == bob} == keys("bob", 5) - {"bob/1.png"}
    (new,) = changes.people_created
    assert {k for k, (_f, pid, _c) in after.items() if pid == new} == keys("cyd", 4)
    assert after["eve/0.png"][1] is None
    with catalog.session() as s:
        assert s.get(Person, ada).name == "Ada"  # type: ignore[union-attr]
        assert s.get(Person, new).name is None  # type: ignore[union-attr]
    (leaving,) = changes.named_leaving
    assert (leaving.person_id, leaving.name) == (ada, "Ada")
    assert {m.to_person for m in leaving.moves} == {bob, new, None}


def test_dry_run_lists_the_faces_leaving_each_named_person_and_writes_nothing(
    named_mixup, catalog: Catalog
) -> None:
    _root, ada, bob = named_mixup
    before = faces_by_key(catalog)
    with catalog.session() as s:
        people_before = s.execute(select(Person.id, Person.name, Person.hidden)).all()
    changes = cluster_catalog(catalog, OPTS, full=True, reassign_named=True, dry_run=True)
    assert faces_by_key(catalog) == before
    with catalog.session() as s:
        assert s.execute(select(Person.id, Person.name, Person.hidden)).all() == people_before
    (leaving,) = changes.named_leaving
    assert (leaving.person_id, leaving.name) == (ada, "Ada")
    (placeholder,) = changes.people_created
    where = {m.face_id: (m.from_person, m.to_person) for m in leaving.moves}
    expected = {before["bob/0.png"][0]: (ada, bob), before["eve/0.png"][0]: (ada, None)}
    expected |= {before[k][0]: (ada, placeholder) for k in keys("cyd", 4)}
    assert where == expected
    data = changes.as_dict()
    (entry,) = data["named_leaving"]
    assert (entry["person_id"], entry["name"]) == (ada, "Ada")
    assert sorted(f["to"] for f in entry["faces"]) == ["new_person"] * 4 + ["person", "unassigned"]
    assert {"moves", "people_created", "faces_moved"} <= set(data)  # the old fields stay


def test_cli_full_reassign_named_and_its_dry_run(named_mixup, catalog: Catalog, db_path) -> None:
    _root, ada, bob = named_mixup
    face = faces_by_key(catalog)
    runner = CliRunner()
    r = runner.invoke(app, ["cluster", "--db", db_path, "--reassign-named", "-q"])
    assert r.exit_code == 1 and "--full" in r.stderr and "Traceback" not in r.stderr
    r = runner.invoke(app, ["cluster", "--db", db_path, "--full", "--dry-run", "-q"])
    assert r.exit_code == 0, r.stderr
    assert "faces that would leave named people: 0 (named people keep" in r.stdout
    r = runner.invoke(
        app, ["cluster", "--db", db_path, "--full", "--reassign-named", "--dry-run", "-q"]
    )
    assert r.exit_code == 0, r.stderr
    cyd = ", ".join(str(face[k][0]) for k in sorted(keys("cyd", 4)))
    assert "faces that would leave named people: 6\n" in r.stdout
    assert f"    Ada (person {ada}): 6 faces\n" in r.stdout
    assert f"      -> person {bob}: face {face['bob/0.png'][0]}\n" in r.stdout
    assert f"      -> new person 1: faces {cyd}\n" in r.stdout
    assert f"      -> unassigned: face {face['eve/0.png'][0]}\n" in r.stdout
    assert faces_by_key(catalog) == face
    r = runner.invoke(app, ["cluster", "--db", db_path, "--full", "--reassign-named", "--json"])
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["reassign_named"] is True
    (new,) = (p["id"] for p in data["people_created"])
    (entry,) = data["named_leaving"]
    got = {(f["face_id"], f["to"], f["to_person"]) for f in entry["faces"]}
    assert got == {
        (face["bob/0.png"][0], "person", bob),
        (face["eve/0.png"][0], "unassigned", None),
    } | {(face[k][0], "new_person", new) for k in keys("cyd", 4)}
    assert faces_by_key(catalog)["cyd/0.png"][1] == new
