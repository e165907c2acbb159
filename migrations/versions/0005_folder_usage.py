"""folder_usage: files and bytes on disk per folder, kept as artifacts change, so a
writer can tell it crossed a limit without an aggregate query

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "folder_usage",
        sa.Column("folder", sa.String(512), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("folder", name="pk_folder_usage"),
    )
    op.execute(
        "INSERT INTO folder_usage (folder, files, bytes) SELECT folder, count(*), sum(size) FROM artifacts "
        "WHERE status IN ('active', 'archived', 'quarantined') GROUP BY folder"
    )


def downgrade() -> None:
    op.drop_table("folder_usage")
