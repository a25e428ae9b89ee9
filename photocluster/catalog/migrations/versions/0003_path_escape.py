"""Photo paths that are not valid UTF-8: a U+FFFF already in a stored path becomes two.

From this revision the catalog stores each byte of a file name that is not valid UTF-8 as U+FFFF
and the Latin-1 character of that byte, and a literal U+FFFF as two (photocluster.catalog.fspath).
Earlier catalogs could only hold valid UTF-8 paths; this doubles any U+FFFF in them so they
read back unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ESCAPE = "\uffff"  # photocluster.catalog.fspath.ESCAPE, copied: a migration must not change later


def upgrade() -> None:
    op.get_bind().execute(
        sa.text("UPDATE photos SET path = replace(path, :e, :ee) WHERE path LIKE :has"),
        {"e": _ESCAPE, "ee": _ESCAPE * 2, "has": f"%{_ESCAPE}%"},
    )


def downgrade() -> None:
    # Paths holding undecodable bytes cannot be written back in the old form; keep them escaped.
    op.get_bind().execute(
        sa.text("UPDATE photos SET path = replace(path, :ee, :e) WHERE path LIKE :has"),
        {"e": _ESCAPE, "ee": _ESCAPE * 2, "has": f"%{_ESCAPE}{_ESCAPE}%"},
    )
