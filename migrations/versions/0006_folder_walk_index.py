"""artifacts(folder, path, size, status): one covering index for the folder-by-folder
walk of reconcile and the per-folder sums of limits (replaces the index on folder alone)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_artifacts_folder_path", "artifacts", ["folder", "path", "size", "status"])
    op.drop_index("ix_artifacts_folder", table_name="artifacts")


def downgrade() -> None:
    op.create_index("ix_artifacts_folder", "artifacts", ["folder"])
    op.drop_index("ix_artifacts_folder_path", table_name="artifacts")
