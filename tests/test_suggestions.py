"""Suggestions: who a face in no person (or a small unnamed person) may be, with a score fitted
on the catalog's own names; never a person the face was rejected from."""

from __future__ import annotations

import json
from datetime import datetime

import jsonschema
import numpy as np
import pytest
from sqlalchemy import insert, select, update
from typer.testing import CliRunner

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.embeddings import blob_to_embedding, embedding_to_blob
from photocluster.catalog.models import Face, LearnedProjection, Meta, Person, Photo, Rejection
from photocluster.cli import app
from photocluster.cli.naming_cmds import describe_suggestion
from photocluster.decisions import suggest as offers
from photocluster.decisions.log import (
    history,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
)
from photocluster.decisions.prompter import (
    Answer,
    AnswerKind,
    FacesItem,
    QueueItem,
    ScriptedPrompter,
    Suggestion,
    parse_answer,
)
from photocluster.decisions.session import NamingOptions, run_naming
from photocluster.decisions.suggest import NamedIndex
from photocluster.decisions.suggest import suggest as suggest_by_merge_test
from photocluster.errors import PhotoclusterError
from photocluster.ingest.encoder import EncoderParams
from photocluster.people import suggestions
from photocluster.people.assign import META_LAST_FACE
from photocluster.people.find import Candidate as FindCandidate
from photocluster.people.projection import learn_projection
from photocluster.people.suggestions import (
    LIKELY,
    SCHEMA,
    SMALL_PERSON_FACES,
    Suggester,
    as_json,
    review_with_suggestions,
    suggest,
    suggested_group,
    suggestions_schema,
)
from photocluster.people.unassigned import FaceGroup, UnassignedFace, UnassignedReview

PEOPLE = 6
PHOTOS = 8


def _unit(rng: np.random.Generator) -> np.ndarray:
    u = rng.normal(size=128)
    return u / np.linalg.norm(u)


def _library(seed: int = 3) -> tuple[list[np.ndarray], list[int | None], dict[str, np.ndarray]]:
    """People of PHOTOS faces (~0.2 from their centre, centres ~0.8 apart), each with one odd
    photo 0.33 from their centre (beyond 1.5x their spread: clustering leaves it), and three
    strangers far from everyone."""
    rng = np.random.default_rng(seed)
    base = _unit(rng) * 0.5
    faces: list[np.ndarray] = []
    owner: list[int | None] = []
    extra: dict[str, np.ndarray] = {}
    for k in range(PEOPLE):
        centre = base + 0.55 * _unit(rng)
        for _ in range(PHOTOS):
            faces.append(centre + 0.2 * _unit(rng))
            owner.append(k)
        extra[f"odd{k}"] = centre + 0.33 * _unit(rng)
    for k in range(3):
        extra[f"stranger{k}"] = base + 0.75 * _unit(rng)
    return faces, owner, extra


def _photo(s, path: str) -> int:  # type: ignore[no-untyped-def]
    return int(
        s.execute(
            insert(Photo).returning(Photo.id),
            {
                "path": path,
                "size": 1,
                "mtime_ns": 0,
                "status": "ok",
                "encoder": EncoderParams().key(),
                "scanned_at": datetime.now(),
            },
        ).scalar_one()
    )


def _face(s, photo: int, vector: np.ndarray, person: int | None, left: int = 0) -> int:  # type: ignore[no-untyped-def]
    return int(
        s.execute(
            insert(Face).returning(Face.id),
            {
                "photo_id": photo,
                "left": left,
                "top": 0,
                "right": left + 100,
                "bottom": 100,
                "size": 100,
                "embedding": embedding_to_blob(np.asarray(vector, dtype=np.float32)),
                "person_id": person,
            },
        ).scalar_one()
    )


@pytest.fixture
def named(catalog: Catalog) -> dict[str, int]:
    """The library as clustering leaves it: each person of PHOTOS faces named after its index,
    the odd photos and strangers in no person. Returns face ids of the odd/stranger faces (and
    person ids as 'person{k}')."""
    faces, owner, extra = _library()
    ids: dict[str, int] = {}
    with catalog.session() as s:
        people = {}
        for k in range(PEOPLE):
            p = Person(name=None, hidden=False, created_at=datetime.now())
            s.add(p)
            s.flush()
            people[k] = p.id
            ids[f"person{k}"] = p.id
        for i, (vector, k) in enumerate(zip(faces, owner, strict=True)):
            _face(
                s, _photo(s, f"/photos/{i:03d}.jpg"), vector, people[k] if k is not None else None
            )
        for key, vector in extra.items():
            ids[key] = _face(s, _photo(s, f"/photos/{key}.jpg"), vector, None)
        last = max(ids[k] for k in extra)
        s.add(Meta(key=META_LAST_FACE, value=str(last)))
        s.commit()
        for k in range(PEOPLE):
            rename_person(s, people[k], f"Person {k}", actor="test")
        s.commit()
    return ids


def _by_face(catalog: Catalog) -> dict[int, object]:
    with catalog.session() as s:
        result = suggest(s)
    return {item.face_ids[0]: item for item in result.items if item.person_id is None}


def test_an_odd_photo_is_suggested_as_its_person_and_a_stranger_as_nobody(
    catalog: Catalog, named: dict[str, int]
) -> None:
    got = _by_face(catalog)
    for k in range(PEOPLE):
        item = got[named[f"odd{k}"]]
        assert item.best.person_id == named[f"person{k}"]  # type: ignore[attr-defined]
        assert item.best.score is not None  # type: ignore[attr-defined]
    odd = [got[named[f"odd{k}"]].score for k in range(PEOPLE)]  # type: ignore[attr-defined]
    strangers = [got[named[f"stranger{k}"]] for k in range(3)]
    assert all(s.nobody for s in strangers)  # type: ignore[attr-defined]
    assert min(odd) > max(s.score for s in strangers)  # type: ignore[attr-defined]
    assert np.median(odd) >= LIKELY


def test_a_person_the_face_was_rejected_from_is_never_suggested(
    catalog: Catalog, named: dict[str, int]
) -> None:
    face, person = named["odd0"], named["person0"]
    with catalog.session() as s:
        reject_faces(s, [face], actor="test", person=person)
        s.commit()
    item = _by_face(catalog)[face]
    assert person not in [c.person_id for c in item.candidates]  # type: ignore[attr-defined]
    with catalog.session() as s:
        review = review_with_suggestions(s)
    for group in review.groups:
        if any(f.face_id == face for f in group.faces):
            assert group.person_id != person


def test_people_nobody_named_teach_the_score_that_faces_near_a_named_person_may_be_them(
    catalog: Catalog, named: dict[str, int]
) -> None:
    """A dense population: six unnamed people crowd Person 0, as near its mean face as a
    stranger is. Their faces, looked up as strangers would be, are wrong answers the score
    learns from, so that stranger is not offered as Person 0; with the same faces in no person
    (nothing to learn from, the neighbourhoods the same) it would be, as "likely"."""
    rng = np.random.default_rng(11)
    with catalog.session() as s:
        own = s.scalars(select(Face.embedding).where(Face.person_id == named["person0"])).all()
        centre = np.mean([blob_to_embedding(b) for b in own], axis=0)
        crowd = []
        for k in range(6):
            p = Person(name=None, hidden=False, created_at=datetime.now())
            s.add(p)
            s.flush()
            near = centre + 0.36 * _unit(rng)
            for j in range(6):
                photo = _photo(s, f"/crowd/{k}-{j}.jpg")
                crowd.append(_face(s, photo, near + 0.15 * _unit(rng), p.id))
        stranger = _face(s, _photo(s, "/crowd/stranger.jpg"), centre + 0.36 * _unit(rng), None)
        s.execute(update(Meta).where(Meta.key == META_LAST_FACE).values(value=str(stranger)))
        s.commit()
        taught = suggest(s, learned=False)
        s.execute(update(Face).where(Face.id.in_(crowd)).values(person_id=None))
        s.commit()
        untaught = suggest(s, learned=False)
    assert taught.calibration and untaught.calibration
    assert taught.calibration.examples > untaught.calibration.examples
    score = {
        name: next(i for i in result.items if i.face_ids == (stranger,)).best
        for name, result in (("taught", taught), ("untaught", untaught))
    }
    assert score["taught"].person_id == score["untaught"].person_id == named["person0"]  # type: ignore[union-attr]
    assert score["untaught"].score >= LIKELY  # type: ignore[union-attr, operator]
    assert score["taught"].score < LIKELY  # type: ignore[union-attr, operator]


def test_hidden_people_and_people_already_in_the_photo_are_not_candidates(
    catalog: Catalog, named: dict[str, int]
) -> None:
    with catalog.session() as s:
        set_hidden(s, named["person1"], True, actor="test")
        # a second face in a photo of person 2, looking like person 2
        photo, vector = s.execute(
            select(Face.photo_id, Face.embedding).where(Face.person_id == named["person2"])
        ).first()
        twin = _face(s, photo, np.frombuffer(vector, dtype="<f4"), None, left=300)
        s.execute(update(Meta).where(Meta.key == META_LAST_FACE).values(value=str(twin)))
        s.commit()
    got = _by_face(catalog)
    assert named["person1"] not in [c.person_id for c in got[named["odd1"]].candidates]  # type: ignore[attr-defined]
    assert named["person2"] not in [c.person_id for c in got[twin].candidates]  # type: ignore[attr-defined]


def test_a_reopened_catalog_gives_the_same_suggestions(
    catalog: Catalog, db_path: str, named: dict[str, int]
) -> None:
    with catalog.session() as s:
        first = as_json(s, suggest(s))
    catalog.close()
    again = open_catalog(db_path)
    try:
        with again.session() as s:
            second = as_json(s, suggest(s))
    finally:
        again.close()
    assert first == second and first["suggestions"]


def test_too_few_names_rank_without_a_score_and_say_so(catalog: Catalog) -> None:
    faces, owner, extra = _library()
    with catalog.session() as s:
        p = Person(name="Only One", hidden=False, created_at=datetime.now())
        s.add(p)
        s.flush()
        for i, (vector, k) in enumerate(zip(faces, owner, strict=True)):
            if k == 0:
                _face(s, _photo(s, f"/photos/{i:03d}.jpg"), vector, p.id)
        odd = _face(s, _photo(s, "/photos/odd.jpg"), extra["odd0"], None)
        s.add(Meta(key=META_LAST_FACE, value=str(odd)))
        s.commit()
        result = suggest(s)
    assert result.calibration is None and result.note and "Too few names" in result.note
    (item,) = result.items
    assert item.best is not None and item.best.name == "Only One" and item.best.score is None
    assert item.nobody  # unscored: never offered as that person


def test_nothing_to_suggest_before_clustering_or_naming(catalog: Catalog) -> None:
    with catalog.session() as s:
        assert "cluster" in (suggest(s).note or "")


def test_suggestions_json_validates_against_its_schema(db_path: str, named: dict[str, int]) -> None:
    result = CliRunner().invoke(app, ["suggestions", "--json", "--min-score", "0", "--db", db_path])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    jsonschema.validate(doc, suggestions_schema())
    assert doc["schema"] == SCHEMA and doc["calibration"]["named_people"] == PEOPLE
    faces = {s["faces"][0]["id"]: s for s in doc["suggestions"]}
    odd = faces[named["odd3"]]
    assert odd["candidates"][0]["name"] == "Person 3"
    assert odd["faces"][0]["photo"] == "/photos/odd3.jpg"


def test_suggestions_cli_lists_the_likely_ones_and_counts_the_rest(
    db_path: str, named: dict[str, int]
) -> None:
    result = CliRunner().invoke(app, ["suggestions", "--db", db_path])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines and all("\tprobably Person " in line for line in lines)
    odd = next(line for line in lines if line.startswith(f"face {named['odd3']}\t"))
    assert odd.endswith("\t/photos/odd3.jpg")  # where to look
    assert "more below it (--min-score 0 lists them)" in result.stderr
    everything = CliRunner().invoke(app, ["suggestions", "--min-score", "0", "--db", db_path])
    assert "probably nobody you named" in everything.stdout


def test_show_unassigned_offers_scored_faces_as_their_person(
    db_path: str, named: dict[str, int]
) -> None:
    result = CliRunner().invoke(app, ["show", "unassigned", "--db", db_path])
    assert result.exit_code == 0, result.output
    odd = [line for line in result.stdout.splitlines() if "odd" in line]
    assert any("probably Person" in line and "(score 0." in line for line in odd)
    strangers = [line for line in result.stdout.splitlines() if "stranger" in line]
    assert strangers and all("probably nobody you named" in line for line in strangers)


def test_name_offers_the_likely_faces_on_one_captioned_sheet_and_answers_them_at_once(
    catalog: Catalog, named: dict[str, int], tmp_path
) -> None:
    """One sheet holds every likely suggestion, each tile captioned with its person; `x N`
    refuses some (one decision), Enter accepts the rest (one decision), undo restores both."""
    prompter = ScriptedPrompter(["x 1", "", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions())
    sheets = [i for i in prompter.shown if isinstance(i, FacesItem) and i.group.suggested]
    assert sheets, prompter.said
    first = sheets[0]
    offered = {f.face_id: f.best.person_id for f in first.group.faces}  # type: ignore[union-attr]
    odd = {named[f"odd{k}"]: named[f"person{k}"] for k in range(PEOPLE)}
    assert set(offered) <= set(odd) and len(offered) >= PEOPLE // 2
    assert all(odd[f] == p for f, p in offered.items())  # each offered as its own person
    refused = first.sheet.numbers[1]
    assert len(refused) == 1
    with catalog.session() as s:
        owner = dict(s.execute(select(Face.id, Face.person_id).where(Face.id.in_(list(odd)))).all())
        rejected = set(s.execute(select(Rejection.face_id, Rejection.person_id)).all())
    assert (refused[0], offered[refused[0]]) in rejected and owner[refused[0]] is None
    accepted = [f for f in offered if f != refused[0]]
    assert accepted and all(owner[f] == offered[f] for f in accepted)
    with catalog.session() as s:
        (last,) = history(s, 1)
    assert last.action == "assign" and "accepted suggestions" in last.summary
    # one `u` undoes the whole sheet's acceptance: those faces are in no person again
    again = ScriptedPrompter(["u", "q"])
    run_naming(catalog, again, tmp_path / "cache", NamingOptions())
    with catalog.session() as s:
        still = dict(s.execute(select(Face.id, Face.person_id).where(Face.id.in_(accepted))).all())
    assert all(p is None for p in still.values())


def test_suggestions_measure_in_the_learned_projection_only_while_it_is_in_use(
    catalog: Catalog, named: dict[str, int]
) -> None:
    face = named["odd2"]
    with catalog.session() as s:
        report = learn_projection(s)  # whatever cross-validation chose on this small library
        s.commit()
        raw = _by_face(catalog)[face].best.distance  # type: ignore[attr-defined]
        raw_only = suggest(s, learned=False)
        assert raw_only.space == "raw"
        # a projection in use that doubles every distance (as a learned one would rescale)
        row = LearnedProjection(
            created_at=datetime.now(),
            model=report.model,
            method="unit",
            dims=128,
            matrix=np.eye(128, dtype="<f4").tobytes(),
            offset=np.zeros(128, dtype="<f4").tobytes(),
            scale=2.0,
            fingerprint="x",
            named_faces=0,
            people=0,
            rejections=0,
            face_ids=b"",
            people_key="x",
            cv="[]",
            used=True,
            reason="test",
        )
        s.add(row)
        s.commit()
        learned = suggest(s)
        item = next(i for i in learned.items if i.face_ids == (face,))
        assert learned.space == "learned (unit)"
        assert item.best.distance == pytest.approx(2 * raw, rel=1e-4)  # type: ignore[union-attr]
        assert item.best.person_id == named["person2"]  # type: ignore[union-attr]
        # learned on another embedding model: not used, raw again
        row.model = "another-model"
        s.commit()
        assert suggest(s).space == "raw"


def test_the_maybe_sheet_accepts_only_the_faces_said_to_be_right(
    catalog: Catalog, named: dict[str, int], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below LIKELY (here raised above every score) the suggestions are maybes: their sheet's
    Enter accepts nothing, `y 2` accepts face 2 alone, as its caption says."""
    monkeypatch.setattr(suggestions, "LIKELY", 0.99)
    prompter = ScriptedPrompter(["y 2", "", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions())
    sheets = [i for i in prompter.shown if isinstance(i, FacesItem) and i.group.suggested]
    assert len(sheets) == 2 and all(i.group.suggested == "maybe" for i in sheets)
    first, again = sheets
    assert first.suggestion is None  # Enter leaves them (the second answer)
    chosen = first.sheet.numbers[2][0]
    assert chosen not in again.sheet.current  # accepted: off the sheet drawn again
    offered = {f.face_id: f.best.person_id for f in first.group.faces}  # type: ignore[union-attr]
    with catalog.session() as s:
        placed = dict(
            s.execute(select(Face.id, Face.person_id).where(Face.id.in_(list(offered)))).all()
        )
    assert placed[chosen] == offered[chosen]
    assert all(placed[f] is None for f in offered if f != chosen)


def test_suggested_group_splits_likely_and_maybe_and_keeps_the_rest() -> None:
    def face(fid: int, score: float | None) -> UnassignedFace:
        best = FindCandidate(7, "Ada", False, 0.5, 0.4)
        return UnassignedFace(fid, f"/p/{fid}.jpg", (0, 0, 1, 1), "probably", best, None, score)

    likely = FaceGroup(7, "Ada", False, True, [face(1, 0.7), face(2, 0.95)])
    far = FaceGroup(7, "Ada", False, False, [face(3, 0.3), face(4, 0.05)])
    review = suggested_group(UnassignedReview([likely, far], 0))
    kinds = [(g.suggested, [f.face_id for f in g.faces]) for g in review.groups]
    assert kinds == [("likely", [2, 1]), ("maybe", [3]), ("", [4])]


def test_y_names_the_faces_that_are_who_their_captions_say() -> None:
    assert parse_answer("y 3-4 7") == Answer(AnswerKind.YES, numbers=(3, 4, 7))
    assert parse_answer("=y 3") == Answer(AnswerKind.NAME, name="y 3")  # a name after all
    assert parse_answer("y") == Answer(AnswerKind.YES)  # a "May be" person; a sheet: its page
    with pytest.raises(PhotoclusterError, match="y 3 7"):
        parse_answer("y ,")


def test_the_face_index_graph_finds_the_same_people(
    catalog: Catalog, named: dict[str, int]
) -> None:
    """With the face index's HNSW graph (what a large library has) the nearest faces come
    from it instead of a search built here; the suggestions are the same people."""
    from photocluster.catalog.embeddings import blobs_to_matrix
    from photocluster.index.store import FaceIndex

    with catalog.session() as s:
        rows = s.execute(select(Face.id, Face.embedding).order_by(Face.id)).all()
        index = FaceIndex.build(
            np.array([r[0] for r in rows]), blobs_to_matrix([r[1] for r in rows]), ann=True
        )
        assert index.hnsw is not None
        plain = {i.face_ids: (i.best.person_id, i.best.share) for i in suggest(s).items if i.best}
        graph = {
            i.face_ids: (i.best.person_id, i.best.share)
            for i in suggest(s, index=index).items
            if i.best
        }
    assert graph == plain
    assert any(share > 0 for _p, share in graph.values())  # neighbours were found


# --- small unnamed people in `name`'s queue of people --------------------------------------------


def _near(catalog: Catalog, person: int, n: int, seed: int) -> list[np.ndarray]:
    """``n`` faces drawn as ``person``'s own were: about 0.2 from their mean face."""
    with catalog.session() as s:
        blobs = s.scalars(select(Face.embedding).where(Face.person_id == person)).all()
    centre = np.mean([np.frombuffer(b, dtype="<f4") for b in blobs], axis=0)
    rng = np.random.default_rng(seed)
    return [centre + 0.2 * _unit(rng) for _ in range(n)]


def _unnamed(catalog: Catalog, vectors: list[np.ndarray], tag: str) -> int:
    """A new unnamed person of these faces, each in a photo of its own."""
    with catalog.session() as s:
        p = Person(name=None, hidden=False, created_at=datetime.now())
        s.add(p)
        s.flush()
        for i, vector in enumerate(vectors):
            _face(s, _photo(s, f"/photos/{tag}-{i}.jpg"), vector, p.id)
        s.commit()
        return int(p.id)


def _people_shown(prompter: ScriptedPrompter) -> list[QueueItem]:
    return [i for i in prompter.shown if isinstance(i, QueueItem)]


def test_name_offers_a_small_person_as_scored_with_the_chance_and_enter_merges_them(
    catalog: Catalog, named: dict[str, int], tmp_path
) -> None:
    small = _unnamed(catalog, _near(catalog, named["person2"], 3, seed=11), "small")
    with catalog.session() as s:
        (scored,) = [i for i in suggest(s).items if i.person_id == small]
    assert scored.best is not None and scored.best.person_id == named["person2"]
    # Enter merges them into Person 2; `u` (on the faces in no person after) undoes the merge
    # and shows them again, offered the same way.
    prompter = ScriptedPrompter(["", "u", "q"])
    summary = run_naming(catalog, prompter, tmp_path / "cache", NamingOptions())
    first, again = _people_shown(prompter)
    assert first.person_id == again.person_id == small
    offered = first.suggestion
    assert offered is not None and offered.person_id == named["person2"]
    assert offered.chance == pytest.approx(scored.score)
    assert again.suggestion == offered
    assert summary.merged == 1 and summary.undone == 1
    with catalog.session() as s:
        merge, _undone = history(s, 2)  # newest first: the undo's own entry comes after
        assert merge.action == "merge"
        owners = set(s.scalars(select(Face.person_id).where(Face.id.in_(scored.face_ids))))
        assert owners == {small} and s.get(Person, small).name is None  # type: ignore[union-attr]


def test_a_small_person_scored_below_maybe_is_offered_as_nobody(
    catalog: Catalog, named: dict[str, int], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge step's test would offer Person 2; the score (here under a raised MAYBE)
    decides: nobody."""
    small = _unnamed(catalog, _near(catalog, named["person2"], 3, seed=11), "small")
    with catalog.session() as s:
        old = suggest_by_merge_test(s, small, NamedIndex(s))
    assert old is not None and old.person_id == named["person2"]
    monkeypatch.setattr(offers, "MAYBE", 1.01)
    prompter = ScriptedPrompter(["s", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    (item,) = _people_shown(prompter)
    assert item.person_id == small and item.suggestion is None


def test_a_small_person_who_only_may_be_someone_is_merged_by_y_not_by_enter(
    catalog: Catalog, named: dict[str, int], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under "May be" (below LIKELY, here raised above every score) Enter leaves the person
    as they are, as on the sheet of maybes; `y` merges them, one decision that `u` undoes."""
    from photocluster.decisions import session as naming_session

    small = _unnamed(catalog, _near(catalog, named["person2"], 3, seed=11), "small")
    monkeypatch.setattr(naming_session, "LIKELY", 1.01)
    prompter = ScriptedPrompter(["", "q"])
    summary = run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    (item,) = _people_shown(prompter)
    assert item.person_id == small and item.suggestion is not None
    assert item.suggestion.person_id == named["person2"] and item.suggestion.chance is not None
    assert summary.merged == 0 and summary.skipped == 1
    assert "Enter = skip, y = they are Person 2" in prompter.questions[0]
    with catalog.session() as s:
        assert s.get(Person, small) is not None
    prompter = ScriptedPrompter(["y", "q"])
    summary = run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    assert summary.merged == 1
    with catalog.session() as s:
        assert s.get(Person, small) is None
        assert history(s, 1)[0].action == "merge"


def test_with_too_few_names_a_small_person_gets_the_merge_test_suggestion(
    catalog: Catalog, tmp_path
) -> None:
    faces, owner, _extra = _library()
    with catalog.session() as s:
        p = Person(name="Only One", hidden=False, created_at=datetime.now())
        s.add(p)
        s.flush()
        only = int(p.id)
        for i, (vector, k) in enumerate(zip(faces, owner, strict=True)):
            if k == 0:
                _face(s, _photo(s, f"/photos/{i:03d}.jpg"), vector, only)
        s.commit()
        assert not Suggester(s).calibrated
    small = _unnamed(catalog, _near(catalog, only, 3, seed=11), "small")
    prompter = ScriptedPrompter(["s", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    (item,) = _people_shown(prompter)
    assert item.person_id == small
    assert item.suggestion is not None and item.suggestion.person_id == only
    assert item.suggestion.chance is None  # the merge step's test, with its distance


def test_a_big_unnamed_person_keeps_the_merge_test_suggestion(
    catalog: Catalog, named: dict[str, int], tmp_path
) -> None:
    big = _unnamed(
        catalog, _near(catalog, named["person3"], SMALL_PERSON_FACES + 2, seed=12), "big"
    )
    prompter = ScriptedPrompter(["s", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    (item,) = _people_shown(prompter)
    assert item.person_id == big
    assert item.suggestion is not None and item.suggestion.person_id == named["person3"]
    assert item.suggestion.chance is None


def test_the_offer_says_the_chance_or_the_distance() -> None:
    assert describe_suggestion(Suggestion(7, "Ada Lovelace", 0.31, 0.834)) == (
        "Looks like Ada Lovelace (chance 83 %)"
    )
    assert describe_suggestion(Suggestion(7, "Ada Lovelace", 0.31, 0.26)) == (
        "May be Ada Lovelace (chance 26 %)"
    )
    assert describe_suggestion(Suggestion(7, "Ada Lovelace", 0.41)) == (
        "Looks like Ada Lovelace (distance 0.41)"
    )


def test_after_a_name_the_next_small_person_is_offered_the_new_name(
    catalog: Catalog, named: dict[str, int], tmp_path
) -> None:
    """Two small people of one new face: once the first is named, the second is offered that
    name (the scoring is renewed after decisions, not only made once)."""
    rng = np.random.default_rng(21)
    centre = 0.5 * _unit(rng) + 0.55 * _unit(rng)
    first = _unnamed(catalog, [centre + 0.2 * _unit(rng) for _ in range(4)], "first")
    second = _unnamed(catalog, [centre + 0.2 * _unit(rng) for _ in range(3)], "second")
    prompter = ScriptedPrompter(["Zed", "", "q"])
    run_naming(catalog, prompter, tmp_path / "cache", NamingOptions(unassigned=False))
    shown = _people_shown(prompter)
    assert [i.person_id for i in shown] == [first, second]
    assert shown[0].suggestion is None  # nobody named looks like them yet
    offered = shown[1].suggestion
    assert offered is not None and offered.person_id == first and offered.chance is not None
    with catalog.session() as s:
        assert s.get(Person, second) is None  # Enter merged them into Zed
        assert s.get(Person, first).name == "Zed"  # type: ignore[union-attr]


def test_the_suggester_fits_again_only_once_a_tenth_of_what_it_learnt_from_changed(
    catalog: Catalog, named: dict[str, int]
) -> None:
    """Named faces: 6 x 8 = 48. A merge of 3 (6 %) keeps the fit; 3 more (12 %) refit it."""
    first = _unnamed(catalog, _near(catalog, named["person2"], 3, seed=11), "a")
    second = _unnamed(catalog, _near(catalog, named["person4"], 3, seed=12), "b")
    with catalog.session() as s:
        scorer = Suggester(s)
        fitted = scorer.model
        assert fitted is not None and fitted.calibration.named_faces == 48
        merge_people(s, [first], named["person2"], actor="test")
        s.commit()
        scorer.renew(s)
        assert scorer.model is fitted  # candidates renewed, the fit kept
        assert scorer.person(first) is None  # named now: not a small unnamed person
        merge_people(s, [second], named["person4"], actor="test")
        s.commit()
        scorer.renew(s)
        assert scorer.model is not fitted and scorer.model is not None
        assert scorer.model.calibration.named_faces == 54


def test_the_review_with_suggestions_reads_the_embeddings_once(
    catalog: Catalog, named: dict[str, int]
) -> None:
    """`find`'s verdicts and the suggestions weigh the same faces, read once for both."""
    from sqlalchemy import event

    reads: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "embedding" in statement:
            reads.append(statement)

    event.listen(catalog.engine, "before_cursor_execute", count)
    try:
        with catalog.session() as s:
            review = review_with_suggestions(s)
    finally:
        event.remove(catalog.engine, "before_cursor_execute", count)
    assert any(f.score is not None for g in review.groups for f in g.faces)  # both weighed
    assert len(reads) == 1, reads


def test_the_review_page_offers_a_small_person_as_name_does(
    catalog: Catalog, named: dict[str, int], tmp_path
) -> None:
    """A person page's suggestion: a small person with the chance `name` offers (scored once,
    then caught up after a decision), a big one with the merge step's distance."""
    from starlette.testclient import TestClient

    from photocluster.decisions.log import rename_person
    from photocluster.review.server import ReviewConfig, create_app

    small = _unnamed(catalog, _near(catalog, named["person2"], 3, seed=11), "small")
    big = _unnamed(
        catalog, _near(catalog, named["person3"], SMALL_PERSON_FACES + 2, seed=12), "big"
    )
    with catalog.session() as s:
        (scored,) = [i for i in suggest(s).items if i.person_id == small]
    assert scored.best is not None and scored.best.score is not None
    client = TestClient(create_app(ReviewConfig(catalog, tmp_path / "cache", "tok", "t", False)))

    def offered(pid: int) -> dict | None:
        got = client.get(f"/api/person/{pid}/suggestion", params={"token": "tok"})
        assert got.status_code == 200
        return got.json()["suggestion"]

    s1 = offered(small)
    assert s1 is not None and s1["id"] == named["person2"] and s1["name"] == "Person 2"
    assert s1["chance"] == pytest.approx(scored.best.score)
    assert s1["likely"] == (scored.best.score >= suggestions.LIKELY)
    s2 = offered(big)
    assert s2 is not None and s2["id"] == named["person3"] and s2["chance"] is None
    assert s2["likely"]
    # a decision since: the candidate's new name is offered at once
    with catalog.session() as s:
        rename_person(s, named["person2"], "Ada Lovelace", actor="test")
        s.commit()
    again = offered(small)
    assert again is not None and again["name"] == "Ada Lovelace"
    assert offered(named["person2"]) is None  # a named person is offered nobody
