"""Clustering small catalogs: a few people with a few photos each, the case HDBSCAN gets wrong.

With few faces, HDBSCAN's excess-of-mass selection often keeps two or three people as one
cluster. This draws many small catalogs from a labelled catalog (the labelled face of photos of
people with at least ``--min-photos`` photos): ``k`` random people x ``n`` random photos each,
``--trials`` times per (k, n), each photo its own photo (no cannot-link), and clusters each with
the defaults, with one step off (``--param``, default ``split_share``, set to 0) and with
every ``--values`` value of it (e.g. ``--param merge_share --values 0.4 0.6``). Prints mean
pairwise F and precision, and in how many catalogs a cluster mixed people badly (pairwise
precision < 0.9). Asserts nothing.

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
    ap.add_argument(
        "--param",
        default="split_share",
        help="the ClusterParams field to vary (0 = off, for a step's share)",
    )
    ap.add_argument("--values", type=float, nargs="*", default=[0.1, 0.3])
    args = ap.parse_args()
    x, _groups, idx, truth = load(args.db, os.path.abspath(args.root))
    xl = x[idx]
    people = [t for t in np.unique(truth) if (truth == t).sum() >= args.min_photos]
    base = ClusterParams()
    settings: dict[str, ClusterParams] = {}
    try:
        off = {args.param: type(getattr(base, args.param))(0)}
        settings[f"{args.param} off"] = dataclasses.replace(base, **off)
    except ValueError:
        pass  # not a step that 0 turns off (e.g. min_samples)
    settings[f"default ({getattr(base, args.param):g})"] = base
    kind = type(getattr(base, args.param))
    for value in args.values:
        step = {args.param: kind(value)}
        settings[f"{args.param} {value:g}"] = dataclasses.replace(base, **step)
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
