"""The review page in a real headless browser (Debian's chromium through Playwright): rename,
reject two faces, accept a suggestion, merge, undo, with the catalog checked after each; two
tabs; the token; path traversal. Marked ``browser`` (and so ``slow``: `-m "not slow"` skips
them); they run in the default `uv run pytest`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Decision, Face, Person, Rejection
from photocluster.decisions.log import history
from tests.review_browser import browser, chromium_problem, live_server
from tests.review_fixtures import build_review_catalog

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token"
_PROBLEM = chromium_problem()
if _PROBLEM:
    pytestmark = [pytest.mark.browser, pytest.mark.skip(reason=_PROBLEM)]


@pytest.fixture
def lib(tmp_path: Path, catalog: Catalog, fake_options: Any) -> dict[str, Any]:
    return build_review_catalog(tmp_path, catalog, fake_options)


@pytest.fixture
def site(catalog: Catalog, tmp_path: Path, lib: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    with live_server(catalog, tmp_path / "cache", TOKEN) as base, browser() as context:
        yield base, context


def at(base: str, path: str) -> str:
    return f"{base}{path}?token={TOKEN}"


def faces_in(catalog: Catalog, person_id: int) -> list[int]:
    with catalog.session() as s:
        return sorted(s.scalars(select(Face.id).where(Face.person_id == person_id)))


def person(catalog: Catalog, person_id: int) -> Person | None:
    with catalog.session() as s:
        p = s.get(Person, person_id)
        if p is not None:
            s.expunge(p)
        return p


def done(page: Any) -> None:
    """Wait for the page to reload after an action and say it was done."""
    page.wait_for_selector("#flash.ok", timeout=15_000)


def test_rename_reject_accept_merge_undo(
    site: tuple[str, Any], catalog: Catalog, lib: dict[str, Any]
) -> None:
    base, context = site
    ada, bob, cyd = (lib["people"][k] for k in ("ada", "bob", "cyd"))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(at(base, "/"))
    # the largest unnamed person comes first
    assert page.locator(".card").first.get_attribute("data-person") == str(ada)
    page.locator(".card").first.locator("a").click()
    page.wait_for_url(f"**/person/{ada}?*")

    # rename, with the keyboard: n focuses the name box
    page.keyboard.press("n")
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")
    done(page)
    assert person(catalog, ada).name == "Ada Lovelace"  # type: ignore[union-attr]
    assert page.locator("h1").inner_text().startswith("Ada Lovelace")

    # reject two faces: click one, shift-click the next, r
    tiles = page.locator("li.tile")
    first, second = tiles.nth(0), tiles.nth(1)
    chosen = sorted(int(t.get_attribute("data-face")) for t in (first, second))
    first.click(position={"x": 40, "y": 60})
    second.click(position={"x": 40, "y": 60}, modifiers=["Shift"])
    assert page.locator("#selcount").inner_text() == "2 selected"
    page.keyboard.press("r")
    done(page)
    assert not set(chosen) & set(faces_in(catalog, ada))
    with catalog.session() as s:
        rejected = sorted(s.scalars(select(Rejection.face_id).where(Rejection.person_id == ada)))
    assert rejected == chosen

    # accept a suggestion for an unassigned face (ada's loose faces are offered as her)
    page.goto(at(base, "/unassigned"))
    group = page.locator(f'section.group[data-candidate="{ada}"]')
    loose = lib["ada_loose"][0]
    group.locator(f'li.tile[data-face="{loose}"] button.accept').click()
    done(page)
    assert loose in faces_in(catalog, ada)

    # merge cyd into Bob from cyd's page
    page.goto(at(base, f"/person/{cyd}"))
    cyd_faces = faces_in(catalog, cyd)
    page.fill("#merge-into", "Bob")
    page.press("#merge-into", "Enter")
    page.wait_for_url(f"**/person/{bob}?*")
    done(page)
    assert person(catalog, cyd) is None
    assert set(cyd_faces) <= set(faces_in(catalog, bob))

    # undo (u) takes the merge back; the CLI's log shows the same history
    page.keyboard.press("u")
    done(page)
    assert faces_in(catalog, cyd) == cyd_faces
    with catalog.session() as s:
        log = history(s)
    assert [e.action for e in log] == ["merge", "assign", "reject", "rename"]
    assert log[0].undone_at is not None and all(e.actor == "tester via review" for e in log)
    assert errors == []


def test_a_taken_name_offers_a_merge_and_a_stale_tab_is_refused(
    site: tuple[str, Any], catalog: Catalog, lib: dict[str, Any]
) -> None:
    base, context = site
    cyd, dee, bob = (lib["people"][k] for k in ("cyd", "dee", "bob"))
    page = context.new_page()
    page.goto(at(base, f"/person/{cyd}"))
    page.fill("#rename", "bob")
    page.press("#rename", "Enter")
    page.wait_for_selector("#flash.error")
    assert "already person" in page.locator("#flash").inner_text()
    assert person(catalog, cyd).name is None  # type: ignore[union-attr]
    page.get_by_role("button", name="Merge into Bob").click()
    page.wait_for_url(f"**/person/{bob}?*")
    assert person(catalog, cyd) is None

    # two tabs on dee: the second one's rename is refused, nothing changes
    one, two = context.new_page(), context.new_page()
    for tab in (one, two):
        tab.goto(at(base, f"/person/{dee}"))
    one.fill("#rename", "Dee")
    one.press("#rename", "Enter")
    done(one)
    two.fill("#rename", "Delia")
    two.press("#rename", "Enter")
    two.wait_for_selector("#flash.error")
    assert "now 'Dee'" in two.locator("#flash").inner_text()
    assert person(catalog, dee).name == "Dee"  # type: ignore[union-attr]
    with catalog.session() as s:
        assert len(s.scalars(select(Decision.id)).all()) == 2


def test_the_token_is_required_and_images_are_served_by_id_only(
    site: tuple[str, Any], lib: dict[str, Any]
) -> None:
    base, context = site
    page = context.new_page()
    for url in (f"{base}/", f"{base}/?token=wrong", f"{base}/person/1"):
        response = page.goto(url)
        assert response is not None and response.status == 403
        assert "token" in page.locator("#error-message").inner_text()
    response = page.goto(at(base, "/"))
    assert response is not None and response.status == 200
    api = context.request
    for path in (
        "/face/../../../../etc/passwd",
        "/face/..%2F..%2F..%2Fetc%2Fpasswd",
        "/image/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/static/..%2f..%2fserver.py",
        "/face/1.jpg%2F..%2F..%2Fetc%2Fpasswd",
    ):
        r = api.get(f"{base}{path}?token={TOKEN}")
        assert r.status in (403, 404), path
        assert b"root:" not in r.body()
    # a change without the header is refused even from the page's own origin
    r = api.post(f"{base}/api/undo?token={TOKEN}", data={"expect": 1})
    assert r.status == 403
    # every face tile of the people page loads (crops from the cache)
    page.goto(at(base, "/"))
    page.wait_for_load_state("networkidle")
    broken = page.evaluate(
        "Array.from(document.querySelectorAll('.card img'))"
        ".filter(i => !i.complete || i.naturalWidth === 0).length"
    )
    assert broken == 0 and page.locator(".card img").count() == 17


def test_select_all_new_person_photo_and_shortcuts(
    site: tuple[str, Any], catalog: Catalog, lib: dict[str, Any]
) -> None:
    base, context = site
    dee = lib["people"]["dee"]
    page = context.new_page()
    page.goto(at(base, f"/person/{dee}"))
    tiles = page.locator("li.tile")
    page.keyboard.press("a")
    assert page.locator("li.tile.selected").count() == tiles.count() == 3
    page.keyboard.press("Escape")
    assert page.locator("li.tile.selected").count() == 0
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    # hovering a face shows its photo
    tiles.nth(0).hover(position={"x": 40, "y": 60})
    page.wait_for_selector("#preview:not([hidden]) img[src*='/image/']")
    # two faces become a new person
    moved = sorted(int(tiles.nth(i).get_attribute("data-face")) for i in (0, 1))
    tiles.nth(0).click(position={"x": 40, "y": 60})
    tiles.nth(1).click(position={"x": 40, "y": 60}, modifiers=["Shift"])
    page.keyboard.press("c")
    page.keyboard.type("Dora")
    page.keyboard.press("Enter")
    done(page)
    with catalog.session() as s:
        dora = s.scalar(select(Person.id).where(Person.name == "Dora"))
    assert dora is not None and faces_in(catalog, dora) == moved
    # the photo page draws a box per face, each naming its person
    page.goto(at(base, f"/person/{dora}"))
    page.locator("li.tile .photo-link").first.click()
    page.wait_for_selector("figure.photo .box")
    assert "Dora" in page.locator("figure.photo").inner_text()
    # hide (h), then the log page shows the same history as `photocluster log`
    page.go_back()
    page.keyboard.press("h")
    done(page)
    assert person(catalog, dora).hidden  # type: ignore[union-attr]
    page.goto(at(base, "/log"))
    rows = page.locator("table.log tbody tr")
    assert rows.count() == 2 and "hide" in rows.nth(0).inner_text()


def test_read_only_pages_have_no_actions(
    catalog: Catalog, tmp_path: Path, lib: dict[str, Any]
) -> None:
    ada = lib["people"]["ada"]
    server = live_server(catalog, tmp_path / "cache", TOKEN, read_only=True)
    with server as base, browser() as context:
        page = context.new_page()
        page.goto(at(base, f"/person/{ada}"))
        assert page.locator(".badge.ro").is_visible()
        assert page.locator("#rename, #selbar, #undo").count() == 0
        page.keyboard.press("u")
        page.keyboard.press("a")
    assert person(catalog, ada).name is None  # type: ignore[union-attr]
