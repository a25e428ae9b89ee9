"""Catalog tables as typed SQLAlchemy models. Plain data: no I/O or business logic here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from photocluster.catalog.fspath import CatalogPath


class Base(DeclarativeBase):
    pass


class Photo(Base):
    """One image file. Its faces are valid only for the encoder settings in ``encoder``."""

    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Any name the file system allows, stored losslessly (see fspath).
    path: Mapped[str] = mapped_column(CatalogPath(4096), unique=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    content_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    width: Mapped[int | None] = mapped_column(Integer)  # as displayed (EXIF orientation applied)
    height: Mapped[int | None] = mapped_column(Integer)
    taken_at: Mapped[datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))  # a PhotoStatus value
    error: Mapped[str | None] = mapped_column(Text)
    encoder: Mapped[str] = mapped_column(String(255))
    scanned_at: Mapped[datetime] = mapped_column(DateTime)

    faces: Mapped[list[Face]] = relationship(
        back_populates="photo", cascade="all, delete-orphan", passive_deletes=True
    )


class Person(Base):
    """A group of faces believed to be one human. The id is stable across re-clustering."""

    __tablename__ = "people"
    # Never reuse the id of a deleted person: ids are what scripts, exports and the decision log
    # refer to. (PostgreSQL sequences never reuse; SQLite needs AUTOINCREMENT.)
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), unique=True)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    faces: Mapped[list[Face]] = relationship(back_populates="person")


class Face(Base):
    """One detected face: its box in displayed-image pixels and its 128-d float32 embedding."""

    __tablename__ = "faces"
    __table_args__ = (
        Index("ix_faces_person", "person_id"),
        # Only the faces re-encoded in place: the face index's cheap check reads just these.
        Index(
            "ix_faces_revised",
            "id",
            "revision",
            sqlite_where=text("revision > 0"),
            postgresql_where=text("revision > 0"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    photo_id: Mapped[int] = mapped_column(ForeignKey("photos.id", ondelete="CASCADE"), index=True)
    left: Mapped[int] = mapped_column(Integer)
    top: Mapped[int] = mapped_column(Integer)
    right: Mapped[int] = mapped_column(Integer)
    bottom: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)  # box width in displayed pixels
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    # True when a human put this face in its person; clustering never moves it.
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    # How often a re-scan rewrote this face's embedding in place (the photo changed, the face
    # stayed): the face index re-reads the faces whose revision it has not seen.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    photo: Mapped[Photo] = relationship(back_populates="faces")
    person: Mapped[Person | None] = relationship(back_populates="faces")


class Rejection(Base):
    """A human said this face is not this person; clustering never puts it there again."""

    __tablename__ = "rejections"
    __table_args__ = (UniqueConstraint("face_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Decision(Base):
    """The naming log: what a human decided, when, and the state needed to undo it (JSON)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    undo: Mapped[str] = mapped_column(Text)  # JSON: rows to restore
    undone_at: Mapped[datetime | None] = mapped_column(DateTime)


class LearnedProjection(Base):
    """A projection of the embeddings learned from the user's decisions (people/projection.py),
    what it was learned from and what cross-validation measured. The newest row is current."""

    __tablename__ = "projections"
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012 (SQLAlchemy reads it)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    model: Mapped[str] = mapped_column(String(255))  # the embedding model it was learned on
    method: Mapped[str] = mapped_column(String(32))  # the best learned method ("raw": none)
    dims: Mapped[int] = mapped_column(Integer)
    # float32 (dims x 128) matrix and (128,) offset; NULL when nothing could be learned
    matrix: Mapped[bytes | None] = mapped_column(LargeBinary)
    offset: Mapped[bytes | None] = mapped_column(LargeBinary)
    scale: Mapped[float] = mapped_column(Float, default=1.0)
    normalize_input: Mapped[bool] = mapped_column(Boolean, default=False)
    normalize_output: Mapped[bool] = mapped_column(Boolean, default=False)
    # what it was learned from: a SHA-256 of the decisions, their counts and the face ids
    fingerprint: Mapped[str] = mapped_column(String(64))
    named_faces: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)
    rejections: Mapped[int] = mapped_column(Integer)
    left_out: Mapped[int] = mapped_column(Integer, default=0)  # faces of contradicting decisions
    face_ids: Mapped[bytes] = mapped_column(LargeBinary)  # int64, sorted: the faces learned from
    people_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the named people's ids
    # cross-validation: the false-match rate scored, raw and learned TAR there, JSON per method
    metric_far: Mapped[float | None] = mapped_column(Float)
    raw_score: Mapped[float | None] = mapped_column(Float)
    learned_score: Mapped[float | None] = mapped_column(Float)
    gain: Mapped[float | None] = mapped_column(Float)
    cv: Mapped[str] = mapped_column(Text)
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    # placing held-out confirmed faces raw vs learned (JSON of learn.PlacementScore; NULL: not
    # measured), and whether new faces are placed with it
    placement: Mapped[str | None] = mapped_column(Text)
    places: Mapped[bool] = mapped_column(Boolean, default=False)


class Meta(Base):
    """Small key/value facts about the catalog (e.g. the last clustering parameters)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


__all__ = [
    "Base",
    "Decision",
    "Face",
    "LearnedProjection",
    "Meta",
    "Person",
    "Photo",
    "Rejection",
]
