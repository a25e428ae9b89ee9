"""The review page's actions: each one decision through :mod:`photocluster.decisions.log` (the same
decisions and undo log as the CLI), refused when the catalog changed since the page was drawn.

Every action takes a session (the caller owns it and commits), takes the catalog's write lock
first (:func:`photocluster.catalog.db.hold_write_lock`), then compares what the page saw (a person's
name, whether they were hidden, which person each selected face was in, which decision the Undo
button named) with the catalog as it is now. Anything different raises :class:`Stale` and
nothing changes: a second tab, a `photocluster` command or a `cluster` run made a newer decision,
and the user must look again before deciding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.db import hold_write_lock
from photocluster.catalog.models import Decision, Face, Person
from photocluster.decisions.log import (
    assign_faces,
    merge_people,
    reject_faces,
    rename_person,
    set_hidden,
    undo_last,
    validate_name,
)
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.people.queries import people_named_like, resolve_person

_RELOAD = "Reload the page to see it as it is now; nothing was changed."


class Stale(PhotoclusterError):
    """The catalog changed since the page was drawn: the action was refused."""


class NameTaken(PhotoclusterError):
    """The name belongs to another person: the page offers to merge into them instead."""

    def __init__(self, message: str, holder: int, name: str) -> None:
        super().__init__(message)
        self.holder = holder
        self.name = name


@dataclass(frozen=True)
class Outcome:
    message: str
    decision: int | None = None
    go: str | None = None  # where the page goes next (None: reload)


def _person(session: Session, person_id: int) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound(
            f"Person {person_id} no longer exists (merged or removed since this page was "
            f"loaded). {_RELOAD}"
        )
    return person


def _label(person: Person) -> str:
    return f"{person.name} (person {person.id})" if person.name else f"person {person.id}"


def _check_name(person: Person, seen: str | None) -> None:
    if person.name != seen:
        now = repr(person.name) if person.name else "unnamed"
        was = repr(seen) if seen else "unnamed"
        raise Stale(
            f"Person {person.id} is now {now}, not {was} as this page showed: someone decided "
            f"since (another tab or a photocluster command). {_RELOAD}"
        )


def _check_faces(session: Session, seen: Mapping[int, int | None]) -> None:
    """Each face still exists and is in the person the page showed it in."""
    if not seen:
        raise PhotoclusterError("No faces selected.")
    ids = sorted(seen)
    now: dict[int, int | None] = {}
    for i in range(0, len(ids), 500):
        rows = session.execute(select(Face.id, Face.person_id).where(Face.id.in_(ids[i : i + 500])))
        now.update((int(f), None if p is None else int(p)) for f, p in rows)
    gone = [f for f in ids if f not in now]
    if gone:
        raise Stale(
            f"{_faces(gone)} no longer in the catalog (a scan removed them since this page was "
            f"loaded). {_RELOAD}"
        )
    moved = [f for f in ids if now[f] != seen[f]]
    if moved:
        raise Stale(
            f"{_faces(moved)} moved since this page was loaded (another tab, a photocluster "
            f"command or a cluster run). {_RELOAD}"
        )


def _faces(ids: Sequence[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:8]) + (" ..." if len(ids) > 8 else "")
    return f"Face {shown} is" if len(ids) == 1 else f"Faces {shown} are"


def rename(session: Session, person_id: int, name: str, seen: str | None, actor: str) -> Outcome:
    """Name or rename a person. A name someone else holds raises :class:`NameTaken`."""
    hold_write_lock(session, "review: rename")
    person = _person(session, person_id)
    _check_name(person, seen)
    new = validate_name(name)
    holder = next((p for p in people_named_like(session, new) if p.id != person.id), None)
    if holder is not None:
        raise NameTaken(
            f"{holder.name!r} is already person {holder.id}. Merge {_label(person)} into them?",
            holder.id,
            str(holder.name),
        )
    decision = rename_person(session, person, new, actor=actor)
    return Outcome(decision.summary, decision.id)


def merge(
    session: Session,
    person_id: int,
    into: str,
    seen: str | None,
    actor: str,
    *,
    into_seen: str | None = None,
    into_checked: bool = False,
    name: str | None = None,
) -> Outcome:
    """Merge a person into another (``into``: an id or a name). ``into_checked``: the page
    showed the target too (with name ``into_seen``), so it must be unchanged as well."""
    hold_write_lock(session, "review: merge")
    person = _person(session, person_id)
    _check_name(person, seen)
    target = resolve_person(session, into)
    if into_checked:
        _check_name(target, into_seen)
    decision = merge_people(session, [person], target, actor=actor, name=name)
    return Outcome(decision.summary, decision.id, go=f"/person/{target.id}")


def hide(session: Session, person_id: int, hidden: bool, seen: bool, actor: str) -> Outcome:
    hold_write_lock(session, "review: hide")
    person = _person(session, person_id)
    if bool(person.hidden) != seen:
        state = "hidden" if person.hidden else "shown"
        raise Stale(f"{_label(person).capitalize()} is already {state} now. {_RELOAD}")
    decision = set_hidden(session, person, hidden, actor=actor)
    return Outcome(decision.summary, decision.id)


def reject(
    session: Session,
    seen: Mapping[int, int | None],
    actor: str,
    *,
    person_id: int | None = None,
) -> Outcome:
    """These faces are not ``person_id`` (default: the person each is in)."""
    hold_write_lock(session, "review: reject")
    _check_faces(session, seen)
    if person_id is not None:
        _person(session, person_id)
    decision = reject_faces(session, sorted(seen), actor=actor, person=person_id)
    return Outcome(decision.summary, decision.id)


def assign(
    session: Session,
    seen: Mapping[int, int | None],
    to: str | int,
    actor: str,
    *,
    create: bool = False,
) -> Outcome:
    """Put these faces into a person (id or name); ``create``: a new name makes a new person
    (a name someone holds is then refused rather than silently joined)."""
    hold_write_lock(session, "review: assign")
    _check_faces(session, seen)
    if create:
        new = validate_name(str(to))
        holder = next(iter(people_named_like(session, new)), None)
        if holder is not None:
            raise NameTaken(
                f"{holder.name!r} is already person {holder.id}. Add the faces to them?",
                holder.id,
                str(holder.name),
            )
        to = new
    elif isinstance(to, int):
        _person(session, to)
    decision = assign_faces(session, sorted(seen), to, actor=actor, create=create)
    return Outcome(decision.summary, decision.id)


def undo(session: Session, expect: int | None) -> Outcome:
    """Undo the newest decision, only if it is the one the page named (``expect``)."""
    hold_write_lock(session, "review: undo")
    newest = session.execute(
        select(Decision.id, Decision.summary)
        .where(Decision.undone_at.is_(None))
        .order_by(Decision.id.desc())
        .limit(1)
    ).first()
    if newest is None:
        raise Stale(f"Nothing to undo: every decision is already undone. {_RELOAD}")
    if expect is not None and int(newest[0]) != expect:
        raise Stale(
            f"The last decision is now #{newest[0]} ({newest[1]}), not the one this page "
            f"offered to undo (#{expect}): someone decided since. {_RELOAD}"
        )
    decision = undo_last(session)
    return Outcome(f"undid: {decision.summary}", decision.id)


__all__ = [
    "NameTaken",
    "Outcome",
    "Stale",
    "assign",
    "hide",
    "merge",
    "reject",
    "rename",
    "undo",
]
