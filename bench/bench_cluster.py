"""Cluster time for 10 k / 100 k faces synthesised around real identity centroids.

Identity centres are drawn from the spread of the real identities' centroids in a labelled
catalog; each face is a centre plus a real within-identity residual (a real face minus its
identity's centroid). Prints seconds per stage and the pairwise F against the synthetic truth.

    uv run python bench/bench_cluster.py --db /tmp/shared_faces.sqlite3 --root ../shared/faces \
        --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from photocluster.clustering import ClusterParams, cluster_embeddings, hdbscan_labels
from photocluster.db import open_catalog
from photocluster.evaluate import labelled_faces, pairwise_prf


def synthesise(db: str, root: str, n: int, per_person: int, seed: int = 0) -> tuple:
    catalog = open_catalog(db, migrate=False)
    with catalog.session() as s:
        lab = labelled_faces(s, root)
    catalog.close()
    x = lab.embeddings.astype(np.float64)
    names = sorted(set(lab.labels))
    truth = np.array([names.index(v) for v in lab.labels])
    cents = np.stack([x[truth == k].mean(axis=0) for k in range(len(names))])
    residuals = x - cents[truth]
    mu = cents.mean(axis=0)
    dev = cents - mu
    rng = np.random.default_rng(seed)
    people = max(1, n // per_person)
    # New centres: random combinations of the real centroid deviations, same overall spread.
    weights = rng.normal(size=(people, len(names))) / np.sqrt(len(names))
    centres = mu + weights @ dev
    sizes = rng.poisson(per_person, size=people) + 1
    sizes = (sizes * n / sizes.sum()).astype(int)
    sizes[-1] += n - sizes.sum()
    ids = np.repeat(np.arange(people), sizes)
    faces = centres[ids] + residuals[rng.integers(0, len(residuals), size=len(ids))]
    return faces.astype(np.float32), ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/shared_faces.sqlite3")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(__file__), "../../shared/faces"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--per-person", type=int, default=20)
    args = ap.parse_args()
    params = ClusterParams()
    for n in args.sizes:
        x, truth = synthesise(args.db, os.path.abspath(args.root), n, args.per_person)
        groups = np.arange(n)  # one face per photo: no cannot-link work
        t = time.perf_counter()
        raw = hdbscan_labels(x, params)
        t_hdb = time.perf_counter() - t
        t = time.perf_counter()
        labels = cluster_embeddings(x, params, groups)
        total = time.perf_counter() - t
        m = pairwise_prf(truth, labels)
        print(
            f"{n:>7} faces, {len(set(truth.tolist()))} people: HDBSCAN alone {t_hdb:6.1f} s, "
            f"full pipeline {total:6.1f} s; clusters {labels.max() + 1}, noise "
            f"{(labels < 0).mean():.1%} (HDBSCAN alone {(raw < 0).mean():.1%}); pairwise "
            f"P {m.precision:.3f} R {m.recall:.3f} F {m.f:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
