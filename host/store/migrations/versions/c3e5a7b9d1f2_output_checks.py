"""The on-device output check (issue 14): the output_check table, one row per model × device × run.

A new table only; existing runs have no rows (they were not checked). Fast on any store.
Downgrade drops the table (the checks are lost; the trials are untouched).

Revision ID: c3e5a7b9d1f2
Revises: b7d2e4f1c3a9
Create Date: 2026-12-05 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3e5a7b9d1f2"
down_revision: str | Sequence[str] | None = "b7d2e4f1c3a9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "output_check",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=1024), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inputs", sa.Integer(), nullable=False),
        sa.Column("precision", sa.String(length=16), nullable=False),
        sa.Column("tolerance", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("max_abs_error", sa.Float(), nullable=True),
        sa.Column("max_rel_error", sa.Float(), nullable=True),
        sa.Column("top1_agreement", sa.Float(), nullable=True),
        sa.Column("baseline_agreement", sa.Float(), nullable=True),
        sa.Column("baseline", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("command", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('ok', 'wrong', 'failed')", name=op.f("ck_output_check_status")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["run.id"], name=op.f("fk_output_check_run_id_run"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["device_id"], ["device.id"], name=op.f("fk_output_check_device_id_device")),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifact.id"], name=op.f("fk_output_check_artifact_id_artifact")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_check")),
        sa.UniqueConstraint(
            "run_id", "device_id", "artifact_id", name=op.f("uq_output_check_run_id_device_id_artifact_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("output_check")
