"""The file name each trial benchmarked, kept per trial: two files with the same bytes (one artifact,
one sha256) benchmarked under different names keep both names, and both rows in every table.

One nullable column on measurement; trials stored before keep NULL and show their artifact's name.
On SQLite, batch mode adds it with ALTER TABLE ADD COLUMN. Downgrade drops it (the names are lost).

Revision ID: a1f3c9d2e7b4
Revises: 62768e71ba1e
Create Date: 2026-12-05 11:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "a1f3c9d2e7b4"
down_revision: str | Sequence[str] | None = "62768e71ba1e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_name", sa.String(length=1024), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_column("model_name")
