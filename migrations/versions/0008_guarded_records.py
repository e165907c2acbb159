"""guarded records: what protects an artifact changes only with its audited event

Triggers refuse, on ``holds`` and ``policy_floors``, every DELETE (and TRUNCATE
on PostgreSQL) and every change no event made; on ``artifacts``, a change of
path, folder, status or retain_until that the newest event does not name, and
any lowering of retain_until. The unit of work appends each event before the
row change it records, so the trigger sees the event first:

- an artifact's path, folder, status and retain_until change only when the
  newest event is about that artifact, with that path and status; retain_until
  never goes down;
- a hold changes only when it is released (once), when the newest event is
  the ``hold_release`` of that hold; its other columns never change;
- a floor is inserted or changed only when the newest event is the
  ``policy_floor`` that sets that type to that number of days.

An owner (or anyone holding the SQLite file) can still drop a trigger: the
log stays the authority (``audit verify`` and retention re-derive holds,
floors, retain_until and paths from it; see catalog/core/replay.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_NEWEST = "SELECT 1 FROM events WHERE seq = (SELECT max(seq) FROM events)"
#: trigger name: (table, when, condition of refusal (SQL, NEW/OLD), message)
GUARDS = {
    "artifacts_guarded": (
        "artifacts", "UPDATE OF path, folder, status, retain_until",
        f"NOT EXISTS ({_NEWEST} AND artifact_id = NEW.id AND path = NEW.path AND status = NEW.status) "
        "OR (OLD.retain_until IS NOT NULL AND (NEW.retain_until IS NULL OR NEW.retain_until < OLD.retain_until))",
        "an artifact changes path, status or retain_until only with its event, and retain_until never goes down",
    ),
    "holds_release_logged": (
        "holds", "UPDATE OF released_at, released_by, release_reason",
        f"OLD.released_at IS NOT NULL OR NEW.released_at IS NULL OR NOT EXISTS ({_NEWEST} AND action = 'hold_release' "
        "AND {prefix}(details, '{{\"hold\":' || NEW.id || ',') = 1)",
        "a hold is released once, with its hold_release event",
    ),
    "policy_floors_logged_insert": (
        "policy_floors", "INSERT",
        f"NOT EXISTS ({_NEWEST} AND action = 'policy_floor' "
        "AND {prefix}(details, ',\"to\":' || NEW.days || ',\"type\":\"' || NEW.type || '\"') > 0)",
        "a floor is set only with its policy_floor event",
    ),
}
GUARDS["policy_floors_logged_update"] = ("policy_floors", "UPDATE", *GUARDS["policy_floors_logged_insert"][2:])
REFUSALS = {
    "holds_no_delete": ("holds", "DELETE", "holds are never deleted: a hold is released, with its event"),
    "holds_immutable": ("holds", "UPDATE OF id, selector_kind, selector, since, until, reason, placed_at, placed_by",
                        "what a hold covers, and who placed it when, never change"),
    "policy_floors_no_delete": ("policy_floors", "DELETE", "floors are never deleted: set one, with its event"),
}
TRUNCATE = ("holds", "policy_floors")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, when, refuse, message) in GUARDS.items():
            op.execute(
                f"CREATE FUNCTION catalog_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF {refuse.format(prefix='strpos')} THEN "
                f"RAISE EXCEPTION '{message}' USING ERRCODE = 'integrity_constraint_violation'; END IF; "
                "RETURN NEW; END $$"
            )
            op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON {table} FOR EACH ROW EXECUTE FUNCTION catalog_{name}()")
        for name, (table, when, message) in REFUSALS.items():
            op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION catalog_refuse('{message}')")  # fmt: skip
        for table in TRUNCATE:
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION catalog_refuse('{table} are never truncated')")  # fmt: skip
        return
    for name, (table, when, refuse, message) in GUARDS.items():
        op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON {table} WHEN {refuse.format(prefix='instr')} "
                   f"BEGIN SELECT RAISE(ABORT, '{message}'); END")  # fmt: skip
    for name, (table, when, message) in REFUSALS.items():
        op.execute(f"CREATE TRIGGER {name} BEFORE {when} ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    triggers = {name: spec[0] for name, spec in (*GUARDS.items(), *REFUSALS.items())}
    if postgres:
        triggers.update({f"{table}_no_truncate": table for table in TRUNCATE})
    for name, table in triggers.items():
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
    if postgres:
        for name in GUARDS:
            op.execute(f"DROP FUNCTION catalog_{name}()")
