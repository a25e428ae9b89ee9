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
    uv run python bench/eval_labels.py --db /tmp/shared_faces.sqlite3 --root ../shared/faces
"""

from __future__ import annotations

import argparse
import os
from collections import Counter

import numpy as np
from sqlalchemy import select
from tune_cluster import load

from photocluster.clustering import ClusterParams, cluster_embeddings
from photocluster.db import open_catalog
from photocluster.evaluate import cluster_quality
from photocluster.models import Face, Photo


def nearest_to_label(
    x: np.ndarray, groups: np.ndarray, idx: np.ndarray, truth: np.ndarray
) -> np.ndarray:
    """Per labelled photo, the face nearest its label's single-face centroid (else unchanged)."""
    faces_in = Counter(groups.tolist())
    single = np.array([faces_in[groups[i]] == 1 for i in idx.tolist()], dtype=bool)
    out = idx.copy()
    for j, i in enumerate(idx.tolist()):
        if faces_in[groups[i]] == 1:
            continue
        own = (truth == truth[j]) & single
        if not own.any():
            continue
        centre = x[idx[own]].mean(axis=0)
        candidates = np.flatnonzero(groups == groups[i])
        out[j] = candidates[int(np.argmin(np.linalg.norm(x[candidates] - centre, axis=1)))]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.environ.get("PHOTOCLUSTER_DB", "/tmp/shared_faces.sqlite3"))
    ap.add_argument("--root", default="../shared/faces")
    ap.add_argument("--list", action="store_true", help="print the photos whose face changes")
    args = ap.parse_args()
    x, groups, idx, truth = load(args.db, args.root)
    labels = cluster_embeddings(x, ClusterParams(), groups)
    other = nearest_to_label(x, groups, idx, truth)
    faces_in = Counter(groups.tolist())
    multi = sum(1 for i in idx.tolist() if faces_in[groups[i]] > 1)
    changed = np.flatnonzero(other != idx)
    print(
        f"{len(idx)} labelled photos with a face; {multi} show several faces; "
        f"the nearest-to-label rule picks another face in {len(changed)}"
    )
    print(f"{'labelled face':<32} {'pP':>6} {'pR':>6} {'pF':>6} {'bF':>6} {'unassigned':>10}")
    for name, rows in (("largest (eval's rule)", idx), ("nearest its label", other)):
        q = cluster_quality(truth, labels[rows])
        print(
            f"{name:<32} {q.pairwise.precision:6.3f} {q.pairwise.recall:6.3f}"
            f" {q.pairwise.f:6.3f} {q.bcubed.f:6.3f} {q.unassigned_share:10.3f}"
        )
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
