"""an artifact's events by seq: ix_events_artifact_id (artifact_id) becomes ix_events_artifact_id_seq (artifact_id, seq)

`ls --as-of` finds each artifact's last change by a time with ``WHERE
artifact_id = ? … ORDER BY seq DESC LIMIT 1``. On the single-column index
that meant every event of the artifact, then a sort; and PostgreSQL, without
statistics (a catalog just restored or bulk-loaded, before autovacuum
analyzed it), walked the whole log backwards by seq for each artifact
instead: more than 6½ minutes for the first of 20 pages listing 100,000
artifacts (a benchmark's, stopped unfinished). The two-column index gives
the rows in order, so the newest is the first read, whatever the planner
knows. It replaces the old index (each write still updates one index here).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_artifact_id_seq", "events", ["artifact_id", "seq"])
    op.drop_index("ix_events_artifact_id", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_artifact_id", "events", ["artifact_id"])
    op.drop_index("ix_events_artifact_id_seq", table_name="events")
