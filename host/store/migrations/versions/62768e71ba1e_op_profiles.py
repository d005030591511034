"""Per-op profiles (issue 10): the op_stat table, one row per op or counted kernel of a trial.

A new table only; existing trials have no rows (profiled by `lab bench --ops` from now on). Fast on
any store. Downgrade drops the table (the per-op rows are lost; each trial's whole profile stays in
measurement.result_extra).

Revision ID: 62768e71ba1e
Revises: 7ec4fdff3a6d
Create Date: 2026-11-25 16:25:19.373014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "62768e71ba1e"
# Written on top of 7ac313d3ca12 beside the farm tables' 7ec4fdff3a6d; chained after it so that
# the scripts keep one head.
down_revision: str | Sequence[str] | None = "7ec4fdff3a6d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "op_stat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("measurement_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("op_index", sa.Integer(), nullable=False),
        sa.Column("node_type", sa.String(length=255), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("avg_ms", sa.Float(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("times_called", sa.Integer(), nullable=True),
        sa.Column("instructions", sa.Float(), nullable=True),
        sa.CheckConstraint("source IN ('op', 'kernel')", name=op.f("ck_op_stat_source")),
        sa.ForeignKeyConstraint(
            ["measurement_id"], ["measurement.id"], name=op.f("fk_op_stat_measurement_id_measurement"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_op_stat")),
        sa.UniqueConstraint("measurement_id", "source", "op_index", name=op.f("uq_op_stat_measurement_id_source_op_index")),
    )


def downgrade() -> None:
    op.drop_table("op_stat")
