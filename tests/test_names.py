"""One name, however it is typed (issue 18): case, spacing and Unicode form never make a second
person, wherever a name is resolved or created (rename, merge, assign --to, import-xmp)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.names import name_key, same_name, tidy_name
from photocluster.decisions.log import (
    assign_faces,
    merge_people,
    rename_person,
    undo_last,
    validate_name,
)
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.ingest.scan import scan
from photocluster.people.queries import resolve_person
from tests.test_naming import build_library, faces_of, make_person


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Lisa Kudrow", "lisa kudrow"),
        ("Lisa Kudrow", "Lisa  Kudrow "),
        ("Lisa Kudrow", "LISA\u00a0KUDROW"),
        ("Émile Zola", "émile zola"),
        ("Émile Zola", "E\u0301mile Zola"),  # decomposed É
        ("Straße", "STRASSE"),
    ],
)
def test_the_same_name(a: str, b: str) -> None:
    assert name_key(a) == name_key(b) and same_name(a, b)


def test_different_names_and_tidy() -> None:
    assert not same_name("Matt LeBlanc", "Matt")
    assert not same_name("Ann", None) and same_name(None, None)
    assert tidy_name("  Lisa \u00a0 Kudrow ") == "Lisa Kudrow"
    assert validate_name("Lisa  Kudrow ") == "Lisa Kudrow"


@pytest.fixture
def lisa(tmp_path: Path, catalog: Catalog, fake_options) -> dict[str, int]:  # type: ignore[no-untyped-def]
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 3, "cyd": 2})))
    return {
        "lisa": make_person(catalog, faces_of(catalog, "ada"), name="Lisa Kudrow"),
        "bob": make_person(catalog, faces_of(catalog, "bob")),
        "emile": make_person(catalog, faces_of(catalog, "cyd"), name="Émile"),
    }


def names(catalog: Catalog) -> list[str]:
    with catalog.session() as s:
        return sorted(n for n in s.scalars(select(Person.name)) if n)


@pytest.mark.parametrize("typed", ["lisa kudrow", "Lisa  Kudrow ", "LISA KUDROW"])
def test_rename_to_a_name_someone_has_is_refused(
    catalog: Catalog, lisa: dict[str, int], typed: str
) -> None:
    with catalog.session() as s, pytest.raises(PhotoclusterError, match="already the name"):
        rename_person(s, lisa["bob"], typed, actor="t")
    assert names(catalog) == ["Lisa Kudrow", "Émile"]


def test_a_person_may_change_the_case_of_their_own_name(
    catalog: Catalog, lisa: dict[str, int]
) -> None:
    with catalog.session() as s:
        rename_person(s, lisa["lisa"], "lisa  kudrow", actor="t")
    assert names(catalog) == ["lisa kudrow", "Émile"]


@pytest.mark.parametrize("typed", ["lisa kudrow", "Lisa  Kudrow ", "ÉMILE", "E\u0301mile"])
def test_names_resolve_whatever_their_case_and_spacing(
    catalog: Catalog, lisa: dict[str, int], typed: str
) -> None:
    with catalog.session() as s:
        found = resolve_person(s, typed)
    assert found.id == (lisa["emile"] if "mile" in typed.lower() else lisa["lisa"])


def test_assign_to_a_differently_typed_name_joins_that_person(
    catalog: Catalog, lisa: dict[str, int]
) -> None:
    bob = faces_of(catalog, "bob")
    with catalog.session() as s:
        assign_faces(s, bob[:1], "Lisa  Kudrow ", actor="t")
        assign_faces(s, bob[1:2], "émile", actor="t")
    with catalog.session() as s:
        owners = [s.get(Face, f).person_id for f in bob[:2]]  # type: ignore[union-attr]
    assert owners == [lisa["lisa"], lisa["emile"]]
    assert names(catalog) == ["Lisa Kudrow", "Émile"]


def test_merge_under_a_name_someone_else_has_is_refused(
    catalog: Catalog, lisa: dict[str, int]
) -> None:
    with catalog.session() as s, pytest.raises(PhotoclusterError, match="already the name"):
        merge_people(s, [lisa["bob"]], lisa["emile"], name="LISA KUDROW", actor="t")


def test_undo_never_restores_a_name_now_held_in_another_spelling(
    catalog: Catalog, lisa: dict[str, int]
) -> None:
    with catalog.session() as s:
        rename_person(s, lisa["lisa"], "Lisa K", actor="t")
    with catalog.session() as s:  # outside the decision log (another tool, an older version)
        s.get(Person, lisa["bob"]).name = "LISA KUDROW"  # type: ignore[union-attr]
    with catalog.session() as s, pytest.raises(PhotoclusterError, match="now belongs to person"):
        undo_last(s)
    assert names(catalog) == ["LISA KUDROW", "Lisa K", "Émile"]


def test_two_old_spellings_are_ambiguous_not_guessed(
    catalog: Catalog, lisa: dict[str, int]
) -> None:
    with catalog.session() as s:  # as an older version could leave them
        s.get(Person, lisa["bob"]).name = "lisa kudrow"  # type: ignore[union-attr]
    with catalog.session() as s, pytest.raises(NotFound, match="Several people are named like"):
        resolve_person(s, "LISA KUDROW")


def test_import_xmp_names_in_several_spellings_make_one_person(
    tmp_path: Path,
    catalog: Catalog,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    from photocluster.export.xmp.importer import ImportOptions, import_xmp
    from photocluster.export.xmp.regions import face_region
    from tests.test_xmp import regions_xml

    lib = build_library(tmp_path / "xlib", {"dee": 4})
    scan(catalog, fake_options(lib))
    spellings = ["Lisa Kudrow", "lisa kudrow", "Lisa  Kudrow ", "Lisa Kudrow"]
    with catalog.session() as s:
        rows = s.execute(
            select(
                Photo.path, Photo.width, Photo.height, Face.left, Face.top, Face.right, Face.bottom
            )
            .join(Face)
            .order_by(Photo.path)
        ).all()
    for (path, w, h, *box), name in zip(rows, spellings, strict=True):
        r = face_region(*box, w, h, name)
        Path(path).with_suffix(".xmp").write_text(regions_xml([(name, (r.x, r.y, r.w, r.h))]))
    summary = import_xmp(catalog, ImportOptions(str(lib)))
    assert summary.assigned == 4 and summary.people_created == ["Lisa Kudrow"]
    with catalog.session() as s:
        people = s.execute(select(Person.name, Face.id).join(Face, Face.person_id == Person.id))
        assert sorted(n for n, _f in people) == ["Lisa Kudrow"] * 4
