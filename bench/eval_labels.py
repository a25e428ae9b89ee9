"""How much of `eval`'s error comes from its labelled-face rule rather than from clustering?

`photocluster eval` scores the *largest* face of each labelled photo. In web-scraped sets such as
../shared/faces a photo filed under one person sometimes shows a bigger face of somebody else
(a spouse, an opponent at the net, the second half of a collage), so a correct clustering is
scored as a false match (that face sits in the other person's cluster) and a missed match.

This script clusters a labelled catalog with the defaults (exactly as `eval` does) and scores it
twice: with eval's rule, and with the labelled face of each multi-face photo chosen as the face
nearest the mean embedding of the label's *single-face* photos (which are unambiguous). It
prints both, how many labelled faces the second rule changes, and those photos, so a reader can
look at them. The second figure favours faces that look like their label, so it is an upper
bound on what the largest-face rule hides, not a replacement for eval's figure.

    uv run photocluster scan ../shared/faces --db /tmp/shared_faces.sqlite3 --no-cluster
    uv run python bench/eval_labels.py --db /tmp/shared_faces.sqlite3 --root ../shared/faces \
        --sheet /tmp/largest-vs-label.png

It also prints the ceiling of eval's rule: the score of a clustering that is right about every
face, where those largest faces are somebody else.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from sqlalchemy import select
from tune_cluster import load

from photocluster.catalog.db import open_catalog
from photocluster.catalog.models import Face, Photo
from photocluster.evaluation.evaluate import (
    cluster_quality,
    label_check,
    nearest_to_label,
    pairwise_prf,
)
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.params import ClusterParams


def contact_sheet(
    db: str, largest: np.ndarray, nearest: np.ndarray, truth: np.ndarray, path: str
) -> None:
    """A PNG grid: per photo, its largest face and the face nearest its label, side by side."""
    from PIL import Image, ImageDraw, ImageOps

    catalog = open_catalog(db, migrate=False)
    with catalog.session() as s:
        rows = s.execute(
            select(Face.id, Photo.path, Face.left, Face.top, Face.right, Face.bottom)
            .join(Photo, Face.photo_id == Photo.id)
            .order_by(Face.id)
        ).all()
    catalog.close()
    tile, cols = 96, 6
    sheet = Image.new(
        "RGB", (cols * (2 * tile + 10), -(-len(largest) // cols) * (tile + 14)), "white"
    )
    draw = ImageDraw.Draw(sheet)
    for k, (a, b) in enumerate(zip(largest.tolist(), nearest.tolist(), strict=True)):
        x0, y0 = (k % cols) * (2 * tile + 10), (k // cols) * (tile + 14)
        for m, face in enumerate((rows[a], rows[b])):
            with Image.open(face.path) as img:
                upright = (ImageOps.exif_transpose(img) or img).convert("RGB")
            pad = (face.right - face.left) // 4
            box = (face.left - pad, face.top - pad, face.right + pad, face.bottom + pad)
            sheet.paste(upright.crop(box).resize((tile, tile)), (x0 + m * tile, y0))
        label = os.path.basename(os.path.dirname(rows[a].path))
        draw.text((x0, y0 + tile), f"{k} {label[:18]}", fill="black")
    sheet.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.environ.get("PHOTOCLUSTER_DB", "/tmp/shared_faces.sqlite3"))
    ap.add_argument("--root", default="../shared/faces")
    ap.add_argument("--list", action="store_true", help="print the photos whose face changes")
    ap.add_argument("--sheet", help="write a PNG of those photos' two faces side by side")
    args = ap.parse_args()
    x, groups, idx, truth = load(args.db, args.root)
    labels = cluster_embeddings(x, ClusterParams(), groups)
    other = nearest_to_label(x, groups, idx, truth)
    check = label_check(x, groups, idx, truth, labels)
    changed = np.flatnonzero(other != idx)
    print(
        f"{len(idx)} labelled photos with a face; {check.multi_face_photos} show several faces; "
        f"the nearest-to-label rule picks another face in {check.largest_unlike_label}"
    )
    print(f"{'labelled face':<32} {'pP':>6} {'pR':>6} {'pF':>6} {'bF':>6} {'unassigned':>10}")
    for name, rows in (("largest (eval's rule)", idx), ("nearest its label", other)):
        q = cluster_quality(truth, labels[rows])
        print(
            f"{name:<32} {q.pairwise.precision:6.3f} {q.pairwise.recall:6.3f}"
            f" {q.pairwise.f:6.3f} {q.bcubed.f:6.3f} {q.unassigned_share:10.3f}"
        )
    # The ceiling of eval's rule (a clustering right about every face): eval's own figure counts
    # the largest faces that are somebody else as strangers; grouping them per label (a spouse
    # in several photos) is the generous bound.
    grouped = truth.copy()
    grouped[changed] = truth[changed] + truth.max() + 1
    for name, prf in (
        ("ceiling, those faces alone", check.ceiling),
        ("ceiling, those grouped per label", pairwise_prf(truth, grouped)),
    ):
        print(f"{name:<32} {prf.precision:6.3f} {prf.recall:6.3f} {prf.f:6.3f}")
    if args.sheet and len(changed):
        contact_sheet(args.db, idx[changed], other[changed], truth[changed], args.sheet)
        print(f"wrote {args.sheet}: per photo, its largest face, then the face nearest its label")
    if args.list and len(changed):
        catalog = open_catalog(args.db, migrate=False)
        with catalog.session() as s:
            face_ids = s.execute(select(Face.id).order_by(Face.id)).scalars().all()
            wanted = [face_ids[int(idx[j])] for j in changed.tolist()]
            paths = s.execute(
                select(Photo.path).join(Face, Face.photo_id == Photo.id).where(Face.id.in_(wanted))
            ).scalars()
            for path in sorted(paths):
                print("  ", path)
        catalog.close()


if __name__ == "__main__":
    main()
