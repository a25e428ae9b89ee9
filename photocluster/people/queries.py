"""Questions about the catalog's people: who they are (by id or any spelling of a name), their
faces and photos, the faces in no person. Read-only; the caller owns the session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.names import name_key
from photocluster.errors import NotFound


@dataclass(frozen=True)
class PersonSummary:
    id: int
    name: str | None
    hidden: bool
    faces: int
    photos: int
    confirmed: int

    @property
    def label(self) -> str:
        return self.name or "unnamed"


def list_people(
    session: Session,
    *,
    include_hidden: bool = True,
    named_only: bool = False,
    include_empty: bool = False,
) -> list[PersonSummary]:
    """People with their face and photo counts, largest first (then by id).

    A person whose faces all left (rejected, moved, merged away by clustering) is not a person
    to a user: left out unless ``include_empty``."""
    query = (
        select(
            Person.id,
            Person.name,
            Person.hidden,
            func.count(Face.id),
            func.count(func.distinct(Face.photo_id)),
            func.coalesce(func.sum(case((Face.confirmed.is_(True), 1), else_=0)), 0),
        )
        .outerjoin(Face, Face.person_id == Person.id)
        .group_by(Person.id, Person.name, Person.hidden)
    )
    if not include_hidden:
        query = query.where(Person.hidden.is_(False))
    if named_only:
        query = query.where(Person.name.is_not(None))
    if not include_empty:
        query = query.having(func.count(Face.id) > 0)
    rows = [
        PersonSummary(int(i), n, bool(h), int(fc), int(pc), int(cc))
        for i, n, h, fc, pc, cc in session.execute(query).all()
    ]
    rows.sort(key=lambda p: (-p.faces, p.id))
    return rows


def people_named_like(session: Session, name: str) -> list[Person]:
    """People whose name is ``name`` to a human: the same
    :func:`photocluster.catalog.names.name_key` (case, Unicode normal form and runs of spaces
    aside). By id."""
    key = name_key(name)
    ids = [
        int(pid)
        for pid, other in session.execute(
            select(Person.id, Person.name).where(Person.name.is_not(None))
        )
        if other is not None and name_key(other) == key
    ]
    return [p for p in (session.get(Person, i) for i in sorted(ids)) if p is not None]


def resolve_person(session: Session, ref: str | int) -> Person:
    """A person by id ("7") or name ("Ada"; exact, else the one person whose name is the same
    to a human: "ada", "ADA ", see :mod:`photocluster.catalog.names`). Raises NotFound."""
    text = str(ref).strip()
    if text.lstrip("#").isdigit():
        person = session.get(Person, int(text.lstrip("#")))
        if person is not None:
            return person
        by_name = session.execute(select(Person).where(Person.name == text)).scalar_one_or_none()
        if by_name is not None:
            return by_name
        raise NotFound(f"No person with id {text}. Run `photocluster people` to list them.")
    person = session.execute(select(Person).where(Person.name == text)).scalar_one_or_none()
    if person is None:
        matches = people_named_like(session, text)
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(f"{p.id} ({p.name})" for p in matches)
            raise NotFound(f"Several people are named like {text!r}: {listed}. Use the id.")
        raise NotFound(
            f"No person named {text!r}. Run `photocluster people` to list people and their ids."
        )
    return person


@dataclass(frozen=True)
class PersonPhoto:
    path: str
    face_id: int
    box: tuple[int, int, int, int]
    confirmed: bool
    taken_at: datetime | None


def person_photos(session: Session, person: Person) -> list[PersonPhoto]:
    """The photos a person appears in (one row per face), by date then path."""
    rows = session.execute(
        select(
            Photo.path,
            Photo.taken_at,
            Face.id,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
            Face.confirmed,
        )
        .join(Photo, Face.photo_id == Photo.id)
        .where(Face.person_id == person.id)
    ).all()
    out = [
        PersonPhoto(r.path, r.id, (r.left, r.top, r.right, r.bottom), bool(r.confirmed), r.taken_at)
        for r in rows
    ]
    out.sort(key=lambda p: (p.taken_at is None, p.taken_at or datetime.min, p.path))
    return out


def unassigned_count(session: Session) -> int:
    return session.scalar(select(func.count()).where(Face.person_id.is_(None))) or 0
