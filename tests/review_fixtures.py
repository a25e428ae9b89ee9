"""A small catalog for the review page's tests: fake faces (coloured squares), people made
directly, some faces left in no person. No dlib."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from photocluster.catalog.db import Catalog
from photocluster.catalog.models import Face, Person
from photocluster.ingest.scan import scan
from tests.fakes import make_photo

# x position of each person's square: Face.left says whose face it is.
COLUMN = {"ada": 10, "bob": 110, "cyd": 210, "dee": 310}


def build_library(root: Path, counts: dict[str, int]) -> Path:
    most = max(counts.values())
    for i in range(most):
        faces = [(who, (COLUMN[who], 20 + (i % 7) * 5, 60)) for who, n in counts.items() if i < n]
        make_photo(root / f"p{i:03d}.jpg", faces, size=(400, 200))
    return root


def faces_of(catalog: Catalog, who: str) -> list[int]:
    with catalog.session() as s:
        return list(s.scalars(select(Face.id).where(Face.left == COLUMN[who]).order_by(Face.id)))


def make_person(catalog: Catalog, face_ids: list[int], name: str | None = None) -> int:
    with catalog.session() as s:
        p = Person(name=name, hidden=False, created_at=datetime(2024, 1, 2, 3, 4, 5))
        s.add(p)
        s.flush()
        s.execute(update(Face).where(Face.id.in_(face_ids)).values(person_id=p.id))
        return p.id


def build_review_catalog(tmp_path: Path, catalog: Catalog, fake_options: Any) -> dict[str, Any]:
    """ada: 8 faces, 6 in an unnamed person and 2 in no person (likely ada's); bob: 5 faces in
    'Bob'; cyd: 4 faces in an unnamed person; dee: 3 faces in an unnamed person."""
    root = build_library(tmp_path / "lib", {"ada": 8, "bob": 5, "cyd": 4, "dee": 3})
    scan(catalog, fake_options(root))
    ada = faces_of(catalog, "ada")
    ids = {
        "ada": make_person(catalog, ada[:6]),
        "bob": make_person(catalog, faces_of(catalog, "bob"), "Bob"),
        "cyd": make_person(catalog, faces_of(catalog, "cyd")),
        "dee": make_person(catalog, faces_of(catalog, "dee")),
    }
    return {"people": ids, "ada_loose": ada[6:], "ada_faces": ada[:6], "root": root}
