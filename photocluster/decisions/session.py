"""The `name` queue as a pure loop: show a person, ask, apply the answer, next.

The human is a :class:`Prompter`: the terminal is one implementation (in the CLI), and
:class:`ScriptedPrompter` answers from a list in tests. The loop owns its database sessions and
commits every decision on its own, immediately, so quitting, Ctrl-C or a crash loses nothing.

Queue: unnamed, not-hidden people with at least ``min_faces`` faces, largest first (optionally a
given person first); then the faces in no person (:mod:`photocluster.people.unassigned`: one-photo
guests, rejected and detached faces), grouped by the person each most looks like with `find`'s
evidence, the groups offered as that person first and the faces probably nobody you named last.
Answers (see :data:`HELP` and :data:`FACES_HELP`): a name (new: names the person, or makes the
faces a new person; existing: merges into that person, or puts the faces there, after a
confirmation that defaults to no), ``3 7 = NAME`` (only those faces are NAME), Enter (accept the
suggestion, else skip), ``s`` skip, ``i`` ignore (hide), ``x 3 7 12`` those faces are not this
person, ``+``/``-`` the next/previous page of faces, ``u`` undo, ``?`` help, ``q`` quit. Names
are matched as :mod:`photocluster.catalog.names` says: "lisa  kudrow" is Lisa Kudrow.

Contact sheets keep their numbers while their subject is shown (:class:`SheetNumbers`), so a
number means the face it was printed on even in a viewer still showing an older drawing.

A suggestion is the named person whose faces are nearest to this person's faces (the median
distance over all pairs of this person's most typical faces and that person's most typical
faces), offered only when the two look as alike as their own photos do, the test `cluster` uses
to join two clusters, with the looser person's limit (the user confirms a suggestion; `cluster`,
deciding alone, takes the tighter one's): at least ``MERGE_SHARE`` of those pairs within the
larger of the two people's own ``OWN_PAIRS_PERCENTILE`` pair distances, capped at
``SAME_PERSON`` (two single faces: ``PAIR_DISTANCE``); never a person that rejected any of
these faces. One global distance was not safe where faces are dense: with each labelled person
of ../shared/lfw-dev split into a named and an unnamed half (3 draws), a median under
``SAME_PERSON`` alone offered a wrong name to 5.3 % of the people with no named half and 8.5 %
of one-photo strangers; this test to 0 % and 0.6 %, while the halves got their own name 98.2 %
of the time instead of 99.1 % (on ../shared/faces: 100 % both ways, no wrong suggestion).

A small person (up to ``SMALL_PERSON_FACES`` faces) is offered as :mod:`people.suggestions`
scores them instead (:func:`suggest.offer`): their best named candidate with the chance it is
them, from ``MAYBE``; below it nobody. Only with too few names to score does the test above
decide for them too. The scoring (:class:`Suggester`) is made at the first small person shown
and renewed after decisions, not per person.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum, auto
from pathlib import Path

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person, Photo, Rejection
from photocluster.decisions.contact_sheet import (
    DEFAULT_COUNT,
    DEFAULT_TILE,
    ContactSheet,
    CropCache,
    SheetNumbers,
    build_contact_sheet,
    build_faces_sheet,
    crop_requests,
    first_page_faces,
    typical_faces,
)
from photocluster.decisions.log import (
    answer_suggestions,
    assign_faces,
    find_person_by_name,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
    undo_last,
    validate_name,
)
from photocluster.decisions.prompter import (
    FACES_HELP,
    HELP,
    Answer,
    AnswerKind,
    FacesItem,
    Prompter,
    QueueItem,
    ScriptedPrompter,
    Suggestion,
    parse_answer,
)
from photocluster.decisions.suggest import NamedIndex, offer, suggest
from photocluster.errors import PhotoclusterError
from photocluster.index.store import FaceIndex, sync_index
from photocluster.people.projection import ensure_projection
from photocluster.people.queries import list_people, resolve_person
from photocluster.people.suggestions import (
    LIKELY,
    SMALL_PERSON_FACES,
    Suggester,
    review_with_suggestions,
    suggested_group,
)
from photocluster.people.unassigned import FaceGroup, unclustered_faces

# --- what the human sees and answers ------------------------------------------------------------


# --- answers ------------------------------------------------------------------------------------


class Step(Enum):
    """Where the queue goes after an answer."""

    NEXT = auto()  # this item is done: on to the next
    AGAIN = auto()  # show this item again (a page turned, faces removed)
    CHANGED = auto()  # a decision changed who is named: on to the next, suggestions renewed
    CHANGED_AGAIN = auto()  # a decision; show what is left of this item, suggestions renewed
    UNDONE = auto()  # the last decision was undone: go back to what it was about
    QUIT = auto()


@dataclass(frozen=True)
class Outcome:
    step: Step
    # UNDONE: what the undone decision was about: ("person", id), ("faces", 0), or ("other", 0)
    # for a decision of another session
    back: tuple[str, int] = ("other", 0)


NEXT, AGAIN, CHANGED = Outcome(Step.NEXT), Outcome(Step.AGAIN), Outcome(Step.CHANGED)
CHANGED_AGAIN, QUIT = Outcome(Step.CHANGED_AGAIN), Outcome(Step.QUIT)


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


# --- the loop -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamingOptions:
    min_faces: int = 1
    start: str | None = None  # a person id or name to show first
    count: int = DEFAULT_COUNT  # faces on a contact sheet
    tile: int = DEFAULT_TILE  # pixels per face on the sheet
    actor: str = "name"
    prefetch: bool = True  # cut the next person's crops while the human thinks
    unassigned: bool = True  # after the people, the faces in no person


@dataclass(frozen=True)
class QueueStatus:
    """What the catalog holds for naming (people without faces are not people: not counted)."""

    photos: int
    faces: int
    unclustered_faces: int  # faces no clustering has seen yet
    people: int  # people with faces, hidden or not
    named: int  # of them, named
    hidden: int  # of them, hidden
    to_name: int  # unnamed, not hidden, with at least ``min_faces`` faces: the queue
    below_min_faces: int  # unnamed, not hidden, with fewer faces than that
    unassigned_faces: int  # faces in no person that a clustering has seen


def queue_status(session: Session, min_faces: int = 1) -> QueueStatus:
    """Counts that say why a queue is what it is (empty catalog, not clustered, all named…)."""
    people = [p for p in list_people(session) if p.faces > 0]
    faces = int(session.scalar(select(func.count()).select_from(Face)) or 0)
    in_none = int(session.scalar(select(func.count()).where(Face.person_id.is_(None))) or 0)
    unclustered = unclustered_faces(session)
    unnamed = [p for p in people if p.name is None and not p.hidden]
    return QueueStatus(
        photos=int(session.scalar(select(func.count()).select_from(Photo)) or 0),
        faces=faces,
        unclustered_faces=unclustered,
        people=len(people),
        named=sum(1 for p in people if p.name is not None),
        hidden=sum(1 for p in people if p.hidden),
        to_name=sum(1 for p in unnamed if p.faces >= max(1, min_faces)),
        below_min_faces=sum(1 for p in unnamed if p.faces < max(1, min_faces)),
        unassigned_faces=max(0, in_none - unclustered),
    )


@dataclass
class NamingSummary:
    queued: int = 0  # people in the queue when the session started
    shown: int = 0
    named: int = 0
    merged: int = 0
    hidden: int = 0
    skipped: int = 0
    rejected_faces: int = 0
    undone: int = 0
    faces_queued: int = 0  # faces in no person when the session reached them
    faces_assigned: int = 0  # faces in no person (or moved with 3 7 = NAME) given a person
    faces_skipped: int = 0
    unclustered: int = 0  # faces no clustering has seen: not offered
    quit: bool = False
    interrupted: bool = False
    status: QueueStatus | None = None  # the catalog when the session started
    decisions: list[int] = field(default_factory=list)


class _Prefetcher:
    """Warms the crop cache for one upcoming person on a background thread."""

    def __init__(self, cache: CropCache) -> None:
        self.cache = cache
        self._thread: threading.Thread | None = None

    def start(self, session: Session, person_id: int, count: int) -> None:
        self.wait()
        ids = first_page_faces(typical_faces(session, person_id), count)
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


@dataclass
class _State:
    """What the loop remembers between answers."""

    cache_dir: Path
    cache: CropCache
    count: int  # tiles on a sheet
    numbers: dict[str, SheetNumbers] = field(default_factory=dict)  # per subject: stable numbers
    pages: dict[str, int] = field(default_factory=dict)  # per subject: the page shown
    mine: dict[int, tuple[str, int]] = field(default_factory=dict)  # decision -> (kind, person)
    groups: dict[int, FaceGroup] = field(default_factory=dict)  # queue key -> group of faces
    groups_done: int = 0  # groups of faces answered (or emptied) in this session
    decision_faces: dict[int, list[int]] = field(default_factory=dict)  # faces of a decision
    first_faces: set[int] = field(default_factory=set)  # undone: show their groups first
    skipped_faces: set[int] = field(default_factory=set)  # faces in no person skipped (s)
    reviewed: bool = False  # the faces in no person were grouped at least once
    dirty: bool = False  # since then, faces may have left or rejoined "no person"
    # The face index, synced at the first look (answers change people, not faces; a face a scan
    # adds meanwhile is not in it, and suggestions then search without it).
    index: FaceIndex | None = None
    index_synced: bool = False
    # Scored suggestions for small unnamed people, made at the first one shown and renewed
    # when decisions were taken or undone since (``decided``: their count then).
    scorer: Suggester | None = None
    decided: int = 0

    def sheet_numbers(self, subject: str) -> SheetNumbers:
        return self.numbers.setdefault(subject, SheetNumbers())


def run_naming(
    catalog: Catalog, prompter: Prompter, cache_dir: Path, options: NamingOptions | None = None
) -> NamingSummary:
    """Go through the queue with ``prompter`` until it is empty or the human quits."""
    options = options or NamingOptions()
    summary = NamingSummary()
    with catalog.session() as s:
        people = load_queue(s, min_faces=options.min_faces, start=options.start)
        names = _names(s)
        index = NamedIndex(s)
        summary.status = queue_status(s, options.min_faces)
    queue: deque[tuple[str, int]] = deque(("person", pid) for pid in people)
    if options.unassigned:
        queue.append(("review", 0))
    summary.queued = total = len(people)
    st = _State(cache_dir, CropCache(cache_dir, options.tile), options.count)
    prefetch = _Prefetcher(st.cache) if options.prefetch else None
    position = 0
    stale = False  # named people changed: rebuild the suggestion index
    try:
        while queue:
            kind, key = queue[0]
            if kind == "review":
                queue.popleft()
                if not st.reviewed or st.dirty:
                    queue = _review(catalog, queue, st, summary)
                continue
            if kind == "faces":
                pending = sum(1 for e in queue if e[0] == "faces")
                outcome = _show_faces(catalog, prompter, key, pending, names, options, summary, st)
            else:
                with catalog.session() as s:
                    if stale:
                        index, names, stale = NamedIndex(s), _names(s), False
                    left = sum(1 for e in queue if e[0] == "person")
                    at = max(position, total - left + 1)
                    item = _person_item(catalog, s, key, at, total, index, st, summary)
                    nxt = queue[1] if len(queue) > 1 else ("", 0)
                    if item is not None and prefetch is not None and nxt[0] == "person":
                        prefetch.start(s, nxt[1], options.count)
                if item is None:
                    queue.popleft()  # merged, named or emptied since the queue was built
                    continue
                position = item.position
                prompter.show(item)
                summary.shown += 1
                outcome = _answer_loop(catalog, prompter, item, names, options, summary, st)
            if outcome.step is Step.QUIT:
                summary.quit = True
                break
            if outcome.step is Step.UNDONE:
                stale = True
                back_kind, back = outcome.back
                if back_kind == "person":
                    if back and queue[0] != ("person", back):
                        queue.appendleft(("person", back))
                else:  # faces went back to no person (or a decision of another session)
                    st.dirty = True
                    if back_kind == "faces" or kind == "faces":
                        queue.appendleft(("review", 0))
                continue
            if outcome.step in (Step.CHANGED, Step.CHANGED_AGAIN):
                stale = True
            if outcome.step in (Step.AGAIN, Step.CHANGED_AGAIN):
                continue
            queue.popleft()
            if kind == "faces":
                st.groups_done += 1
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if prefetch is not None:
            prefetch.wait()
    return summary


def _review(
    catalog: Catalog, queue: deque[tuple[str, int]], st: _State, summary: NamingSummary
) -> deque[tuple[str, int]]:
    """Group the faces in no person (afresh: earlier groups leave the queue) and queue them,
    followed by a marker that groups again what answers sent back (``x``, undo)."""
    queue = deque(e for e in queue if e[0] != "faces")
    with catalog.session() as s:  # names since the last look teach: relearn when due
        ensure_projection(s)
        s.commit()
    with catalog.session() as s:
        review = suggested_group(
            review_with_suggestions(s, exclude=st.skipped_faces, index=_face_index(catalog, st))
        )
    if not st.reviewed:
        summary.faces_queued = review.faces
    st.reviewed, st.dirty = True, False
    summary.unclustered = review.unclustered
    entries: list[tuple[str, int]] = []
    # The groups holding faces an undo just sent back come first: the human is looking at them.
    groups = sorted(
        review.groups, key=lambda g: not any(f.face_id in st.first_faces for f in g.faces)
    )
    st.first_faces = set()
    for group in groups:
        k = len(st.groups) + 1
        st.groups[k] = group
        entries.append(("faces", k))
    if entries:
        queue.extendleft([("review", 0), *reversed(entries)])
    return queue


def _face_index(catalog: Catalog, st: _State) -> FaceIndex | None:
    """The face index, synced at the first call of the session: its graph finds nearest faces
    without building one."""
    if not st.index_synced:
        try:
            st.index = sync_index(catalog, st.cache_dir)[0]
        except OSError:  # a cache folder that cannot be written: search without it
            st.index = None
        st.index_synced = True
    return st.index


def _scorer(catalog: Catalog, s: Session, st: _State, summary: NamingSummary) -> Suggester:
    """The scored suggestions for small people: made once, renewed only after decisions (each
    renewal reads who owns each face again; see :class:`Suggester` for when it refits)."""
    decided = len(summary.decisions) + summary.undone
    if st.scorer is None:
        st.scorer = Suggester(s, index=_face_index(catalog, st))
    elif decided != st.decided:
        st.scorer.renew(s)
    st.decided = decided
    return st.scorer


def _person_item(
    catalog: Catalog,
    s: Session,
    pid: int,
    position: int,
    total: int,
    index: NamedIndex,
    st: _State,
    summary: NamingSummary,
) -> QueueItem | None:
    person = s.get(Person, pid)
    faces = s.scalar(select(func.count()).where(Face.person_id == pid)) if person else 0
    if person is None or person.name or person.hidden or not faces:
        return None
    subject = f"person-{pid}"
    sheet = build_contact_sheet(
        s,
        pid,
        st.cache_dir,
        count=st.count,
        tile=st.cache.tile,
        cache=st.cache,
        page=st.pages.get(subject, 0),
        numbers=st.sheet_numbers(subject),
    )
    photos = s.scalar(select(func.count(func.distinct(Face.photo_id))).where(Face.person_id == pid))
    small = faces <= SMALL_PERSON_FACES  # scored as a whole by people.suggestions
    suggestion = offer(s, pid, index, _scorer(catalog, s, st, summary) if small else None)
    return QueueItem(pid, position, total, faces or 0, photos or 0, sheet, suggestion)


def _subject(group: FaceGroup) -> str:
    if group.suggested:
        return f"unassigned-suggested-{group.suggested}"
    return f"unassigned-{group.person_id or 'nobody'}-{'likely' if group.likely else 'far'}"


def _title(group: FaceGroup) -> str:
    if group.suggested == "likely":
        return "In no person: who each probably is, and the chance"
    if group.suggested:
        return "In no person: who each may be, and the chance (y 3 7: those are)"
    if group.likely:
        score = group.score
        scored = f" (score {score:.2f})" if score is not None else ""
        return f"In no person, probably {group.label}{scored}"
    if group.person_id is None:
        return "In no person, probably nobody you named"
    return f"In no person, probably nobody you named (nearest: {group.label})"


def _show_faces(
    catalog: Catalog,
    prompter: Prompter,
    key: int,
    pending: int,
    names: Sequence[str],
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> Outcome:
    """Show one group of faces in no person (what is left of it) and act on the answers.
    ``pending``: groups in the queue, this one included."""
    group = st.groups[key]
    ids = [f.face_id for f in group.faces if f.face_id not in st.skipped_faces]
    with catalog.session() as s:
        left = set(s.scalars(select(Face.id).where(Face.id.in_(ids), Face.person_id.is_(None))))
        left -= _refused(s, group, ids)
        if not left:
            return NEXT
        members = [f for f in group.faces if f.face_id in left]
        ranked = [(f.face_id, f.best.centroid_distance if f.best else 0.0) for f in members]
        captions = None
        if group.suggested:  # most likely first; each tile says who and how likely
            ranked = [(f.face_id, 1.0 - (f.score or 0.0)) for f in members]
            captions = {
                f.face_id: f"{f.best.name}\t{f.score or 0.0:.2f}"
                for f in members
                if f.best is not None
            }
        subject = _subject(group)
        sheet = build_faces_sheet(
            s,
            ranked,
            st.cache_dir,
            subject=subject,
            title=_title(group),
            count=st.count,
            tile=st.cache.tile,
            cache=st.cache,
            page=st.pages.get(subject, 0),
            numbers=st.sheet_numbers(subject),
            captions=captions,
        )
        photos = s.scalar(select(func.count(func.distinct(Face.photo_id))).where(Face.id.in_(left)))
    suggestion = None
    if group.suggested == "likely":
        suggestion = Suggestion(0, "who their captions say", 0.0)
    elif group.likely and group.person_id is not None:
        distance = float(np.median([d for _f, d in ranked]))
        suggestion = Suggestion(group.person_id, group.name or group.label, distance)
    position, total = st.groups_done + 1, st.groups_done + pending
    item = FacesItem(position, total, len(members), photos or 0, sheet, group, suggestion)
    prompter.show(item)
    summary.shown += 1
    return _faces_answer_loop(catalog, prompter, item, names, options, summary, st)


def _refused(s: Session, group: FaceGroup, ids: Sequence[int]) -> set[int]:
    """Faces of ``group`` refused since it was made (`x`): not its person (or, on a sheet of
    suggestions, not the person each was offered as), so not this group any more."""
    if group.suggested:
        offered = {f.face_id: f.best.person_id for f in group.faces if f.best is not None}
        rows = s.execute(
            select(Rejection.face_id, Rejection.person_id).where(Rejection.face_id.in_(ids))
        )
        return {int(f) for f, p in rows if offered.get(int(f)) == p}
    if group.person_id is None:
        return set()
    return set(
        s.scalars(
            select(Rejection.face_id).where(
                Rejection.person_id == group.person_id, Rejection.face_id.in_(ids)
            )
        )
    )


def _page(answer: Answer, sheet: ContactSheet, subject: str, st: _State) -> bool:
    """Turn the page for ``+``/``-``; False when there is no such page (said by the caller)."""
    step = 1 if answer.kind == AnswerKind.MORE else -1
    page = sheet.page + step
    if not 0 <= page < sheet.pages:
        return False
    st.pages[subject] = page
    return True


def _no_page(answer: Answer, sheet: ContactSheet) -> str:
    if sheet.pages == 1:
        return "All the faces are on this sheet."
    return "This is the last page." if answer.kind == AnswerKind.MORE else "This is the first page."


def _on_page(sheet: ContactSheet) -> list[int]:
    """Every face the tiles of this page stand for (near duplicates too)."""
    return [
        f for tile in sheet.faces for f in tile.faces if not sheet.current or f in sheet.current
    ]


def _face_ids(prompter: Prompter, sheet: ContactSheet, numbers: Sequence[int]) -> list[int] | None:
    """The faces behind the numbers on ``sheet``; None (said) when a number is not on it."""
    try:
        return sheet.face_ids(numbers)
    except ValueError as exc:
        prompter.say(f"Error: {exc}")
        return None


def _existing(catalog: Catalog, name: str) -> tuple[int, str, int] | None:
    """(id, name, faces) of the person called ``name`` in any spelling, or None."""
    with catalog.session() as s:
        existing = find_person_by_name(s, name)
        if existing is None:
            return None
        n = s.scalar(select(func.count()).where(Face.person_id == existing.id))
        return existing.id, existing.name or name, n or 0


def _assign_to_name(
    catalog: Catalog,
    prompter: Prompter,
    face_ids: list[int],
    raw_name: str,
    options: NamingOptions,
    summary: NamingSummary,
) -> tuple[int, str] | None:
    """Put ``face_ids`` into the person called ``raw_name`` (after asking, when that person
    exists; default no) or a new person of that name. (decision id, what was done), or None
    when the human said no. EOFError from the prompter goes up (quit)."""
    name = validate_name(raw_name)
    target = _existing(catalog, name)
    if target is not None:
        question = (
            f"{target[1]} already exists ({target[2]} faces). "
            f"Put {'this face' if len(face_ids) == 1 else f'these {len(face_ids)} faces'} "
            "into them?"
        )
        if not prompter.confirm(question):
            return None
        with catalog.session() as s:
            d = assign_faces(s, face_ids, target[0], create=False, actor=options.actor)
        done = f"Put {len(face_ids)} face(s) into {target[1]}."
    else:
        with catalog.session() as s:
            d = assign_faces(s, face_ids, name, create=True, actor=options.actor)
        done = f"Put {len(face_ids)} face(s) into {name} (a new person)."
    summary.faces_assigned += len(face_ids)
    return d.id, done


def _undo(catalog: Catalog, prompter: Prompter, summary: NamingSummary, st: _State) -> Outcome:
    with catalog.session() as s:
        undone = undo_last(s)
    summary.undone += 1
    prompter.say(f"Undone: {undone.summary}")
    back = st.mine.pop(undone.id, ("other", 0))
    st.first_faces = set(st.decision_faces.pop(undone.id, []))
    return Outcome(Step.UNDONE, back)


def _ask(
    prompter: Prompter,
    prompt: str,
    names: Sequence[str],
    help_text: str,
    sheet: ContactSheet,
    subject: str,
    st: _State,
) -> Answer | Outcome:
    """The next answer to act on, or the outcome of one that decides nothing (quit, a page
    turned). Help, malformed answers and pages that do not exist are answered here."""
    while True:
        try:
            raw = prompter.ask(prompt, names)
        except EOFError:
            return QUIT
        try:
            answer = parse_answer(raw)
        except PhotoclusterError as exc:
            prompter.say(f"Error: {exc}")
            continue
        if answer.kind == AnswerKind.HELP:
            prompter.say(help_text)
        elif answer.kind == AnswerKind.QUIT:
            return QUIT
        elif answer.kind in (AnswerKind.MORE, AnswerKind.BACK):
            if _page(answer, sheet, subject, st):
                return AGAIN
            prompter.say(_no_page(answer, sheet))
        else:
            return answer


def _faces_answer_loop(
    catalog: Catalog,
    prompter: Prompter,
    item: FacesItem,
    names: Sequence[str],
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> Outcome:
    """Ask about a group of faces in no person until an answer moves on."""
    group, sheet = item.group, item.sheet
    hint = f"they are {item.suggestion.name}" if item.suggestion else "skip"
    prompt = f"[faces {item.position}/{item.total}] Who is this? (Enter = {hint}, ? = help): "
    while True:
        answer = _ask(prompter, prompt, names, FACES_HELP, sheet, _subject(group), st)
        if isinstance(answer, Outcome):
            return answer
        if answer.kind == AnswerKind.SKIP or (
            answer.kind == AnswerKind.ACCEPT and item.suggestion is None
        ):
            skipped = sheet.current or frozenset(_on_page(sheet))
            st.skipped_faces |= skipped
            summary.faces_skipped += len(skipped)
            return NEXT
        if answer.kind == AnswerKind.HIDE:
            prompter.say(
                "These faces are in no person, so there is nobody to hide: skip them (s) to "
                "leave them as they are, or say who they are."
            )
            continue
        if answer.kind == AnswerKind.REJECT and group.person_id is None and not group.suggested:
            prompter.say("Nobody is suggested for these faces: say who they are, or skip (s).")
            continue
        try:
            if answer.kind == AnswerKind.UNDO:
                return _undo(catalog, prompter, summary, st)
            done = _decide_faces(catalog, prompter, item, answer, options, summary, st)
        except PhotoclusterError as exc:
            prompter.say(f"Error: {exc}")
            continue
        except EOFError:
            return QUIT
        if done is None:
            continue
        decision, faces = done
        st.mine[decision] = ("faces", 0)
        st.decision_faces[decision] = faces
        summary.decisions.append(decision)
        return CHANGED_AGAIN


def _decide_faces(
    catalog: Catalog,
    prompter: Prompter,
    item: FacesItem,
    answer: Answer,
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> tuple[int, list[int]] | None:
    """Act on an answer about faces in no person: (decision id, its faces), or None when
    nothing was decided (said why)."""
    group, sheet = item.group, item.sheet
    faces = _face_ids(prompter, sheet, answer.numbers) if answer.numbers else _on_page(sheet)
    if faces is None:
        return None
    if group.suggested and answer.kind in (AnswerKind.ACCEPT, AnswerKind.REJECT, AnswerKind.YES):
        return _answer_suggested(catalog, prompter, item, faces, answer, options, summary, st)
    if answer.kind == AnswerKind.YES:
        prompter.say("y 3 7 is for a sheet of suggestions: say who these faces are, or skip (s).")
        return None
    if answer.kind == AnswerKind.ACCEPT:
        assert item.suggestion is not None
        with catalog.session() as s:
            d = assign_faces(s, faces, item.suggestion.person_id, create=False, actor=options.actor)
        summary.faces_assigned += len(faces)
        prompter.say(f"Put {len(faces)} face(s) into {item.suggestion.name}.")
        return d.id, faces
    if answer.kind == AnswerKind.REJECT:
        with catalog.session() as s:
            d = reject_faces(s, faces, person=group.person_id, actor=options.actor)
        summary.rejected_faces += len(faces)
        st.dirty = True  # they come back with their next guess
        prompter.say(f"{len(faces)} face(s) are not {group.label}.")
        return d.id, faces
    done = _assign_to_name(catalog, prompter, faces, answer.name, options, summary)
    if done is None:
        return None
    prompter.say(done[1])
    return done[0], faces


def _answer_suggested(
    catalog: Catalog,
    prompter: Prompter,
    item: FacesItem,
    faces: list[int],
    answer: Answer,
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> tuple[int, list[int]]:
    """Enter on the likely sheet, or ``y 3 7`` on either sheet of suggestions: each face is who
    its caption says; ``x 3 7``: those faces are not (they come back with their next guess). One
    decision either way."""
    offered = {f.face_id: f.best.person_id for f in item.group.faces if f.best is not None}
    pairs = {f: offered[f] for f in faces if f in offered}
    accept = answer.kind in (AnswerKind.ACCEPT, AnswerKind.YES)
    with catalog.session() as s:
        d = answer_suggestions(s, pairs, accept=accept, actor=options.actor)
    if accept:
        summary.faces_assigned += len(pairs)
        prompter.say(f"Put {len(pairs)} face(s) into the people their captions say.")
    else:
        summary.rejected_faces += len(pairs)
        st.dirty = True  # they come back with their next guess
        prompter.say(f"{len(pairs)} face(s) are not who their captions say.")
    return d.id, list(pairs)


def _answer_loop(
    catalog: Catalog,
    prompter: Prompter,
    item: QueueItem,
    names: Sequence[str],
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> Outcome:
    """Ask about an unnamed person until an answer moves on."""
    pid = item.person_id
    maybe = is_maybe(item.suggestion)
    hint = f"accept {item.suggestion.name}" if item.suggestion else "skip"
    if item.suggestion is not None and maybe:
        hint = f"skip, y = they are {item.suggestion.name}"
    prompt = f"[{item.position}/{item.total}] Name (Enter = {hint}, ? = help): "
    while True:
        answer = _ask(prompter, prompt, names, HELP, item.sheet, f"person-{pid}", st)
        if isinstance(answer, Outcome):
            return answer
        if answer.kind == AnswerKind.SKIP or (
            answer.kind == AnswerKind.ACCEPT and (item.suggestion is None or maybe)
        ):
            summary.skipped += 1
            return NEXT
        try:
            if answer.kind == AnswerKind.UNDO:
                return _undo(catalog, prompter, summary, st)
            done = _decide_person(catalog, prompter, item, answer, options, summary, st)
        except PhotoclusterError as exc:
            prompter.say(f"Error: {exc}")
            continue
        except EOFError:
            return QUIT
        if done is None:
            continue
        decision, outcome = done
        st.mine[decision] = ("person", pid)
        summary.decisions.append(decision)
        return outcome


def is_maybe(suggestion: Suggestion | None) -> bool:
    """A scored offer below ``LIKELY`` ("May be X"): Enter leaves the person as they are and
    ``y`` merges them, as on the sheet of maybes (precision first: a wrong merge costs a
    correction, a skip nothing)."""
    return suggestion is not None and suggestion.chance is not None and suggestion.chance < LIKELY


def _decide_person(
    catalog: Catalog,
    prompter: Prompter,
    item: QueueItem,
    answer: Answer,
    options: NamingOptions,
    summary: NamingSummary,
    st: _State,
) -> tuple[int, Outcome] | None:
    """Act on an answer about an unnamed person: (decision id, where the queue goes), or None
    when nothing was decided (said why)."""
    pid = item.person_id
    yes = answer.kind == AnswerKind.YES
    accept_maybe = yes and not answer.numbers and is_maybe(item.suggestion)
    if yes and not accept_maybe:
        prompter.say("y 3 7 is for a sheet of suggestions: name this person, or x 3 7.")
        return None
    if answer.kind == AnswerKind.ACCEPT or accept_maybe:
        assert item.suggestion is not None
        with catalog.session() as s:
            d = merge_people(s, [pid], item.suggestion.person_id, actor=options.actor)
        summary.merged += 1
        prompter.say(f"Merged into {item.suggestion.name}.")
        return d.id, CHANGED
    if answer.kind == AnswerKind.HIDE:
        with catalog.session() as s:
            d = set_hidden(s, pid, True, actor=options.actor)
        summary.hidden += 1
        prompter.say(f"Hidden person {pid}.")
        return d.id, CHANGED
    if answer.kind == AnswerKind.REJECT or answer.numbers:
        face_ids = _face_ids(prompter, item.sheet, answer.numbers)
        if face_ids is None:
            return None
        if answer.kind == AnswerKind.REJECT:
            with catalog.session() as s:
                d = reject_faces(s, face_ids, person=pid, actor=options.actor)
            summary.rejected_faces += len(face_ids)
            st.dirty = True  # they are in no person now
            prompter.say(f"Removed {len(face_ids)} face(s) from this person.")
            return d.id, AGAIN
        # 3 7 = NAME: those faces are somebody else
        done = _assign_to_name(catalog, prompter, face_ids, answer.name, options, summary)
        if done is None:
            return None
        prompter.say(done[1])
        return done[0], CHANGED_AGAIN
    return _name_person(catalog, prompter, pid, answer.name, options, summary)


def _name_person(
    catalog: Catalog,
    prompter: Prompter,
    pid: int,
    raw_name: str,
    options: NamingOptions,
    summary: NamingSummary,
) -> tuple[int, Outcome] | None:
    """Name person ``pid``, or merge it into the person who has that name (after asking;
    default no: then None). EOFError from the prompter goes up (quit)."""
    name = validate_name(raw_name)
    target = _existing(catalog, name)
    if target is not None:
        question = f"{target[1]} already exists ({target[2]} faces). Merge this person into them?"
        if not prompter.confirm(question):
            return None
        with catalog.session() as s:
            d = merge_people(s, [pid], target[0], actor=options.actor)
        summary.merged += 1
        prompter.say(f"Merged into {target[1]}.")
    else:
        with catalog.session() as s:
            d = rename_person(s, pid, name, actor=options.actor)
        summary.named += 1
        prompter.say(f"Named {name}.")
    return d.id, CHANGED


__all__ = [
    "FACES_HELP",
    "HELP",
    "Answer",
    "AnswerKind",
    "FacesItem",
    "NamedIndex",
    "NamingOptions",
    "NamingSummary",
    "Prompter",
    "QueueItem",
    "QueueStatus",
    "ScriptedPrompter",
    "Suggestion",
    "load_queue",
    "parse_answer",
    "queue_status",
    "run_naming",
    "suggest",
]
