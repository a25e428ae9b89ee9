"""Faces remember how often a re-scan rewrote their embedding in place (``faces.revision``).

A photo that changed on disk keeps the ids of faces found in the same place, with new
embeddings; the face index, which keys on face ids, re-reads the faces whose revision it has
not seen. A partial index holds only the revised faces, so that check stays cheap.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("faces", sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        "ix_faces_revised",
        "faces",
        ["id", "revision"],
        sqlite_where=sa.text("revision > 0"),
        postgresql_where=sa.text("revision > 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_faces_revised", table_name="faces")
    with op.batch_alter_table("faces", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("revision")
