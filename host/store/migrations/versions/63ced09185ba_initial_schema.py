"""Initial schema: device, artifact, tool, run, measurement (one row per trial) and sample (packed per-invoke times).

Table definitions are frozen here, not imported from the models, so later model changes never
rewrite history. Downgrade drops every table: only for an empty store or a throwaway copy.

Revision ID: 63ced09185ba
Revises:
Create Date: 2026-11-25 15:11:07.640903
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "63ced09185ba"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('artifact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=1024), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('role', sa.String(length=64), nullable=True),
    sa.Column('build_id', sa.String(length=255), nullable=True),
    sa.Column('manifest', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_artifact')),
    sa.UniqueConstraint('sha256', name=op.f('uq_artifact_sha256'))
    )
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_artifact_name'), ['name'], unique=False)

    op.create_table('device',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('serial', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.String(length=1024), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('abis', sa.JSON(), nullable=False),
    sa.Column('model', sa.String(length=255), nullable=True),
    sa.Column('manufacturer', sa.String(length=255), nullable=True),
    sa.Column('soc', sa.String(length=255), nullable=True),
    sa.Column('sdk', sa.Integer(), nullable=True),
    sa.Column('release', sa.String(length=64), nullable=True),
    sa.Column('cores', sa.Integer(), nullable=True),
    sa.Column('max_freqs_khz', sa.JSON(), nullable=False),
    sa.Column('emulation', sa.String(length=255), nullable=True),
    sa.CheckConstraint("kind IN ('physical', 'emulator', 'emulated')", name=op.f('ck_device_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_device')),
    sa.UniqueConstraint('serial', 'fingerprint', name=op.f('uq_device_serial_fingerprint'))
    )
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_device_model'), ['model'], unique=False)

    op.create_table('run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uid', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('lab_version', sa.String(length=64), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('pid_started', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.CheckConstraint("kind IN ('bench', 'run')", name=op.f('ck_run_kind')),
    sa.CheckConstraint("status IN ('running', 'ok', 'partial', 'failed', 'interrupted')", name=op.f('ck_run_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_run')),
    sa.UniqueConstraint('uid', name=op.f('uq_run_uid'))
    )
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_run_started_at'), ['started_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_run_status'), ['status'], unique=False)

    op.create_table('tool',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('abi', sa.String(length=64), nullable=False),
    sa.Column('version', sa.String(length=255), nullable=True),
    sa.Column('path', sa.Text(), nullable=True),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('source', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tool')),
    sa.UniqueConstraint('sha256', name=op.f('uq_tool_sha256'))
    )
    op.create_table('measurement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('device_id', sa.Integer(), nullable=False),
    sa.Column('artifact_id', sa.Integer(), nullable=False),
    sa.Column('tool_id', sa.Integer(), nullable=True),
    sa.Column('content_hash', sa.String(length=32), nullable=False),
    sa.Column('trial_index', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('duration_s', sa.Float(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('raw_output', sa.Text(), nullable=False),
    sa.Column('threads', sa.Integer(), nullable=False),
    sa.Column('num_runs', sa.Integer(), nullable=False),
    sa.Column('warmup_runs', sa.Integer(), nullable=False),
    sa.Column('use_xnnpack', sa.Boolean(), nullable=False),
    sa.Column('min_secs', sa.Float(), nullable=True),
    sa.Column('timeout_s', sa.Float(), nullable=False),
    sa.Column('extra_flags', sa.JSON(), nullable=False),
    sa.Column('has_result', sa.Boolean(), nullable=False),
    sa.Column('runs_count', sa.Integer(), nullable=True),
    sa.Column('curr_us', sa.Float(), nullable=True),
    sa.Column('first_us', sa.Float(), nullable=True),
    sa.Column('min_us', sa.Float(), nullable=True),
    sa.Column('max_us', sa.Float(), nullable=True),
    sa.Column('avg_us', sa.Float(), nullable=True),
    sa.Column('std_us', sa.Float(), nullable=True),
    sa.Column('p5_us', sa.Float(), nullable=True),
    sa.Column('median_us', sa.Float(), nullable=True),
    sa.Column('p95_us', sa.Float(), nullable=True),
    sa.Column('warmup_stats', sa.JSON(), nullable=True),
    sa.Column('init_us', sa.Float(), nullable=True),
    sa.Column('first_inference_us', sa.Float(), nullable=True),
    sa.Column('warmup_avg_us', sa.Float(), nullable=True),
    sa.Column('inference_avg_us', sa.Float(), nullable=True),
    sa.Column('peak_memory_init_mb', sa.Float(), nullable=True),
    sa.Column('peak_memory_overall_mb', sa.Float(), nullable=True),
    sa.Column('memory_delta_init_mb', sa.Float(), nullable=True),
    sa.Column('memory_delta_overall_mb', sa.Float(), nullable=True),
    sa.Column('periodic_peak_memory_mb', sa.Float(), nullable=True),
    sa.Column('reported_threads', sa.Integer(), nullable=True),
    sa.Column('reported_xnnpack', sa.Boolean(), nullable=True),
    sa.Column('xnnpack_applied', sa.Boolean(), nullable=True),
    sa.Column('model_size_mb', sa.Float(), nullable=True),
    sa.Column('timer_overhead_us', sa.Float(), nullable=True),
    sa.Column('runner', sa.Text(), nullable=True),
    sa.Column('result_warnings', sa.JSON(), nullable=False),
    sa.Column('result_extra', sa.JSON(), nullable=True),
    sa.Column('nan_fields', sa.JSON(), nullable=True),
    sa.Column('state_before', sa.JSON(), nullable=True),
    sa.Column('state_after', sa.JSON(), nullable=True),
    sa.CheckConstraint("status IN ('ok', 'failed', 'timeout')", name=op.f('ck_measurement_status')),
    sa.ForeignKeyConstraint(['artifact_id'], ['artifact.id'], name=op.f('fk_measurement_artifact_id_artifact')),
    sa.ForeignKeyConstraint(['device_id'], ['device.id'], name=op.f('fk_measurement_device_id_device')),
    sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_measurement_run_id_run'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tool_id'], ['tool.id'], name=op.f('fk_measurement_tool_id_tool')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_measurement')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_measurement_content_hash'))
    )
    with op.batch_alter_table('measurement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_measurement_artifact_id_device_id_run_id'), ['artifact_id', 'device_id', 'run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurement_device_id_run_id'), ['device_id', 'run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_measurement_run_id_artifact_id_device_id'), ['run_id', 'artifact_id', 'device_id'], unique=False)

    op.create_table('sample',
    sa.Column('measurement_id', sa.Integer(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('encoding', sa.String(length=16), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['measurement_id'], ['measurement.id'], name=op.f('fk_sample_measurement_id_measurement'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('measurement_id', name=op.f('pk_sample'))
    )


def downgrade() -> None:
    op.drop_table('sample')
    with op.batch_alter_table('measurement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_measurement_run_id_artifact_id_device_id'))
        batch_op.drop_index(batch_op.f('ix_measurement_device_id_run_id'))
        batch_op.drop_index(batch_op.f('ix_measurement_artifact_id_device_id_run_id'))

    op.drop_table('measurement')
    op.drop_table('tool')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_run_status'))
        batch_op.drop_index(batch_op.f('ix_run_started_at'))

    op.drop_table('run')
    with op.batch_alter_table('device', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_device_model'))

    op.drop_table('device')
    with op.batch_alter_table('artifact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_artifact_name'))

    op.drop_table('artifact')
