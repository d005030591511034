"""Device farm (issue 9): agents' hosts, their devices, submitted models (bytes) and jobs.

Four new tables; nothing existing changes. The definitions are frozen here (not imported from
the models) so this migration keeps creating the same schema when the models change later.
Downgrade drops them (queued jobs and stored models are lost; runs they produced stay).

Revision ID: 7ec4fdff3a6d
Revises: 7ac313d3ca12
Create Date: 2026-11-25 16:22:32
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7ec4fdff3a6d"
down_revision: str | Sequence[str] | None = "7ac313d3ca12"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "farm_host",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("machine", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("agent_uid", sa.String(length=32), nullable=False),
        sa.Column("lab_version", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farm_host")),
        sa.UniqueConstraint("name", name=op.f("uq_farm_host_name")),
    )
    op.create_table(
        "farm_device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=512), nullable=False),
        sa.Column("serial", sa.String(length=255), nullable=False),
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("abis", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"], ["farm_host.id"], name=op.f("fk_farm_device_host_id_farm_host"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farm_device")),
        sa.UniqueConstraint("key", name=op.f("uq_farm_device_key")),
    )
    op.create_index(op.f("ix_farm_device_model"), "farm_device", ["model"])
    op.create_index(op.f("ix_farm_device_host_id"), "farm_device", ["host_id"])
    op.create_table(
        "farm_model",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farm_model")),
        sa.UniqueConstraint("sha256", name="uq_farm_model_sha256"),
    )
    op.create_table(
        "farm_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("device_key", sa.String(length=512), nullable=True),
        sa.Column("device_serial", sa.String(length=255), nullable=True),
        sa.Column("device_model", sa.String(length=255), nullable=True),
        sa.Column("abi", sa.String(length=64), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=32), nullable=True),
        sa.Column("host_name", sa.String(length=255), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed', 'cancelled')", name=op.f("ck_farm_job_status")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["farm_device.id"], name=op.f("fk_farm_job_device_id_farm_device"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["run.id"], name=op.f("fk_farm_job_run_id_run"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farm_job")),
    )
    op.create_index(op.f("ix_farm_job_status_priority_id"), "farm_job", ["status", "priority", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_farm_job_status_priority_id"), table_name="farm_job")
    op.drop_table("farm_job")
    op.drop_table("farm_model")
    op.drop_index(op.f("ix_farm_device_host_id"), table_name="farm_device")
    op.drop_index(op.f("ix_farm_device_model"), table_name="farm_device")
    op.drop_table("farm_device")
    op.drop_table("farm_host")
