"""How right are suggestion scores? Name everyone, send a share of each person's faces back to
no person, and see how often each score band's suggestions are right.

On a copy of a scanned labelled catalog (``--set NAME=CATALOG:ROOT``; the catalog itself is never
changed): every unnamed person is named after the label most of its labelled faces carry (as
``simulated_user.py`` does, rejecting the faces that are someone else), then ``--holdout`` of each
named person's faces (random, fixed by ``--seed``) leave their person (unconfirmed, in no
person, no rejection), as if clustering had left them out. Every labelled face in no person is
then a question with a known answer: its best suggestion is right when the face's label is that
person's name (a one-photo stranger's never is). Prints, per score band, how many suggestions
and the share right, for the faces sent back and for all faces in no person (the strangers and
the faces clustering left out as well). Asserts nothing.

    uv run python bench/suggestion_calibration.py \\
        --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from sqlalchemy import select, update

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from simulated_user import everyone_named, majority

from photocluster.catalog.models import Face, Person
from photocluster.people.suggestions import suggest

BANDS = [(0.0, 0.1), (0.1, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.01)]


def calibrate(db: str, root: str, holdout: float, seed: int) -> None:
    with everyone_named(db, root) as (catalog, truth):
        rng = np.random.default_rng(seed)
        with catalog.session() as s:
            named = s.execute(
                select(Face.id)
                .join(Person, Person.id == Face.person_id)
                .where(Person.name.is_not(None))
            ).scalars()
            ids = np.array(sorted(named), dtype=np.int64)
            back = set(rng.choice(ids, int(holdout * len(ids)), replace=False).tolist())
            for chunk in np.array_split(np.array(sorted(back)), max(1, len(back) // 500)):
                s.execute(
                    update(Face)
                    .where(Face.id.in_(chunk.tolist()))
                    .values(person_id=None, confirmed=False)
                )
            s.commit()
            result = suggest(s)
    rows = []
    for item in result.items:
        best = item.best
        if best is None or best.score is None or item.person_id is not None:
            continue
        label, _wrong = majority(list(item.face_ids), truth)
        if label is None:
            continue
        rows.append((best.score, label == best.name, item.face_ids[0] in back))
    for title, pick in (("faces sent back", True), ("every labelled face in no person", None)):
        chosen = [(sc, ok) for sc, ok, sent in rows if pick is None or sent == pick]
        cells = []
        for lo, hi in BANDS:
            band = [ok for sc, ok in chosen if lo <= sc < hi]
            if band:
                cells.append(f"[{lo:.2f},{min(hi, 1.0):.2f}) {np.mean(band):.0%} of {len(band)}")
        print(f"  {title} ({len(chosen)}): " + "; ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, help="NAME=CATALOG:ROOT")
    ap.add_argument("--holdout", type=float, default=0.3, help="share of named faces sent back")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for spec in args.set:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        print(f"{name}: {args.holdout:.0%} of named faces sent back", flush=True)
        calibrate(db, root, args.holdout, args.seed)


if __name__ == "__main__":
    main()
