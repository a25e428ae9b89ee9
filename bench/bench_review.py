"""`photocluster review` at scale: time to first paint of the people page and of a 10 000-face
person in a synthetic catalog of 100 000 faces (goal: < 500 ms each), in headless Debian
chromium driven by Playwright, against the real `photocluster review` process.

The catalog (SQLite, built once into ``--keep`` and reused) holds ``--faces`` faces, 4 per
photo: one person with ``--big`` faces, the rest in people of 5 to 80 faces, and 5 % in no
person (clustered: the unassigned page weighs them). Embeddings are random around each person's
own centre (typicality order is real work, identities are not). Photos are symlinks to a few
generated JPEGs, so face crops are really cut and cached.

For each page: the server's time to the last byte of the HTML (``html``), the browser's first
contentful paint (``fcp``) and the time until every face crop in the first screen is shown
(``crops``), all from navigation start, in ms: the first load with an empty crop cache
(``cold``), then the median of ``--runs`` loads (``warm``). The unassigned page is timed too
(it weighs every unassigned face against every person: not a goal here, printed to be known).

Before the browser, that weighing is timed in process (``review_with_suggestions``: `find`'s
verdicts and the scored suggestions), without the face index (as `show unassigned`) and with it
(as the review page and `name`; its HNSW graph, from 50 000 faces, finds the suggestions'
nearest faces). With ``--named SHARE`` that share of the people is named, so the suggestions
are fitted and scored (without names they stop at "nobody is named"); ``--weigh-only`` stops
there.

    uv run python bench/bench_review.py                      # 100 000 faces, 10 000 in one person
    uv run python bench/bench_review.py --faces 20000 --big 2000 --runs 3
    uv run python bench/bench_review.py --named 0.3 --weigh-only
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import insert
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from photocluster.catalog.db import open_catalog  # noqa: E402
from photocluster.catalog.models import Face, Meta, Person, Photo  # noqa: E402
from photocluster.ingest.encoder import EncoderParams  # noqa: E402
from photocluster.settings import Settings  # noqa: E402

PER_PHOTO = 4
SOURCES = 40  # distinct JPEGs behind the photo symlinks
_VIEWPORT_CROPS = """async () => {
  const inView = Array.from(document.querySelectorAll('img[src]')).filter((i) => {
    const r = i.getBoundingClientRect();
    return r.top < innerHeight && r.bottom > 0 && r.width > 0;
  });
  await Promise.all(inView.map((i) => i.complete ? 0 : new Promise((ok) => {
    i.addEventListener('load', ok); i.addEventListener('error', ok); })));
  return [performance.now(), inView.length];
}"""
_PAINT = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return [nav.responseEnd, fcp ? fcp.startTime : null];
}"""


def build(folder: Path, faces: int, big: int, seed: int = 0, named: float = 0.0) -> tuple[str, int]:
    """The synthetic catalog in ``folder``, with a share ``named`` of its people named (never
    the big one); returns (its path, the big person's id)."""
    db = folder / "catalog.sqlite3"
    rng = np.random.default_rng(seed)
    sources = source_photos(folder / "sources", rng)
    sizes, owner, x = synthetic_people(faces, big, rng)
    names = np.random.default_rng(seed + 1).random(len(sizes)) < named
    names[0] = False
    catalog = open_catalog(str(db))
    now = datetime.now()
    with catalog.session() as s:
        s.execute(
            insert(Person),
            [
                {
                    "id": i + 1,
                    "name": f"Person {i + 1}" if names[i] else None,
                    "hidden": False,
                    "created_at": now,
                }
                for i in range(len(sizes))
            ],
        )
        write_photos(s, folder / "photos", sources, -(-faces // PER_PHOTO), now)
        write_faces(s, x, owner)
        s.add(Meta(key="cluster.last_face_id", value=str(faces)))
    catalog.close()
    return str(db), 1


def source_photos(folder: Path, rng: np.random.Generator) -> list[Path]:
    """``SOURCES`` distinct 800x600 JPEGs of smooth noise, the files behind every photo."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for k in range(SOURCES):
        pixels = rng.integers(0, 255, size=(60, 80, 3), dtype=np.uint8)
        img = Image.fromarray(pixels).resize((800, 600), Image.Resampling.BICUBIC)
        path = folder / f"s{k:02d}.jpg"
        img.save(path, quality=85)
        sources.append(path)
    return sources


def synthetic_people(
    faces: int, big: int, rng: np.random.Generator
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """People's sizes (the big one first, then 5..80 faces each, a twentieth of the faces in no
    person), each face's person (0: none) and the embeddings around each person's centre."""
    unassigned = faces // 20
    sizes = [big]
    left = faces - unassigned - big
    while left > 0:
        n = min(left, int(rng.integers(5, 81)))
        sizes.append(n)
        left -= n
    owner = np.concatenate(
        [np.full(n, i + 1) for i, n in enumerate(sizes)] + [np.zeros(unassigned)]
    )
    owner = owner[rng.permutation(len(owner))].astype(np.int64)
    centres = rng.normal(size=(len(sizes) + 1, 128)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True) / 0.7
    x = centres[owner] + rng.normal(scale=0.04, size=(faces, 128)).astype(np.float32)
    return sizes, owner, x


def write_photos(
    s: Session, photos_dir: Path, sources: list[Path], n_photos: int, now: datetime
) -> None:
    """``n_photos`` photo rows, each a symlink to one of ``sources``, in batches."""
    photos_dir.mkdir(parents=True, exist_ok=True)
    encoder = EncoderParams().key()
    for start in range(0, n_photos, 5000):
        stop = min(n_photos, start + 5000)
        rows = []
        for i in range(start, stop):
            link = photos_dir / f"{i // 1000:03d}" / f"p{i:06d}.jpg"
            link.parent.mkdir(exist_ok=True)
            if not link.is_symlink():
                link.symlink_to(sources[i % SOURCES])
            rows.append(
                {
                    "id": i + 1,
                    "path": str(link),
                    "size": 1,
                    "mtime_ns": 0,
                    "content_hash": f"{i % SOURCES:064x}",
                    "width": 800,
                    "height": 600,
                    "status": "ok",
                    "encoder": encoder,
                    "scanned_at": now,
                }
            )
        s.execute(insert(Photo), rows)


def write_faces(s: Session, x: np.ndarray, owner: np.ndarray) -> None:
    """One face row per embedding, ``PER_PHOTO`` to a photo at fixed boxes, in batches."""
    boxes = [(60, 80, 220, 240), (300, 90, 450, 240), (520, 70, 700, 250), (200, 330, 360, 490)]
    for start in range(0, len(x), 20000):
        stop = min(len(x), start + 20000)
        s.execute(
            insert(Face),
            [
                {
                    "id": i + 1,
                    "photo_id": i // PER_PHOTO + 1,
                    "left": boxes[i % PER_PHOTO][0],
                    "top": boxes[i % PER_PHOTO][1],
                    "right": boxes[i % PER_PHOTO][2],
                    "bottom": boxes[i % PER_PHOTO][3],
                    "size": 160,
                    "embedding": x[i].astype("<f4").tobytes(),
                    "person_id": int(owner[i]) or None,
                    "confirmed": False,
                }
                for i in range(start, stop)
            ],
        )
        print(f"  wrote {stop} faces", file=sys.stderr, flush=True)


def weigh(db: str) -> None:
    """Time ``review_with_suggestions`` in process (a new session each time), without and with
    the face index (synced first, not timed)."""
    import sklearn.linear_model  # noqa: F401  # its import (~1 s) is not the weighing's

    from photocluster.index.store import sync_index
    from photocluster.people.suggestions import review_with_suggestions

    catalog = open_catalog(db)
    try:
        index = sync_index(catalog, Settings(db=db).cache_dir)[0]
        for label, kw in (
            ("without the face index", {}),
            ("with the face index", {"index": index}),
        ):
            with catalog.session() as s:
                t = time.perf_counter()
                review = review_with_suggestions(s, **kw)
                took = time.perf_counter() - t
            scored = sum(1 for g in review.groups for f in g.faces if f.score is not None)
            print(
                f"review_with_suggestions {label}: {took:.1f} s "
                f"({review.faces} faces in no person, {scored} scored)",
                flush=True,
            )
    finally:
        catalog.close()


def serve(db: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        ["uv", "run", "--quiet", "photocluster", "review", "--db", db, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise SystemExit(f"review did not start (printed {url!r})")
    return proc, url


def measure(page: object, url: str) -> tuple[float, float, float, int]:
    page.goto(url, wait_until="commit")  # type: ignore[attr-defined]
    page.wait_for_load_state("domcontentloaded")  # type: ignore[attr-defined]
    crops, shown = page.evaluate(_VIEWPORT_CROPS)  # type: ignore[attr-defined]
    html, fcp = page.evaluate(_PAINT)  # type: ignore[attr-defined]
    return html, fcp if fcp is not None else float("nan"), crops, shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", default="/tmp/photocluster-bench-review")
    parser.add_argument("--named", type=float, default=0.0, help="share of the people named")
    parser.add_argument("--weigh-only", action="store_true", help="no browser: the weighing")
    args = parser.parse_args()
    kind = f"{args.faces}-{args.big}" + (f"-named{args.named:g}" if args.named else "")
    folder = Path(args.keep) / kind
    db = folder / "catalog.sqlite3"
    if not db.exists():
        t = time.perf_counter()
        build(folder, args.faces, args.big, named=args.named)
        print(f"built {db} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    print(f"load average {os.getloadavg()[0]:.1f} before weighing (2 cores, shared)")
    weigh(str(db))
    if args.weigh_only:
        return
    big = 1
    from tests.review_browser import browser, chromium_problem

    problem = chromium_problem()
    if problem:
        raise SystemExit(problem)
    load = os.getloadavg()
    print(f"{args.faces} faces, one person of {args.big}; load average {load[0]:.1f} at start")
    proc, url = serve(str(db))
    base, token = url.split("/?token=")
    pages = {
        "people": f"{base}/?token={token}",
        f"person ({args.big} faces)": f"{base}/person/{big}?token={token}",
        "unassigned": f"{base}/unassigned?token={token}",
    }
    try:
        with browser((1280, 900)) as context:
            page = context.new_page()
            print(f"{'page':<24}{'':>6}{'html ms':>9}{'fcp ms':>9}{'crops ms':>10}{'shown':>7}")
            for name, address in pages.items():
                shutil.rmtree(Settings(db=str(db)).cache_dir, ignore_errors=True)
                cold = measure(page, address)
                warm = [measure(page, address) for _ in range(args.runs)]
                med = [statistics.median(w[k] for w in warm) for k in range(3)]
                for label, row in (("cold", cold[:3]), ("warm", med)):
                    print(
                        f"{name:<24}{label:>6}{row[0]:>9.0f}{row[1]:>9.0f}{row[2]:>10.0f}"
                        f"{cold[3]:>7}"
                    )
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"load average {os.getloadavg()[0]:.1f} at end (2 cores, shared)")


if __name__ == "__main__":
    main()
