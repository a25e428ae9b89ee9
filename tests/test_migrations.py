"""Schema upgrades from earlier revisions keep every row (users upgrade catalogs in place)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import create_engine, func, select, text

from photocluster.catalog.db import open_catalog, to_url
from photocluster.catalog.embeddings import embedding_to_blob
from photocluster.catalog.migrate import current_revision, head_revision, upgrade
from photocluster.catalog.models import Face, LearnedProjection, Person, Photo, Rejection


def _fill_revision_0001(db_path: str) -> None:
    engine = create_engine(to_url(db_path))
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    now = datetime(2024, 1, 1)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.execute(
            text(
                "INSERT INTO photos (id, path, size, mtime_ns, status, encoder, scanned_at) "
                "VALUES (1, '/p/a.jpg', 10, 1, 'ok', 'm;hog', :t)"
            ),
            {"t": now},
        )
        for pid, name in ((1, "Ada"), (2, None), (3, "Bob")):
            conn.execute(
                text("INSERT INTO people (id, name, hidden, created_at) VALUES (:i, :n, 0, :t)"),
                {"i": pid, "n": name, "t": now},
            )
        for fid, person in ((1, 1), (2, 2), (3, 3)):
            conn.execute(
                text(
                    "INSERT INTO faces (id, photo_id, left, top, right, bottom, size, embedding, "
                    "person_id, confirmed) VALUES (:i, 1, 0, 0, 10, 10, 10, :e, :p, 1)"
                ),
                {"i": fid, "e": embedding_to_blob([0.0] * 128), "p": person},
            )
        conn.execute(
            text("INSERT INTO rejections (face_id, person_id, created_at) VALUES (2, 1, :t)"),
            {"t": now},
        )
    engine.dispose()


def test_upgrade_from_0001_keeps_rows_and_stops_reusing_ids(db_path: str) -> None:
    _fill_revision_0001(db_path)
    cat = open_catalog(db_path)
    try:
        assert current_revision(cat.engine) == head_revision()
        with cat.session() as s:
            assert s.scalar(select(func.count()).select_from(Face)) == 3
            assert s.scalar(select(func.count()).select_from(Rejection)) == 1, (
                "rebuilding the faces table must not cascade-delete rejections"
            )
            assert {p.name for p in s.scalars(select(Person))} == {"Ada", None, "Bob"}
            assert s.get(Face, 1).person.name == "Ada"  # type: ignore[union-attr]
            # Delete the newest person and face, then add new ones: their ids are not reused.
            s.delete(s.get(Face, 3))
            s.delete(s.get(Person, 3))
        with cat.session() as s:
            person = Person(name="Cyd", hidden=False, created_at=datetime(2024, 1, 2))
            s.add(person)
            photo = s.get(Photo, 1)
            assert photo is not None
            face = Face(
                photo_id=1,
                left=0,
                top=0,
                right=5,
                bottom=5,
                size=5,
                embedding=embedding_to_blob([0.0] * 128),
            )
            s.add(face)
            s.flush()
            assert person.id == 4 and face.id == 4
        with cat.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        cat.close()


def test_upgrade_to_face_revisions_starts_every_face_at_zero(db_path: str) -> None:
    _fill_revision_0001(db_path)
    engine = create_engine(to_url(db_path))
    upgrade(engine, "0003")
    engine.dispose()
    cat = open_catalog(db_path)
    try:
        with cat.session() as s:
            assert s.scalars(select(Face.revision)).all() == [0, 0, 0]
            s.get_one(Face, 2).revision = 1
        with cat.engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id, revision FROM faces WHERE revision > 0"
            ).all()
            assert "ix_faces_revised" in str(plan), "the face index's check reads a small index"
            assert conn.exec_driver_sql(
                "SELECT id, revision FROM faces WHERE revision > 0"
            ).all() == [(2, 1)]
    finally:
        cat.close()


def test_upgrade_from_0004_adds_an_empty_projections_table(db_path: str) -> None:
    _fill_revision_0001(db_path)
    engine = create_engine(to_url(db_path))
    upgrade(engine, "0004")
    engine.dispose()
    cat = open_catalog(db_path)
    try:
        assert current_revision(cat.engine) == head_revision()
        with cat.session() as s:
            assert s.scalar(select(func.count()).select_from(Face)) == 3
            assert s.scalars(select(LearnedProjection)).all() == []
            s.add(
                LearnedProjection(
                    created_at=datetime(2026, 12, 3),
                    model="m",
                    method="raw",
                    dims=128,
                    scale=1.0,
                    normalize_input=False,
                    normalize_output=False,
                    fingerprint="f",
                    named_faces=0,
                    people=0,
                    rejections=0,
                    left_out=0,
                    face_ids=b"",
                    people_key="k",
                    cv="[]",
                    used=False,
                    reason="too few",
                )
            )
        with cat.session() as s:
            assert s.scalars(select(LearnedProjection.reason)).all() == ["too few"]
    finally:
        cat.close()
