"""What a new user meets around `name` (issue 18): true words on an empty or unclustered catalog,
people without faces neither listed nor counted, and the faces in no person reachable from
`people`, `show unassigned` and `name`."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person
from photocluster.decisions.log import reject_faces
from photocluster.ingest.scan import scan
from tests.test_naming import build_library, cli, faces_of, make_person


def test_name_on_an_empty_catalog_says_to_scan(db_path: str, catalog: Catalog) -> None:
    code, out, _err = cli("name", "--db", db_path)
    assert code == 0
    assert "no photos yet: run `photocluster scan DIR`" in out
    assert "named or hidden" not in out


def test_name_on_an_unclustered_catalog_says_to_cluster(
    db_path: str, catalog: Catalog, tmp_path: Path, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 2})))
    code, out, _err = cli("name", "--db", db_path)
    assert code == 0
    assert "The 5 face(s) are not grouped into people yet: run `photocluster cluster`" in out
    assert "named or hidden" not in out


def test_name_when_everyone_is_done_says_what_is_true(
    db_path: str, catalog: Catalog, tmp_path: Path, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 2, "cyd": 1})))
    make_person(catalog, faces_of(catalog, "ada"), name="Ada")
    hidden = make_person(catalog, faces_of(catalog, "bob"))
    small = make_person(catalog, faces_of(catalog, "cyd"))
    with catalog.session() as s:
        s.get(Person, hidden).hidden = True  # type: ignore[union-attr]
    code, out, _err = cli("name", "--db", db_path, "--min-faces", "2")
    assert code == 0
    assert out.strip() == (
        "Nobody to name: 1 of 3 people named; 1 hidden; 1 unnamed with fewer than 2 faces "
        "(lower --min-faces to see them)."
    )
    assert small


def test_people_whose_faces_all_left_are_not_listed_or_counted(
    db_path: str, catalog: Catalog, tmp_path: Path, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 2})))
    ada = make_person(catalog, faces_of(catalog, "ada"), name="Ada")
    bob = make_person(catalog, faces_of(catalog, "bob"))
    with catalog.session() as s:
        reject_faces(s, faces_of(catalog, "bob"), person=bob, actor="t")
    code, out, err = cli("people", "--db", db_path)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()[1:]] == [str(ada)]
    assert "1 person; 2 faces unassigned" in err
    assert "`photocluster show unassigned`" in err and "`photocluster name`" in err
    code, out, _err = cli("people", "--db", db_path, "--json")
    assert [p["id"] for p in json.loads(out)] == [ada]
    code, out, _err = cli("status", "--db", db_path, "--json")
    status = json.loads(out)
    assert (status["people"], status["named_people"], status["hidden_people"]) == (1, 1, 0)


def test_show_unassigned_lists_faces_in_no_person_with_their_likely_person(
    db_path: str, catalog: Catalog, tmp_path: Path, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 6, "dee": 1})))
    ada = faces_of(catalog, "ada")
    make_person(catalog, ada[:5], name="Ada Lovelace")
    dee = faces_of(catalog, "dee")[0]
    code, out, err = cli("show", "unassigned", "--db", db_path)
    assert code == 0, err
    lines = {int(line.split("\t")[1].split()[1]): line.split("\t")[3] for line in out.splitlines()}
    assert lines == {
        ada[5]: "probably Ada Lovelace",
        dee: "probably nobody you named (nearest: Ada Lovelace)",
    }
    assert "Faces in no person: 2" in err
    code, out, _err = cli("show", "unassigned", "--db", db_path, "--json")
    rows = {p["face_id"]: p for p in json.loads(out)["photos"]}
    assert rows[ada[5]]["verdict"] in ("known", "probably")
    assert rows[dee]["verdict"] == "unknown" and rows[dee]["nearest"]["name"] == "Ada Lovelace"


def test_name_reviews_the_faces_in_no_person_in_the_terminal_words(
    db_path: str, catalog: Catalog, tmp_path: Path, fake_options
) -> None:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 6, "dee": 1})))
    ada = faces_of(catalog, "ada")
    make_person(catalog, ada[:5], name="Ada Lovelace")
    code, out, _err = cli("name", "--db", db_path, input="\nDee\n")
    assert code == 0, out
    assert "Faces in no person: 1 face in 1 photo  [group 1/2]" in out
    assert "Looks like Ada Lovelace (known):" in out
    assert "Probably nobody you named. Nearest: Ada Lovelace," in out
    assert "Put 1 face(s) into Ada Lovelace." in out
    assert "Put 1 face(s) into Dee (a new person)." in out
    assert "faces assigned 2" in out
    with catalog.session() as s:
        names = {
            f: n
            for f, n in s.execute(
                select(Face.id, Person.name).join(Person, Face.person_id == Person.id)
            )
        }
    assert names[ada[5]] == "Ada Lovelace" and names[faces_of(catalog, "dee")[0]] == "Dee"
