"""The `name` queue driven by scripted answers: order, suggestions, every answer, undo, quitting."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person, Photo, Rejection
from photocluster.decisions.log import history, rename_person
from photocluster.decisions.prompter import Answer, ScriptedPrompter, parse_answer
from photocluster.decisions.session import NamingOptions, run_naming
from photocluster.errors import PhotoclusterError
from photocluster.ingest.scan import scan
from photocluster.people import thresholds
from tests.test_naming import build_library, faces_of, make_person


@pytest.fixture
def lib(tmp_path: Path, catalog: Catalog, fake_options) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Unnamed people: ada 6 faces, bob 4, cyd 3."""
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 6, "bob": 4, "cyd": 3})))
    return {n: make_person(catalog, faces_of(catalog, n)) for n in ("ada", "bob", "cyd")}


def run(catalog: Catalog, tmp_path: Path, answers: Sequence[str], **kw: object) -> tuple:  # type: ignore[type-arg]
    prompter = ScriptedPrompter(answers)
    summary = run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(**kw))  # type: ignore[arg-type]
    return prompter, summary


def people(catalog: Catalog) -> dict[int, tuple[str | None, bool]]:
    with catalog.session() as s:
        return {p.id: (p.name, p.hidden) for p in s.scalars(select(Person))}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Answer("accept")),
        ("  ", Answer("accept")),
        ("s", Answer("skip")),
        ("S", Answer("skip")),
        ("i", Answer("hide")),
        ("u", Answer("undo")),
        ("?", Answer("help")),
        ("q", Answer("quit")),
        ("x 3 7 12", Answer("reject", numbers=(3, 7, 12))),
        ("x3,7", Answer("reject", numbers=(3, 7))),
        ("x 2-4 3", Answer("reject", numbers=(2, 3, 4))),
        ("=s", Answer("name", name="s")),
        ("Ada Lovelace", Answer("name", name="Ada Lovelace")),
        ("Xavier", Answer("name", name="Xavier")),
    ],
)
def test_parse_answer(text: str, expected: Answer) -> None:
    assert parse_answer(text) == expected


@pytest.mark.parametrize("text", ["x", "x  ", "x 5-2", "x 3--4"])
def test_parse_answer_refuses_malformed_rejections(text: str) -> None:
    with pytest.raises(PhotoclusterError):
        parse_answer(text)


def test_queue_largest_first_name_skip_ignore(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    prompter, summary = run(catalog, tmp_path, ["Ada Lovelace", "s", "i"])
    assert [i.person_id for i in prompter.shown] == [lib["ada"], lib["bob"], lib["cyd"]]
    assert [i.faces for i in prompter.shown] == [6, 4, 3]
    first = prompter.shown[0]
    assert first.sheet.path.exists() and len(first.sheet.faces) == 6
    assert (first.position, first.total) == (1, 3)
    assert people(catalog) == {
        lib["ada"]: ("Ada Lovelace", False),
        lib["bob"]: (None, False),
        lib["cyd"]: (None, True),
    }
    assert (summary.named, summary.skipped, summary.hidden, summary.quit) == (1, 1, 1, False)
    with catalog.session() as s:
        confirmed = s.scalars(select(Face.confirmed).where(Face.person_id == lib["ada"])).all()
    assert confirmed == [True] * 6


def test_enter_accepts_the_suggestion_and_skips_without_one(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    # Split bob: two of his faces are already named "Bob"; the rest is an unnamed cluster.
    bob = faces_of(catalog, "bob")
    named_bob = make_person(catalog, bob[:2], name="Bob")
    prompter, summary = run(catalog, tmp_path, ["", "", ""])
    shown = {i.person_id: i for i in prompter.shown}
    assert shown[lib["bob"]].suggestion is not None
    assert shown[lib["bob"]].suggestion.person_id == named_bob
    assert shown[lib["bob"]].suggestion.distance < thresholds.SAME_PERSON
    assert shown[lib["ada"]].suggestion is None  # ~1.0 from Bob: no suggestion
    assert sum("Enter = accept Bob" in q for q in prompter.questions) == 1
    with catalog.session() as s:
        owners = set(s.scalars(select(Face.person_id).where(Face.id.in_(bob))))
        assert s.get(Person, lib["bob"]) is None
    assert owners == {named_bob}
    assert (summary.merged, summary.skipped) == (1, 2)


def test_suggestions_follow_the_shared_threshold(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_person(catalog, faces_of(catalog, "bob")[:2], name="Bob")
    monkeypatch.setattr(thresholds, "SAME_PERSON", 0.001)
    prompter, _summary = run(catalog, tmp_path, ["s", "s", "s"])
    assert [i.suggestion for i in prompter.shown] == [None, None, None]


def test_no_suggestion_of_a_person_who_rejected_these_faces(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    bob = faces_of(catalog, "bob")
    named_bob = make_person(catalog, bob[:2], name="Bob")
    from datetime import datetime

    with catalog.session() as s:
        s.add(Rejection(face_id=bob[3], person_id=named_bob, created_at=datetime(2024, 1, 1)))
    prompter, _summary = run(catalog, tmp_path, ["s", "s", "s"])
    assert all(i.suggestion is None for i in prompter.shown)


def test_typing_an_existing_name_merges_after_confirmation(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    with catalog.session() as s:
        rename_person(s, lib["cyd"], "Cyd", actor="t")
    # ada: "cyd" -> refuse the merge -> name her; bob: "Cyd" -> confirm.
    prompter, summary = run(catalog, tmp_path, ["cyd", "n", "Ada", "Cyd", "y"])
    assert any("Cyd already exists (3 faces)" in q for q in prompter.questions)
    assert people(catalog) == {lib["ada"]: ("Ada", False), lib["cyd"]: ("Cyd", False)}
    with catalog.session() as s:
        assert set(s.scalars(select(Face.person_id).where(Face.left == 110))) == {lib["cyd"]}
    assert (summary.named, summary.merged) == (1, 1)


def test_x_rejects_numbered_faces_and_shows_the_person_again(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    prompter, summary = run(catalog, tmp_path, ["x 1 3", "x 99", "Ada"])
    first, again = prompter.shown[0], prompter.shown[1]
    assert first.person_id == again.person_id == lib["ada"]
    gone = first.sheet.face_ids([1, 3])
    assert again.faces == 4 and not set(gone) & {f.face_id for f in again.sheet.faces}
    assert any("no face numbered 99" in m for m in prompter.said)
    with catalog.session() as s:
        rows = {tuple(r) for r in s.execute(select(Rejection.face_id, Rejection.person_id))}
        owners = dict(s.execute(select(Face.id, Face.person_id).where(Face.id.in_(gone))).all())
    assert rows == {(gone[0], lib["ada"]), (gone[1], lib["ada"])}
    assert owners == {gone[0]: None, gone[1]: None}
    assert summary.rejected_faces == 2
    assert people(catalog)[lib["ada"]] == ("Ada", False)


def test_undo_goes_back_to_the_person_of_the_undone_decision(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    prompter, summary = run(catalog, tmp_path, ["Ada", "u", "Ada L", "q"])
    assert [i.person_id for i in prompter.shown] == [lib["ada"], lib["bob"], lib["ada"], lib["bob"]]
    assert any(m.startswith("Undone: renamed person") for m in prompter.said)
    assert people(catalog)[lib["ada"]] == ("Ada L", False)
    with catalog.session() as s:
        log = history(s)
    assert [(e.action, e.undone_at is not None) for e in log] == [
        ("rename", False),
        ("rename", True),
    ]
    assert summary.undone == 1 and summary.quit


def test_undo_with_nothing_to_undo_says_so(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    prompter, _summary = run(catalog, tmp_path, ["u", "q"])
    assert any("Nothing to undo" in m for m in prompter.said)
    assert len(prompter.shown) == 1


def test_bad_names_are_reported_and_nothing_changes(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    before = people(catalog)
    prompter, summary = run(catalog, tmp_path, ["../x", "=   ", "Ada\x1b[2J", "?", "q"])
    errors = [m for m in prompter.said if m.startswith("Error:")]
    assert len(errors) == 3
    assert "file path" in errors[0] and "empty" in errors[1] and "control" in errors[2]
    assert any("x 3 7 12" in m for m in prompter.said)  # the help
    assert people(catalog) == before
    assert summary.decisions == []


def test_quitting_keeps_progress_and_the_next_session_continues(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    _p, summary = run(catalog, tmp_path, ["Ada", "q"])
    assert summary.quit and summary.named == 1
    prompter, _summary = run(catalog, tmp_path, [])  # no answers: EOF quits at once
    assert [i.person_id for i in prompter.shown] == [lib["bob"]]
    assert people(catalog)[lib["ada"]] == ("Ada", False)


class _InterruptingPrompter(ScriptedPrompter):
    """Checks from another connection that the first answer is committed, then Ctrl-C."""

    def __init__(self, answers: Sequence[str], db: str) -> None:
        super().__init__(answers)
        self.db = db
        self.seen_committed: str | None = None

    def ask(self, prompt: str, names: Sequence[str]) -> str:
        if not self.answers:
            other = open_catalog(self.db)
            try:
                with other.session() as s:
                    self.seen_committed = s.scalar(select(Person.name).where(Person.name == "Ada"))
            finally:
                other.close()
            raise KeyboardInterrupt
        return super().ask(prompt, names)


def test_each_decision_is_committed_at_once_and_ctrl_c_keeps_them(
    db_path: str, catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    prompter = _InterruptingPrompter(["Ada"], db_path)
    summary = run_naming(catalog, prompter, tmp_path / "cache")
    assert prompter.seen_committed == "Ada"
    assert summary.interrupted and summary.named == 1
    assert people(catalog)[lib["ada"]] == ("Ada", False)


def test_min_faces_and_start(catalog: Catalog, tmp_path: Path, lib: dict[str, int]) -> None:
    prompter, _s = run(catalog, tmp_path, ["s", "s", "s"], min_faces=4)
    assert [i.person_id for i in prompter.shown] == [lib["ada"], lib["bob"]]
    prompter, _s = run(catalog, tmp_path, ["s", "s", "s"], start=str(lib["cyd"]))
    assert [i.person_id for i in prompter.shown] == [lib["cyd"], lib["ada"], lib["bob"]]
    with catalog.session() as s:
        rename_person(s, lib["cyd"], "Cyd", actor="t")
    with pytest.raises(PhotoclusterError, match="already named"):
        run(catalog, tmp_path, [], start="Cyd")


def test_named_and_hidden_people_are_not_queued(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    run(catalog, tmp_path, ["Ada", "i", "q"])
    prompter, _s = run(catalog, tmp_path, ["s"])
    assert [i.person_id for i in prompter.shown] == [lib["cyd"]]


def test_sheet_count_is_configurable(catalog: Catalog, tmp_path: Path, lib: dict[str, int]) -> None:
    prompter, _s = run(catalog, tmp_path, ["q"], count=2)
    item = prompter.shown[0]
    assert len(item.sheet.faces) == 2 and item.sheet.total_faces == 6
    with pytest.raises(ValueError, match="no face numbered 3"):
        item.sheet.face_ids([3])


def test_suggestions_are_relative_to_how_alike_each_persons_own_photos_are(
    catalog: Catalog,
) -> None:
    """Where faces are dense people are tight: a group or a lone face within SAME_PERSON of a
    tight named person but further than that person's own photos are from each other is not
    offered as them; their genuine photos are."""
    from photocluster.decisions.suggest import NamedIndex, suggest
    from tests.test_find import photo_with_faces

    e = np.eye(128)
    kim = 0.6 * e[0]

    def person(vectors: list[np.ndarray], name: str | None = None) -> int:
        ids = [i for v in vectors for i in photo_with_faces(catalog, v[None, :])]
        return make_person(catalog, ids, name)

    def around(centre: np.ndarray, axes: range, r: float = 0.15) -> list[np.ndarray]:
        return [centre + sign * r * e[k] for k in axes for sign in (1, -1)]

    person(around(kim, range(1, 5)), "Kim")  # own photos 0.21-0.30 apart
    strangers = {
        "group": around(kim + 0.40 * e[10], range(11, 13)),
        "lone face": [kim + 0.40 * e[20]],
    }
    genuine = {"group": around(kim, range(13, 15)), "lone face": [kim + 0.10 * e[21]]}
    with catalog.session() as s:
        index = NamedIndex(s)
    for what, vectors in strangers.items():
        near = index.nearest(np.stack(vectors))
        assert near is not None and near[1] < thresholds.SAME_PERSON, "the old rule said Kim"
        pid = person(vectors)
        with catalog.session() as s:
            assert suggest(s, pid, index) is None, what
    for what, vectors in genuine.items():
        pid = person(vectors)
        with catalog.session() as s:
            offered = suggest(s, pid, index)
        assert offered is not None and offered.name == "Kim", what


# --- faces in no person (issue 18) ----------------------------------------------------------------


@pytest.fixture
def loose(tmp_path: Path, catalog: Catalog, fake_options) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Ada named (5 photos); one more photo of Ada and a one-photo guest (Dee) in no person."""
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 6, "dee": 1})))
    ada_faces = faces_of(catalog, "ada")
    ada = make_person(catalog, ada_faces[:5], name="Ada")
    return {"ada": ada, "extra": ada_faces[5], "dee": faces_of(catalog, "dee")[0]}


def owner(catalog: Catalog, face: int) -> tuple[int | None, bool]:
    with catalog.session() as s:
        f = s.get(Face, face)
        assert f is not None
        return f.person_id, bool(f.confirmed)


def test_faces_in_no_person_come_after_the_people_grouped_by_who_they_look_like(
    catalog: Catalog, tmp_path: Path, loose: dict[str, int]
) -> None:
    from photocluster.decisions.prompter import FacesItem

    prompter, summary = run(catalog, tmp_path, ["", "Dee Dee"])
    items = [i for i in prompter.shown if isinstance(i, FacesItem)]
    assert len(items) == 2 and len(prompter.shown) == 2  # nobody left to name: faces only
    likely, far = items
    assert likely.group.likely and likely.suggestion is not None
    assert likely.suggestion.name == "Ada"
    assert [f.face_id for f in likely.sheet.faces] == [loose["extra"]]
    assert likely.sheet.path.exists()
    assert not far.group.likely and far.suggestion is None  # probably nobody you named
    assert far.group.person_id == loose["ada"]  # ... though Ada is the nearest
    assert far.group.faces[0].verdict == "unknown"
    assert [f.face_id for f in far.sheet.faces] == [loose["dee"]]
    assert any("Enter = they are Ada" in q for q in prompter.questions)
    assert any("Enter = skip" in q for q in prompter.questions)
    assert owner(catalog, loose["extra"]) == (loose["ada"], True)
    dee_owner, confirmed = owner(catalog, loose["dee"])
    with catalog.session() as s:
        assert s.get(Person, dee_owner).name == "Dee Dee"  # type: ignore[union-attr]
    assert confirmed
    assert (summary.faces_queued, summary.faces_assigned, summary.quit) == (2, 2, False)


def test_faces_in_no_person_reject_rename_skip_and_undo(
    catalog: Catalog, tmp_path: Path, loose: dict[str, int]
) -> None:
    """x: not Ada (the face comes back with its next guess); 1 = NAME; u brings faces back;
    s leaves them in no person; an existing name asks first and Enter says no."""
    from photocluster.decisions.prompter import FacesItem

    answers = ["x 1", "1 = Dee", "u", "ada", "", "s", "s"]
    prompter, summary = run(catalog, tmp_path, answers)
    faces = [i for i in prompter.shown if isinstance(i, FacesItem)]
    shown = [(i.group.label, i.group.likely, [f.face_id for f in i.sheet.faces]) for i in faces]
    extra, dee = loose["extra"], loose["dee"]
    assert shown == [
        ("Ada", True, [extra]),  # x 1: not Ada
        ("Ada", False, [dee]),  # probably nobody you named; 1 = Dee: a new person
        ("Dee", False, [extra]),  # x'd faces come back with their next guess; u
        ("Ada", False, [dee]),  # undone: Dee's face is in no person again; "ada", Enter: no
        ("nobody", False, [extra]),  # Ada rejected it, nobody else is near
    ]
    assert [(i.position, i.total) for i in faces] == [(1, 2), (2, 2), (3, 3), (3, 4), (4, 4)]
    assert any("Undone: assigned 1 face(s) to person" in m for m in prompter.said)
    assert "Ada already exists (5 faces). Put this face into them?" in prompter.questions
    assert owner(catalog, extra) == (None, False) and owner(catalog, dee) == (None, False)
    with catalog.session() as s:
        assert {tuple(r) for r in s.execute(select(Rejection.face_id, Rejection.person_id))} == {
            (extra, loose["ada"])
        }
        assert s.scalar(select(Person).where(Person.name == "Dee")) is None
    assert summary.rejected_faces == 1 and summary.undone == 1 and summary.faces_skipped == 2


def test_every_face_in_no_person_can_be_reviewed_and_pages_reach_them_all(
    catalog: Catalog,
    tmp_path: Path,
    fake_options,  # type: ignore[no-untyped-def]
) -> None:
    """A guest in many photos that clustering left alone: page after page, every face."""
    from photocluster.decisions.prompter import FacesItem
    from tests.fakes import make_photo

    root = tmp_path / "lib"
    for k in range(9):
        make_photo(root / f"g{k}.png", [("eve", (10 + 9 * k, 10 + 5 * k, 60))])
    make_photo(root / "a.png", [("ada", (10, 10, 60))])
    make_photo(root / "b.png", [("ada", (20, 30, 60))])
    scan(catalog, fake_options(root))
    with catalog.session() as s:
        ada = [f for f, p in s.execute(select(Face.id, Photo.path).join(Photo)) if "/g" not in p]
    make_person(catalog, ada, name="Ada")
    prompter, _summary = run(catalog, tmp_path, ["+", "+", "-", "q"], count=4)
    items = [i for i in prompter.shown if isinstance(i, FacesItem)]
    pages = [(i.sheet.page, tuple(f.number for f in i.sheet.faces)) for i in items]
    assert pages == [(0, (1, 2, 3, 4)), (1, (5, 6, 7, 8)), (2, (9,)), (1, (5, 6, 7, 8))]
    seen = {f.face_id for i in items for f in i.sheet.faces}
    with catalog.session() as s:
        assert seen == set(s.scalars(select(Face.id).where(Face.person_id.is_(None))))


def test_a_merge_question_defaults_to_no(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    with catalog.session() as s:
        rename_person(s, lib["cyd"], "Cyd", actor="t")
    prompter, summary = run(catalog, tmp_path, ["Cyd", "", "q"])
    assert any("Cyd already exists (3 faces)" in q for q in prompter.questions)
    assert people(catalog)[lib["ada"]] == (None, False)
    assert summary.merged == 0 and summary.decisions == []


@pytest.mark.parametrize("typed", ["cyd", "CYD", "Cyd ", "  cyd", "Cyd"])
def test_a_name_in_other_case_or_spacing_is_the_existing_person(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int], typed: str
) -> None:
    with catalog.session() as s:
        rename_person(s, lib["cyd"], "Cyd", actor="t")
    prompter, summary = run(catalog, tmp_path, [typed, "y", "q"])
    assert any("Cyd already exists" in q for q in prompter.questions)
    assert summary.merged == 1 and lib["ada"] not in people(catalog)


def test_lisa_kudrow_is_one_person_whatever_the_spacing(
    catalog: Catalog, tmp_path: Path, lib: dict[str, int]
) -> None:
    with catalog.session() as s:
        rename_person(s, lib["cyd"], "Lisa Kudrow", actor="t")
    prompter, summary = run(catalog, tmp_path, ["lisa  kudrow ", "n", "Lisa\u00a0Kudrow", "n", "q"])
    assert sum("Lisa Kudrow already exists" in q for q in prompter.questions) == 2
    names = sorted(n for n, _h in people(catalog).values() if n)
    assert names == ["Lisa Kudrow"] and summary.named == 0


def test_name_says_why_nobody_is_there(catalog: Catalog, tmp_path: Path, fake_options) -> None:  # type: ignore[no-untyped-def]
    from photocluster.decisions.session import queue_status

    prompter, summary = run(catalog, tmp_path, [])
    assert prompter.shown == [] and summary.status is not None
    assert (summary.status.photos, summary.status.faces) == (0, 0)
    scan(catalog, fake_options(build_library(tmp_path / "lib", {"ada": 3, "bob": 2})))
    prompter, summary = run(catalog, tmp_path, [])
    assert prompter.shown == []  # scanned, never clustered: nothing offered as "no person"
    assert summary.status is not None and summary.status.unclustered_faces == 5
    with catalog.session() as s:
        status = queue_status(s)
    assert (status.faces, status.people, status.unassigned_faces) == (5, 0, 0)
