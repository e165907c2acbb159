"""explain pairs: artifacts.pair_id links the JSON and CSV of one report; it is
one of the recorded facts that never change

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BEFORE = ("original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256")
AFTER = (*BEFORE, "pair_id")
MESSAGE = "the recorded facts of an artifact never change"


def _immutable_trigger(columns: tuple[str, ...]) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.execute("DROP TRIGGER artifacts_immutable ON artifacts" if postgres else "DROP TRIGGER artifacts_immutable")
    when = "UPDATE OF " + ", ".join(columns)
    if postgres:
        op.execute(f"CREATE TRIGGER artifacts_immutable BEFORE {when} ON artifacts "
                   f"FOR EACH ROW EXECUTE FUNCTION catalog_refuse('{MESSAGE}')")  # fmt: skip
    else:
        op.execute(f"CREATE TRIGGER artifacts_immutable BEFORE {when} ON artifacts BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def upgrade() -> None:
    # A plain ADD COLUMN (never a table copy, which would drop the triggers on SQLite).
    op.add_column("artifacts", sa.Column("pair_id", sa.String(32), nullable=True))
    op.create_index("ix_artifacts_pair_id", "artifacts", ["pair_id"])
    _immutable_trigger(AFTER)


def downgrade() -> None:
    _immutable_trigger(BEFORE)
    op.drop_index("ix_artifacts_pair_id", table_name="artifacts")
    # In place, like the upgrade (SQLite >= 3.35, which RETURNING needs too): batch mode would copy the
    # table, which drops its triggers and, with rows, fails (dropping the old table breaks events' foreign key).
    op.drop_column("artifacts", "pair_id")
