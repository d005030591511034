"""Guest instructions per inference under QEMU (issue 8): first, min and median per trial.

Three nullable columns on measurement; existing trials keep NULL (not counted). On SQLite, batch
mode adds them with ALTER TABLE ADD COLUMN, without copying the table. Downgrade drops them (the
counts are lost).

Revision ID: 7ac313d3ca12
Revises: 63ced09185ba
Create Date: 2026-11-25 15:11:14.938867
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7ac313d3ca12"
down_revision: str | Sequence[str] | None = "63ced09185ba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instructions_first", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("instructions_min", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("instructions_median", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("measurement", schema=None) as batch_op:
        batch_op.drop_column("instructions_median")
        batch_op.drop_column("instructions_min")
        batch_op.drop_column("instructions_first")
