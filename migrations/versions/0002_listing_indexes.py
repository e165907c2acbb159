"""indexes for keyset-paged listings: (created_at, id) and (size, id)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_artifacts_created_at_id", "artifacts", ["created_at", "id"])
    op.create_index("ix_artifacts_size_id", "artifacts", ["size", "id"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_size_id", table_name="artifacts")
    op.drop_index("ix_artifacts_created_at_id", table_name="artifacts")
