"""Placing new faces with the projection learned from names: raw embedding vs learn's choice.

What happens after a user named their people and scans new photos: each new face joins a person
by cluster's attach rule (``clustering.attach_faces``: within the person's own spread or mutual
nearest neighbours, clear of the runner-up, most of its nearest faces theirs), in the space
``cluster`` places new faces in: the raw embedding, or the projection `photocluster learn` chose
when it gained on the user's held-out names.

For each labelled catalog (the scans of ``../shared/faces`` and ``../shared/lfw-dev``; the
labelled face of each photo, as `eval` scores): each person with 2+ photos is split at random,
``--named`` of their faces named (the training decisions), the rest new; every one-photo stranger
is new too. The projection is learned on the named faces the way `learn` does (cross-validated on
held-out named people; used only when its gain exceeds ``projection.MIN_GAIN``). Then every new
face is placed (``clustering.place_faces``), once with raw embeddings and once with each method
(``auto`` = learn's choice for suggestions, by verification on held-out named people;
``learn`` = what `learn` places new faces with: ``auto`` only when it also placed the named
faces' held-out faces better, see people/projection.py).
Printed per method, averaged over ``--splits`` random splits: new faces of named people placed
in their person (right), in another person (wrong), strangers placed in someone (wrong), and the
precision of the placements. Asserts nothing.

    uv run python bench/bench_placement.py \\
        --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev --splits 5
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_learn import DEFAULT_SETS, labelled

from photocluster.people import learn
from photocluster.people.clustering import place_faces
from photocluster.people.params import ClusterParams
from photocluster.people.projection import MIN_GAIN, places_better


def split_run(
    x: np.ndarray, y: np.ndarray, multi: np.ndarray, named_share: float, seed: int
) -> dict[str, tuple[int, int, int, int, int]]:
    """Per method: (right, wrong person, strangers placed, new faces of named people,
    strangers)."""
    rng = np.random.default_rng(seed)
    named = np.zeros(len(x), dtype=bool)
    for person in np.unique(y[multi]):
        rows = np.flatnonzero(y == person)
        k = max(1, round(named_share * len(rows)))
        named[rng.choice(rows, k, replace=False)] = True
    new = np.flatnonzero(~named)
    owner = np.where(named, y, -1)
    maps = {m: learn.fit(m, x[named], y[named], seed=seed) for m in learn.METHODS}
    best = learn.cross_validate(x[named], y[named], seed=seed).best()
    auto = best.method if best is not None and (best.gain or 0) > MIN_GAIN else learn.RAW
    maps[f"auto ({auto})"] = maps[auto]
    params = ClusterParams()
    # what `learn` places with: the chosen method when it also placed the named faces better
    placed = learn.cross_validate_placement(
        x[named], y[named], None, auto, lambda z, o, r: place_faces(z, o, r, params), seed=seed
    )
    places = auto if places_better(placed) else learn.RAW
    maps[f"learn ({places})"] = maps[places]
    out = {}
    for name, m in maps.items():
        got = place_faces(m.apply(x), owner, new, params)
        theirs = multi[new]
        right = int(np.sum((got == y[new]) & theirs))
        wrong = int(np.sum((got != -1) & (got != y[new]) & theirs))
        strangers = int(np.sum((got != -1) & ~theirs))
        out[name] = (right, wrong, strangers, int(theirs.sum()), int((~theirs).sum()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", help="name=catalog:labelled folder")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument("--named", type=float, default=0.6, help="share of each person named")
    args = ap.parse_args()
    for spec in args.set or DEFAULT_SETS:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        x, y = labelled(db, root)
        labels, counts = np.unique(y, return_counts=True)
        multi = np.isin(y, labels[counts >= 2])
        print(
            f"\n== {name}: {int(multi.sum())} faces of {int(np.sum(counts >= 2))} people with 2+ "
            f"photos ({100 * args.named:.0f} % of each named), {int((~multi).sum())} one-photo "
            f"strangers; {args.splits} splits"
        )
        totals: dict[str, np.ndarray] = {}
        chosen: dict[str, list[str]] = {}
        for seed in range(args.splits):
            for method, figures in split_run(x, y, multi, args.named, seed).items():
                key = method.split(" ")[0]
                totals.setdefault(key, np.zeros(5, dtype=np.int64))
                totals[key] += np.array(figures)
                if key in ("auto", "learn"):
                    chosen.setdefault(key, []).append(method[len(key) + 2 : -1])
        print("  method   right (of new faces of named)  wrong person  strangers placed  precision")
        for method, t in totals.items():
            right, wrong, strangers, theirs, alone = (int(v) for v in t)
            placed = right + wrong + strangers
            print(
                f"  {method:<8} {right:5d} ({100 * right / max(1, theirs):5.1f} %)"
                f"             {wrong:5d}         {strangers:4d} of {alone:<5d}"
                f"    {right / max(1, placed):.3f}"
            )
        print(f"  auto (verification) chose: {', '.join(chosen['auto'])}")
        print(f"  learn places with: {', '.join(chosen['learn'])}")


if __name__ == "__main__":
    main()
