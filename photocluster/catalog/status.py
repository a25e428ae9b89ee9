"""Read-only summaries of the catalog for `status`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.photo_status import PhotoStatus


def catalog_status(session: Session) -> dict[str, Any]:
    by_status = dict(
        session.execute(select(Photo.status, func.count()).group_by(Photo.status)).all()
    )
    encoders = dict(
        session.execute(select(Photo.encoder, func.count()).group_by(Photo.encoder)).all()
    )
    faces = session.scalar(select(func.count()).select_from(Face)) or 0
    assigned = session.scalar(select(func.count()).where(Face.person_id.is_not(None))) or 0
    # People are people with faces: one whose faces all left (rejected, moved) is not counted.
    with_faces = Person.id.in_(select(Face.person_id).where(Face.person_id.is_not(None)))
    people = session.scalar(select(func.count()).select_from(Person).where(with_faces)) or 0
    named = session.scalar(select(func.count()).where(with_faces, Person.name.is_not(None))) or 0
    hidden = session.scalar(select(func.count()).where(with_faces, Person.hidden.is_(True))) or 0
    return {
        "photos": sum(by_status.values()),
        "photos_ok": by_status.get(PhotoStatus.OK, 0),
        "photos_no_faces": by_status.get(PhotoStatus.NO_FACES, 0),
        "photos_failed": by_status.get(PhotoStatus.FAILED, 0),
        "faces": faces,
        "assigned_faces": assigned,
        "unassigned_faces": faces - assigned,
        "people": people,
        "named_people": named,
        "hidden_people": hidden,
        "encoders": encoders,
    }


def failed_photos(session: Session) -> list[tuple[str, str]]:
    rows = session.execute(
        select(Photo.path, Photo.error)
        .where(Photo.status == PhotoStatus.FAILED)
        .order_by(Photo.path)
    ).all()
    return [(r.path, r.error or "unknown error") for r in rows]
