"""The devices a farm job could not be set up on: it is requeued for another device, not failed.

One nullable JSON column on farm_job (a list of farm_device ids); NULL for every existing job.
Downgrade drops it.

Revision ID: b7d2e4f1c3a9
Revises: a1f3c9d2e7b4
Create Date: 2026-12-05 11:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7d2e4f1c3a9"
down_revision: str | Sequence[str] | None = "a1f3c9d2e7b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("farm_job", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_devices", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("farm_job", schema=None) as batch_op:
        batch_op.drop_column("failed_devices")
