"""Human decisions about people: name, merge, reject, assign, hide, and undo them.

Every operation takes a session (the caller owns it and commits), checks its input before it
changes anything, applies the change and records one
:class:`~photocluster.catalog.models.Decision` row whose ``undo`` JSON holds the exact previous
state of every row it touched: the people (id, name, hidden, created_at), the faces (person_id,
confirmed) and the rejections involving them. So :func:`undo_last` works across sessions and
restores rows, not guesses.

What clustering relies on: a face a human placed is ``confirmed`` (clustering never moves it) and
a :class:`~photocluster.catalog.models.Rejection` says "this face is not this person" (clustering
never puts it there again). Naming a person, merging people and assigning faces confirm the faces
involved; rejecting a face unassigns it, unconfirms it and records the rejection.

Each operation first takes the catalog's write lock
(:func:`photocluster.catalog.db.hold_write_lock`), held until the caller's session commits: the
decision reads the catalog as it is, no other writer changes it in between, and a clustering
planned before the decision sees it before it writes (and plans again).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from photocluster.catalog.db import hold_write_lock, in_chunks
from photocluster.catalog.models import Decision, Face, Person, Rejection
from photocluster.catalog.names import tidy_name
from photocluster.errors import NotFound, PhotoclusterError
from photocluster.people.queries import people_named_like, resolve_person

MAX_NAME_LENGTH = 100
UNDO_FORMAT = 1

PersonRef = Person | int | str


class NameConflict(PhotoclusterError):
    """Merging people who have different names: the caller must say which name wins."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message)
        self.names = names


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# --- input checks ---------------------------------------------------------------------------


def validate_name(raw: str) -> str:
    """The name to store for ``raw`` (NFC, outer whitespace trimmed, inner runs of white space
    made one space: :func:`photocluster.catalog.names.tidy_name`) or a clear error."""
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        raise PhotoclusterError("A name cannot be empty or only spaces.")
    bad = [c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in dict.fromkeys(bad))
        raise PhotoclusterError(f"A name cannot contain control characters ({codes}).")
    name = tidy_name(name)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise PhotoclusterError(
            f"{name!r} looks like a file path; a name cannot contain / or \\ or be . or .."
        )
    if name.isdigit():
        raise PhotoclusterError(
            f"{name!r} is only digits, which would read as a person id; add a letter."
        )
    if len(name) > MAX_NAME_LENGTH:
        raise PhotoclusterError(
            f"That name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}."
        )
    return name


def find_person_by_name(session: Session, name: str) -> Person | None:
    """The person called ``name``: exact match first, then the one person whose name is the
    same to a human (case, spacing, Unicode form: :mod:`photocluster.catalog.names`)."""
    person = session.scalar(select(Person).where(Person.name == name))
    if person is not None:
        return person
    matches = people_named_like(session, name)
    return matches[0] if len(matches) == 1 else None


def _resolve_person(session: Session, ref: PersonRef) -> Person:
    if isinstance(ref, Person):
        return ref
    return resolve_person(session, ref)


def _label(person: Person) -> str:
    return f"person {person.id} ({person.name})" if person.name else f"person {person.id}"


def _faces_by_id(session: Session, face_ids: Sequence[int]) -> dict[int, Face]:
    wanted = sorted(set(face_ids))
    if not wanted:
        raise PhotoclusterError("No faces given.")
    found: dict[int, Face] = {}
    for chunk in in_chunks(wanted):
        for face in session.scalars(select(Face).where(Face.id.in_(chunk))):
            found[face.id] = face
    missing = [i for i in wanted if i not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise NotFound(f"No face with id {shown}; nothing was changed.")
    return found


def _face_ids_of(session: Session, person_ids: Sequence[int]) -> list[int]:
    out: list[int] = []
    for chunk in in_chunks(sorted(set(person_ids))):
        out.extend(session.scalars(select(Face.id).where(Face.person_id.in_(chunk))))
    return out


# --- undo payloads: the exact rows before the change -------------------------------------------


class _Snapshot:
    """Remembers people, faces and their rejections before a change, for the undo JSON."""

    def __init__(self, session: Session, person_ids: Iterable[int], face_ids: Iterable[int]):
        self.session = session
        self.person_ids = sorted(set(person_ids))
        self.face_ids = sorted(set(face_ids))
        self.people: list[dict[str, Any]] = []
        for chunk in in_chunks(self.person_ids):
            for p in session.scalars(select(Person).where(Person.id.in_(chunk))):
                self.people.append(
                    {
                        "id": p.id,
                        "name": p.name,
                        "hidden": bool(p.hidden),
                        "created_at": p.created_at.isoformat(),
                    }
                )
        self.faces: list[list[Any]] = []
        for chunk in in_chunks(self.face_ids):
            rows = session.execute(
                select(Face.id, Face.person_id, Face.confirmed).where(Face.id.in_(chunk))
            ).all()
            self.faces.extend([r.id, r.person_id, bool(r.confirmed)] for r in rows)
        self.rejections = sorted(
            {
                (r.face_id, r.person_id, r.created_at.isoformat())
                for r in _rejections_in_scope(session, self.person_ids, self.face_ids)
            }
        )
        self.created: list[int] = []

    def payload(self) -> str:
        return json.dumps(
            {
                "format": UNDO_FORMAT,
                "people_scope": sorted({*self.person_ids, *self.created}),
                "face_scope": self.face_ids,
                "people": sorted(self.people, key=lambda p: p["id"]),
                "faces": sorted(self.faces),
                "rejections": [list(r) for r in self.rejections],
            },
            separators=(",", ":"),
        )


def _rejections_in_scope(
    session: Session, person_ids: Sequence[int], face_ids: Sequence[int]
) -> list[Rejection]:
    found: dict[int, Rejection] = {}
    for chunk in in_chunks(list(person_ids)):
        for r in session.scalars(select(Rejection).where(Rejection.person_id.in_(chunk))):
            found[r.id] = r
    for chunk in in_chunks(list(face_ids)):
        for r in session.scalars(select(Rejection).where(Rejection.face_id.in_(chunk))):
            found[r.id] = r
    return list(found.values())


def _put_into(session: Session, faces: dict[int, Face], pairs: Sequence[tuple[int, int]]) -> None:
    """Each (face, person): the face goes into that person, confirmed; a rejection of it by
    that person is lifted (the user now says it is them)."""
    by_person: dict[int, list[int]] = {}
    for fid, pid in pairs:
        by_person.setdefault(pid, []).append(fid)
    for pid, fids in by_person.items():
        for chunk in in_chunks(fids):
            session.execute(
                delete(Rejection).where(Rejection.person_id == pid, Rejection.face_id.in_(chunk))
            )
    for fid, pid in pairs:
        faces[fid].person_id, faces[fid].confirmed = pid, True
    session.flush()


def _mark_not(session: Session, faces: dict[int, Face], pairs: Sequence[tuple[int, int]]) -> None:
    """Each (face, person): recorded as not that person (once); a face in it leaves it."""
    existing = {(r.face_id, r.person_id) for r in _rejections_in_scope(session, [], sorted(faces))}
    now = _now()
    for fid, pid in pairs:
        if (fid, pid) not in existing:
            session.add(Rejection(face_id=fid, person_id=pid, created_at=now))
        if faces[fid].person_id == pid:
            faces[fid].person_id, faces[fid].confirmed = None, False
    session.flush()


def _id_list(face_ids: Sequence[int]) -> str:
    """The first dozen face ids for a decision's summary."""
    return ", ".join(str(f) for f in face_ids[:12]) + (" ..." if len(face_ids) > 12 else "")


def _record(
    session: Session, snap: _Snapshot, *, actor: str, action: str, summary: str
) -> Decision:
    decision = Decision(
        created_at=_now(), actor=actor, action=action, summary=summary, undo=snap.payload()
    )
    session.add(decision)
    session.flush()
    return decision


def _restore(session: Session, payload: dict[str, Any]) -> None:
    if payload.get("format") != UNDO_FORMAT:
        raise PhotoclusterError(
            f"This decision was recorded in undo format {payload.get('format')!r}, which this "
            "version cannot read; it cannot be undone."
        )
    session.flush()
    scope = [int(i) for i in payload["people_scope"]]
    face_scope = [int(i) for i in payload["face_scope"]]
    people = {int(p["id"]): p for p in payload["people"]}

    # A restored name must not be taken by someone the decision did not touch.
    for p in people.values():
        if p["name"] is None:
            continue
        others = [o.id for o in people_named_like(session, p["name"])]
        holder = next((o for o in others if o not in people and o not in scope), None)
        if holder is not None:
            raise PhotoclusterError(
                f"Cannot undo: the name {p['name']!r} now belongs to person {holder}. "
                f"Rename that person first."
            )

    existing: set[int] = set()
    for chunk in in_chunks(scope):
        existing.update(session.scalars(select(Person.id).where(Person.id.in_(chunk))))
    # Free every name in scope first so swapped names never collide halfway.
    for chunk in in_chunks(sorted(existing)):
        session.execute(update(Person).where(Person.id.in_(chunk)).values(name=None))
    for pid, p in people.items():
        values = {
            "name": p["name"],
            "hidden": p["hidden"],
            "created_at": datetime.fromisoformat(p["created_at"]),
        }
        if pid in existing:
            session.execute(update(Person).where(Person.id == pid).values(**values))
        else:
            session.execute(insert(Person).values(id=pid, **values))

    for face_id, person_id, confirmed in payload["faces"]:
        session.execute(
            update(Face)
            .where(Face.id == face_id)
            .values(person_id=person_id, confirmed=bool(confirmed))
        )

    for chunk in in_chunks(scope):
        session.execute(delete(Rejection).where(Rejection.person_id.in_(chunk)))
    for chunk in in_chunks(face_scope):
        session.execute(delete(Rejection).where(Rejection.face_id.in_(chunk)))
    live_faces: set[int] = set()
    wanted_faces = sorted({int(r[0]) for r in payload["rejections"]})
    for chunk in in_chunks(wanted_faces):
        live_faces.update(session.scalars(select(Face.id).where(Face.id.in_(chunk))))
    for face_id, person_id, created_at in payload["rejections"]:
        if face_id in live_faces:  # a rescan may have dropped the face since
            session.execute(
                insert(Rejection).values(
                    face_id=face_id,
                    person_id=person_id,
                    created_at=datetime.fromisoformat(created_at),
                )
            )

    created = [pid for pid in scope if pid in existing and pid not in people]
    for chunk in in_chunks(created):
        session.execute(update(Face).where(Face.person_id.in_(chunk)).values(person_id=None))
        session.execute(delete(Rejection).where(Rejection.person_id.in_(chunk)))
        session.execute(delete(Person).where(Person.id.in_(chunk)))
    session.expire_all()


# --- operations -------------------------------------------------------------------------------


def _check_name_free(session: Session, name: str, allowed: Iterable[int]) -> None:
    """No one but ``allowed`` may hold ``name`` or a name the same to a human."""
    ok = set(allowed)
    holder = next((p for p in people_named_like(session, name) if p.id not in ok), None)
    if holder is not None:
        held = "" if holder.name == name else f" (as {holder.name!r})"
        raise PhotoclusterError(
            f"{name!r} is already the name of person {holder.id}{held}. To put these faces "
            f"together, merge instead: photocluster merge PERSON --into {holder.id}"
        )


def rename_person(session: Session, person: PersonRef, name: str, *, actor: str) -> Decision:
    """Give ``person`` the name ``name`` and confirm all its faces."""
    hold_write_lock(session, "rename")
    target = _resolve_person(session, person)
    new_name = validate_name(name)
    _check_name_free(session, new_name, [target.id])
    face_ids = _face_ids_of(session, [target.id])
    if target.name == new_name and not _unconfirmed(session, face_ids):
        raise PhotoclusterError(f"Person {target.id} is already called {new_name!r}.")
    snap = _Snapshot(session, [target.id], face_ids)
    old = target.name
    target.name = new_name
    _confirm(session, face_ids)
    what = f"renamed {_old_label(target.id, old)} to {new_name!r}"
    return _record(
        session,
        snap,
        actor=actor,
        action="rename",
        summary=f"{what} ({len(face_ids)} faces confirmed)",
    )


def _old_label(pid: int, name: str | None) -> str:
    return f"person {pid} ({name})" if name else f"person {pid}"


def _unconfirmed(session: Session, face_ids: Sequence[int]) -> int:
    n = 0
    for chunk in in_chunks(list(face_ids)):
        n += (
            session.scalar(
                select(func.count()).where(Face.id.in_(chunk), Face.confirmed.is_(False))
            )
            or 0
        )
    return n


def _confirm(session: Session, face_ids: Sequence[int]) -> None:
    session.flush()
    for chunk in in_chunks(list(face_ids)):
        session.execute(update(Face).where(Face.id.in_(chunk)).values(confirmed=True))


def merge_people(
    session: Session,
    sources: Sequence[PersonRef],
    into: PersonRef,
    *,
    actor: str,
    name: str | None = None,
) -> Decision:
    """Move every face (and rejection) of ``sources`` into ``into`` and delete the sources.

    When more than one of them has a name, ``name`` says which name the merged person keeps
    (any valid name may be given); without it :class:`NameConflict` is raised.
    """
    hold_write_lock(session, "merge")
    target = _resolve_person(session, into)
    if not sources:
        raise PhotoclusterError("Name at least one person to merge.")
    srcs: dict[int, Person] = {}
    for ref in sources:
        p = _resolve_person(session, ref)
        if p.id == target.id:
            raise PhotoclusterError(f"Cannot merge {_label(target)} into itself.")
        srcs[p.id] = p
    everyone = [target, *srcs.values()]
    final_name: str | None
    if name is not None:
        final_name = validate_name(name)
        _check_name_free(session, final_name, [p.id for p in everyone])
    else:
        names = list(dict.fromkeys(p.name for p in everyone if p.name))
        if len(names) > 1:
            listed = ", ".join(_label(p) for p in everyone if p.name)
            raise NameConflict(
                f"More than one of these people has a name: {listed}. Say which name the merged "
                "person keeps with --name.",
                names,
            )
        final_name = names[0] if names else None

    src_ids = sorted(srcs)
    moving = _face_ids_of(session, src_ids)
    staying = _face_ids_of(session, [target.id])
    snap = _Snapshot(session, [target.id, *src_ids], [*moving, *staying])

    # Rejections of the sources now speak for the merged person.
    carried = {r.face_id for r in _rejections_in_scope(session, src_ids, [])}
    already = set(
        session.scalars(select(Rejection.face_id).where(Rejection.person_id == target.id))
    )
    for p in srcs.values():
        p.name = None
    session.flush()
    target.name = final_name
    now = _now()
    for face_id in sorted(carried - already - set(moving)):
        session.add(Rejection(face_id=face_id, person_id=target.id, created_at=now))
    session.flush()
    for chunk in in_chunks(moving):
        # The user says these are one person now: drop "not this person" for faces moving in.
        session.execute(
            delete(Rejection).where(Rejection.person_id == target.id, Rejection.face_id.in_(chunk))
        )
        session.execute(update(Face).where(Face.id.in_(chunk)).values(person_id=target.id))
    _confirm(session, [*moving, *staying])
    for chunk in in_chunks(src_ids):
        session.execute(delete(Rejection).where(Rejection.person_id.in_(chunk)))
        session.execute(delete(Person).where(Person.id.in_(chunk)))
    session.expire_all()
    merged = ", ".join(_old_label(p["id"], p["name"]) for p in snap.people if p["id"] in srcs)
    result = f"person {target.id}" + (f" ({final_name})" if final_name else "")
    return _record(
        session,
        snap,
        actor=actor,
        action="merge",
        summary=f"merged {merged} into {result} ({len(moving)} faces moved)",
    )


def reject_faces(
    session: Session,
    face_ids: Sequence[int],
    *,
    actor: str,
    person: PersonRef | None = None,
) -> Decision:
    """Record that each face is not ``person`` (default: the person it is in now).

    A face currently in that person leaves it (unassigned, unconfirmed); clustering will never
    put it there again.
    """
    hold_write_lock(session, "reject")
    faces = _faces_by_id(session, face_ids)
    target = _resolve_person(session, person) if person is not None else None
    pairs: list[tuple[int, int]] = []
    for fid, face in sorted(faces.items()):
        pid = target.id if target is not None else face.person_id
        if pid is None:
            raise PhotoclusterError(
                f"Face {fid} is not in any person; say which person it is not with --from PERSON."
            )
        pairs.append((fid, pid))
    people = sorted({pid for _f, pid in pairs})
    snap = _Snapshot(session, people, sorted(faces))
    _mark_not(session, faces, pairs)
    whom = ", ".join(f"person {pid}" for pid in people)
    ids = _id_list([f for f, _p in pairs])
    return _record(
        session,
        snap,
        actor=actor,
        action="reject",
        summary=f"rejected {len(pairs)} face(s) from {whom}: {ids}",
    )


def assign_faces(
    session: Session,
    face_ids: list[int],
    person: str | int,
    *,
    actor: str,
    create: bool = True,
) -> Decision:
    """Put faces into ``person`` (id or name) and confirm them.

    A name nobody has yet creates that person when ``create`` is true. A rejection of a face by
    this person is lifted: the user now says it is them.
    """
    hold_write_lock(session, "assign")
    faces = _faces_by_id(session, face_ids)
    target: Person | None
    new_name: str | None = None
    try:
        target = _resolve_person(session, person)
    except NotFound:
        if not create or isinstance(person, int) or str(person).strip().isdigit():
            raise
        new_name = validate_name(str(person))
        _check_name_free(session, new_name, [])
        target = None
    previous = sorted({f.person_id for f in faces.values() if f.person_id is not None})
    scope = [*previous, *([target.id] if target else [])]
    snap = _Snapshot(session, scope, sorted(faces))
    if target is None:
        target = Person(name=new_name, hidden=False, created_at=_now())
        session.add(target)
        session.flush()
        snap.created.append(target.id)
    _put_into(session, faces, [(fid, target.id) for fid in sorted(faces)])
    ids = _id_list(sorted(faces))
    made = " (new)" if new_name else ""
    return _record(
        session,
        snap,
        actor=actor,
        action="assign",
        summary=f"assigned {len(faces)} face(s) to {_label(target)}{made}: {ids}",
    )


def answer_suggestions(
    session: Session,
    pairs: Mapping[int, int],
    *,
    accept: bool,
    actor: str,
) -> Decision:
    """Answer suggestions for several faces at once, each about its own named person
    (``pairs``: face id -> person id), as one decision (one undo restores them all).

    ``accept``: each face goes into its person, confirmed (a rejection of it by that person is
    lifted). Otherwise each face is recorded as not its person (and leaves it, if in it), as
    `reject_faces` does.
    """
    hold_write_lock(session, "accept" if accept else "refuse")
    faces = _faces_by_id(session, sorted(pairs))
    people = {int(pid) for pid in pairs.values()}
    for pid in sorted(people):
        if session.get(Person, pid) is None:
            raise NotFound(f"No person {pid}.")
    previous = {f.person_id for f in faces.values() if f.person_id is not None}
    snap = _Snapshot(session, sorted(people | previous), sorted(faces))
    rows = [(fid, int(pairs[fid])) for fid in sorted(faces)]
    (_put_into if accept else _mark_not)(session, faces, rows)
    whom = ", ".join(f"person {pid}" for pid in sorted(people))
    ids = _id_list(sorted(faces))
    verb = "accepted" if accept else "refused"
    return _record(
        session,
        snap,
        actor=actor,
        action="assign" if accept else "reject",
        summary=f"{verb} suggestions for {len(faces)} face(s) ({whom}): {ids}",
    )


def set_hidden(session: Session, person: PersonRef, hidden: bool, *, actor: str) -> Decision:
    """Hide a person from the naming queue and listings (``hidden=False`` shows it again)."""
    hold_write_lock(session, "hide" if hidden else "unhide")
    target = _resolve_person(session, person)
    if bool(target.hidden) == hidden:
        state = "hidden" if hidden else "not hidden"
        raise PhotoclusterError(f"{_label(target).capitalize()} is already {state}.")
    snap = _Snapshot(session, [target.id], [])
    target.hidden = hidden
    session.flush()
    action = "hide" if hidden else "unhide"
    return _record(session, snap, actor=actor, action=action, summary=f"{action} {_label(target)}")


def undo_last(session: Session) -> Decision:
    """Restore the rows the newest not-yet-undone decision changed; returns that decision."""
    hold_write_lock(session, "undo")
    decision = session.scalar(
        select(Decision).where(Decision.undone_at.is_(None)).order_by(Decision.id.desc()).limit(1)
    )
    if decision is None:
        raise PhotoclusterError("Nothing to undo: every recorded decision is already undone.")
    try:
        payload = json.loads(decision.undo)
    except json.JSONDecodeError as exc:
        raise PhotoclusterError(
            f"Decision {decision.id} has a damaged undo record; it cannot be undone."
        ) from exc
    _restore(session, payload)
    decision.undone_at = _now()
    session.flush()
    return decision


@dataclass(frozen=True)
class LogEntry:
    """One line of the decision log, as plain data."""

    id: int
    created_at: datetime
    actor: str
    action: str
    summary: str
    undone_at: datetime | None


def history(session: Session, limit: int | None = None) -> list[LogEntry]:
    """The decision log, newest first."""
    query = select(Decision).order_by(Decision.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [
        LogEntry(d.id, d.created_at, d.actor, d.action, d.summary, d.undone_at)
        for d in session.scalars(query)
    ]


__all__ = [
    "MAX_NAME_LENGTH",
    "LogEntry",
    "NameConflict",
    "answer_suggestions",
    "assign_faces",
    "find_person_by_name",
    "history",
    "merge_people",
    "reject_faces",
    "rename_person",
    "set_hidden",
    "undo_last",
    "validate_name",
]
