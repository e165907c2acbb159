"""append-only audit trail: events.status, and triggers that refuse UPDATE/DELETE
on events, DELETE on artifacts, and changes to an artifact's immutable columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: Columns fixed when an artifact is written; only status, path (and its
#: folder) and retain_until ever change, each with its event.
IMMUTABLE = ("original_path", "type", "prefix", "ext", "created_at", "recorded_at", "size", "sha256")

REFUSALS = {
    # trigger name: (table, event, message)
    "events_no_update": ("events", "UPDATE", "events are append-only: UPDATE refused"),
    "events_no_delete": ("events", "DELETE", "events are append-only: DELETE refused"),
    "artifacts_no_delete": ("artifacts", "DELETE", "artifact rows are never deleted"),
    "artifacts_immutable": ("artifacts", "UPDATE OF " + ", ".join(IMMUTABLE), "the recorded facts of an artifact never change"),
}


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=True))
    op.create_index("ix_events_at", "events", ["at"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION catalog_refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation'; END $$"
        )
        for name, (table, when, message) in REFUSALS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {when} ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION catalog_refuse('{message}')"
            )
        for table in ("events", "artifacts"):
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION catalog_refuse('{table} are never truncated')"
            )
    else:
        for name, (table, when, message) in REFUSALS.items():
            op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    names = list(REFUSALS) + (["events_no_truncate", "artifacts_no_truncate"] if postgres else [])
    for name in names:
        table = "events" if name.startswith("events") else "artifacts"
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
    if postgres:
        op.execute("DROP FUNCTION catalog_refuse()")
    op.drop_index("ix_events_at", table_name="events")
    op.drop_column("events", "status")  # in place, never a table copy (see 0004's downgrade)
