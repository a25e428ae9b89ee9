"""Whether a learned projection also places new faces, and what that was decided on.

``projections.placement``: the used projection placing held-out confirmed faces by cluster's
rule, raw vs learned (JSON; NULL: not measured, as for every projection learned before this).
``projections.places``: new faces are placed in the learned space (false for existing rows:
they were never measured at it, so new faces stay placed on the raw embedding until the next
`learn`).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("projections") as batch:
        batch.add_column(sa.Column("placement", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("places", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("projections") as batch:
        batch.drop_column("places")
        batch.drop_column("placement")
