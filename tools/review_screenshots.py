"""The README's screenshots of the review pages (docs/review-*.png), made with the browser
tests' setup (tests/review_browser.py: the server in a thread, headless Debian chromium).

Run on a scanned catalog of real faces, e.g.:

    uv run photocluster scan ../shared/faces/five_celebrity_faces --db /tmp/shots.sqlite3
    uv run photocluster rename 3 "Jerry Seinfeld" --db /tmp/shots.sqlite3   # a few names
    uv run python tools/review_screenshots.py --db /tmp/shots.sqlite3

It names nothing and changes nothing: the pages are shown as the catalog is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from photocluster.catalog.db import open_catalog  # noqa: E402
from photocluster.catalog.models import Face, Person  # noqa: E402
from photocluster.settings import Settings  # noqa: E402
from tests.review_browser import browser, live_server  # noqa: E402

TOKEN = "screenshots"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    catalog = open_catalog(args.db)
    with catalog.session() as s:
        biggest = s.execute(  # the largest unnamed person, as the people page puts first
            select(Face.person_id, func.count())
            .join(Person, Person.id == Face.person_id)
            .group_by(Face.person_id)
            .order_by(Person.name.is_not(None), func.count().desc())
        ).first()
        assert biggest is not None, "no people in this catalog: scan a folder of faces first"
        person_id = int(biggest[0])
        photo_id = s.execute(
            select(Face.photo_id).group_by(Face.photo_id).order_by(func.count().desc())
        ).scalar()
    cache = Settings(db=args.db).cache_dir
    with live_server(catalog, cache, TOKEN) as base, browser((960, 600)) as context:
        page = context.new_page()

        def shot(path: str, name: str, select_faces: int = 0) -> None:
            page.goto(f"{base}{path}?token={TOKEN}")
            page.wait_for_load_state("networkidle")
            for i in range(select_faces):
                page.locator("li.tile").nth(i + 1).click(position={"x": 40, "y": 60})
            page.screenshot(path=str(out / name))
            # Small files for the README: 128 colours are plenty for a screenshot.
            with Image.open(out / name) as img:
                small = img.convert("RGB").quantize(128, method=Image.Quantize.MEDIANCUT)
            small.save(out / name, optimize=True)
            print(out / name, (out / name).stat().st_size // 1024, "KiB")

        shot("/", "review-people.png")
        shot(f"/person/{person_id}", "review-person.png", select_faces=2)
        shot("/unassigned", "review-unassigned.png")
        shot(f"/photo/{photo_id}", "review-photo.png")
    catalog.close()


if __name__ == "__main__":
    main()
