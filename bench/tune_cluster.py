"""Measure clustering quality on labelled catalogs across a grid of parameters.

Loads every face of each labelled catalog (e.g. the scans of ``../shared/faces`` and
``../shared/lfw-dev``), clusters them with :func:`photocluster.people.clustering.cluster_embeddings`
and scores each labelled photo's face that is the labelled person (the face most like the
label's one-face photos, as `eval` does). Per set it prints pairwise precision/recall/F over all
scored faces (each one-photo stranger its own class), pairwise P/F over people with two or more
photos, the share of one-photo strangers left alone, and the unassigned share; then the worst
precision and F over the sets. The defaults come first, then one-parameter-at-a-time
sensitivity rows around them, then reference baselines.

A decision that helps one set and hurts the other is not one to keep: choose by principle, read
the sensitivity on every set, never fit one.

    uv run python bench/tune_cluster.py \\
        --set faces=/tmp/faces.sqlite3:../shared/faces --set lfw=/tmp/lfw.sqlite3:../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from dataclasses import dataclass

import numpy as np
from synth_faces import labelled_set

from photocluster.evaluation.evaluate import (
    pair_distances,
    pairwise_prf,
    people_and_strangers,
    verification,
)
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.params import ClusterParams

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SETS = [
    f"faces=/tmp/faces.sqlite3:{os.path.join(HERE, '../../shared/faces')}",
    f"lfw=/tmp/lfw.sqlite3:{os.path.join(HERE, '../../shared/lfw-dev')}",
]


def load(db: str, root: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every face (embeddings, photo of each) and the rows and labels of the scored faces: per
    labelled photo, the face most like its label's one-face photos (``nearest_to_label``)."""
    s = labelled_set(db, root)
    return s.x, s.groups, s.idx, s.truth


@dataclass
class LabelledSet:
    name: str
    x: np.ndarray
    groups: np.ndarray
    idx: np.ndarray
    truth: np.ndarray


def score(s: LabelledSet, params: ClusterParams) -> tuple[str, float, float, float]:
    """One set's cell of a row, its pairwise precision and F, and the seconds it took."""
    t = time.perf_counter()
    labels = cluster_embeddings(s.x, params, s.groups)
    took = time.perf_counter() - t
    pred = labels[s.idx]
    q = pairwise_prf(s.truth, pred)
    multi, strangers = people_and_strangers(s.truth, pred)
    share = strangers.left_alone_share
    alone = "   -  " if share is None else f"{share:6.3f}"
    unassigned = float((pred < 0).mean())
    cell = (
        f"{q.precision:6.3f} {q.recall:6.3f} {q.f:6.3f} {multi.pairwise.precision:6.3f}"
        f" {multi.pairwise.f:6.3f} {alone} {unassigned:6.3f}"
    )
    return cell, q.precision, q.f, took


def row(name: str, sets: list[LabelledSet], params: ClusterParams) -> None:
    cells, ps, fs, took = [], [], [], 0.0
    for s in sets:
        cell, p, f, t = score(s, params)
        cells.append(cell)
        ps.append(p)
        fs.append(f)
        took += t
    print(
        f"{name:<26} " + " | ".join(cells) + f" | {min(ps):6.3f} {min(fs):6.3f} {took:5.1f}s",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--set",
        action="append",
        dest="sets",
        metavar="NAME=DB:ROOT",
        help="a labelled catalog and the folder it scanned (repeat; default: faces and lfw)",
    )
    ap.add_argument("--quick", action="store_true", help="only the defaults and baselines")
    args = ap.parse_args()
    sets: list[LabelledSet] = []
    for spec in args.sets or DEFAULT_SETS:
        name, _, rest = spec.partition("=")
        db, _, root = rest.partition(":")
        x, groups, idx, truth = load(db, os.path.abspath(root))
        sets.append(LabelledSet(name, x, groups, idx, truth))
        counts = np.bincount(truth)
        print(
            f"{name}: {len(x)} faces, {len(idx)} scored faces, {len(counts)} identities "
            f"({int((counts == 1).sum())} with one photo)"
        )
        d, g = pair_distances(x[idx], truth)
        for fmr in (0.0001, 0.001, 0.01):
            v = verification(d, g, target_fmr=fmr)
            print(
                f"  verification: FMR {fmr:g} at distance <= {v.threshold_at_target:.3f} "
                f"(TMR {v.tmr_at_target:.3f}); EER {v.eer:.3f} at {v.eer_threshold:.3f}"
            )
    head = f"{'pP':>6} {'pR':>6} {'pF':>6} {'2+ P':>6} {'2+ F':>6} {'alone':>6} {'unas.':>6}"
    print(f"{'':<26} " + " | ".join(f"{s.name:^{len(head)}}" for s in sets) + " |  worst P/F")
    print(f"{'setting':<26} " + " | ".join(head for _ in sets) + f" | {'P':>6} {'F':>6}")
    base = ClusterParams()
    row("DEFAULTS", sets, base)
    if not args.quick:
        grid: dict[str, list[object]] = {
            "min_cluster_size": [3, 5, 6],
            "min_samples": [2, 4, 5],
            "method": ["leaf"],
            "spread_ratio": [0.0, 1.3, 1.4, 1.6, 1.8, 2.0],
            "attach_share": [0.0, 0.4, 0.8, 1.0],
            "attach_mutual": [0, 1, 3],
            "attach_distance": [0.0, 0.5, 0.56, 0.6],
            "attach_margin": [0.0, 0.02, 0.1],
            "eject_distance": [0.0, 0.55, 0.7],
            "pair_distance": [0.0, 0.4, 0.45, 0.5],
            "split_share": [0.0, 0.1, 0.3],
            "merge_share": [0.0, 0.3, 0.4, 0.6, 0.7],
            "verify_share": [0.0, 0.4, 0.6],
            "separation": [0.0, 0.85, 0.95, 1.0],
            "attach_posterior": [0.0, 0.3, 0.7, 0.9],
            "merge_distance": [0.4],
        }
        for key, values in grid.items():
            for value in values:
                if getattr(base, key) == value:
                    continue
                params = dataclasses.replace(base, **{key: value})
                row(f"  {key}={value}", sets, params)
    print("baselines:")
    # the steps round 1 did not have; HDBSCAN alone has none of the post-steps either
    since_round_1 = dict(
        spread_ratio=0.0,
        attach_share=0.0,
        attach_mutual=0,
        verify_share=0.0,
        separation=0.0,
        attach_posterior=0.0,
    )
    plain = dict(
        since_round_1,
        attach_distance=0.0,
        merge_share=0.0,
        pair_distance=0.0,
        split_share=0.0,
        eject_distance=0.0,
    )
    for mcs, ms in ((5, 5), (6, 4), (4, 3)):
        row(
            f"  hdbscan ({mcs},{ms}) alone",
            sets,
            ClusterParams(min_cluster_size=mcs, min_samples=ms, **plain),  # type: ignore[arg-type]
        )
    # round 1 cut clusters at a split share of 0.2 (0.1 since)
    round_1 = dict(since_round_1, split_share=0.2)
    row("  round-1 rules (global)", sets, ClusterParams(**round_1))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
