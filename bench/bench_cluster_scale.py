"""Clustering at 10 k / 100 k / 1 M faces: time, peak memory, and agreement with exact HDBSCAN.

Faces are synthesised around the real identities of a labelled catalog (``bench/synth_faces.py``:
real identity centroids turned by random rotations, plus real within-person residuals; with
``--db``/``--root`` of ../shared/lfw-dev, its one-photo strangers too, in its proportion of
about five strangers per person). Each size runs in a fresh process so its peak RSS is its own.
For each size it prints:

* ``exact``: the hdbscan package on the whole set (generic below 20 000 faces, where its O(n²)
  matrix fits; skipped above, where it takes hours) — the baseline, measured in the same run;
* ``knn``: HDBSCAN on the k-NN graph (``photocluster.people.knn_hdbscan``), what ``cluster`` uses
  above ``clustering._BIG`` faces;
* ``pipeline``: the whole ``cluster_embeddings`` (HDBSCAN + split/eject/merge/attach/pair steps):
  seconds, pairwise precision / recall / F against the synthetic truth (noise counted as
  singletons, each stranger its own identity), the noise share, pairwise precision over the
  people's faces alone and the share of strangers left alone (unassigned or alone);

and the process's peak RSS next to the size of the embedding matrix. The pipeline's CPU
seconds (all threads) are printed beside its wall time: on a busy machine they show how much of
the wall time was waiting. ``--steps`` also prints
the seconds spent in each step of the pipeline (inclusive: a step's time counts the steps it
calls, e.g. ``attach_noise`` holds ``NearestFaces.of``), by wrapping the functions of
``photocluster.people.clustering`` and ``photocluster.people.knn_hdbscan`` from outside.

``knn`` mode compares ways of building the k-NN graph (recall@k against exact search, seconds).

    uv run python bench/bench_cluster_scale.py --db /tmp/faces.sqlite3 --root ../shared/faces
    uv run python bench/bench_cluster_scale.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev
    uv run python bench/bench_cluster_scale.py --sizes 1000000 --no-exact --steps
    uv run python bench/bench_cluster_scale.py --sizes 100000 --set merge_share=0   # one step off
    uv run python bench/bench_cluster_scale.py knn --sizes 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import DEFAULT_DB, DEFAULT_ROOT, real_identities, synthesise

import photocluster.people.clustering as clustering
import photocluster.people.knn_hdbscan as scale_cluster
import photocluster.people.posterior as posterior
from photocluster.evaluation.evaluate import pairwise_prf, people_and_strangers, singletonise
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.knn_hdbscan import knn_hdbscan_labels
from photocluster.people.params import ClusterParams

EXACT_MAX = 20_000


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _f(truth: np.ndarray, labels: np.ndarray) -> float:
    return pairwise_prf(truth, singletonise(labels)).f


# What --steps times: the pipeline's steps (clustering) and HDBSCAN's parts (scale_cluster).
_STEPS = {
    clustering: [
        "_knn_graph",
        "hdbscan_labels",
        "split_loose_clusters",
        "split_mixed_clusters",
        "eject_outliers",
        "eject_beyond_spread",
        "merge_alike_clusters",
        "dissolve_unlike_clusters",
        "dissolve_unseparated_clusters",
        "own_pairs",
        "_cross_share",
        "enforce_cannot_link",
        "attach_noise",
        "attach_faces",
        "spreads",
        "assign_to_centroids",
        "merge_close_clusters",
        "pair_close_noise",
    ],
    scale_cluster: ["knn", "mutual_reachability_mst", "tree_labels"],
    posterior: ["attach_likely_faces", "_lookups"],
}


def time_steps() -> dict[str, list[float]]:
    """Wrap the steps of the pipeline so each call adds its seconds to the returned dict
    (name -> [calls, seconds]); ``NearestFaces.of`` too. Nothing in the modules changes but
    the names bound to those functions, in this process only."""
    spent: dict[str, list[float]] = {}

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                got = spent.setdefault(name, [0, 0.0])
                got[0] += 1
                got[1] += time.perf_counter() - t

        return timed

    for module, names in _STEPS.items():
        for name in names:
            setattr(module, name, wrap(name, getattr(module, name)))
    cls = clustering.NearestFaces
    cls.of = wrap("NearestFaces.of", cls.of)  # type: ignore[method-assign]
    return spent


def cluster_params(settings: list[str]) -> ClusterParams:
    """The defaults with ``NAME=VALUE`` overrides (``--set merge_share=0``)."""
    fields = {f.name: f.type for f in dataclasses.fields(ClusterParams)}
    changes: dict[str, object] = {}
    for item in settings:
        name, _, value = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--set: unknown parameter {name!r} (one of {', '.join(fields)})")
        default = getattr(ClusterParams(), name)
        changes[name] = value if isinstance(default, str) else type(default)(value)
    return dataclasses.replace(ClusterParams(), **changes)  # type: ignore[arg-type]


def one_size(
    db: str,
    root: str,
    n: int,
    exact: bool,
    per_person: int,
    params: ClusterParams,
    steps: bool = False,
) -> dict:
    real = real_identities(db, root)
    x, truth = synthesise(real, n, per_person=per_person)
    del real
    per = np.bincount(truth)
    out: dict = {
        "n": n,
        "people": int((per >= 2).sum()),
        "strangers": int((per == 1).sum()),
        "matrix_mib": x.nbytes / 2**20,
    }
    if exact and n <= EXACT_MAX:
        import hdbscan

        t = time.perf_counter()
        labels = hdbscan.HDBSCAN(
            min_cluster_size=params.min_cluster_size,
            min_samples=params.min_samples,
            algorithm="generic",
            core_dist_n_jobs=1,
        ).fit_predict(x.astype(np.float64))
        out["exact_s"] = time.perf_counter() - t
        out["exact_f"] = _f(truth, labels)
        del labels
    out["rss_before_mib"] = _rss_mib()
    if n <= EXACT_MAX:  # the HDBSCAN step alone, to compare with exact HDBSCAN
        t = time.perf_counter()
        labels = knn_hdbscan_labels(x, params)
        out["knn_s"] = time.perf_counter() - t
        out["knn_f"] = _f(truth, labels)
        out["knn_noise"] = float((labels < 0).mean())
        del labels
    spent = time_steps() if steps else {}
    print(f"{n}: clustering (RSS {_rss_mib():.0f} MiB) ...", file=sys.stderr, flush=True)
    t, cpu = time.perf_counter(), time.process_time()
    labels = cluster_embeddings(x, params, np.arange(n))  # one face per photo
    out["pipeline_s"] = time.perf_counter() - t
    # CPU seconds of all threads: on a shared machine wall time also counts the waiting
    out["pipeline_cpu_s"] = time.process_time() - cpu
    out["peak_mib"] = _peak_mib()
    prf = pairwise_prf(truth, singletonise(labels))
    out["pipeline_p"], out["pipeline_r"], out["pipeline_f"] = prf.precision, prf.recall, prf.f
    out["pipeline_noise"] = float((labels < 0).mean())
    people, strangers = people_and_strangers(truth, labels)
    out["people_p"] = people.pairwise.precision
    out["strangers_alone"] = strangers.left_alone_share
    out["steps"] = spent
    return out


def knn_choice(db: str, root: str, n: int, k: int) -> None:
    """Recall@k and time of ways to build the k-NN graph, against exact (flat) search."""
    import faiss

    real = real_identities(db, root)
    x, _ = synthesise(real, n)
    queries = np.random.default_rng(1).choice(n, size=min(n, 2000), replace=False)
    flat = faiss.IndexFlatL2(x.shape[1])
    flat.add(x)
    t = time.perf_counter()
    _, truth_idx = flat.search(x[queries], k)
    per_query = (time.perf_counter() - t) / len(queries)
    print(f"{n:>8} faces, k={k}: exact flat search {per_query * n:7.1f} s for all (extrapolated)")

    def recall(idx: np.ndarray) -> float:
        return float(
            np.mean([len(set(a) & set(b)) / k for a, b in zip(idx, truth_idx, strict=True)])
        )

    for nprobe in (16, 64) if n <= 200_000 else (16,):
        t = time.perf_counter()
        nlist = int(min(65_536, 4 * np.sqrt(n), n // 40))
        ivf = faiss.IndexIVFFlat(faiss.IndexFlatL2(x.shape[1]), x.shape[1], nlist)
        ivf.train(x[np.random.default_rng(0).choice(n, size=min(n, 64 * nlist), replace=False)])
        ivf.add(x)
        ivf.nprobe = nprobe
        _, idx = ivf.search(x, k)
        took = time.perf_counter() - t
        print(
            f"{'':8}  IVF-Flat nprobe {nprobe:3}: {took:7.1f} s, "
            f"recall@{k} {recall(idx[queries]):.3f}"
        )
    for m in (16, 32) if n <= 200_000 else (32,):
        t = time.perf_counter()
        index = faiss.IndexHNSWFlat(x.shape[1], m)
        index.hnsw.efConstruction = 80
        index.add(x)
        build = time.perf_counter() - t
        index.hnsw.efSearch = max(64, 2 * k)  # as ann.knn
        t = time.perf_counter()
        _, idx = index.search(x, k)
        took = time.perf_counter() - t
        print(
            f"{'':8}  HNSW M {m}: build {build:6.1f} s + search {took:6.1f} s, "
            f"recall@{k} {recall(idx[queries]):.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", choices=["cluster", "knn"], default="cluster")
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--per-person", type=int, default=20)
    ap.add_argument("--no-exact", action="store_true", help="skip exact HDBSCAN")
    ap.add_argument("--k", type=int, default=30)
    ap.add_argument("--steps", action="store_true", help="print the seconds of each step")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a clustering parameter, e.g. --set merge_share=0 (repeatable)",
    )
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if args.one:
        params = cluster_params(args.set)
        print(
            json.dumps(
                one_size(
                    args.db,
                    root,
                    args.one,
                    not args.no_exact,
                    args.per_person,
                    params,
                    args.steps,
                )
            )
        )
        return
    if args.mode == "knn":
        for n in args.sizes:
            knn_choice(args.db, root, n, args.k)
        return
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--db", args.db, "--root", root]
        cmd += ["--per-person", str(args.per_person)] + (["--no-exact"] if args.no_exact else [])
        cmd += ["--steps"] if args.steps else []
        cmd += [f"--set={item}" for item in args.set]
        # the child's stderr (progress, errors) passes through
        r = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
        exact = (
            f"exact {r['exact_s']:7.1f} s F {r['exact_f']:.3f} | "
            if "exact_s" in r
            else "exact  (not run) | "
        )
        alone = r["strangers_alone"]
        parts = [
            f"{r['n']:>8} faces, {r['people']:>6} people + {r['strangers']:>6} strangers: {exact}"
            + (f"knn {r['knn_s']:6.1f} s F {r['knn_f']:.3f}" if "knn_s" in r else "")
            + (f" (Δ {r['knn_f'] - r['exact_f']:+.3f})" if "exact_f" in r else ""),
            f"pipeline {r['pipeline_s']:6.1f} s (CPU {r['pipeline_cpu_s']:.0f} s)"
            f" P {r['pipeline_p']:.3f} R {r['pipeline_r']:.3f} F {r['pipeline_f']:.3f}"
            f" noise {r['pipeline_noise']:.1%}",
            f"people's P {r['people_p']:.3f}"
            + (f", strangers left alone {alone:.1%}" if alone is not None else ""),
            f"peak RSS {r['peak_mib']:6.0f} MiB (embeddings {r['matrix_mib']:.0f} MiB,"
            f" before clustering {r['rss_before_mib']:.0f})",
        ]
        print(" | ".join(parts), flush=True)
        for name, (calls, seconds) in sorted(r["steps"].items(), key=lambda kv: -kv[1][1]):
            print(f"{'':10}{name:<26} {seconds:8.1f} s in {int(calls)} calls", flush=True)


if __name__ == "__main__":
    main()
