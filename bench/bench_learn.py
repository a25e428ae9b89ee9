"""Does a projection learned from named faces help on people it never saw? Raw vs each method.

For each labelled catalog (the scans of ``../shared/faces`` and ``../shared/lfw-dev``): the
labelled face of every photo (the face nearest its label's one-face photos, as `eval` scores),
people with 2+ photos split at random into a training half and a test half, several splits.
Each method of :mod:`photocluster.people.learn` is fitted on the training half and measured on
the test half: the share of same-person pairs accepted at a 0.1 % false-match rate (and 1 %),
rank-1. ``--rejections K`` adds simulated rejections to the training half (the K faces of
other people nearest each person's centroid, within 0.6 of it). ``auto`` is what
`photocluster learn` would do with the training half as the user's names: cross-validate
there, use the best learned method only when its gain exceeds ``projection.MIN_GAIN``, else
raw. With ``--strangers`` (the default for lfw-dev), the test
half's different-person pairs also include every one-photo stranger against the test people.
Also times one `learn`-sized cross-validation on all named faces of each set.

    uv run python bench/bench_learn.py \\
        --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev --splits 5

Catalogs are read from a copy in a temporary folder. ``--named-copy DIR`` also writes
``DIR/<set>.sqlite3``, a copy of each catalog where every labelled face of a person with 2+
photos is confirmed in a person named after its label (what a user who named everyone would
have), to try `photocluster learn --db DIR/<set>.sqlite3` on.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime

import numpy as np
from sqlalchemy import select, update

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tune_cluster import load

from photocluster.catalog.db import open_catalog
from photocluster.catalog.models import Face, Person
from photocluster.evaluation.evaluate import labelled_faces
from photocluster.people import learn
from photocluster.people.projection import MIN_GAIN

REJECT_WITHIN = 0.6  # dlib's same-person distance: a face this near a person's centre may join it
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SETS = [
    f"faces=/work/cat/faces.sqlite3:{os.path.join(HERE, '../../shared/faces')}",
    f"lfw=/work/cat/lfw.sqlite3:{os.path.join(HERE, '../../shared/lfw-dev')}",
]


def labelled(db: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    """The labelled face of every photo (read from a copy of the catalog) and its label."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "catalog.sqlite3")
        shutil.copyfile(db, copy)
        x, _groups, idx, truth = load(copy, root)
    return x[idx].astype(np.float64), truth


def named_copy(db: str, root: str, out: str) -> int:
    """A copy of ``db`` at ``out`` with each labelled face of a label with 2+ photos confirmed
    in a person named after the label; returns the number of people named."""
    shutil.copyfile(db, out)
    _x, _groups, idx, truth = load(out, root)
    catalog = open_catalog(out)
    try:
        with catalog.session() as s:
            ids = np.array(s.scalars(select(Face.id).order_by(Face.id)).all())
            names = sorted(set(labelled_faces(s, root).labels))
            labels, counts = np.unique(truth, return_counts=True)
            named = 0
            now = datetime.now()
            for label in labels[counts >= 2]:
                person = Person(name=names[label], hidden=False, created_at=now)
                s.add(person)
                s.flush()
                face_ids = [int(i) for i in ids[idx[truth == label]]]
                s.execute(
                    update(Face)
                    .where(Face.id.in_(face_ids))
                    .values(person_id=person.id, confirmed=True)
                )
                named += 1
        return named
    finally:
        catalog.close()


def simulated_rejections(x: np.ndarray, y: np.ndarray, per_person: int) -> learn.Negatives:
    """For each person, the ``per_person`` faces of other people nearest their centroid within
    REJECT_WITHIN of it: the faces a user would have rejected from a person clustering made."""
    xs, labels = [], []
    for person in np.unique(y):
        centroid = x[y == person].mean(axis=0)
        others = np.flatnonzero(y != person)
        d = np.linalg.norm(x[others] - centroid, axis=1)
        near = others[np.argsort(d)[:per_person]]
        near = near[np.linalg.norm(x[near] - centroid, axis=1) < REJECT_WITHIN]
        xs.append(x[near])
        labels.extend([person] * len(near))
    return learn.Negatives(np.concatenate(xs), np.array(labels, dtype=np.int64))


def split_run(
    x: np.ndarray, y: np.ndarray, strangers: np.ndarray, seed: int, rejections: int = 0
) -> dict[str, tuple[float | None, float | None, float | None]]:
    people = np.unique(y)
    rng = np.random.default_rng(seed)
    train_people = rng.choice(people, len(people) // 2, replace=False)
    train = np.isin(y, train_people)
    test = ~train
    out: dict[str, tuple[float | None, float | None, float | None]] = {}
    neg = simulated_rejections(x[train], y[train], rejections) if rejections else None
    maps = {m: learn.fit(m, x[train], y[train], neg, seed=seed) for m in learn.METHODS}
    cv = learn.cross_validate(x[train], y[train], neg, seed=seed)
    best = cv.best()
    auto = best.method if best is not None and (best.gain or 0) > MIN_GAIN else learn.RAW
    maps["auto"] = maps[auto]
    for name, m in maps.items():
        yt = m.apply(x[test])
        labels = y[test]
        if len(strangers):
            yt = np.concatenate([yt, m.apply(strangers)])
            labels = np.concatenate([labels, -1 - np.arange(len(strangers))])
        s = learn.score_held_out(yt, labels, np.random.default_rng(seed))
        out[name] = (s.tar[0.001], s.tar[0.01], s.rank1)
    out["auto"] = (*out["auto"], auto)  # type: ignore[assignment]
    return out


def _f(v: float | None) -> str:
    return "   -  " if v is None else f"{100 * v:6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", help="name=catalog:labelled folder")
    ap.add_argument("--splits", type=int, default=5)
    ap.add_argument(
        "--strangers",
        choices=["auto", "yes", "no"],
        default="auto",
        help="one-photo strangers as extra test negatives (auto: when a set has 100+ of them)",
    )
    ap.add_argument(
        "--rejections",
        type=int,
        default=0,
        metavar="K",
        help="simulate rejections: per training person, the K nearest faces of other people "
        f"within {REJECT_WITHIN} of its centroid",
    )
    ap.add_argument("--named-copy", metavar="DIR", help="also write named copies there")
    args = ap.parse_args()
    for spec in args.set or DEFAULT_SETS:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        if args.named_copy:
            out = os.path.join(args.named_copy, f"{name}.sqlite3")
            print(f"{out}: {named_copy(db, root, out)} people named")
        x, y = labelled(db, root)
        labels, counts = np.unique(y, return_counts=True)
        multi = np.isin(y, labels[counts >= 2])
        use_strangers = args.strangers == "yes" or (
            args.strangers == "auto" and int(np.sum(~multi)) >= 100
        )
        strangers = x[~multi] if use_strangers else np.zeros((0, x.shape[1]))
        xm, ym = x[multi], y[multi]
        print(
            f"\n== {name}: {len(xm)} faces of {len(np.unique(ym))} people with 2+ photos"
            + (
                f", {len(strangers)} one-photo strangers as test negatives"
                if len(strangers)
                else ""
            )
            + f"; {args.splits} splits of the people in halves"
        )
        t = time.perf_counter()
        learn.cross_validate(xm, ym)
        print(
            f"  learn-sized cross-validation on all {len(xm)} faces: "
            f"{time.perf_counter() - t:.1f} s"
        )
        rows: dict[str, list[tuple[float | None, float | None, float | None]]] = {}
        chosen: list[str] = []
        for k in range(args.splits):
            for method, figures in split_run(
                xm, ym, strangers, seed=k, rejections=args.rejections
            ).items():
                rows.setdefault(method, []).append(figures[:3])
                if method == "auto":
                    chosen.append(str(figures[3]))  # type: ignore[misc]
        print("  method   TAR@0.1%  (min-max)         TAR@1%   rank-1   gain@0.1%")
        raw01 = [r[0] for r in rows[learn.RAW]]
        for method, figs in rows.items():
            t01 = [f[0] for f in figs]
            t1 = [f[1] for f in figs]
            r1 = [f[2] for f in figs]

            def mean(v: list[float | None]) -> float | None:
                got = [a for a in v if a is not None]
                return float(np.mean(got)) if got else None

            gains = [
                a - b for a, b in zip(t01, raw01, strict=True) if a is not None and b is not None
            ]
            lo = min((a for a in t01 if a is not None), default=None)
            hi = max((a for a in t01 if a is not None), default=None)
            print(
                f"  {method:<8} {_f(mean(t01))}  ({_f(lo)}-{_f(hi)})  {_f(mean(t1))}  "
                f"{_f(mean(r1))}   {100 * float(np.mean(gains)) if gains else float('nan'):+6.2f}"
            )
        print(f"  auto chose: {', '.join(chosen)}")


if __name__ == "__main__":
    main()
