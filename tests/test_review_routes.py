"""The review web app's routes with Starlette's TestClient (no browser): the token, pages,
images by id only, every action through the naming core with the page's view of the catalog
checked, read-only, and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Decision, Face, Person, Rejection
from photocluster.decisions.log import history, rename_person
from photocluster.review.server import TOKEN_HEADER, ReviewConfig, create_app
from tests.review_fixtures import build_review_catalog

TOKEN = "t0ken-for-tests"


@pytest.fixture
def lib(tmp_path: Path, catalog: Catalog, fake_options: Any) -> dict[str, Any]:
    return build_review_catalog(tmp_path, catalog, fake_options)


def client_for(catalog: Catalog, tmp_path: Path, read_only: bool = False) -> TestClient:
    cfg = ReviewConfig(catalog, tmp_path / "cache", TOKEN, "tester via review", read_only)
    return TestClient(create_app(cfg), raise_server_exceptions=True)


@pytest.fixture
def client(catalog: Catalog, tmp_path: Path, lib: dict[str, Any]) -> TestClient:
    return client_for(catalog, tmp_path)


def get(client: TestClient, path: str, **params: Any) -> Any:
    return client.get(path, params={"token": TOKEN, **params})


def post(client: TestClient, action: str, body: dict[str, Any], token: str | None = TOKEN) -> Any:
    headers = {TOKEN_HEADER: token} if token is not None else {}
    return client.post(f"/api/{action}", json=body, headers=headers)


def person_of(catalog: Catalog, face_id: int) -> int | None:
    with catalog.session() as s:
        return s.scalar(select(Face.person_id).where(Face.id == face_id))


def name_of(catalog: Catalog, person_id: int) -> str | None:
    with catalog.session() as s:
        p = s.get(Person, person_id)
        return None if p is None else p.name


def decisions(catalog: Catalog) -> int:
    with catalog.session() as s:
        return len(s.scalars(select(Decision.id)).all())


# --- the token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/person/1",
        "/unassigned",
        "/log",
        "/face/1.jpg",
        "/image/1.jpg",
        "/photo/1",
        "/static/review.js",
    ],
)
def test_every_page_and_image_needs_the_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 403
    assert client.get(path, params={"token": "wrong"}).status_code == 403
    assert client.get(path, params={"token": TOKEN}).status_code == 200


def test_actions_need_the_token_in_the_header(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    pid = lib["people"]["ada"]
    body = {"person": pid, "name": "Ada", "seen": None}
    assert post(client, "rename", body, token=None).status_code == 403
    assert post(client, "rename", body, token="wrong").status_code == 403
    # the token in the URL alone does not do for a change (a cross-site form could carry it)
    r = client.post(f"/api/rename?token={TOKEN}", json=body)
    assert r.status_code == 403
    # nor a form post with the header
    r = client.post("/api/rename", data={"person": str(pid)}, headers={TOKEN_HEADER: TOKEN})
    assert r.status_code == 415
    assert name_of(catalog, pid) is None
    assert decisions(catalog) == 0


def test_images_are_served_by_id_only(client: TestClient, lib: dict[str, Any]) -> None:
    face = lib["ada_faces"][0]
    r = get(client, f"/face/{face}.jpg")
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content[:3] == b"\xff\xd8\xff"
    for bad in [
        "/face/../../../../etc/passwd",
        "/face/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/face/1.jpg/../../etc/passwd",
        "/image/..%2F..%2Fetc%2Fpasswd",
        "/static/../server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2fserver.py",
        "/face/-1.jpg",
    ]:
        r = client.get(bad, params={"token": TOKEN})
        assert r.status_code in (403, 404), bad
        assert b"root:" not in r.content and b"create_app" not in r.content
    assert get(client, "/face/999999.jpg").status_code == 404


# --- pages ----------------------------------------------------------------------------------


def test_people_page_lists_unnamed_largest_first(client: TestClient, lib: dict[str, Any]) -> None:
    r = get(client, "/")
    html = r.text
    assert r.status_code == 200
    ada, bob, cyd = (f'data-person="{lib["people"][k]}"' for k in ("ada", "cyd", "bob"))
    order = [html.index(x) for x in (ada, bob, cyd)]
    assert order == sorted(order)  # ada (6, unnamed), cyd (4, unnamed), then Bob (named)
    assert "Bob" in html and "2 faces in no person" in html


def test_person_page_pages_faces_most_typical_first(
    client: TestClient, lib: dict[str, Any]
) -> None:
    pid = lib["people"]["ada"]
    html = get(client, f"/person/{pid}").text
    assert html.count('<li class="tile') == 6
    assert "6 faces in 6 photos" in html
    assert get(client, f"/person/{pid}", order="atypical").status_code == 200
    r = get(client, "/person/999")
    assert r.status_code == 404 and "no person 999" in r.text


def test_unassigned_page_groups_faces_by_their_candidate(
    client: TestClient, lib: dict[str, Any]
) -> None:
    html = get(client, "/unassigned").text
    assert f'data-candidate="{lib["people"]["ada"]}"' in html
    for f in lib["ada_loose"]:
        assert f'data-face="{f}"' in html


def test_photo_page_draws_face_boxes(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    with catalog.session() as s:
        photo_id = s.scalar(select(Face.photo_id).where(Face.id == lib["ada_faces"][0]))
        n = len(s.scalars(select(Face.id).where(Face.photo_id == photo_id)).all())
    html = get(client, f"/photo/{photo_id}").text
    assert html.count('class="box') == n == 4
    assert "Bob" in html
    assert get(client, f"/image/{photo_id}.jpg").content[:3] == b"\xff\xd8\xff"
    assert get(client, "/photo/4242").status_code == 404


# --- actions --------------------------------------------------------------------------------


def test_rename_is_a_logged_decision_that_cli_undo_takes_back(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    pid = lib["people"]["ada"]
    r = post(client, "rename", {"person": pid, "name": "Ada", "seen": None})
    assert r.status_code == 200, r.text
    assert name_of(catalog, pid) == "Ada"
    with catalog.session() as s:
        log = history(s)
    assert log[0].actor == "tester via review" and "Ada" in log[0].summary
    # the page's Undo names the newest decision
    r = post(client, "undo", {"expect": log[0].id})
    assert r.status_code == 200, r.text
    assert name_of(catalog, pid) is None


def test_a_taken_name_proposes_a_merge(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    pid, bob = lib["people"]["cyd"], lib["people"]["bob"]
    r = post(client, "rename", {"person": pid, "name": "bob", "seen": None})
    assert r.status_code == 409
    assert r.json()["holder"] == bob and "Merge" in r.json()["error"]
    assert name_of(catalog, pid) is None
    r = post(client, "merge", {"person": pid, "into": bob, "seen": None, "into_seen": "Bob"})
    assert r.status_code == 200, r.text
    assert r.json()["go"] == f"/person/{bob}"
    assert name_of(catalog, pid) is None and person_of(catalog, lib["ada_faces"][0]) != bob
    with catalog.session() as s:
        assert s.get(Person, pid) is None


def test_stale_pages_change_nothing(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    pid = lib["people"]["ada"]
    # another tab (or the CLI) named the person after this page was drawn
    with catalog.session() as s:
        rename_person(s, pid, "Ada", actor="cli")
    before = decisions(catalog)
    r = post(client, "rename", {"person": pid, "name": "Ada L", "seen": None})
    assert r.status_code == 409 and "now 'Ada'" in r.json()["error"]
    # the faces the page saw in ada moved since
    faces = lib["ada_faces"][:2]
    r = post(client, "reject", {"faces": {str(f): 12345 for f in faces}})
    assert r.status_code == 409 and "moved since" in r.json()["error"]
    # the Undo button named an older decision
    r = post(
        client,
        "undo",
        {
            "expect": 1,
        },
    )
    assert r.status_code == 200  # decision 1 is the newest: the CLI's rename
    r = post(client, "undo", {"expect": 1})
    assert r.status_code == 409 and "Nothing to undo" in r.json()["error"]
    assert decisions(catalog) == before
    assert name_of(catalog, pid) is None


def test_reject_assign_new_person_hide_and_merge(
    client: TestClient, catalog: Catalog, lib: dict[str, Any]
) -> None:
    ada = lib["people"]["ada"]
    two = lib["ada_faces"][:2]
    r = post(client, "reject", {"faces": {str(f): ada for f in two}})
    assert r.status_code == 200, r.text
    with catalog.session() as s:
        assert {f: s.get(Face, f).person_id for f in two} == {f: None for f in two}
        rej = s.execute(select(Rejection.face_id, Rejection.person_id)).all()
        assert sorted(rej) == sorted((f, ada) for f in two)
    # accept a suggestion: the loose faces are ada's
    loose = lib["ada_loose"]
    r = post(client, "assign", {"faces": {str(f): None for f in loose}, "to": ada})
    assert r.status_code == 200, r.text
    assert all(person_of(catalog, f) == ada for f in loose)
    # refuse one: it is not ada (remembered)
    r = post(client, "reject", {"faces": {str(loose[0]): ada}, "person": ada})
    assert r.status_code == 200, r.text
    # a new person from the two rejected faces
    r = post(client, "assign", {"faces": {str(f): None for f in two}, "to": "Ann", "create": True})
    assert r.status_code == 200, r.text
    with catalog.session() as s:
        ann = s.scalar(select(Person.id).where(Person.name == "Ann"))
    assert all(person_of(catalog, f) == ann for f in two)
    r = post(client, "assign", {"faces": {str(f): ann for f in two}, "to": "bob", "create": True})
    assert r.status_code == 409 and r.json()["holder"] == lib["people"]["bob"]
    # hide / unhide
    r = post(client, "hide", {"person": ann, "hidden": True})
    assert r.status_code == 200
    r = post(client, "hide", {"person": ann, "hidden": True})
    assert r.status_code == 409 and "already hidden" in r.json()["error"]
    # merge two named people: the page must choose the name
    r = post(client, "merge", {"person": ann, "into": "Bob", "seen": "Ann"})
    assert r.status_code == 409 and sorted(r.json()["names"]) == ["Ann", "Bob"]
    r = post(client, "merge", {"person": ann, "into": "Bob", "seen": "Ann", "name": "Bob"})
    assert r.status_code == 200, r.text
    assert all(person_of(catalog, f) == lib["people"]["bob"] for f in two)


@pytest.mark.parametrize(
    ("action", "body", "status", "words"),
    [
        ("rename", {"person": 999, "name": "X", "seen": None}, 404, "no longer exists"),
        ("rename", {"person": "1", "name": "X"}, 400, "must be an id"),
        ("rename", {"person": 1, "name": "../etc", "seen": None}, 400, "file path"),
        ("rename", {"person": 1, "name": "   ", "seen": None}, 400, "empty"),
        ("merge", {"person": 1, "into": 1, "seen": None}, 400, "into itself"),
        ("merge", {"person": 1, "into": "Nobody Here", "seen": None}, 404, "No person named"),
        ("reject", {"faces": {}}, 400, "No faces selected"),
        ("reject", {"faces": {"999999": 1}}, 409, "no longer in the catalog"),
        ("assign", {"faces": {"1": 1}, "to": ""}, 400, "Say whom"),
        ("assign", {"faces": {"1": 1}, "to": 999}, 404, "no longer exists"),
        ("hide", {"person": 1}, 400, "true or false"),
        ("explode", {}, 404, "No action"),
    ],
)
def test_bad_input_is_refused_clearly_and_changes_nothing(
    client: TestClient, catalog: Catalog, action: str, body: dict[str, Any], status: int, words: str
) -> None:
    r = post(client, action, body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert decisions(catalog) == 0


def test_body_that_is_not_json(client: TestClient) -> None:
    r = client.post(
        "/api/rename",
        content=b"{nope",
        headers={TOKEN_HEADER: TOKEN, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and "not JSON" in r.json()["error"]


def test_read_only_serves_pages_and_refuses_every_change(
    catalog: Catalog, tmp_path: Path, lib: dict[str, Any]
) -> None:
    client = client_for(catalog, tmp_path, read_only=True)
    pid = lib["people"]["ada"]
    html = get(client, f"/person/{pid}").text
    assert "read-only" in html and 'id="rename"' not in html
    r = post(client, "rename", {"person": pid, "name": "Ada", "seen": None})
    assert r.status_code == 403 and "read-only" in r.json()["error"]
    assert name_of(catalog, pid) is None


def test_a_missing_catalog_is_a_clear_page(
    catalog: Catalog, tmp_path: Path, lib: dict[str, Any]
) -> None:
    client = client_for(catalog, tmp_path)
    assert catalog.path is not None
    catalog.path.rename(tmp_path / "moved.sqlite3")
    r = get(client, "/")
    assert r.status_code == 503 and "is gone" in r.text and "Traceback" not in r.text


def test_the_unassigned_page_follows_every_change(client: TestClient, lib: dict[str, Any]) -> None:
    loose = lib["ada_loose"]
    html = get(client, "/unassigned").text
    assert all(f'data-face="{f}"' in html for f in loose)
    r = post(client, "assign", {"faces": {str(f): None for f in loose}, "to": lib["people"]["ada"]})
    assert r.status_code == 200, r.text
    html = get(client, "/unassigned").text
    assert not any(f'data-face="{f}"' in html for f in loose)
    r = post(client, "undo", {"expect": r.json()["decision"]})
    assert r.status_code == 200, r.text
    html = get(client, "/unassigned").text
    assert all(f'data-face="{f}"' in html for f in loose)


def test_a_catalog_locked_by_another_writer_is_a_clear_busy_answer(
    catalog: Catalog, tmp_path: Path, lib: dict[str, Any]
) -> None:
    from photocluster.catalog.db import open_catalog
    from photocluster.review.server import refuse_waiting

    catalog.on_wait = refuse_waiting
    client = client_for(catalog, tmp_path)
    pid = lib["people"]["ada"]
    other = open_catalog(str(catalog.path))  # another program: its own lock file handle
    try:
        with other.write_lock("scan"):
            r = post(client, "rename", {"person": pid, "name": "Ada", "seen": None})
            assert r.status_code == 503 and "busy" in r.json()["error"]
            assert "scan" in r.json()["error"]
            # reading goes on while another program writes
            assert get(client, f"/person/{pid}").status_code == 200
    finally:
        other.close()
    assert name_of(catalog, pid) is None
    r = post(client, "rename", {"person": pid, "name": "Ada", "seen": None})
    assert r.status_code == 200


def test_names_are_escaped_in_every_page(client: TestClient, lib: dict[str, Any]) -> None:
    pid = lib["people"]["ada"]
    evil = '<img src=x onerror="alert(1)">'
    r = post(client, "rename", {"person": pid, "name": evil, "seen": None})
    assert r.status_code == 200, r.text
    for path in ("/", f"/person/{pid}", "/unassigned", "/log"):
        html = get(client, path).text
        assert evil not in html and "&lt;img src=x onerror=" in html, path


def test_a_database_error_is_a_clear_page_not_a_trace(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from photocluster.review import queries

    def locked(*_a: Any, **_k: Any) -> None:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(queries, "people_page", locked)
    r = get(client, "/")
    assert r.status_code == 503
    assert "database is locked" in r.text and "try again" in r.text
    assert "Traceback" not in r.text and r.headers["content-type"].startswith("text/html")
