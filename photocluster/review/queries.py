"""What each review page shows, read from the catalog as plain data. Read only: every function
takes a session (the caller owns it) and never commits.

Pages are cut so that a large catalog stays quick: the people page reads one grouped count over
the faces and sample faces only for the people on the page; a person's page ranks their faces
by distance to their mean face (one read of their embeddings) and returns one page of them.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from photocluster.catalog.models import Decision, Face, Meta, Person, Photo, Rejection
from photocluster.catalog.photo_status import PhotoStatus
from photocluster.decisions.contact_sheet import typical_faces
from photocluster.decisions.log import LogEntry, history
from photocluster.decisions.suggest import NamedIndex, offer
from photocluster.errors import NotFound
from photocluster.index.store import FaceIndex
from photocluster.people.assign import META_LAST_FACE
from photocluster.people.queries import unassigned_count
from photocluster.people.suggestions import SMALL_PERSON_FACES, Suggester, review_with_suggestions
from photocluster.people.unassigned import UnassignedReview

PEOPLE_PER_PAGE = 60
SAMPLES = 5  # face crops shown for each person on the people page
FACES_PER_PAGE = 150
GROUP_FACES = 48  # faces shown per group of unassigned faces
GROUPS_PER_PAGE = 12


@dataclass(frozen=True)
class PersonCard:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    confirmed: int
    samples: list[int]  # face ids

    @property
    def label(self) -> str:
        return self.name or f"person {self.id}"


@dataclass(frozen=True)
class PeoplePage:
    cards: list[PersonCard]
    page: int  # from 1
    pages: int
    people: int  # people with faces
    named: int
    hidden: int
    unassigned: int  # faces in no person


@dataclass(frozen=True)
class NamedPerson:
    id: int
    name: str


@dataclass(frozen=True)
class LastDecision:
    """The decision `undo` would undo now."""

    id: int
    summary: str


def names(session: Session) -> list[NamedPerson]:
    """Every named person, for completion of names."""
    rows = session.execute(
        select(Person.id, Person.name).where(Person.name.is_not(None)).order_by(Person.name)
    )
    return [NamedPerson(int(i), str(n)) for i, n in rows]


def last_decision(session: Session) -> LastDecision | None:
    row = session.execute(
        select(Decision.id, Decision.summary)
        .where(Decision.undone_at.is_(None))
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    return LastDecision(int(row[0]), str(row[1])) if row else None


def people_page(
    session: Session, page: int = 1, per_page: int = PEOPLE_PER_PAGE, samples: int = SAMPLES
) -> PeoplePage:
    """People with faces: unnamed first, largest first, hidden ones last; a few faces each.

    The order needs every person's face count (one grouped count on the faces' person index);
    photos and confirmed faces are counted for the people on the page only.
    """
    faces = {
        int(pid or 0): int(n)
        for pid, n in session.execute(
            select(Face.person_id, func.count())
            .where(Face.person_id.is_not(None))
            .group_by(Face.person_id)
        )
    }
    everyone = sorted(
        (
            (int(hidden), name is not None, -faces[int(pid)], int(pid), name)
            for pid, name, hidden in session.execute(select(Person.id, Person.name, Person.hidden))
            if int(pid) in faces
        ),
    )
    pages = max(1, math.ceil(len(everyone) / per_page))
    page = min(max(page, 1), pages)
    shown = everyone[(page - 1) * per_page : page * per_page]
    ids = [row[3] for row in shown]
    by_person = _sample_faces(session, ids, samples)
    counts = (
        {
            int(pid): (int(photos), int(confirmed or 0))
            for pid, photos, confirmed in session.execute(
                select(
                    Face.person_id,
                    func.count(func.distinct(Face.photo_id)),
                    func.sum(case((Face.confirmed.is_(True), 1), else_=0)),
                )
                .where(Face.person_id.in_(ids))
                .group_by(Face.person_id)
            )
        }
        if ids
        else {}
    )
    cards = [
        PersonCard(
            pid,
            name,
            bool(hidden),
            -neg_faces,
            counts.get(pid, (0, 0))[0],
            counts.get(pid, (0, 0))[1],
            by_person.get(pid, []),
        )
        for hidden, _named, neg_faces, pid, name in shown
    ]
    return PeoplePage(
        cards=cards,
        page=page,
        pages=pages,
        people=len(everyone),
        named=sum(1 for row in everyone if row[1]),
        hidden=sum(1 for row in everyone if row[0]),
        unassigned=unassigned_count(session),
    )


def _sample_faces(session: Session, person_ids: list[int], n: int) -> dict[int, list[int]]:
    """The ``n`` oldest faces of each person (one small indexed read each: a person of 10 000
    faces costs what a person of 10 costs)."""
    out: dict[int, list[int]] = {}
    for pid in person_ids:
        out[pid] = [
            int(f)
            for f in session.scalars(
                select(Face.id).where(Face.person_id == pid).order_by(Face.id).limit(n)
            )
        ]
    return out


@dataclass(frozen=True)
class FaceTile:
    face_id: int
    photo_id: int
    distance: float  # to the person's mean face (typicality); for unassigned: to the candidate
    confirmed: bool = False
    person_id: int | None = None  # where the face is now (what the page saw)


@dataclass(frozen=True)
class PersonView:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    confirmed: int
    tiles: list[FaceTile]
    page: int
    pages: int
    atypical_first: bool

    @property
    def label(self) -> str:
        return self.name or f"person {self.id}"


class RankCache:
    """Each person's faces in typical order, kept while their faces stay the same (paging
    through a person of 10 000 faces reads their embeddings once). Thread-safe; bounded."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._ranked: OrderedDict[tuple[int, int, int], list[tuple[int, float]]] = OrderedDict()

    def ranked(self, session: Session, person_id: int) -> list[tuple[int, float]]:
        # Which faces the person has now, in two numbers read from the person index alone.
        n, total = session.execute(
            select(func.count(), func.coalesce(func.sum(Face.id), 0)).where(
                Face.person_id == person_id
            )
        ).one()
        key = (person_id, int(n), int(total))
        with self._lock:
            if key in self._ranked:
                self._ranked.move_to_end(key)
                return self._ranked[key]
        ranked = typical_faces(session, person_id)
        with self._lock:
            self._ranked[key] = ranked
            while len(self._ranked) > self.size:
                self._ranked.popitem(last=False)
        return ranked


def person_view(
    session: Session,
    person_id: int,
    page: int = 1,
    per_page: int = FACES_PER_PAGE,
    atypical_first: bool = False,
    cache: RankCache | None = None,
) -> PersonView:
    """One page of a person's faces, most typical first (or least typical first)."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(
            f"There is no person {person_id} (merged or removed since?). Go back to the people "
            "page to see who there is."
        )
    ranked = (cache or RankCache()).ranked(session, person_id)
    if atypical_first:
        ranked = ranked[::-1]
    pages = max(1, math.ceil(len(ranked) / per_page))
    page = min(max(page, 1), pages)
    chunk = ranked[(page - 1) * per_page : page * per_page]
    info = {
        int(r.id): (int(r.photo_id), bool(r.confirmed))
        for r in session.execute(
            select(Face.id, Face.photo_id, Face.confirmed).where(
                Face.id.in_([fid for fid, _d in chunk])
            )
        )
    }
    tiles = [
        FaceTile(fid, info[fid][0], dist, info[fid][1], person_id)
        for fid, dist in chunk
        if fid in info
    ]
    photos, confirmed = session.execute(
        select(
            func.count(func.distinct(Face.photo_id)),
            func.sum(case((Face.confirmed.is_(True), 1), else_=0)),
        ).where(Face.person_id == person_id)
    ).one()
    return PersonView(
        id=person.id,
        name=person.name,
        hidden=bool(person.hidden),
        faces=len(ranked),
        photos=int(photos or 0),
        confirmed=int(confirmed or 0),
        tiles=tiles,
        page=page,
        pages=pages,
        atypical_first=atypical_first,
    )


@dataclass(frozen=True)
class PersonSuggestion:
    """An unnamed person who looks like a named one (the `name` queue's suggestion)."""

    person_id: int
    name: str
    score: float  # median face-to-face distance
    # the chance it is them, for a small person scored as `suggestions` scores them (None: the
    # merge step's test offered them)
    chance: float | None = None


def person_suggestion(
    session: Session, person_id: int, cache: ReviewCache | None = None
) -> PersonSuggestion | None:
    """The named person this (unnamed) person looks like, as `photocluster name` offers them:
    a small person scored, with the chance (``decisions.suggest.offer``)."""
    person = session.get(Person, person_id)
    if person is None or person.name is not None:
        return None
    faces = session.scalar(select(func.count()).where(Face.person_id == person_id)) or 0
    scored = (cache or ReviewCache()).suggester(session) if faces <= SMALL_PERSON_FACES else None
    found = offer(session, person_id, NamedIndex(session), scored)
    if found is None:
        return None
    return PersonSuggestion(found.person_id, found.name, float(found.distance), found.chance)


@dataclass(frozen=True)
class GroupView:
    person_id: int | None  # the candidate: their nearest person
    label: str
    name: str | None
    hidden: bool
    likely: bool  # offered as that person (known/probably)
    total: int  # faces in the group
    tiles: list[FaceTile]  # the ones shown, most likely first
    distance: float | None  # median distance to the candidate's mean face
    limit: float | None  # the candidate's own spread x SPREAD_RATIO
    known: int
    probably: int
    chance: float | None = None  # the suggestion's score (people.suggestions), when scored


@dataclass(frozen=True)
class UnassignedView:
    groups: list[GroupView]
    faces: int  # faces in no person, clustered
    unclustered: int  # not clustered yet (run `photocluster cluster`)
    page: int
    pages: int


def catalog_state(session: Session) -> tuple[int, ...]:
    """Numbers that change whenever a face appears, goes, moves to another person or is
    re-encoded, or a rejection or person is added or removed: what the unassigned faces'
    weighing depends on. One pass over the faces (milliseconds at 100 000 faces)."""
    faces = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(Face.id), 0),
            func.coalesce(func.sum(Face.id * func.coalesce(Face.person_id, -1)), 0),
            func.coalesce(func.sum(Face.revision), 0),
        )
    ).one()
    rejections = session.execute(
        select(func.count(), func.coalesce(func.sum(Rejection.face_id * Rejection.person_id), 0))
    ).one()
    people = session.execute(
        select(func.count(), func.coalesce(func.sum(Person.id), 0), func.count(Person.name))
    ).one()
    hidden = session.execute(select(func.count()).where(Person.hidden.is_(True))).scalar_one()
    last = session.get(Meta, META_LAST_FACE)
    return (
        *map(int, faces),
        *map(int, rejections),
        *map(int, people),
        int(hidden),
        int(last.value) if last else -1,
    )


class ReviewCache:
    """The last weighing of the unassigned faces (seconds at 100 000 faces), kept while
    :func:`catalog_state` stays the same: paging and coming back cost one state read."""

    def __init__(self, index: Callable[[], FaceIndex | None] | None = None) -> None:
        self._lock = threading.Lock()
        self._state: tuple[int, ...] | None = None
        self._review: UnassignedReview | None = None
        self._index = index  # the face index, when weighing again (its graph finds neighbours)
        self._scored: tuple[tuple[int, ...], Suggester] | None = None
        self._scoring = threading.Lock()

    def suggester(self, session: Session) -> Suggester:
        """The scorer of small unnamed people (a person page's offer), kept while
        :func:`catalog_state` and the last decision stay the same; a decision since (a rename
        too) makes it read the owners, names and rejections again (:meth:`Suggester.renew`),
        a scan loads it again."""
        last = session.scalar(select(func.max(Decision.id))) or 0
        state = (*catalog_state(session), last)
        with self._scoring:  # one request renews it at a time; the others wait for it
            kept = self._scored
            if kept is not None and kept[0] == state:
                return kept[1]
            if kept is not None:
                kept[1].renew(session)
                scorer = kept[1]
            else:
                scorer = Suggester(session, index=self._index() if self._index else None)
            self._scored = (state, scorer)
            return scorer

    def review(self, session: Session) -> UnassignedReview:
        state = catalog_state(session)
        with self._lock:
            if state == self._state and self._review is not None:
                return self._review
        review = review_with_suggestions(session, index=self._index() if self._index else None)
        with self._lock:
            self._state, self._review = state, review
        return review


def unassigned_view(
    session: Session,
    page: int = 1,
    per_page: int = GROUPS_PER_PAGE,
    per_group: int = GROUP_FACES,
    cache: ReviewCache | None = None,
) -> UnassignedView:
    """Faces in no person, grouped by their best candidate (likely groups first)."""
    review = (cache or ReviewCache()).review(session)
    pages = max(1, math.ceil(len(review.groups) / per_page))
    page = min(max(page, 1), pages)
    groups = review.groups[(page - 1) * per_page : page * per_page]
    wanted = [f.face_id for g in groups for f in g.faces[:per_group]]
    photo_of: dict[int, int] = {}
    for i in range(0, len(wanted), 500):
        photo_of.update(
            (int(a), int(b))
            for a, b in session.execute(
                select(Face.id, Face.photo_id).where(Face.id.in_(wanted[i : i + 500]))
            )
        )
    views = []
    for g in groups:
        ev = g.evidence()
        tiles = [
            FaceTile(
                f.face_id,
                photo_of[f.face_id],
                f.best.centroid_distance if f.best is not None else math.nan,
                False,
                None,
            )
            for f in g.faces[:per_group]
            if f.face_id in photo_of
        ]
        views.append(
            GroupView(
                person_id=g.person_id,
                label=g.label,
                name=g.name,
                hidden=g.hidden,
                likely=g.likely,
                total=len(g.faces),
                tiles=tiles,
                distance=ev.distance if ev else None,
                limit=ev.limit if ev else None,
                known=ev.known if ev else 0,
                probably=ev.probably if ev else 0,
                chance=g.score if g.likely else None,
            )
        )
    return UnassignedView(views, review.faces, review.unclustered, page, pages)


@dataclass(frozen=True)
class BoxView:
    face_id: int
    person_id: int | None
    label: str  # who, in words
    # the box as shares of the photo's width and height (0..100), for CSS
    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class PhotoView:
    id: int
    path: str
    width: int | None
    height: int | None
    taken_at: str | None
    boxes: list[BoxView] = field(default_factory=list)
    error: str | None = None  # why the scan could not read it


def photo_view(session: Session, photo_id: int) -> PhotoView:
    """A photo and its faces, each box with who it is."""
    photo = session.get(Photo, photo_id)
    if photo is None:
        raise NotFound(f"There is no photo {photo_id} (removed by a scan since?).")
    rows = session.execute(
        select(Face.id, Face.person_id, Face.left, Face.top, Face.right, Face.bottom, Person.name)
        .outerjoin(Person, Person.id == Face.person_id)
        .where(Face.photo_id == photo_id)
        .order_by(Face.left, Face.id)
    ).all()
    w, h = photo.width, photo.height
    boxes = []
    if w and h:
        for r in rows:
            who = r.name or (f"person {r.person_id}" if r.person_id is not None else "nobody")
            boxes.append(
                BoxView(
                    int(r.id),
                    r.person_id,
                    who,
                    100 * r.left / w,
                    100 * r.top / h,
                    100 * (r.right - r.left) / w,
                    100 * (r.bottom - r.top) / h,
                )
            )
    taken = photo.taken_at.isoformat(sep=" ") if photo.taken_at else None
    error = photo.error if photo.status == PhotoStatus.FAILED else None
    return PhotoView(photo.id, str(photo.path), w, h, taken, boxes, error)


def log_entries(session: Session, limit: int = 200) -> list[LogEntry]:
    """The newest decisions (the same history `photocluster log` prints)."""
    return history(session, limit=limit)


__all__ = [
    "FaceTile",
    "GroupView",
    "LastDecision",
    "NamedPerson",
    "PeoplePage",
    "PersonCard",
    "PersonSuggestion",
    "PersonView",
    "PhotoView",
    "RankCache",
    "ReviewCache",
    "UnassignedView",
    "catalog_state",
    "last_decision",
    "log_entries",
    "names",
    "people_page",
    "person_suggestion",
    "person_view",
    "photo_view",
    "unassigned_view",
]
