"""Where the rest of the clustering error is, and what knowing more would buy.

For each labelled catalog (``--set NAME=CATALOG:ROOT``; e.g. the scans of ../shared/faces and
../shared/lfw-dev), clustered with the defaults and scored as `eval` scores (each labelled
photo's face most like its label's one-face photos; a one-photo stranger is its own class):

1. **The lost pairs.** Same-person pairs lost because a face was left in no person, and because
   a person came out in several pieces; the people who lose most.
2. **Ceilings (oracles).** The score if every face left out of its person had joined it (only
   where its nearest person is its own, then wherever it is), then if the pieces of a person
   were joined too. What perfect attach and merge decisions would reach with these clusters.
3. **The best evidence, fully informed.** Every person named after its label (as
   ``simulated_user.py`` names them, rejecting the faces that are someone else: the user's
   merges and rejections), then each face in no person joins its best suggestion when that
   scores at least a threshold (``people.suggestions``: a logistic regression over every piece
   of evidence `cluster` and `find` weigh, fitted on the named faces of this very library). How
   far the evidence itself separates a person's odd photos from the strangers beside them, with
   every name known; clustering, which knows no name, cannot do better on that evidence.

Asserts nothing.

    uv run python bench/ceiling.py --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import numpy as np
from sqlalchemy import select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from simulated_user import everyone_named
from synth_faces import labelled_set

from photocluster.catalog.models import Face
from photocluster.evaluation.evaluate import pairwise_prf
from photocluster.people.clustering import centroids, cluster_embeddings
from photocluster.people.params import ClusterParams
from photocluster.people.suggestions import suggest

THRESHOLDS = (0.95, 0.9, 0.7, 0.5, 0.3, 0.2, 0.1)


def line(title: str, truth: np.ndarray, pred: np.ndarray, extra: str = "") -> None:
    q = pairwise_prf(truth, pred)
    print(f"  {title:<52} P {q.precision:.3f}  R {q.recall:.3f}  F {q.f:.3f}{extra}")


def lost_pairs(truth: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> None:
    """Same-person pairs lost to faces in no person and to pieces; the people losing most."""
    alone = pieces = total = 0
    worst = []
    for t in np.unique(truth):
        got = pred[truth == t]
        n = len(got)
        if n < 2:
            continue
        total += n * (n - 1) // 2
        u = int((got < 0).sum())
        sizes = sorted(Counter(got[got >= 0].tolist()).values(), reverse=True)
        lost = n * (n - 1) // 2 - sum(s * (s - 1) // 2 for s in sizes)
        by_alone = u * (n - u) + u * (u - 1) // 2
        alone += by_alone
        pieces += lost - by_alone
        if lost:
            worst.append((lost, names[t] if names else str(t), n, u, sizes))
    print(f"  same-person pairs {total}: lost {alone} to faces in no person, {pieces} to pieces")
    for lost, name, n, u, sizes in sorted(worst, reverse=True)[:5]:
        print(f"    {name}: {lost} pairs ({n} photos: {u} in no person, pieces {sizes})")


def oracles(x: np.ndarray, labels: np.ndarray, idx: np.ndarray, truth: np.ndarray) -> None:
    pred = labels[idx]
    per = np.bincount(truth)
    ids, cents = centroids(x, labels)
    who: dict[int, int] = {}  # cluster -> the label most of its scored faces carry
    main: dict[int, int] = {}  # label -> its largest cluster
    for c in ids.tolist():
        got = truth[pred == c]
        if len(got):
            who[c] = Counter(got.tolist()).most_common(1)[0][0]
    for c, t in who.items():
        if t not in main or (pred == c).sum() > (pred == main[t]).sum():
            main[t] = c
    left = [i for i in np.flatnonzero(pred < 0) if per[truth[i]] >= 2 and truth[i] in main]
    nearest = pred.copy()
    anywhere = pred.copy()
    for i in left:
        c = int(ids[np.argmin(np.linalg.norm(cents - x[idx[i]], axis=1))])
        if who.get(c) == truth[i]:
            nearest[i] = c
        anywhere[i] = main[truth[i]]
    joined = anywhere.copy()
    for c, t in who.items():
        if per[t] >= 2:
            joined[anywhere == c] = main[t]
    line("... each face left out joins its person, where nearest", truth, nearest)
    line("... each face left out joins its person", truth, anywhere)
    line("... and the pieces of each person are joined", truth, joined)


def informed(db: str, root: str) -> None:
    with everyone_named(db, root) as (catalog, truth), catalog.session() as s:
        owner = {int(f): p for f, p in s.execute(select(Face.id, Face.person_id))}
        result = suggest(s)
    faces = sorted(truth.label)
    labels = sorted(set(truth.label.values()))
    t = np.array([labels.index(truth.label[f]) for f in faces])
    named = np.array([-1 if owner[f] is None else owner[f] for f in faces])
    best = {
        s.face_ids[0]: (s.best.person_id, s.best.score)
        for s in result.items
        if s.person_id is None and s.best is not None and s.best.score is not None
    }
    line("everyone named (the user's merges and rejections)", t, named)
    for th in THRESHOLDS:
        pred = named.copy()
        for i, f in enumerate(faces):
            if pred[i] < 0 and f in best and best[f][1] >= th:
                pred[i] = best[f][0]
        line(
            f"... and faces in no person join a suggestion >= {th}",
            t,
            pred,
            f"  ({int((pred != named).sum())} faces)",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, help="NAME=CATALOG:ROOT")
    args = ap.parse_args()
    for spec in args.set:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        s = labelled_set(db, root)
        labels = cluster_embeddings(s.x, ClusterParams(), s.groups)
        print(f"{name}: {len(s.x)} faces, {len(s.idx)} scored, defaults")
        line("defaults", s.truth, labels[s.idx])
        lost_pairs(s.truth, labels[s.idx], s.names)
        oracles(s.x, labels, s.idx, s.truth)
        informed(db, root)


if __name__ == "__main__":
    main()
