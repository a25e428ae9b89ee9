"""Measure clustering quality on a labelled catalog across a grid of parameters.

Loads every face of a catalog (e.g. the scan of ``../shared/faces``), clusters them with
:func:`photocluster.clustering.cluster_embeddings` and scores the labelled face of each labelled
photo (pairwise and BCubed P/R/F, NMI, unassigned share). Prints the chosen defaults first, then
one-parameter-at-a-time sensitivity rows around them, then the reference baselines.

    uv run python bench/tune_cluster.py --db /tmp/shared_faces.sqlite3 --root ../shared/faces
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

import numpy as np
from sqlalchemy import select

from photocluster.clustering import ClusterParams, cluster_embeddings
from photocluster.db import blobs_to_matrix, open_catalog
from photocluster.evaluate import cluster_quality, labelled_faces, pair_distances, verification
from photocluster.models import Face


def load(db: str, root: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    catalog = open_catalog(db, migrate=False)
    with catalog.session() as s:
        rows = s.execute(select(Face.id, Face.photo_id, Face.embedding).order_by(Face.id)).all()
        lab = labelled_faces(s, root)
    catalog.close()
    x = blobs_to_matrix([r.embedding for r in rows])
    groups = np.array([r.photo_id for r in rows])
    pos = {r.id: i for i, r in enumerate(rows)}
    idx = np.array([pos[i] for i in lab.face_ids])
    names = sorted(set(lab.labels))
    truth = np.array([names.index(label) for label in lab.labels])
    return x, groups, idx, truth


def row(
    name: str,
    x: np.ndarray,
    groups: np.ndarray,
    idx: np.ndarray,
    truth: np.ndarray,
    params: ClusterParams,
) -> None:
    t = time.perf_counter()
    labels = cluster_embeddings(x, params, groups)
    q = cluster_quality(truth, labels[idx])
    print(
        f"{name:<34} {q.pairwise.precision:6.3f} {q.pairwise.recall:6.3f} {q.pairwise.f:6.3f}"
        f" {q.bcubed.precision:6.3f} {q.bcubed.recall:6.3f} {q.bcubed.f:6.3f} {q.nmi:6.3f}"
        f" {q.unassigned_share:7.3f} {q.clusters:5d} {time.perf_counter() - t:5.1f}s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/shared_faces.sqlite3")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "../../shared/faces"))
    ap.add_argument("--quick", action="store_true", help="only the defaults and baselines")
    args = ap.parse_args()
    x, groups, idx, truth = load(args.db, os.path.abspath(args.root))
    print(f"{len(x)} faces, {len(idx)} labelled faces, {len(set(truth.tolist()))} identities")
    d, g = pair_distances(x[idx], truth)
    for fmr in (0.0001, 0.001, 0.01):
        v = verification(d, g, target_fmr=fmr)
        print(
            f"verification: FMR {fmr:g} at distance <= {v.threshold_at_target:.3f} "
            f"(TMR {v.tmr_at_target:.3f}); EER {v.eer:.3f} at {v.eer_threshold:.3f}; "
            f"AUC {v.auc:.4f}"
        )
    print(
        f"{'setting':<34} {'pP':>6} {'pR':>6} {'pF':>6} {'bP':>6} {'bR':>6} {'bF':>6}"
        f" {'NMI':>6} {'noise':>7} {'clus':>5}"
    )
    base = ClusterParams()
    row("DEFAULTS " + str(dataclasses.astuple(base)), x, groups, idx, truth, base)
    if not args.quick:
        grid: dict[str, list[object]] = {
            "min_cluster_size": [2, 3, 4, 5, 8],
            "min_samples": [1, 2, 3, 5],
            "epsilon": [0.0, 0.3, 0.4, 0.45],
            "method": ["eom", "leaf"],
            "attach_distance": [0.0, 0.45, 0.5, 0.52, 0.53, 0.54, 0.55, 0.56, 0.58, 0.6],
            "merge_distance": [0.0, 0.3, 0.35, 0.4, 0.45, 0.5],
            "attach_margin": [0.0, 0.02, 0.05, 0.1],
            "eject_distance": [0.0, 0.55, 0.58, 0.6, 0.65, 0.7, 0.8],
            "pair_distance": [0.0, 0.4, 0.43, 0.45, 0.5],
            "split_share": [0.0, 0.1, 0.3, 0.4, 0.5],
            "merge_share": [0.0, 0.3, 0.4, 0.6, 0.7],
        }
        for key, values in grid.items():
            for value in values:
                if getattr(base, key) == value:
                    continue
                params = dataclasses.replace(base, **{key: value})
                row(f"  {key}={value}", x, groups, idx, truth, params)
    print("baselines (no attach/merge):")
    plain = dict(attach_distance=0.0, merge_distance=0.0)
    row(
        "  hdbscan defaults (5,5)",
        x,
        groups,
        idx,
        truth,
        ClusterParams(min_cluster_size=5, min_samples=5, **plain),
    )  # type: ignore[arg-type]
    row(
        "  hdbscan defaults, no cannot-link",
        x,
        np.arange(len(x)),
        idx,
        truth,
        ClusterParams(min_cluster_size=5, min_samples=5, **plain),
    )  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
