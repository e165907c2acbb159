"""indexes for the web pages at 1M rows: artifacts by original path, by prefix and by status (each in
creation order), events by path and by action (each in seq order; replaces the index on action alone)

Each serves a filter of the artifacts list or the audit log as an ordered
range, so a page reads its 50 rows instead of walking the table until it
has found them (see benchmarks/README.md, "The web pages at 1,000,000 rows").

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_artifacts_original_path", "artifacts", ["original_path"])
    op.create_index("ix_artifacts_prefix_created_at", "artifacts", ["prefix", "created_at", "id"])
    op.create_index("ix_artifacts_status_created_at", "artifacts", ["status", "created_at", "id"])
    op.create_index("ix_events_path_seq", "events", ["path", "seq"])
    op.create_index("ix_events_action_seq", "events", ["action", "seq"])
    op.drop_index("ix_events_action", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_action", "events", ["action"])
    op.drop_index("ix_events_action_seq", table_name="events")
    op.drop_index("ix_events_path_seq", table_name="events")
    op.drop_index("ix_artifacts_status_created_at", table_name="artifacts")
    op.drop_index("ix_artifacts_prefix_created_at", table_name="artifacts")
    op.drop_index("ix_artifacts_original_path", table_name="artifacts")
