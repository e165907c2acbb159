"""initial schema: artifacts, events, chain_head, holds, policy_floors, verify runs

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "artifacts",
        sa.Column("id", Id, nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("original_path", sa.String(512), nullable=False),
        sa.Column("folder", sa.String(512), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("prefix", sa.String(64), nullable=False),
        sa.Column("ext", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("retain_until", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'archived', 'deleted', 'missing', 'quarantined')", name="ck_artifacts_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("path", name="uq_artifacts_path"),
    )
    op.create_index("ix_artifacts_folder", "artifacts", ["folder"])
    op.create_index("ix_artifacts_sha256", "artifacts", ["sha256"])
    op.create_index("ix_artifacts_type_created_at", "artifacts", ["type", "created_at"])

    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("artifact_id", Id, nullable=True),
        sa.Column("path", sa.String(512), nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name="fk_events_artifact_id_artifacts"),
        sa.PrimaryKeyConstraint("seq", name="pk_events"),
    )
    op.create_index("ix_events_action", "events", ["action"])
    op.create_index("ix_events_artifact_id", "events", ["artifact_id"])

    chain_head = op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_chain_head_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_chain_head"),
    )
    op.bulk_insert(chain_head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])

    op.create_table(
        "holds",
        sa.Column("id", Id, nullable=False),
        sa.Column("selector_kind", sa.String(16), nullable=False),
        sa.Column("selector", sa.String(512), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("until", sa.DateTime(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", sa.DateTime(), nullable=False),
        sa.Column("placed_by", sa.String(256), nullable=False),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("released_by", sa.String(256), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
    )

    op.create_table(
        "policy_floors",
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("type", name="pk_policy_floors"),
    )

    op.create_table(
        "verify_runs",
        sa.Column("id", Id, nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("sample", sa.Float(), nullable=True),
        sa.Column("subset", sa.String(32), nullable=True),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_verify_runs"),
    )

    op.create_table(
        "verify_results",
        sa.Column("id", Id, nullable=False),
        sa.Column("run_id", Id, nullable=False),
        sa.Column("artifact_id", Id, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["verify_runs.id"], name="fk_verify_results_run_id_verify_runs"),
        sa.ForeignKeyConstraint(["artifact_id"], ["artifacts.id"], name="fk_verify_results_artifact_id_artifacts"),
        sa.PrimaryKeyConstraint("id", name="pk_verify_results"),
    )
    op.create_index("ix_verify_results_run_id", "verify_results", ["run_id"])
    op.create_index("ix_verify_results_artifact_id", "verify_results", ["artifact_id"])


def downgrade() -> None:
    for table in ("verify_results", "verify_runs", "policy_floors", "holds", "chain_head", "events", "artifacts"):
        op.drop_table(table)
