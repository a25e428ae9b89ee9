"""The `name` queue as a pure loop: show a person, ask, apply the answer, next.

The human is a :class:`Prompter`: the terminal is one implementation (in the CLI), and
:class:`ScriptedPrompter` answers from a list in tests. The loop owns its database sessions and
commits every decision on its own, immediately, so quitting, Ctrl-C or a crash loses nothing.

Queue: unnamed, not-hidden people with at least ``min_faces`` faces, largest first (optionally a
given person first). Answers (see :data:`HELP`): a name (new: names the person; existing: merges
into that person after a confirmation), Enter (accept the suggestion, else skip), ``s`` skip,
``i`` ignore (hide), ``x 3 7 12`` reject those numbered faces, ``u`` undo, ``?`` help, ``q`` quit.

A suggestion is the named person whose faces are nearest to this person's faces (the median
distance over all pairs of this person's most typical faces and that person's most typical
faces), offered only when the two look as alike as their own photos do, the test `cluster` uses
to join two clusters: at least ``MERGE_SHARE`` of those pairs within the larger of the two
people's own ``OWN_PAIRS_PERCENTILE`` pair distances, capped at ``SAME_PERSON`` (two single
faces: ``PAIR_DISTANCE``); never a person that rejected any of these faces. One global distance
was not safe where faces are dense: with each labelled person of ../shared/lfw-dev split into a
named and an unnamed half (3 draws), a median under ``SAME_PERSON`` alone offered a wrong name
to 5.3 % of the people with no named half and 8.5 % of one-photo strangers; this test to 0 % and
0.6 %, while the halves got their own name 98.2 % of the time instead of 99.1 % (on
../shared/faces: 100 % both ways, no wrong suggestion).
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photocluster import thresholds
from photocluster.clustering import own_pairs
from photocluster.contact_sheet import (
    DEFAULT_COUNT,
    DEFAULT_TILE,
    ContactSheet,
    CropCache,
    build_contact_sheet,
    crop_requests,
    typical_faces,
)
from photocluster.db import Catalog, blobs_to_matrix
from photocluster.errors import PhotoclusterError
from photocluster.models import Face, Person, Rejection
from photocluster.naming import (
    find_person_by_name,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
    undo_last,
    validate_name,
)
from photocluster.people import list_people, resolve_person

SUGGEST_FACES = 32  # typical faces of the unnamed person compared with named people
INDEX_FACES = 64  # typical faces of each named person they are compared with

HELP = """\
  NAME       name this person (an existing name merges into that person, after asking)
  Enter      accept the suggestion, or skip when there is none
  s          skip this person for now
  i          ignore: hide this person (photocluster unhide PERSON brings it back)
  x 3 7 12   faces 3, 7 and 12 are not this person (ranges work: x 3-6)
  u          undo the last decision
  =NAME      a name that looks like a command (=s names someone "s")
  ?          this help
  q          quit (every decision so far is already saved)"""


# --- what the human sees and answers ------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    person_id: int
    name: str
    distance: float


@dataclass(frozen=True)
class QueueItem:
    """One person as shown to the human."""

    person_id: int
    position: int  # 1-based place in this session's queue
    total: int  # people in the queue when the session started
    faces: int
    photos: int
    sheet: ContactSheet
    suggestion: Suggestion | None


class Prompter(Protocol):
    """Where answers come from. ``ask`` raises EOFError when there are no more answers."""

    def show(self, item: QueueItem) -> None: ...

    def ask(self, prompt: str, names: Sequence[str]) -> str: ...

    def confirm(self, question: str) -> bool: ...

    def say(self, text: str) -> None: ...


class ScriptedPrompter:
    """Answers from a list, in order; records what was shown and said (for tests)."""

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = deque(answers)
        self.shown: list[QueueItem] = []
        self.said: list[str] = []
        self.questions: list[str] = []

    def show(self, item: QueueItem) -> None:
        self.shown.append(item)

    def ask(self, prompt: str, names: Sequence[str]) -> str:
        self.questions.append(prompt)
        if not self.answers:
            raise EOFError
        return self.answers.popleft()

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        if not self.answers:
            raise EOFError
        return self.answers.popleft().strip().lower() in ("", "y", "yes")

    def say(self, text: str) -> None:
        self.said.append(text)


# --- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str  # accept | skip | hide | reject | undo | help | quit | name
    numbers: tuple[int, ...] = ()
    name: str = ""


_COMMANDS = {"": "accept", "s": "skip", "i": "hide", "u": "undo", "?": "help", "q": "quit"}


def parse_answer(text: str) -> Answer:
    """What the human typed, as an :class:`Answer`; a malformed ``x`` is a PhotoclusterError."""
    raw = text.strip()
    if raw.startswith("="):
        return Answer("name", name=raw[1:])
    low = raw.lower()
    if low in _COMMANDS:
        return Answer(_COMMANDS[low])
    if low == "h" or low == "help":
        return Answer("help")
    if low == "x" or re.fullmatch(r"x[\s\d,\-]+", low):
        spec = low[1:].replace(",", " ").split()
        if not spec:
            raise PhotoclusterError("Say which faces are not this person, e.g. x 3 7 12")
        numbers: list[int] = []
        for part in spec:
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise PhotoclusterError(f"{part!r} is not a face number or range like 3-6")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo or hi - lo > 10_000:
                raise PhotoclusterError(f"{part!r} is not a usable range")
            numbers.extend(range(lo, hi + 1))
        return Answer("reject", numbers=tuple(dict.fromkeys(numbers)))
    return Answer("name", name=raw)


# --- queue and suggestions ------------------------------------------------------------------------


def load_queue(session: Session, *, min_faces: int = 1, start: str | None = None) -> list[int]:
    """Ids of unnamed, not-hidden people with at least ``min_faces`` faces, largest first."""
    people = [
        p.id
        for p in list_people(session, include_hidden=False)
        if p.name is None and p.faces >= max(1, min_faces)
    ]
    if start is not None:
        first = resolve_person(session, start)
        if first.name is not None:
            raise PhotoclusterError(
                f"Person {first.id} is already named {first.name!r}; "
                f"use `photocluster rename {first.id} NAME` to change it."
            )
        if first.hidden:
            raise PhotoclusterError(
                f"Person {first.id} is hidden; run `photocluster unhide {first.id}` first."
            )
        people = [first.id, *[p for p in people if p != first.id]]
    return people


class NamedIndex:
    """Faces of named, not-hidden people (up to ``INDEX_FACES`` most typical each)."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            select(Face.person_id, Person.name, Face.embedding)
            .join(Person, Person.id == Face.person_id)
            .where(Person.name.is_not(None), Person.hidden.is_(False))
            .order_by(Face.person_id, Face.id)
        ).all()
        self.names = {int(r.person_id): str(r.name) for r in rows}
        blobs: dict[int, list[bytes]] = {}
        for r in rows:
            blobs.setdefault(int(r.person_id), []).append(r.embedding)
        blocks: list[np.ndarray] = []
        people: list[int] = []
        self._own: dict[int, float] = {}  # own pair distances, measured when first needed
        for pid, person_blobs in blobs.items():
            x = blobs_to_matrix(person_blobs).astype(np.float64)
            if len(x) > INDEX_FACES:  # keep the most typical: bounded work per person
                order = np.argsort(np.linalg.norm(x - x.mean(axis=0), axis=1), kind="stable")
                x = x[order[:INDEX_FACES]]
            blocks.append(x)
            people.append(pid)
        self.people = np.array(people, dtype=np.int64)
        sizes = np.array([len(b) for b in blocks], dtype=np.int64)
        self.starts = np.r_[0, np.cumsum(sizes)[:-1]] if len(sizes) else sizes
        self.ends = self.starts + sizes
        self.x = np.vstack(blocks) if blocks else np.zeros((0, 128))
        self.sq = (self.x**2).sum(axis=1)

    def nearest(self, faces: np.ndarray, exclude: Collection[int] = ()) -> tuple[int, float] | None:
        """(person id, median face-to-face distance) of the nearest named person, if any.

        The median over all pairs (these faces x that person's faces) is a typical pair
        distance, so it compares with the face-pair threshold ``SAME_PERSON`` as calibrated
        (a nearest-face minimum would shrink as a person gains faces and invite strangers).
        """
        if len(self.people) == 0 or len(faces) == 0:
            return None
        u = faces.astype(np.float64)
        d2 = (u**2).sum(axis=1)[:, None] + self.sq[None, :] - 2.0 * (u @ self.x.T)
        dist = np.sqrt(np.maximum(d2, 0.0))
        best: tuple[int, float] | None = None
        for pid, lo, hi in zip(self.people.tolist(), self.starts, self.ends, strict=True):
            if pid in exclude:
                continue
            score = float(np.median(dist[:, lo:hi]))
            if best is None or score < best[1]:
                best = (pid, score)
        return best

    def faces_of(self, person_id: int) -> np.ndarray:
        """The (most typical) faces held for a named person."""
        k = int(np.flatnonzero(self.people == person_id)[0])
        return self.x[self.starts[k] : self.ends[k]]

    def own(self, session: Session, person_id: int) -> float:
        """How far apart a named person's own photos are (all of them, not only the typical
        ones held here): read once, when that person is first suggested."""
        if person_id not in self._own:
            blobs = session.scalars(
                select(Face.embedding).where(Face.person_id == person_id).order_by(Face.id)
            ).all()
            self._own[person_id] = _own_pairs(blobs_to_matrix(list(blobs)).astype(np.float64))
        return self._own[person_id]


def _own_pairs(x: np.ndarray) -> float:
    """How far apart a person's own photos are: the ``OWN_PAIRS_PERCENTILE`` of their pair
    distances, as the merge step measures it (on at most 100 faces); 0 for a single face."""
    rng = np.random.default_rng(0)
    return own_pairs(x, np.arange(len(x)), rng, thresholds.OWN_PAIRS_PERCENTILE)


def suggest(
    session: Session, person_id: int, index: NamedIndex, threshold: float | None = None
) -> Suggestion | None:
    """The named person this one most looks like, when the two look as alike as their own photos
    do: the merge step's test (:func:`photocluster.clustering.merge_alike_clusters`). At least
    ``MERGE_SHARE`` of the pairs across them (typical faces) must be within the larger of the
    two people's own ``OWN_PAIRS_PERCENTILE`` pair distances, capped at ``threshold``
    (``SAME_PERSON``); when neither has two faces, within ``PAIR_DISTANCE``."""
    cap = thresholds.SAME_PERSON if threshold is None else threshold
    rows = session.execute(
        select(Face.id, Face.embedding).where(Face.person_id == person_id).order_by(Face.id)
    ).all()
    if not rows:
        return None
    x = blobs_to_matrix([r.embedding for r in rows]).astype(np.float64)
    # the most typical faces, as the contact sheet shows them (contact_sheet.typical_faces)
    order = np.argsort(np.linalg.norm(x - x.mean(axis=0), axis=1), kind="stable")
    ranked = [int(rows[i].id) for i in order[:SUGGEST_FACES]]
    faces = x[order[:SUGGEST_FACES]]
    rejected_by = set(
        session.scalars(select(Rejection.person_id).where(Rejection.face_id.in_(ranked)))
    )
    best = index.nearest(faces, exclude=rejected_by | {person_id})
    if best is None:
        return None
    own = max(index.own(session, best[0]), _own_pairs(x))
    limit = min(cap, own if own > 0 else thresholds.PAIR_DISTANCE)
    cross = np.linalg.norm(faces[:, None, :] - index.faces_of(best[0])[None, :, :], axis=2)
    if (cross <= limit).mean() < thresholds.MERGE_SHARE:
        return None
    return Suggestion(best[0], index.names[best[0]], best[1])


# --- the loop -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamingOptions:
    min_faces: int = 1
    start: str | None = None  # a person id or name to show first
    count: int = DEFAULT_COUNT  # faces on a contact sheet
    tile: int = DEFAULT_TILE  # pixels per face on the sheet
    actor: str = "name"
    prefetch: bool = True  # cut the next person's crops while the human thinks


@dataclass
class NamingSummary:
    queued: int = 0
    shown: int = 0
    named: int = 0
    merged: int = 0
    hidden: int = 0
    skipped: int = 0
    rejected_faces: int = 0
    undone: int = 0
    quit: bool = False
    interrupted: bool = False
    decisions: list[int] = field(default_factory=list)


class _Prefetcher:
    """Warms the crop cache for one upcoming person on a background thread."""

    def __init__(self, cache: CropCache) -> None:
        self.cache = cache
        self._thread: threading.Thread | None = None

    def start(self, session: Session, person_id: int, count: int) -> None:
        self.wait()
        ids = [fid for fid, _d in typical_faces(session, person_id)[:count]]
        requests = crop_requests(session, ids)
        self._thread = threading.Thread(target=self.cache.warm, args=(requests,), daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _names(session: Session) -> list[str]:
    return sorted(
        session.scalars(select(Person.name).where(Person.name.is_not(None))), key=str.lower
    )


def run_naming(
    catalog: Catalog, prompter: Prompter, cache_dir: Path, options: NamingOptions | None = None
) -> NamingSummary:
    """Go through the queue with ``prompter`` until it is empty or the human quits."""
    options = options or NamingOptions()
    summary = NamingSummary()
    with catalog.session() as s:
        queue = deque(load_queue(s, min_faces=options.min_faces, start=options.start))
        names = _names(s)
        index = NamedIndex(s)
    summary.queued = total = len(queue)
    cache = CropCache(cache_dir, options.tile)
    prefetch = _Prefetcher(cache) if options.prefetch else None
    mine: dict[int, int] = {}  # decision id -> person it was made on, this session
    position = 0
    stale = False  # named people changed: rebuild the suggestion index
    try:
        while queue:
            pid = queue[0]
            with catalog.session() as s:
                person = s.get(Person, pid)
                faces = s.scalar(select(func.count()).where(Face.person_id == pid)) if person else 0
                if person is None or person.name or person.hidden or not faces:
                    queue.popleft()  # merged, named or emptied since the queue was built
                    continue
                if stale:
                    index, names, stale = NamedIndex(s), _names(s), False
                sheet = build_contact_sheet(
                    s, pid, cache_dir, count=options.count, tile=options.tile, cache=cache
                )
                photos = s.scalar(
                    select(func.count(func.distinct(Face.photo_id))).where(Face.person_id == pid)
                )
                suggestion = suggest(s, pid, index)
                if prefetch is not None and len(queue) > 1:
                    prefetch.start(s, queue[1], options.count)
            position = max(position, total - len(queue) + 1)
            item = QueueItem(pid, position, total, faces or 0, photos or 0, sheet, suggestion)
            prompter.show(item)
            summary.shown += 1
            outcome = _answer_loop(catalog, prompter, item, names, options, summary, mine)
            if outcome == "quit":
                summary.quit = True
                break
            if outcome == "changed":
                stale = True
            if outcome == "again":
                continue
            if outcome.startswith("undo:"):
                stale = True
                back = int(outcome.split(":", 1)[1])
                if back and back != pid:
                    queue.appendleft(back)
                continue
            queue.popleft()
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if prefetch is not None:
            prefetch.wait()
    return summary


def _answer_loop(
    catalog: Catalog,
    prompter: Prompter,
    item: QueueItem,
    names: Sequence[str],
    options: NamingOptions,
    summary: NamingSummary,
    mine: dict[int, int],
) -> str:
    """Ask until an answer moves on. Returns next | again | changed | quit | undo:<person>."""
    pid = item.person_id
    hint = f"accept {item.suggestion.name}" if item.suggestion else "skip"
    prompt = f"[{item.position}/{item.total}] Name (Enter = {hint}, ? = help): "
    while True:
        try:
            raw = prompter.ask(prompt, names)
        except EOFError:
            return "quit"
        try:
            answer = parse_answer(raw)
        except PhotoclusterError as exc:
            prompter.say(f"Error: {exc}")
            continue
        if answer.kind == "help":
            prompter.say(HELP)
            continue
        if answer.kind == "quit":
            return "quit"
        if answer.kind == "skip" or (answer.kind == "accept" and item.suggestion is None):
            summary.skipped += 1
            return "next"
        try:
            if answer.kind == "undo":
                with catalog.session() as s:
                    undone = undo_last(s)
                summary.undone += 1
                prompter.say(f"Undone: {undone.summary}")
                back = mine.pop(undone.id, 0)
                return f"undo:{back}"
            if answer.kind == "accept":
                assert item.suggestion is not None
                with catalog.session() as s:
                    d = merge_people(s, [pid], item.suggestion.person_id, actor=options.actor)
                summary.merged += 1
                prompter.say(f"Merged into {item.suggestion.name}.")
            elif answer.kind == "hide":
                with catalog.session() as s:
                    d = set_hidden(s, pid, True, actor=options.actor)
                summary.hidden += 1
                prompter.say(f"Hidden person {pid}.")
            elif answer.kind == "reject":
                try:
                    face_ids = item.sheet.face_ids(answer.numbers)
                except ValueError as exc:
                    prompter.say(f"Error: {exc}")
                    continue
                with catalog.session() as s:
                    d = reject_faces(s, face_ids, person=pid, actor=options.actor)
                mine[d.id] = pid
                summary.decisions.append(d.id)
                summary.rejected_faces += len(face_ids)
                prompter.say(f"Removed {len(face_ids)} face(s) from this person.")
                return "again"
            else:
                name = validate_name(answer.name)
                with catalog.session() as s:
                    existing = find_person_by_name(s, name)
                    target = (existing.id, existing.name) if existing else None
                    n = (
                        s.scalar(select(func.count()).where(Face.person_id == existing.id))
                        if existing
                        else 0
                    )
                if target is not None:
                    question = (
                        f"{target[1]} already exists ({n} faces). Merge this person into them?"
                    )
                    try:
                        if not prompter.confirm(question):
                            continue
                    except EOFError:
                        return "quit"
                    with catalog.session() as s:
                        d = merge_people(s, [pid], target[0], actor=options.actor)
                    summary.merged += 1
                    prompter.say(f"Merged into {target[1]}.")
                else:
                    with catalog.session() as s:
                        d = rename_person(s, pid, name, actor=options.actor)
                    summary.named += 1
                    prompter.say(f"Named {name}.")
        except PhotoclusterError as exc:
            prompter.say(f"Error: {exc}")
            continue
        mine[d.id] = pid
        summary.decisions.append(d.id)
        return "changed"


__all__ = [
    "HELP",
    "Answer",
    "NamedIndex",
    "NamingOptions",
    "NamingSummary",
    "Prompter",
    "QueueItem",
    "ScriptedPrompter",
    "Suggestion",
    "load_queue",
    "parse_answer",
    "run_naming",
    "suggest",
]
