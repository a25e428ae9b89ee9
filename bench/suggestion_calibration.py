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

``--part-way K [K ...]``: instead, a user part-way through naming: K people chosen at random
(``--draws`` draws per K, seeds 0, 1, ...) are named after their label (the unnamed person most
of whose labelled faces carry it; the faces in it that are someone else rejected), nobody else,
and every labelled face in no person is asked about as above; per K and over all, the same
bands. Where only some people are named, the faces in no person are mostly the others'.

    uv run python bench/suggestion_calibration.py \\
        --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev
    uv run python bench/suggestion_calibration.py \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev --part-way 10 20 40 60 --draws 6
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from sqlalchemy import select, update

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from simulated_user import Truth, catalog_copy, everyone_named, majority, people_faces

from photocluster.catalog.models import Face, Person
from photocluster.decisions.log import reject_faces, rename_person
from photocluster.people.suggestions import Suggestions, suggest

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
    rows = [(sc, ok, face in back) for sc, ok, face in answers(result, truth)]
    for title, pick in (("faces sent back", True), ("every labelled face in no person", None)):
        chosen = [(sc, ok) for sc, ok, sent in rows if pick is None or sent == pick]
        print(f"  {title} ({len(chosen)}): {bands(chosen)}")


def answers(result: Suggestions, truth: Truth) -> list[tuple[float, bool, int]]:
    """(score, right, face) of each scored suggestion for a labelled face in no person."""
    rows = []
    for item in result.items:
        best = item.best
        if best is None or best.score is None or item.person_id is not None:
            continue
        label, _wrong = majority(list(item.face_ids), truth)
        if label is None:
            continue
        rows.append((best.score, label == best.name, item.face_ids[0]))
    return rows


def bands(chosen: list[tuple[float, bool]]) -> str:
    cells = []
    for lo, hi in BANDS:
        band = [ok for sc, ok in chosen if lo <= sc < hi]
        if band:
            cells.append(f"[{lo:.2f},{min(hi, 1.0):.2f}) {np.mean(band):.0%} of {len(band)}")
    return "; ".join(cells)


def part_way(db: str, root: str, k: int, seed: int) -> list[tuple[float, bool]]:
    """Scores and right/wrong with ``k`` random people named (see the module docstring)."""
    with catalog_copy(db, root) as (catalog, truth):
        faces, _names, _hidden = people_faces(catalog)
        order = sorted(faces)
        np.random.default_rng(seed).shuffle(order)
        done: set[str] = set()
        with catalog.session() as s:
            for pid in order:
                if len(done) >= k:
                    break
                label, wrong = majority(faces[pid], truth)
                if label is None or label not in truth.people or label in done:
                    continue
                if wrong:
                    reject_faces(s, wrong, actor="calibration", person=pid)
                rename_person(s, pid, label, actor="calibration")
                done.add(label)
            s.commit()
            result = suggest(s)
    return [(sc, ok) for sc, ok, _face in answers(result, truth)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, help="NAME=CATALOG:ROOT")
    ap.add_argument("--holdout", type=float, default=0.3, help="share of named faces sent back")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part-way", type=int, nargs="+", metavar="K", help="K people named")
    ap.add_argument("--draws", type=int, default=6, help="random draws per K (--part-way)")
    args = ap.parse_args()
    for spec in args.set:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        if args.part_way:
            every: list[tuple[float, bool]] = []
            for k in args.part_way:
                got = [a for seed in range(args.draws) for a in part_way(db, root, k, seed)]
                every += got
                print(f"{name}: {k} people named at random ({args.draws} draws): {bands(got)}")
            print(f"{name}: all of the above: {bands(every)}", flush=True)
            continue
        print(f"{name}: {args.holdout:.0%} of named faces sent back", flush=True)
        calibrate(db, root, args.holdout, args.seed)


if __name__ == "__main__":
    main()
