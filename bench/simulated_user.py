"""A simulated user names a labelled library: how many actions until everyone is named right?

On a copy of a scanned labelled catalog (``--set NAME=CATALOG:ROOT``, e.g. the scans of
../shared/faces and ../shared/lfw-dev; the catalog itself is never changed), an oracle does what
a person does, through the same core calls the commands make (actor "simulated user"):

1. Names the largest unnamed person after the label most of its labelled faces carry (``rename``;
   ``merge`` into that name when it is taken) and rejects the faces in it that are someone else:
   one answer (``x 3 7``) per page of the person's sheet (``DEFAULT_COUNT`` faces) that may show
   one, never more than one per face (the faces rejected are counted beside it; rounds before
   this one counted one action per face). A person whose majority is a one-photo stranger, or
   who has no labelled face, is skipped (no action: the user looks and moves on). A round is
   one `name` session: every unnamed person in the queue (``--batch`` caps how many), then
   step 2.
2. With suggestions on: answers `name`'s sheets of suggestions (faces in no person whose best
   named candidate scores ``--min-score``, default ``MAYBE``, or more; 24 to a sheet, each
   captioned with its person; the likely ones, ``LIKELY`` or more, on sheets of their own): one
   action refuses the wrong ones (``x 3 7``), one accepts the right ones (Enter on a likely
   sheet, ``y 3 7`` on a sheet of maybes). With learning on, the projection is relearned first
   when decisions changed enough (:func:`people.projection.ensure_projection`), as `name` does.
   Small unnamed people are named or merged in step 1, as `name` queues them. There `name`
   offers a small person (up to ``SMALL_PERSON_FACES`` faces) a name as `suggestions` scores
   them (``decisions.suggest.offer``), bigger ones by the merge step's test: accepting a right
   offer (Enter) is one action, as typing the name is, so the count is the same; with
   suggestions on, each small person's offer is checked against what the oracle did (right:
   the name it merged into; wrong: any other name, or any name for a person it named anew or
   a stranger; a person without a labelled face is not counted), the scored offer beside the
   merge step's test alone (as before the scores).
3. Re-clusters incrementally between rounds (``cluster_catalog``), as after a scan.
4. When no unnamed person is left to name, assigns by hand (one action per face) every labelled
   face of a person with two or more photos that is not in its named person. Beside that count
   it prints what the same faces take as `name` shows the faces in no person (grouped by their
   suggested or nearest person, a sheet of ``DEFAULT_COUNT`` at a time): one answer
   (``3 7 = NAME``) per sheet and name on it.

The labelled face of a photo is the one most like its label's one-face photos (as `eval`
scores); other faces in a photo have no known identity and count for nothing. Prints, per set and
mode: actions per person (people = labels with 2+ photos), actions by kind, the share of those
people's faces named without the user touching them (never passed to assign or to a suggestion
answer), faces left wrongly named (labelled faces in a named person of another name, of anyone,
strangers included, as a share of the labelled faces in named people), and how calibrated the
suggestion scores were (share right per score band, over every scored suggestion with a known
answer). Asserts nothing.

    uv run python bench/simulated_user.py \\
        --set faces=/work/cat/faces.sqlite3:../shared/faces \\
        --set lfw=/work/cat/lfw.sqlite3:../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import labelled_set

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person
from photocluster.decisions.contact_sheet import DEFAULT_COUNT
from photocluster.decisions.log import (
    answer_suggestions,
    assign_faces,
    merge_people,
    reject_faces,
    rename_person,
)
from photocluster.decisions.suggest import NamedIndex, offer
from photocluster.decisions.suggest import suggest as merge_test
from photocluster.people.assign import ClusterOptions, cluster_catalog
from photocluster.people.projection import ensure_projection
from photocluster.people.suggestions import (
    LIKELY,
    MAYBE,
    SMALL_PERSON_FACES,
    Suggester,
    review_with_suggestions,
    suggest,
    suggested_group,
)
from photocluster.people.unassigned import review_unassigned

ACTOR = "simulated user"
MIN_SCORE = MAYBE  # suggestions the oracle answers (--min-score)
BANDS = [(0.5, 0.7), (0.7, 0.85), (0.85, 0.95), (0.95, 1.01)]


@dataclass
class Truth:
    label: dict[int, str]  # face id -> label, the labelled face of each photo only
    people: set[str]  # labels with 2+ labelled photos


def truth_of(db: str, root: str) -> Truth:
    """The label of each scored face (as `eval` scores: ``synth_faces.labelled_set``)."""
    lab = labelled_set(db, root)
    assert lab.face_ids is not None
    label = {
        int(lab.face_ids[r]): lab.names[t]
        for r, t in zip(lab.idx.tolist(), lab.truth.tolist(), strict=True)
    }
    counts = Counter(label.values())
    return Truth(label, {n for n, c in counts.items() if c >= 2})


@dataclass
class Run:
    actions: Counter[str] = field(default_factory=Counter)
    rejected: int = 0  # faces rejected in step 1 (answers are in actions["reject"])
    touched: set[int] = field(default_factory=set)
    skipped: set[int] = field(default_factory=set)  # unnamed people looked at and left
    answered: set[tuple[tuple[int, ...], int]] = field(default_factory=set)
    scored: list[tuple[float, bool]] = field(default_factory=list)  # (score, right)
    rounds: int = 0
    learn_notes: list[str] = field(default_factory=list)
    # the answers the faces assigned by hand take as `name` groups them (see grouped_answers)
    grouped: int = 0
    # what `name` offered the small people of step 1: (way, right | wrong | missed) -> count
    offers: Counter[tuple[str, str]] = field(default_factory=Counter)


def majority(faces: list[int], truth: Truth) -> tuple[str | None, list[int]]:
    """The label most of ``faces``' labelled faces carry, and the labelled faces that are not it."""
    labels = [(f, truth.label[f]) for f in faces if f in truth.label]
    if not labels:
        return None, []
    top, _n = Counter(lab for _f, lab in labels).most_common(1)[0]
    return top, [f for f, lab in labels if lab != top]


def people_faces(catalog: Catalog) -> tuple[dict[int, list[int]], dict[int, str], set[int]]:
    with catalog.session() as s:
        faces: dict[int, list[int]] = defaultdict(list)
        for fid, pid in s.execute(
            select(Face.id, Face.person_id).where(Face.person_id.is_not(None))
        ):
            faces[int(pid)].append(int(fid))
        names = {int(p.id): p.name for p in s.execute(select(Person.id, Person.name)) if p.name}
        hidden = {int(p) for p in s.scalars(select(Person.id).where(Person.hidden.is_(True)))}
    return faces, names, hidden


class Offers:
    """What `name` would offer each small unnamed person: scored (:func:`offer`, renewed after
    decisions as `name` renews it) and by the merge step's test alone."""

    def __init__(self, learn: bool) -> None:
        self.learn = learn
        self.scorer: Suggester | None = None
        self.index: NamedIndex | None = None
        self.stale = True

    def of(self, catalog: Catalog, pid: int) -> dict[str, str | None]:
        with catalog.session() as s:
            if self.scorer is None:
                self.scorer = Suggester(s, learned=self.learn)
            elif self.stale:
                self.scorer.renew(s)
            if self.index is None or self.stale:
                self.index = NamedIndex(s)
            self.stale = False
            found = {
                "scored": offer(s, pid, self.index, self.scorer),
                "merge test": merge_test(s, pid, self.index),
            }
        return {way: o.name if o is not None else None for way, o in found.items()}


def count_offers(run: Run, offered: dict[str, str | None], merged_into: str | None) -> None:
    """Each way's offer against the oracle's answer: the name it merged into, else nobody."""
    for way, name in offered.items():
        if name is not None:
            run.offers[(way, "right" if name == merged_into else "wrong")] += 1
        elif merged_into is not None:
            run.offers[(way, "missed")] += 1


def name_round(
    catalog: Catalog, truth: Truth, run: Run, batch: int, offers: Offers | None = None
) -> int:
    """Name (or merge) up to ``batch`` of the largest unnamed people; how many were named.
    ``offers``: check what `name` offers each small person (see the module docstring)."""
    done = 0
    while done < batch:
        faces, names, hidden = people_faces(catalog)
        todo = sorted(
            (p for p in faces if p not in names and p not in hidden and p not in run.skipped),
            key=lambda p: (-len(faces[p]), p),
        )
        if not todo:
            break
        pid = todo[0]
        label, wrong = majority(faces[pid], truth)
        by_name = {n: p for p, n in names.items()}
        if offers is not None and label is not None and len(faces[pid]) <= SMALL_PERSON_FACES:
            named_label = label if label in truth.people and label in by_name else None
            count_offers(run, offers.of(catalog, pid), named_label)
        if label is None or label not in truth.people:
            run.skipped.add(pid)
            continue
        with catalog.session() as s:
            if wrong:
                reject_faces(s, wrong, actor=ACTOR, person=pid)
                pages = -(-len(faces[pid]) // DEFAULT_COUNT)  # `name` shows a sheet a page
                run.actions["reject"] += min(len(wrong), pages)
                run.rejected += len(wrong)
                run.touched.update(wrong)
            if label in by_name:
                merge_people(s, [pid], by_name[label], actor=ACTOR)
                run.actions["merge"] += 1
            else:
                rename_person(s, pid, label, actor=ACTOR)
                run.actions["name"] += 1
            s.commit()
        if offers is not None:
            offers.stale = True
        done += 1
    return done


def answer_sheets(catalog: Catalog, truth: Truth, run: Run, learn: bool) -> int:
    """Answer the faces `name` offers on its sheet of suggestions (every face in no person
    whose best named candidate scores ``--min-score`` or more, most likely first, DEFAULT_COUNT
    to a sheet): per sheet, one action refuses the wrong ones (``x 3 7``), one accepts the rest
    (Enter). How many suggestions were answered."""
    with catalog.session() as s:
        if learn:
            proj = ensure_projection(s)
            s.commit()
            run.learn_notes.append(
                "raw kept" if proj is None else f"{proj.method} (gain {proj.gain:+.3f})"
            )
        result = suggest(s, learned=learn)
    offered: list[tuple[int, int, bool]] = []  # (face, person, right)
    scores: dict[int, float] = {}
    for item in result.items:
        best = item.best
        if best is None or best.score is None or item.person_id is not None:
            continue
        label, _wrong = majority(list(item.face_ids), truth)
        right = label is not None and label == best.name
        if label is not None:
            run.scored.append((best.score, right))
        face = item.face_ids[0]
        if best.score < MIN_SCORE or (face, best.person_id) in run.answered:
            continue
        run.answered.add((face, best.person_id))
        # a face without a label is not somebody named here: the oracle refuses it
        offered.append((face, best.person_id, right))
        scores[face] = best.score
    likely = [o for o in offered if scores[o[0]] >= LIKELY]
    maybe = [o for o in offered if scores[o[0]] < LIKELY]
    sheets = [
        part[start : start + DEFAULT_COUNT]
        for part in (likely, maybe)
        for start in range(0, len(part), DEFAULT_COUNT)
    ]
    for sheet in sheets:
        no = {f: p for f, p, right in sheet if not right}
        yes = {f: p for f, p, right in sheet if right}
        with catalog.session() as s:
            if no:
                answer_suggestions(s, no, accept=False, actor=ACTOR)
                run.actions["refuse"] += 1
            if yes:
                answer_suggestions(s, yes, accept=True, actor=ACTOR)
                run.actions["accept"] += 1
            s.commit()
        run.touched.update(f for f, _p, _r in sheet)
    return len(offered)


def grouped_answers(catalog: Catalog, truth: Truth, left: set[int], suggestions: bool) -> int:
    """How many answers the faces ``left`` take when answered as `name` shows the faces in no
    person: in groups (by their suggested person with suggestions on, else by their nearest
    person), DEFAULT_COUNT to a sheet, one answer (``3 7 = NAME``) per sheet and name on it;
    a face in no group (in a wrong person) one answer of its own."""
    with catalog.session() as s:
        review = review_with_suggestions(s) if suggestions else review_unassigned(s)
    if suggestions:
        review = suggested_group(review)
    answers, seen = 0, set()
    for group in review.groups:
        ids = [f.face_id for f in group.faces]
        for start in range(0, len(ids), DEFAULT_COUNT):
            page = [f for f in ids[start : start + DEFAULT_COUNT] if f in left]
            answers += len({truth.label[f] for f in page})
            seen.update(page)
    return answers + len(left - seen)


@contextmanager
def catalog_copy(db: str, root: str) -> Iterator[tuple[Catalog, Truth]]:
    """A copy of catalog ``db`` (in a temporary folder, gone afterwards), open, and the labels
    of ``root``: the catalog itself is never changed."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, "catalog.sqlite3")
        shutil.copy(db, copy)
        truth = truth_of(copy, root)
        catalog = open_catalog(copy)
        try:
            yield catalog, truth
        finally:
            catalog.close()


@contextmanager
def everyone_named(db: str, root: str) -> Iterator[tuple[Catalog, Truth]]:
    """A copy of catalog ``db`` (:func:`catalog_copy`) with every unnamed person named after
    its label as :func:`name_round` names them, and the labels."""
    with catalog_copy(db, root) as (catalog, truth):
        while name_round(catalog, truth, Run(), 1_000_000):
            pass
        yield catalog, truth


def finish_by_hand(catalog: Catalog, truth: Truth, run: Run, suggestions: bool) -> None:
    """Assign every labelled face of a 2+-photo person that is not in its named person (one
    action per face; what the same faces take as `name` groups them is counted beside it)."""
    faces, names, _hidden = people_faces(catalog)
    where = {f: p for p, fs in faces.items() for f in fs}
    by_label: dict[str, list[int]] = defaultdict(list)
    for fid, label in truth.label.items():
        if label in truth.people and names.get(where.get(fid, -1)) != label:
            by_label[label].append(fid)
    left = {f for fids in by_label.values() for f in fids}
    run.grouped = grouped_answers(catalog, truth, left, suggestions)
    for label, fids in sorted(by_label.items()):
        with catalog.session() as s:
            assign_faces(s, fids, label, actor=ACTOR, create=True)
            s.commit()
        run.actions["assign"] += len(fids)
        run.touched.update(fids)


def simulate(db: str, root: str, *, suggestions: bool, learn: bool, batch: int) -> None:
    with catalog_copy(db, root) as (catalog, truth):
        run = Run()
        t0 = time.perf_counter()
        while True:
            run.rounds += 1
            offers = Offers(learn) if suggestions else None  # one `name` session a round
            named = name_round(catalog, truth, run, batch, offers)
            answered = answer_sheets(catalog, truth, run, learn) if suggestions else 0
            cluster_catalog(catalog, ClusterOptions())
            if not named and not answered:
                break
        finish_by_hand(catalog, truth, run, suggestions)
        report(catalog, truth, run, time.perf_counter() - t0)


def report(catalog: Catalog, truth: Truth, run: Run, seconds: float) -> None:
    faces, names, _hidden = people_faces(catalog)
    where = {f: p for p, fs in faces.items() for f in fs}
    people = len({lab for lab in truth.label.values() if lab in truth.people})
    theirs = [f for f, lab in truth.label.items() if lab in truth.people]
    untouched = sum(
        1 for f in theirs if f not in run.touched and names.get(where.get(f, -1)) == truth.label[f]
    )
    in_named = [f for f in truth.label if where.get(f, -1) in names]
    wrong = sum(1 for f in in_named if names[where[f]] != truth.label[f])
    total = sum(run.actions.values())
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.actions.items()))
    print(
        f"  actions per person {total / max(1, people):.2f} ({total} for {people} people; "
        f"{kinds}); rounds {run.rounds}; {seconds:.0f} s"
    )
    if run.rejected:
        per_face = total - run.actions["reject"] + run.rejected
        print(
            f"  {run.rejected} faces rejected in {run.actions['reject']} answers; counting one "
            f"action per face rejected: {per_face / max(1, people):.2f} per person"
        )
    if run.actions["assign"]:
        grouped = total - run.actions["assign"] + run.grouped
        print(
            f"  as `name` groups the faces left (one answer per sheet and name): "
            f"{grouped / max(1, people):.2f} per person ({run.grouped} answers for the "
            f"{run.actions['assign']} faces assigned one by one above)"
        )
    print(
        f"  named without being touched {untouched / max(1, len(theirs)):.1%} of "
        f"{len(theirs)} faces; "
        f"left wrongly named {wrong} of {len(in_named)} ({wrong / max(1, len(in_named)):.2%})"
    )
    if run.scored:
        cells = []
        for lo, hi in BANDS:
            band = [r for sc, r in run.scored if lo <= sc < hi]
            if band:
                cells.append(
                    f"[{lo:.2f},{min(hi, 1.0):.2f}) {np.mean(band):.0%} right of {len(band)}"
                )
        low = [r for sc, r in run.scored if sc < LIKELY]
        print(
            f"  suggestion scores: {'; '.join(cells)}; below {LIKELY}: "
            f"{np.mean(low) if low else 0:.0%} right of {len(low)}"
        )
    if run.offers:
        ways = ("scored", "merge test")
        cells = "; ".join(
            f"{way} {' / '.join(str(run.offers[(way, k)]) for k in ('right', 'wrong', 'missed'))}"
            for way in ways
        )
        print(
            f"  small people's offers in step 1 (up to {SMALL_PERSON_FACES} faces), right / "
            f"wrong / none where they merged: {cells}"
        )
    if run.learn_notes:
        print(f"  learning: {run.learn_notes[-1]} (last of {len(run.learn_notes)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", required=True, help="NAME=CATALOG:ROOT")
    ap.add_argument("--mode", choices=["off", "suggestions", "learn", "all"], default="all")
    ap.add_argument("--batch", type=int, default=1_000_000, help="people named per round")
    ap.add_argument("--min-score", type=float, default=MAYBE, help="suggestions answered")
    args = ap.parse_args()
    global MIN_SCORE
    MIN_SCORE = args.min_score
    modes = {
        "off": [("off (peers: no suggestions, no learning)", False, False)],
        "suggestions": [("suggestions, raw embedding", True, False)],
        "learn": [("suggestions + learned projection", True, True)],
    }
    chosen = (
        modes["off"] + modes["suggestions"] + modes["learn"]
        if args.mode == "all"
        else modes[args.mode]
    )
    for spec in args.set:
        name, rest = spec.split("=", 1)
        db, root = rest.split(":", 1)
        for title, sugg, learn in chosen:
            print(f"{name}: {title}", flush=True)
            simulate(db, root, suggestions=sugg, learn=learn, batch=args.batch)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
