"""A few people among many strangers: a family's library, where most faces appear once.

From a scanned labelled catalog with many one-photo strangers (``--db``/``--root``, e.g. the
scan of ../shared/lfw-dev: 100 people with 6-12 photos among 496 one-photo strangers), each
trial keeps ``k`` random people (``--people``, every photo of theirs) and every one-photo
stranger, with every face of those photos (other faces in a photo are clustered too, as in the
catalog; two faces of one photo never share a person), and clusters them with the defaults, with
one step off (``--param``, default ``verify_share``, set to 0; several joined by ``+`` are
turned off together, e.g. ``verify_share+separation``) and with every ``--values`` value of it.
``--trials`` draws (30) for each number of people (``--people``: 5, 10, 30, 60): with five
draws the mean precision of 10 people was 0.938, with thirty 0.897 (split share 0.2), since
one draw in a few holds a clump of a dozen strangers or more. Each labelled photo is scored on
its face most like its label's one-face photos (as `eval` scores); each stranger is its own
identity.

HDBSCAN's clusters are relative to the library: with few people, the densest pocket of strangers
is as stable as a person, so the whole set (100 people) hides what a family's library shows.

Prints, per ``k`` and setting, over ``--trials`` draws: mean and worst pairwise precision, mean
recall and F, the share of strangers left alone, and the most different strangers one "person"
held. Asserts nothing.

    uv run python bench/crowd.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev
    uv run python bench/crowd.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev \\
        --param verify_share --values 0.4 0.6
    uv run python bench/crowd.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev \\
        --people 100 --strangers 0 --param attach_posterior --values 0.3 0.7

``--strangers N`` keeps N strangers (drawn anew for each library) instead of all of them: the
same people with few or no strangers, as a library of a few well-photographed people is.

``--separation-report`` prints instead what the separation test
(``clustering.dissolve_unseparated_clusters``) sees: the set and every draw clustered with
neither the verification nor the separation test, and per cluster of three faces or more its
median ratio of nearest member / nearest other face (``clustering.separation``), for the
clusters that are one real person (their labelled faces all one label of 2+ photos) and for
the clumps of one-photo strangers (three or more labelled faces, every one a different
stranger); clusters mostly of faces with no known identity (others in the photos) are left
out. Works on a set without strangers too (the whole set only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from small_catalogs import settings_to_try
from synth_faces import labelled_set

from photocluster.evaluation.evaluate import pairwise_prf, people_and_strangers
from photocluster.people.clustering import NearestFaces, cluster_embeddings, separation
from photocluster.people.params import ClusterParams
from photocluster.people.thresholds import ATTACH_NEIGHBOURS


def most_strangers(truth: np.ndarray, labels: np.ndarray, strangers: np.ndarray) -> int:
    """The most different one-photo strangers held by one cluster."""
    held = (labels >= 0) & np.isin(truth, strangers)
    if not held.any():
        return 0
    pairs = np.unique(np.stack([labels[held], truth[held]], axis=1), axis=0)
    return int(np.bincount(pairs[:, 0]).max())


def _library(s, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The faces of the labelled photos ``keep`` selects (every face of those photos): rows of
    ``s.x``, and per row its label (-1: not a scored face)."""
    scored = s.idx[keep]
    rows = np.flatnonzero(np.isin(s.groups, np.unique(s.groups[scored])))
    label = np.full(len(s.x), -1)
    label[scored] = s.truth[keep]
    return rows, label[rows], scored


def trial(
    s, people: np.ndarray, strangers: np.ndarray, settings: dict[str, ClusterParams]
) -> dict[str, tuple[float, float, float, float, int]]:
    """One library: ``people`` and every stranger; per setting P, R, F, left alone, most."""
    keep = np.isin(s.truth, people) | np.isin(s.truth, strangers)
    rows, _, scored = _library(s, keep)
    position = np.full(len(s.x), -1)
    position[rows] = np.arange(len(rows))
    truth = s.truth[keep]
    out = {}
    for name, params in settings.items():
        labels = cluster_embeddings(s.x[rows], params, s.groups[rows])[position[scored]]
        q = pairwise_prf(truth, labels)
        _, alone = people_and_strangers(truth, labels)
        share = alone.left_alone_share if alone.left_alone_share is not None else 1.0
        out[name] = (q.precision, q.recall, q.f, share, most_strangers(truth, labels, strangers))
    return out


def separation_medians(s, keep: np.ndarray, per: np.ndarray) -> tuple[list[float], list[float]]:
    """Clustered with neither test: the separation medians of the clusters that are one real
    person, and of the clumps of different one-photo strangers."""
    rows, label, _ = _library(s, keep)
    x = s.x[rows]
    labels = cluster_embeddings(x, ClusterParams(verify_share=0, separation=0), s.groups[rows])
    people, clumps = [], []
    for members, median in zip(
        *separation(x, labels, NearestFaces(x, ATTACH_NEIGHBOURS)), strict=True
    ):
        known = label[members][label[members] >= 0]
        if len(known) < len(members) / 2:  # mostly faces of unknown identity
            continue
        if len(known) >= 2 and (known == known[0]).all() and per[known[0]] >= 2:
            people.append(float(median))
        elif len(known) >= 3 and (per[known] == 1).all() and len(set(known.tolist())) == len(known):
            clumps.append(float(median))
    return people, clumps


def separation_report(s, per: np.ndarray, people_k: list[int], trials: int) -> None:
    strangers, multi = np.flatnonzero(per == 1), np.flatnonzero(per >= 2)
    got: dict[str, tuple[list[float], list[float]]] = {
        "whole set": separation_medians(s, np.ones(len(s.truth), dtype=bool), per)
    }
    rng = np.random.default_rng(0)
    for k in people_k if len(strangers) >= 50 else []:
        both: tuple[list[float], list[float]] = ([], [])
        for _ in range(trials):
            chosen = rng.choice(multi, min(k, len(multi)), replace=False)
            keep = np.isin(s.truth, chosen) | np.isin(s.truth, strangers)
            for mine, theirs in zip(both, separation_medians(s, keep, per), strict=True):
                mine.extend(theirs)
        got[f"{k} people among all strangers"] = both
    print("median of nearest member / nearest other face, clustered with neither test:")
    for name, (people, clumps) in got.items():
        for what, m in (("real people", people), ("clumps of strangers", clumps)):
            if m:
                a = np.array(m)
                print(
                    f"  {name:<32} {what:<20} {len(a):4}: {a.min():.2f}-{a.max():.2f}, "
                    f"median {np.median(a):.2f}, above 0.9: {(a > 0.9).mean():.0%}"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True, help="scanned labelled catalog")
    ap.add_argument("--root", required=True, help="its labelled folder")
    ap.add_argument("--people", type=int, nargs="+", default=[5, 10, 30, 60])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--param", default="verify_share")
    ap.add_argument("--values", type=float, nargs="*", default=[])
    ap.add_argument(
        "--strangers",
        type=int,
        help="keep this many one-photo strangers, drawn anew each time (default: all of them)",
    )
    ap.add_argument("--separation-report", action="store_true", help="see the module docstring")
    args = ap.parse_args()
    s = labelled_set(args.db, args.root)
    per = np.bincount(s.truth)
    strangers = np.flatnonzero(per == 1)
    multi = np.flatnonzero(per >= 2)
    print(f"{args.db}: {len(multi)} people with 2+ photos, {len(strangers)} one-photo strangers")
    if args.separation_report:
        separation_report(s, per, args.people, args.trials)
        return
    if len(strangers) < 50 and args.strangers != 0:
        print("too few one-photo strangers for a crowd (this set has no crowd to test)")
        return
    keep = len(strangers) if args.strangers is None else min(args.strangers, len(strangers))
    settings = settings_to_try(args.param, args.values)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for k in args.people:
        k = min(k, len(multi))
        got: dict[str, list[tuple[float, float, float, float, int]]] = {n: [] for n in settings}
        for _ in range(args.trials):
            chosen = rng.choice(multi, k, replace=False)
            some = strangers if keep == len(strangers) else rng.choice(strangers, keep, False)
            for name, score in trial(s, chosen, some, settings).items():
                got[name].append(score)
        among = (
            f"all {len(strangers)}" if keep == len(strangers) else f"{keep} of the {len(strangers)}"
        )
        print(f"{k} people among {among} strangers ({args.trials} draws):")
        for name, scores in got.items():
            a = np.array(scores, dtype=float)
            print(
                f"  {name:<28} P {a[:, 0].mean():.3f} (worst {a[:, 0].min():.3f})"
                f"  R {a[:, 1].mean():.3f}  F {a[:, 2].mean():.3f}"
                f"  strangers alone {a[:, 3].mean():.1%}"
                f"  most strangers in one person {int(a[:, 4].max())}"
            )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
