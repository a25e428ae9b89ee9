"""Naming decisions: rename, merge, reject, assign, hide, undo, the log, and bad input.

Libraries are drawn with ``make_photo`` (one coloured square per person, at a fixed x per
person, so a face's ``left`` says whose it is) and scanned with the fake encoder.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Decision, Face, Person, Rejection
from photocluster.cli import app
from photocluster.cli.naming_cmds import detect_inline_protocol, inline_image
from photocluster.decisions.log import (
    NameConflict,
    assign_faces,
    history,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
    undo_last,
    validate_name,
)
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.ingest.scan import scan
from photocluster.people.assign import ClusterOptions, cluster_catalog
from tests.fakes import make_photo

# x position of each person's square in library photos: Face.left identifies the person.
COLUMN = {"ada": 10, "bob": 110, "cyd": 210, "dee": 310}
ACTOR = "tester"


def build_library(root: Path, counts: dict[str, int], start: int = 0) -> Path:
    """Photos where person p appears in counts[p] of them, at most once per photo."""
    most = max(counts.values())
    for i in range(start, start + most):
        faces = [
            (who, (COLUMN[who], 20 + (i % 7) * 5, 60)) for who, n in counts.items() if i - start < n
        ]
        make_photo(root / f"p{i:03d}.png", faces, size=(400, 200))
    return root


def who(face_left: int) -> str:
    return next(name for name, x in COLUMN.items() if x == face_left)


def faces_of(catalog: Catalog, name: str) -> list[int]:
    with catalog.session() as s:
        return list(s.scalars(select(Face.id).where(Face.left == COLUMN[name]).order_by(Face.id)))


def make_person(catalog: Catalog, face_ids: list[int], name: str | None = None) -> int:
    """A person holding exactly these faces (unconfirmed), as clustering would leave it."""
    from datetime import datetime

    with catalog.session() as s:
        p = Person(name=name, hidden=False, created_at=datetime(2024, 1, 2, 3, 4, 5))
        s.add(p)
        s.flush()
        s.execute(update(Face).where(Face.id.in_(face_ids)).values(person_id=p.id))
        return p.id


def state(catalog: Catalog) -> dict[str, Any]:
    """Every row naming decisions may touch, in a comparable form."""
    with catalog.session() as s:
        return {
            "people": sorted(
                (p.id, p.name, p.hidden, p.created_at) for p in s.scalars(select(Person))
            ),
            "faces": sorted(
                (f.id, f.person_id, f.confirmed)
                for f in s.execute(select(Face.id, Face.person_id, Face.confirmed))
            ),
            "rejections": sorted(
                (r.face_id, r.person_id, r.created_at)
                for r in s.execute(
                    select(Rejection.face_id, Rejection.person_id, Rejection.created_at)
                )
            ),
        }


def decisions(catalog: Catalog) -> int:
    with catalog.session() as s:
        return s.scalar(select(func.count()).select_from(Decision)) or 0


@pytest.fixture
def lib(tmp_path: Path, catalog: Catalog, fake_options) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """ada 5, bob 4, cyd 3 faces, each in an unnamed person (made directly, not clustered)."""
    root = build_library(tmp_path / "lib", {"ada": 5, "bob": 4, "cyd": 3})
    scan(catalog, fake_options(root))
    return {name: make_person(catalog, faces_of(catalog, name)) for name in ("ada", "bob", "cyd")}


# --- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("Ada\x07", "control characters"),
        ("Ada\nLovelace", "control characters"),
        ("Ada\u200b", "control characters"),
        ("../x", "file path"),
        ("a/b", "file path"),
        ("a\\b", "file path"),
        ("..", "file path"),
        ("x" * 101, "limit is 100"),
        ("42", "digits"),
    ],
)
def test_bad_names_are_refused_and_change_nothing(
    catalog: Catalog, lib: dict[str, int], raw: str, message: str
) -> None:
    before = state(catalog)
    with pytest.raises(PhotoclusterError, match=message), catalog.session() as s:
        rename_person(s, lib["ada"], raw, actor=ACTOR)
    # As a new person's name for assign ("42" reads as person id 42, which does not exist).
    expected = message if raw != "42" else "id 42"
    with pytest.raises(PhotoclusterError, match=expected), catalog.session() as s:
        assign_faces(s, faces_of(catalog, "bob")[:1], raw, actor=ACTOR)
    assert state(catalog) == before
    assert decisions(catalog) == 0


def test_names_are_trimmed_and_normalised() -> None:
    assert validate_name("  Ada Lovelace ") == "Ada Lovelace"
    assert validate_name("Zoe\u0308") == "Zo\u00eb"
    assert validate_name("x" * 100) == "x" * 100
    assert validate_name("R2-D2") == "R2-D2"


# --- rename -----------------------------------------------------------------------------------


def test_rename_names_the_person_confirms_faces_and_undo_restores_exactly(
    catalog: Catalog, lib: dict[str, int]
) -> None:
    before = state(catalog)
    with catalog.session() as s:
        d = rename_person(s, lib["ada"], "Ada Lovelace", actor=ACTOR)
        assert d.action == "rename" and "Ada Lovelace" in d.summary
    with catalog.session() as s:
        ada = s.get(Person, lib["ada"])
        assert ada is not None and ada.name == "Ada Lovelace"
        confirmed = s.scalars(select(Face.confirmed).where(Face.person_id == ada.id)).all()
        assert confirmed == [True] * 5
    with catalog.session() as s:
        undone = undo_last(s)
        assert undone.action == "rename" and undone.undone_at is not None
    assert state(catalog) == before


def test_rename_by_name_and_to_a_taken_name(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
        rename_person(s, "ada", "Ada Lovelace", actor=ACTOR)  # found ignoring case
        rename_person(s, str(lib["bob"]), "Bob", actor=ACTOR)
    before = state(catalog)
    with pytest.raises(PhotoclusterError, match="merge"), catalog.session() as s:
        rename_person(s, "Bob", "Ada Lovelace", actor=ACTOR)
    with pytest.raises(PhotoclusterError, match="already called"), catalog.session() as s:
        rename_person(s, "Bob", "Bob", actor=ACTOR)
    with pytest.raises(NotFound, match="No person named"), catalog.session() as s:
        rename_person(s, "Nobody", "X", actor=ACTOR)
    with pytest.raises(NotFound, match="No person with id 999"), catalog.session() as s:
        rename_person(s, 999, "X", actor=ACTOR)
    assert state(catalog) == before


# --- merge ------------------------------------------------------------------------------------


def test_merge_moves_faces_and_rejections_deletes_sources_and_undo_restores(
    catalog: Catalog, lib: dict[str, int]
) -> None:
    bob_face = faces_of(catalog, "bob")[0]
    cyd_faces = faces_of(catalog, "cyd")
    with catalog.session() as s:
        # cyd rejected one of bob's faces; ada rejected one of cyd's (it is moving into ada).
        reject_faces(s, [bob_face], person=lib["cyd"], actor=ACTOR)
        reject_faces(s, [cyd_faces[0]], person=lib["ada"], actor=ACTOR)
        rename_person(s, lib["cyd"], "Cyd", actor=ACTOR)
    before = state(catalog)
    with catalog.session() as s:
        d = merge_people(s, [lib["cyd"]], lib["ada"], actor=ACTOR)
        assert "merged person" in d.summary
    with catalog.session() as s:
        cyd_owner = set(s.scalars(select(Face.person_id).where(Face.left == COLUMN["cyd"])))
        assert cyd_owner == {lib["ada"]}
        ada = s.get(Person, lib["ada"])
        assert ada is not None and ada.name == "Cyd"  # the only name among them wins
        members = s.execute(select(Face.id, Face.confirmed).where(Face.person_id == ada.id)).all()
        assert len(members) == 5 + 3
        rejections = {tuple(r) for r in s.execute(select(Rejection.face_id, Rejection.person_id))}
    # The rejection from cyd now speaks for the merged person; ada's rejection of a cyd face
    # that moved in is lifted.
    assert (bob_face, lib["ada"]) in rejections
    assert (cyd_faces[0], lib["ada"]) not in rejections
    assert all(c for _i, c in members)
    with catalog.session() as s:
        undo_last(s)
    assert state(catalog) == before


def test_merge_errors_change_nothing(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
        rename_person(s, lib["bob"], "Bob", actor=ACTOR)
    before = state(catalog)
    n = decisions(catalog)
    with pytest.raises(PhotoclusterError, match="into itself"), catalog.session() as s:
        merge_people(s, [lib["ada"]], "Ada", actor=ACTOR)
    with pytest.raises(NotFound), catalog.session() as s:
        merge_people(s, [12345], lib["ada"], actor=ACTOR)
    with pytest.raises(NameConflict) as conflict, catalog.session() as s:
        merge_people(s, ["Bob"], "Ada", actor=ACTOR)
    assert sorted(conflict.value.names) == ["Ada", "Bob"]
    with pytest.raises(PhotoclusterError, match="file path"), catalog.session() as s:
        merge_people(s, ["Bob"], "Ada", name="../Ada", actor=ACTOR)
    with pytest.raises(PhotoclusterError, match="already the name"), catalog.session() as s:
        merge_people(s, [lib["cyd"]], "Ada", name="Bob", actor=ACTOR)
    assert state(catalog) == before
    assert decisions(catalog) == n


def test_merging_named_people_keeps_the_chosen_name(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
        rename_person(s, lib["bob"], "Ada Lovelace", actor=ACTOR)
    before = state(catalog)
    with catalog.session() as s:
        merge_people(s, ["Ada Lovelace"], "Ada", name="Ada Lovelace", actor=ACTOR)
    with catalog.session() as s:
        assert s.scalars(select(Person.name).where(Person.id == lib["ada"])).one() == "Ada Lovelace"
        assert s.get(Person, lib["bob"]) is None
    with catalog.session() as s:
        undo_last(s)
    assert state(catalog) == before


# --- reject / assign ----------------------------------------------------------------------------


def test_reject_unassigns_and_remembers(catalog: Catalog, lib: dict[str, int]) -> None:
    ada = faces_of(catalog, "ada")
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
    before = state(catalog)
    with catalog.session() as s:
        d = reject_faces(s, ada[:2], actor=ACTOR)
        assert d.action == "reject" and "2 face(s)" in d.summary
    with catalog.session() as s:
        rows = s.execute(
            select(Face.id, Face.person_id, Face.confirmed).where(Face.id.in_(ada[:2]))
        ).all()
        assert [(r.person_id, r.confirmed) for r in rows] == [(None, False)] * 2
        assert {tuple(r) for r in s.execute(select(Rejection.face_id, Rejection.person_id))} == {
            (ada[0], lib["ada"]),
            (ada[1], lib["ada"]),
        }
    with catalog.session() as s:
        undo_last(s)
    assert state(catalog) == before


def test_reject_errors_change_nothing(catalog: Catalog, lib: dict[str, int]) -> None:
    ada = faces_of(catalog, "ada")
    with catalog.session() as s:
        reject_faces(s, [ada[0]], actor=ACTOR)
    before = state(catalog)
    with pytest.raises(PhotoclusterError, match="not in any person"), catalog.session() as s:
        reject_faces(s, [ada[1], ada[0]], actor=ACTOR)
    with pytest.raises(NotFound, match="No face with id 99999"), catalog.session() as s:
        reject_faces(s, [ada[1], 99999], actor=ACTOR)
    with pytest.raises(PhotoclusterError, match="No faces"), catalog.session() as s:
        reject_faces(s, [], actor=ACTOR)
    assert state(catalog) == before


def test_assign_to_a_new_name_creates_the_person_and_undo_removes_it(
    catalog: Catalog, lib: dict[str, int]
) -> None:
    bob = faces_of(catalog, "bob")
    with catalog.session() as s:
        reject_faces(s, [bob[0]], person=lib["ada"], actor=ACTOR)
    before = state(catalog)
    with catalog.session() as s:
        d = assign_faces(s, bob[:2], "Robert", actor=ACTOR)
        assert "(new)" in d.summary
    with catalog.session() as s:
        robert = s.scalars(select(Person).where(Person.name == "Robert")).one()
        rows = s.execute(select(Face.person_id, Face.confirmed).where(Face.id.in_(bob[:2]))).all()
        assert {tuple(r) for r in rows} == {(robert.id, True)}
    # Assigning to ada lifts ada's rejection of that face.
    with catalog.session() as s:
        assign_faces(s, [bob[0]], lib["ada"], actor=ACTOR)
        assert s.scalar(select(func.count()).select_from(Rejection)) == 0
    with catalog.session() as s:
        undo_last(s)
        undo_last(s)
    assert state(catalog) == before


def test_assign_errors_change_nothing(catalog: Catalog, lib: dict[str, int]) -> None:
    bob = faces_of(catalog, "bob")
    before = state(catalog)
    with pytest.raises(NotFound), catalog.session() as s:
        assign_faces(s, bob[:1], "Nobody", actor=ACTOR, create=False)
    with pytest.raises(NotFound), catalog.session() as s:
        assign_faces(s, bob[:1], 4242, actor=ACTOR)
    with pytest.raises(NotFound, match="No face"), catalog.session() as s:
        assign_faces(s, [bob[0], 777777], lib["ada"], actor=ACTOR)
    assert state(catalog) == before


# --- hide, undo, log ----------------------------------------------------------------------------


def test_hide_and_unhide(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        set_hidden(s, lib["cyd"], True, actor=ACTOR)
    with pytest.raises(PhotoclusterError, match="already hidden"), catalog.session() as s:
        set_hidden(s, lib["cyd"], True, actor=ACTOR)
    with catalog.session() as s:
        assert s.get(Person, lib["cyd"]).hidden is True  # type: ignore[union-attr]
        set_hidden(s, lib["cyd"], False, actor=ACTOR)
    with catalog.session() as s:
        assert s.get(Person, lib["cyd"]).hidden is False  # type: ignore[union-attr]


def test_undo_walks_back_across_sessions_then_says_nothing_to_undo(
    db_path: str, catalog: Catalog, lib: dict[str, int]
) -> None:
    states = [state(catalog)]
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
    states.append(state(catalog))
    with catalog.session() as s:
        merge_people(s, [lib["bob"]], "Ada", actor=ACTOR)
    states.append(state(catalog))
    with catalog.session() as s:
        set_hidden(s, "Ada", True, actor=ACTOR)
    catalog.close()
    for expected in reversed(states):
        again = open_catalog(db_path)  # a new process would do the same
        try:
            with again.session() as s:
                undo_last(s)
            assert state(again) == expected
        finally:
            again.close()
    again = open_catalog(db_path)
    try:
        with pytest.raises(PhotoclusterError, match="Nothing to undo"), again.session() as s:
            undo_last(s)
        with again.session() as s:
            log = history(s)
        assert [e.action for e in log] == ["hide", "merge", "rename"]
        assert all(e.undone_at is not None for e in log)
        assert all(e.actor == ACTOR for e in log)
    finally:
        again.close()


def test_undo_payload_is_plain_json(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
    with catalog.session() as s:
        payload = json.loads(s.scalars(select(Decision.undo)).one())
    assert payload["format"] == 1
    assert payload["people"] == [
        {"id": lib["ada"], "name": None, "hidden": False, "created_at": "2024-01-02T03:04:05"}
    ]
    assert len(payload["faces"]) == 5


def test_undo_refuses_when_the_name_was_taken_since(catalog: Catalog, lib: dict[str, int]) -> None:
    with catalog.session() as s:
        rename_person(s, lib["ada"], "Ada", actor=ACTOR)
        rename_person(s, lib["ada"], "Ada L", actor=ACTOR)
    with catalog.session() as s:  # outside the log: someone else takes the old name
        s.execute(update(Person).where(Person.id == lib["bob"]).values(name="Ada"))
    before = state(catalog)
    with pytest.raises(PhotoclusterError, match="now belongs to person"), catalog.session() as s:
        undo_last(s)
    assert state(catalog) == before


def test_undo_on_postgresql(pg_url: str, tmp_path: Path, fake_options) -> None:  # type: ignore[no-untyped-def]
    cat = open_catalog(pg_url)
    try:
        scan(cat, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 3})))
        ada = make_person(cat, faces_of(cat, "ada"))
        bob = make_person(cat, faces_of(cat, "bob"), name="Bob")
        before = state(cat)
        with cat.session() as s:
            merge_people(s, [bob], ada, actor=ACTOR)
            reject_faces(s, faces_of(cat, "ada")[:1], actor=ACTOR)
        with cat.session() as s:
            undo_last(s)
            undo_last(s)
        assert state(cat) == before
    finally:
        cat.close()


# --- decisions survive clustering and new scans ---------------------------------------------


def test_merges_rejections_and_names_survive_full_clustering_and_new_scans(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = build_library(tmp_path / "lib", {"ada": 6, "bob": 5, "cyd": 4})
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as s:
        owner = {
            who(f.left): f.person_id for f in s.execute(select(Face.left, Face.person_id)).all()
        }
    assert len(set(owner.values())) == 3 and None not in owner.values()
    ada_faces = faces_of(catalog, "ada")
    merged = set(faces_of(catalog, "bob")) | set(faces_of(catalog, "cyd"))
    with catalog.session() as s:
        rename_person(s, owner["ada"], "Ada", actor=ACTOR)
        # The user says bob and cyd are one person (clustering disagrees).
        merge_people(s, [owner["cyd"]], owner["bob"], actor=ACTOR)
        rename_person(s, owner["bob"], "Bob & Cyd", actor=ACTOR)
        reject_faces(s, ada_faces[:1], actor=ACTOR)

    def check() -> None:
        with catalog.session() as s:
            rows = s.execute(select(Face.id, Face.left, Face.person_id)).all()
            names = {r.id: r.name for r in s.execute(select(Person.id, Person.name))}
        # Every face the user merged stays merged (new faces go wherever clustering says).
        bc = {r.person_id for r in rows if r.id in merged}
        assert len(bc) == 1 and names[bc.pop()] == "Bob & Cyd"
        rejected = next(r for r in rows if r.id == ada_faces[0])
        assert rejected.person_id != owner["ada"]
        others = {r.person_id for r in rows if who(r.left) == "ada" and r.id != ada_faces[0]}
        assert others == {owner["ada"]} and names[owner["ada"]] == "Ada"

    check()
    cluster_catalog(catalog, ClusterOptions(), full=True)
    check()
    # New photos of everyone, scanned and clustered incrementally, then fully again.
    build_library(root, {"ada": 3, "bob": 3, "cyd": 3}, start=50)
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, ClusterOptions())
    check()
    cluster_catalog(catalog, ClusterOptions(), full=True)
    check()
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Rejection)) == 1


def test_undo_after_clustering_restores_the_decision_rows(
    tmp_path: Path, catalog: Catalog, fake_options
) -> None:  # type: ignore[no-untyped-def]
    root = build_library(tmp_path / "lib", {"ada": 5, "bob": 4})
    scan(catalog, fake_options(root))
    cluster_catalog(catalog, ClusterOptions())
    with catalog.session() as s:
        people = sorted(s.scalars(select(Person.id)))
    before = state(catalog)
    with catalog.session() as s:
        merge_people(s, people[1:], people[0], actor=ACTOR)
    cluster_catalog(catalog, ClusterOptions(), full=True)
    with catalog.session() as s:
        undo_last(s)
    assert state(catalog) == before


# --- the CLI ------------------------------------------------------------------------------------

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_cli_commands_change_the_catalog_and_log_them(
    db_path: str, catalog: Catalog, lib: dict[str, int]
) -> None:
    bob = faces_of(catalog, "bob")
    code, out, _err = cli("rename", str(lib["ada"]), "Ada Lovelace", "--db", db_path)
    assert code == 0 and "renamed person" in out
    code, out, _ = cli("merge", str(lib["cyd"]), "--into", "Ada Lovelace", "--db", db_path)
    assert code == 0 and "merged person" in out
    code, out, _ = cli("reject", str(bob[0]), "--db", db_path)
    assert code == 0 and "rejected 1 face" in out
    code, out, _ = cli("assign", str(bob[0]), "--to", "Robert", "--db", db_path)
    assert code == 0 and "(new)" in out
    code, out, _ = cli("hide", str(lib["bob"]), "--db", db_path)
    assert code == 0
    code, out, _ = cli("unhide", str(lib["bob"]), "--db", db_path)
    assert code == 0
    code, out, _ = cli("log", "--db", db_path, "--json")
    log = json.loads(out)
    assert log["version"] == 1
    assert [d["action"] for d in log["decisions"]] == [
        "unhide",
        "hide",
        "assign",
        "reject",
        "merge",
        "rename",
    ]
    code, out, _ = cli("undo", "--db", db_path)
    assert code == 0 and out.startswith("Undone: unhide")
    code, out, _ = cli("log", "--db", db_path, "-n", "1")
    assert "[undone" in out and "unhide" in out
    with catalog.session() as s:
        assert s.get(Person, lib["bob"]).hidden is True  # type: ignore[union-attr]
        cyd_owner = set(s.scalars(select(Face.person_id).where(Face.left == COLUMN["cyd"])))
        assert cyd_owner == {lib["ada"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rename", "1", "../x"], "file path"),
        (["rename", "99", "X"], "No person with id 99"),
        (["merge", "1", "--into", "1"], "into itself"),
        (["merge", "2", "--into", "Nobody"], "No person named"),
        (["reject", "424242"], "No face with id 424242"),
        (["assign", "1", "--to", "Nobody", "--no-create"], "No person named"),
        (["hide", "nobody"], "No person named"),
        (["undo"], "Nothing to undo"),
        (["name", "--start", "Nobody"], "No person named"),
        (["name", "--inline", "--inline-protocol", "sixel"], "inline image protocol"),
    ],
)
def test_cli_errors_exit_1_with_a_message_and_change_nothing(
    db_path: str, catalog: Catalog, lib: dict[str, int], args: list[str], message: str
) -> None:
    before = state(catalog)
    code, _out, err = cli(*args, "--db", db_path)
    assert code == 1
    assert err.startswith("Error:") and message in err
    assert state(catalog) == before


def test_cli_merge_of_two_named_people_needs_name(
    db_path: str, catalog: Catalog, lib: dict[str, int]
) -> None:
    cli("rename", str(lib["ada"]), "Ada", "--db", db_path)
    cli("rename", str(lib["bob"]), "Bob", "--db", db_path)
    code, _out, err = cli("merge", "Bob", "--into", "Ada", "--db", db_path)
    assert code == 1 and "--name" in err
    code, _out, _err = cli("merge", "Bob", "--into", "Ada", "--name", "Bob", "--db", db_path)
    assert code == 0
    with catalog.session() as s:
        assert s.get(Person, lib["ada"]).name == "Bob"  # type: ignore[union-attr]


def test_cli_name_reads_answers_from_stdin(
    db_path: str, catalog: Catalog, lib: dict[str, int]
) -> None:
    code, out, _err = cli("name", "--db", db_path, input="Ada\nx 1\ns\nq\n")
    assert code == 0, out
    assert out.count("Contact sheet:") == 4  # ada, bob, bob again after the rejection, cyd
    assert "Named 1, merged 0, hidden 0, skipped 1, faces rejected 1" in out
    assert "people still to name" in out
    sheets = Path(db_path + "-cache") / "sheets"
    assert len(list(sheets.glob(f"person-{lib['ada']}-*.jpg"))) == 1
    code, out, _err = cli("name", "--db", db_path, "--min-faces", "10")
    assert code == 0 and "Nobody to name" in out


def test_inline_image_escape_codes(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "sheet.jpg"
    Image.new("RGB", (300, 200), (200, 10, 10)).save(path)
    iterm = inline_image(path, "iterm2")
    assert iterm.startswith("\033]1337;File=inline=1;size=")
    payload = iterm.split(":", 1)[1].split("\a")[0]
    assert base64.b64decode(payload) == path.read_bytes()
    kitty = inline_image(path, "kitty")
    chunks = kitty.strip().split("\033\\")[:-1]
    assert chunks[0].startswith("\033_Ga=T,f=100,m=")
    assert chunks[-1].startswith("\033_G") and "m=0;" in chunks[-1]
    png = base64.b64decode("".join(c.split(";", 1)[1] for c in chunks))
    assert png.startswith(b"\x89PNG")
    assert detect_inline_protocol({"TERM": "xterm-kitty"}) == "kitty"
    assert detect_inline_protocol({"TERM_PROGRAM": "iTerm.app"}) == "iterm2"
    assert detect_inline_protocol({"TERM": "xterm-256color"}) is None
