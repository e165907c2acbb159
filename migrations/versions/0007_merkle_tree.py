"""merkle_nodes: the audit log's Merkle tree (RFC 9162 §2.1), one row per perfect subtree,
built here for the events already in the log; triggers refuse UPDATE and DELETE

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from catalog.core.tree import Frontier, leaf

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REFUSALS = {
    "merkle_nodes_no_update": ("UPDATE", "the Merkle tree is append-only: UPDATE refused"),
    "merkle_nodes_no_delete": ("DELETE", "the Merkle tree is append-only: DELETE refused"),
}
BATCH = 5000


def upgrade() -> None:
    nodes = op.create_table(
        "merkle_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_merkle_nodes"),
    )
    bind = op.get_bind()
    events = sa.table("events", sa.column("seq", sa.BigInteger()), sa.column("text", sa.Text()))
    frontier, last = Frontier(), 0
    while True:  # the events already logged, in seq order and in batches: memory stays O(batch + log n)
        rows = bind.execute(
            sa.select(events.c.seq, events.c.text).where(events.c.seq > last).order_by(events.c.seq).limit(BATCH)
        ).all()
        if not rows:
            break
        new = [
            {"level": level, "idx": idx, "hash": digest} for row in rows for level, idx, digest in frontier.add(leaf(row.text))
        ]  # fmt: skip
        bind.execute(nodes.insert(), new)
        last = rows[-1].seq
    if bind.dialect.name == "postgresql":
        for name, (when, message) in REFUSALS.items():
            op.execute(
                f"CREATE TRIGGER {name} BEFORE {when} ON merkle_nodes "
                f"FOR EACH ROW EXECUTE FUNCTION catalog_refuse('{message}')"
            )
        op.execute(
            "CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON merkle_nodes "
            "FOR EACH STATEMENT EXECUTE FUNCTION catalog_refuse('the Merkle tree is never truncated')"
        )
    else:
        for name, (when, message) in REFUSALS.items():
            op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON merkle_nodes BEGIN SELECT RAISE(ABORT, '{message}'); END")


def downgrade() -> None:
    op.drop_table("merkle_nodes")  # its triggers go with it
