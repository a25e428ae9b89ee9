"""A table for projections of the embeddings learned from the user's decisions.

``projections`` holds each learned projection (the newest row is current): the matrix and
offset as float32 blobs, the embedding model it was learned on, what it was learned from
(fingerprint, counts, the face ids), the cross-validated figures raw vs learned, whether it is
used and why not. Existing catalogs get an empty table: nothing is learned until asked.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projections",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("dims", sa.Integer(), nullable=False),
        sa.Column("matrix", sa.LargeBinary(), nullable=True),
        sa.Column("offset", sa.LargeBinary(), nullable=True),
        sa.Column("scale", sa.Float(), nullable=False),
        sa.Column("normalize_input", sa.Boolean(), nullable=False),
        sa.Column("normalize_output", sa.Boolean(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("named_faces", sa.Integer(), nullable=False),
        sa.Column("people", sa.Integer(), nullable=False),
        sa.Column("rejections", sa.Integer(), nullable=False),
        sa.Column("left_out", sa.Integer(), nullable=False),
        sa.Column("face_ids", sa.LargeBinary(), nullable=False),
        sa.Column("people_key", sa.String(64), nullable=False),
        sa.Column("metric_far", sa.Float(), nullable=True),
        sa.Column("raw_score", sa.Float(), nullable=True),
        sa.Column("learned_score", sa.Float(), nullable=True),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.Column("cv", sa.Text(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("projections")
