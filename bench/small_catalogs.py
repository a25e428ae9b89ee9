"""Clustering small catalogs: a few people with a few photos each, the case HDBSCAN gets wrong.

With few faces, HDBSCAN's excess-of-mass selection often keeps two or three people as one
cluster. This draws many small catalogs from a labelled catalog (the labelled face of photos of
people with at least ``--min-photos`` photos): ``k`` random people x ``n`` random photos each,
``--trials`` times per (k, n), each photo its own photo (no cannot-link), and clusters each with
the defaults and with the split step off (``split_share=0``, the behaviour before it), and with
every ``--shares`` value. Prints mean pairwise F and precision, and in how many catalogs a
cluster mixed people badly (pairwise precision < 0.9). Asserts nothing.

    uv run python bench/small_catalogs.py --db /tmp/shared_faces.sqlite3 --root ../shared/faces
"""

from __future__ import annotations

import argparse
import dataclasses
import os

import numpy as np
from tune_cluster import load

from photocluster.clustering import ClusterParams, cluster_embeddings
from photocluster.evaluate import cluster_quality


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/shared_faces.sqlite3")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "../../shared/faces"))
    ap.add_argument("--people", type=int, nargs="+", default=[2, 3, 5, 10])
    ap.add_argument("--photos", type=int, nargs="+", default=[4, 5, 8])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--min-photos", type=int, default=8)
    ap.add_argument("--shares", type=float, nargs="*", default=[0.1, 0.3])
    args = ap.parse_args()
    x, _groups, idx, truth = load(args.db, os.path.abspath(args.root))
    xl = x[idx]
    people = [t for t in np.unique(truth) if (truth == t).sum() >= args.min_photos]
    base = ClusterParams()
    settings = {"split off (0)": dataclasses.replace(base, split_share=0.0)}
    settings[f"default ({base.split_share:g})"] = base
    for share in args.shares:
        settings[f"split_share {share:g}"] = dataclasses.replace(base, split_share=share)
    scores: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
    print(f"{len(people)} people with >= {args.min_photos} labelled photos; {args.trials} trials")
    print(f"{'people x photos':<16}" + "".join(f"{name:>26}" for name in settings))
    for k in args.people:
        for n in args.photos:
            rng = np.random.default_rng(1000 * k + n)
            cell: dict[str, list[tuple[float, float]]] = {name: [] for name in settings}
            for _ in range(args.trials):
                chosen = rng.choice(people, k, replace=False)
                pick = np.concatenate(
                    [rng.choice(np.flatnonzero(truth == p), n, replace=False) for p in chosen]
                )
                for name, params in settings.items():
                    labels = cluster_embeddings(xl[pick], params, np.arange(len(pick)))
                    q = cluster_quality(truth[pick], labels)
                    cell[name].append((q.pairwise.f, q.pairwise.precision))
            line = f"{k:>3} x {n:<10}"
            for name, got in cell.items():
                a = np.array(got)
                mixed = int((a[:, 1] < 0.9).sum())
                line += f"   F {a[:, 0].mean():.3f} P {a[:, 1].mean():.3f} mixed {mixed:2d}"
                scores[name].extend(got)
            print(line)
    print("all:")
    for name, got in scores.items():
        a = np.array(got)
        print(
            f"  {name:<18} mean F {a[:, 0].mean():.3f}  mean P {a[:, 1].mean():.3f}"
            f"  mixed in {(a[:, 1] < 0.9).sum()} of {len(a)}"
        )


if __name__ == "__main__":
    main()
