"""The JSON report (schema ``photocluster.report/2``): every photo, person and face in one file.

:func:`build_report` reads the catalog (never writes) and returns plain data. The schema is in
``report_schema.json`` next to this module (JSON Schema draft 2020-12); bump ``SCHEMA`` when a
field changes meaning or disappears (adding optional fields keeps the version).
Boxes are in pixels of the photo as displayed (EXIF orientation applied).

Version 2 counts what a user means by people: ``counts.people`` and ``counts.named_people`` are
people with at least one face who are not hidden (version 1 counted every row, hidden people and
people whose faces had all left included); ``counts.hidden_people`` is new; a person without
faces is not listed in ``people``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.models import Face, Person, Photo
from photocluster.catalog.photo_status import PhotoStatus

SCHEMA = "photocluster.report/2"


def report_schema() -> dict[str, Any]:
    """The JSON Schema the report follows."""
    text = resources.files("photocluster.export").joinpath("report_schema.json").read_text()
    return dict(json.loads(text))


def _box(f: Any) -> dict[str, int]:
    return {"left": f.left, "top": f.top, "right": f.right, "bottom": f.bottom}


def build_report(session: Session) -> dict[str, Any]:
    """The whole catalog as one JSON-ready dict (see the module docstring and README)."""
    photos = session.execute(
        select(
            Photo.id,
            Photo.path,
            Photo.width,
            Photo.height,
            Photo.taken_at,
            Photo.status,
            Photo.error,
        ).order_by(Photo.path)
    ).all()
    paths = {p.id: p.path for p in photos}
    faces = session.execute(
        select(
            Face.id,
            Face.photo_id,
            Face.person_id,
            Face.confirmed,
            Face.left,
            Face.top,
            Face.right,
            Face.bottom,
        ).order_by(Face.id)
    ).all()
    by_photo: dict[int, list[int]] = defaultdict(list)
    by_person: dict[int, list[Any]] = defaultdict(list)
    unassigned = []
    for f in faces:
        by_photo[f.photo_id].append(f.id)
        if f.person_id is None:
            unassigned.append({"id": f.id, "photo": paths[f.photo_id], "box": _box(f)})
        else:
            by_person[f.person_id].append(f)
    people = [
        _person(person, by_person[person.id], paths)
        for person in session.execute(select(Person)).scalars()
        if by_person.get(person.id)  # else every face left (rejected, moved): not a person
    ]
    people.sort(key=lambda p: (-p["face_count"], p["id"]))
    return {
        "schema": SCHEMA,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": {
            "photos": len(photos),
            "photos_failed": sum(1 for p in photos if p.status == PhotoStatus.FAILED),
            "faces": len(faces),
            "people": sum(1 for p in people if not p["hidden"]),
            "named_people": sum(1 for p in people if not p["hidden"] and p["name"] is not None),
            "hidden_people": sum(1 for p in people if p["hidden"]),
            "unassigned_faces": len(unassigned),
        },
        "people": people,
        "unassigned": unassigned,
        "photos": [_photo(p, by_photo.get(p.id, [])) for p in photos],
    }


def _person(person: Person, members: list[Any], paths: dict[int, str]) -> dict[str, Any]:
    return {
        "id": person.id,
        "name": person.name,
        "hidden": bool(person.hidden),
        "face_count": len(members),
        "photo_count": len({f.photo_id for f in members}),
        "faces": [
            {
                "id": f.id,
                "photo": paths[f.photo_id],
                "box": _box(f),
                "confirmed": bool(f.confirmed),
            }
            for f in members
        ],
    }


def _photo(p: Any, face_ids: list[int]) -> dict[str, Any]:
    return {
        "path": p.path,
        "width": p.width,
        "height": p.height,
        "taken_at": p.taken_at.isoformat() if p.taken_at else None,
        "status": p.status,
        "error": p.error,
        "face_ids": face_ids,
    }
