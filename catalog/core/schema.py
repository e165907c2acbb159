"""The catalog's tables (SQLAlchemy 2.x models). Only alembic changes the schema.

Each table is also exported once as a typed Core :class:`~sqlalchemy.Table`
(``ARTIFACTS``, ``EVENTS``…), which every module imports instead of deriving
``Model.__table__`` itself. ORM rows stay inside the package: the API hands
out frozen records (:mod:`catalog.core.records`). Only the unit of work
(:mod:`catalog.core.unit_of_work`) writes to these tables.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
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
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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


class Base(DeclarativeBase):
    """The declarative base: every table, with the naming convention alembic relies on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Artifact(Base):
    """One file the store wrote or adopted. Never deleted; changes only with an event."""

    __tablename__ = "artifacts"
    __table_args__ = (
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
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    path: Mapped[str] = mapped_column(String(512), unique=True)
    original_path: Mapped[str] = mapped_column(String(512))
    folder: Mapped[str] = mapped_column(String(512))
    type: Mapped[str] = mapped_column(String(16))
    prefix: Mapped[str] = mapped_column(String(64))
    ext: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16))
    retain_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Links the JSON and CSV of one explain report; null for a single artifact.
    pair_id: Mapped[str | None] = mapped_column(String(32), index=True)


class Event(Base):
    """One entry of the append-only, hash-chained audit log (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_action_seq", "action", "seq"),  # audit log --action pages
        Index("ix_events_path_seq", "path", "seq"),  # audit log --path pages
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    action: Mapped[str] = mapped_column(String(32))
    artifact_id: Mapped[int | None] = mapped_column(Id, ForeignKey("artifacts.id"), index=True)
    path: Mapped[str | None] = mapped_column(String(512))
    #: The artifact's status after this event; null for events that change no row.
    status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(256))
    details: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    hash: Mapped[str] = mapped_column(String(64))


class ChainHead(Base):
    """The single row every appender locks: the last event's seq and hash."""

    __tablename__ = "chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class MerkleNode(Base):
    """One perfect subtree of the audit log's Merkle tree (RFC 9162 §2.1): its 32-byte hash.

    ``level`` 0 holds the leaf hashes (leaf ``idx`` is event ``seq = idx + 1``);
    node (level, idx) covers events ``idx·2^level + 1 … (idx+1)·2^level``.
    Written with its event, in the same transaction; triggers refuse UPDATE and DELETE.
    """

    __tablename__ = "merkle_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class Hold(Base):
    """A legal hold on a path, a prefix or a type (filled by the lifecycle issue)."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    selector_kind: Mapped[str] = mapped_column(String(16))
    selector: Mapped[str] = mapped_column(String(512))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    placed_by: Mapped[str] = mapped_column(String(256))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    released_by: Mapped[str | None] = mapped_column(String(256))
    release_reason: Mapped[str | None] = mapped_column(Text)


class PolicyFloor(Base):
    """The minimum retention per type, kept in the catalog (lifecycle issue)."""

    __tablename__ = "policy_floors"

    type: Mapped[str] = mapped_column(String(16), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)


class FolderUsage(Base):
    """Files and bytes on disk per folder, kept in the same transaction as every artifact change."""

    __tablename__ = "folder_usage"

    folder: Mapped[str] = mapped_column(String(512), primary_key=True)
    files: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)


class VerifyRun(Base):
    """One recorded verification run (integrity issue)."""

    __tablename__ = "verify_runs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    scope: Mapped[str] = mapped_column(Text)
    sample: Mapped[float | None] = mapped_column(Float)
    subset: Mapped[str | None] = mapped_column(String(32))
    checked: Mapped[int] = mapped_column(Integer, default=0)
    ok: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    duration_s: Mapped[float | None] = mapped_column(Float)


class VerifyResult(Base):
    """One artifact's outcome in a verification run."""

    __tablename__ = "verify_results"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[int] = mapped_column(Id, ForeignKey("verify_runs.id"), index=True)
    artifact_id: Mapped[int] = mapped_column(Id, ForeignKey("artifacts.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)


class User(Base):
    """A web account: its role and only a salted slow hash of its secret (:mod:`catalog.ops.users`).

    Changed only through ``tx.users``, each change with its event; removing an account deletes its row
    (the log keeps who it was, when it was added and why it was removed).
    """

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('" + "', '".join(ROLES) + "')", name="role"),)

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    #: ``scrypt$N$r$p$SALT$HASH`` (hex): the parameters travel with the hash, so they can be raised later.
    secret_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))


ARTIFACTS = cast(Table, Artifact.__table__)
EVENTS = cast(Table, Event.__table__)
CHAIN_HEAD = cast(Table, ChainHead.__table__)
MERKLE_NODES = cast(Table, MerkleNode.__table__)
HOLDS = cast(Table, Hold.__table__)
FLOORS = cast(Table, PolicyFloor.__table__)
FOLDER_USAGE = cast(Table, FolderUsage.__table__)
VERIFY_RUNS = cast(Table, VerifyRun.__table__)
VERIFY_RESULTS = cast(Table, VerifyResult.__table__)
USERS = cast(Table, User.__table__)


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
