"""The catalog's tables: SQLAlchemy Core :class:`~sqlalchemy.Table` objects on one :data:`METADATA`.

Only alembic changes the schema (its autogenerate compares the database
against :data:`METADATA`). Core tables, not ORM models: nothing in the
package needs the ORM, and importing it costs every command start-up time
(issue 17). The API hands out frozen records (:mod:`catalog.core.records`).
Only the unit of work (:mod:`catalog.core.unit_of_work`) writes to these tables.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    FunctionElement,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    literal,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles

from .vocabulary import ROLES, STATUSES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# BIGINT keys on PostgreSQL; INTEGER on SQLite so the key is the rowid.
Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC without a zone (same text on every backend); returns aware UTC."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        """An aware time as naive UTC for the database; a naive one raises ValueError."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the catalog; use an aware UTC time")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        """A naive UTC time from the database as aware UTC."""
        return None if value is None else value.replace(tzinfo=timezone.utc)


#: Every table, with the naming convention alembic relies on (migrations compare against it).
METADATA = MetaData(naming_convention=NAMING_CONVENTION)


def _col(name: str, type_: Any, *args: Any, null: bool = False, **kwargs: Any) -> Column[Any]:
    """A column, NOT NULL unless ``null`` (as the models' ``Mapped[X]`` / ``Mapped[X | None]`` said)."""
    return Column(name, type_, *args, nullable=null, **kwargs)


#: One file the store wrote or adopted. Never deleted; changes only with an event.
ARTIFACTS = Table(
    "artifacts", METADATA,
    _col("id", Id, primary_key=True),
    _col("path", String(512), unique=True),
    _col("original_path", String(512)),
    _col("folder", String(512)),
    _col("type", String(16)),
    _col("prefix", String(64)),
    _col("ext", String(16)),
    _col("created_at", UTCDateTime()),
    _col("recorded_at", UTCDateTime()),
    _col("size", BigInteger),
    _col("sha256", String(64), index=True),
    _col("status", String(16)),
    _col("retain_until", UTCDateTime(), null=True),
    _col("pair_id", String(32), index=True, null=True),  # links the JSON and CSV of one explain report
    CheckConstraint("status IN ('" + "', '".join(STATUSES) + "')", name="status"),
    Index("ix_artifacts_type_created_at", "type", "created_at"),  # retention
    Index("ix_artifacts_retention_totals", "type", "created_at", "recorded_at", "status", "retain_until",
          "size"),  # retention plan --summary counts from the index alone  # fmt: skip
    Index("ix_artifacts_created_at_id", "created_at", "id"),  # ls, newest/oldest pages
    Index("ix_artifacts_size_id", "size", "id"),  # ls --sort largest/smallest pages
    Index("ix_artifacts_folder_path", "folder", "path", "size", "status"),  # reconcile's walk, limits (covering)
    Index("ix_artifacts_original_path", "original_path"),  # an archived artifact by its first path; path holds
    Index("ix_artifacts_prefix_created_at", "prefix", "created_at", "id"),  # ls --prefix pages
    Index("ix_artifacts_status_created_at", "status", "created_at", "id"),  # ls --status pages
)  # fmt: skip

#: One entry of the append-only, hash-chained audit log (triggers refuse UPDATE and DELETE).
#: ``status`` is the artifact's status after the event; null for events that change no row.
EVENTS = Table(
    "events", METADATA,
    _col("seq", BigInteger, primary_key=True, autoincrement=False),
    _col("at", UTCDateTime(), index=True),
    _col("action", String(32)),
    _col("artifact_id", Id, ForeignKey("artifacts.id"), null=True),
    _col("path", String(512), null=True),
    _col("status", String(16), null=True),
    _col("actor", String(256)),
    _col("details", Text),
    _col("text", Text),
    _col("hash", String(64)),
    Index("ix_events_action_seq", "action", "seq"),  # audit log --action pages
    Index("ix_events_path_seq", "path", "seq"),  # audit log --path pages
    # an artifact's events in order: its history, and its last change by a time (ls --as-of) read newest first
    Index("ix_events_artifact_id_seq", "artifact_id", "seq"),
)  # fmt: skip

#: The single row every appender locks: the last event's seq and hash.
CHAIN_HEAD = Table(
    "chain_head", METADATA,
    _col("id", Integer, primary_key=True, autoincrement=False),
    _col("seq", BigInteger),
    _col("hash", String(64)),
    CheckConstraint("id = 1", name="single_row"),
)  # fmt: skip

#: One perfect subtree of the audit log's Merkle tree (RFC 9162 §2.1): its 32-byte hash. ``level`` 0 holds
#: the leaf hashes (leaf ``idx`` is event ``seq = idx + 1``); node (level, idx) covers events
#: ``idx·2^level + 1 … (idx+1)·2^level``. Written with its event, in the same transaction; triggers refuse
#: UPDATE and DELETE.
MERKLE_NODES = Table(
    "merkle_nodes", METADATA,
    _col("level", SmallInteger, primary_key=True, autoincrement=False),
    _col("idx", BigInteger, primary_key=True, autoincrement=False),
    _col("hash", LargeBinary(32)),
)  # fmt: skip

#: A legal hold on a path, a prefix or a type.
HOLDS = Table(
    "holds", METADATA,
    _col("id", Id, primary_key=True),
    _col("selector_kind", String(16)),
    _col("selector", String(512)),
    _col("since", UTCDateTime(), null=True),
    _col("until", UTCDateTime(), null=True),
    _col("reason", Text),
    _col("placed_at", UTCDateTime()),
    _col("placed_by", String(256)),
    _col("released_at", UTCDateTime(), null=True),
    _col("released_by", String(256), null=True),
    _col("release_reason", Text, null=True),
)  # fmt: skip

#: The minimum retention per type, kept in the catalog.
FLOORS = Table(
    "policy_floors", METADATA,
    _col("type", String(16), primary_key=True),
    _col("days", Integer),
)  # fmt: skip

#: Files and bytes on disk per folder, kept in the same transaction as every artifact change.
FOLDER_USAGE = Table(
    "folder_usage", METADATA,
    _col("folder", String(512), primary_key=True),
    _col("files", BigInteger),
    _col("bytes", BigInteger),
)  # fmt: skip

#: One recorded verification run.
VERIFY_RUNS = Table(
    "verify_runs", METADATA,
    _col("id", Id, primary_key=True),
    _col("started_at", UTCDateTime()),
    _col("finished_at", UTCDateTime(), null=True),
    _col("scope", Text),
    _col("sample", Float, null=True),
    _col("subset", String(32), null=True),
    _col("checked", Integer, default=0),
    _col("ok", Integer, default=0),
    _col("failed", Integer, default=0),
    _col("missing", Integer, default=0),
    _col("duration_s", Float, null=True),
)  # fmt: skip

#: One artifact's outcome in a verification run.
VERIFY_RESULTS = Table(
    "verify_results", METADATA,
    _col("id", Id, primary_key=True),
    _col("run_id", Id, ForeignKey("verify_runs.id"), index=True),
    _col("artifact_id", Id, ForeignKey("artifacts.id"), index=True),
    _col("outcome", String(16)),
    _col("detail", Text, null=True),
)  # fmt: skip

#: A web account: its role and only a salted slow hash of its secret (:mod:`catalog.ops.users`), as
#: ``scrypt$N$r$p$SALT$HASH`` (hex: the parameters travel with the hash, so they can be raised later).
#: Changed only through ``tx.users``, each change with its event; removing an account deletes its row
#: (the log keeps who it was, when it was added and why it was removed).
USERS = Table(
    "users", METADATA,
    _col("name", String(64), primary_key=True),
    _col("role", String(16)),
    _col("secret_hash", String(256)),
    _col("created_at", UTCDateTime()),
    _col("created_by", String(256)),
    CheckConstraint("role IN ('" + "', '".join(ROLES) + "')", name="role"),
)  # fmt: skip


def keyset_after(
    columns: tuple[ColumnElement[Any], ...], values: tuple[Any, ...], *, descending: bool = False
) -> ColumnElement[bool]:
    """``(columns) > (values)`` (``<`` when ``descending``): the row-value condition of keyset paging.

    Each value is bound with its column's type, so a time goes through
    :class:`UTCDateTime` like any other (a bare tuple would bind it untyped,
    and compare text with text of another form on SQLite).
    """
    keys = tuple_(*columns)
    bound = tuple_(*(literal(value, column.type) for column, value in zip(columns, values, strict=True)))
    return keys < bound if descending else keys > bound


class iso_text(FunctionElement[str]):  # noqa: N801 (an SQL function, named as one)
    """A :class:`UTCDateTime` column as the text :func:`catalog.core.formats.format_time` gives its value,
    computed by the database: ``2024-01-15T10:30:00Z``, ``…:00.250000Z`` (microseconds only if any); NULL stays NULL.

    Exports read times through it, so no row's time is parsed into a datetime
    and printed again in Python.
    """

    type = String()
    name = "iso_text"
    inherit_cache = True


@compiles(iso_text, "sqlite")
def _iso_text_sqlite(element: iso_text, compiler: Any, **kw: Any) -> str:
    # stored as "YYYY-MM-DD HH:MM:SS.ffffff" (SQLAlchemy's SQLite DATETIME text)
    x = compiler.process(element.clauses, **kw)
    return (f"replace(substr({x}, 1, 19), ' ', 'T') || CASE WHEN rtrim(substr({x}, 21), '0') = '' THEN 'Z' "
            f"ELSE '.' || substr(substr({x}, 21) || '000000', 1, 6) || 'Z' END")  # fmt: skip


@compiles(iso_text, "postgresql")
def _iso_text_postgresql(element: iso_text, compiler: Any, **kw: Any) -> str:
    x = compiler.process(element.clauses, **kw)  # timestamp without time zone, holding UTC
    return (f"to_char({x}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({x}, 'US') = '000000' THEN 'Z' "
            f"ELSE '.' || to_char({x}, 'US') || 'Z' END")  # fmt: skip
