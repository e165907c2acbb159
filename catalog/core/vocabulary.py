"""The catalog's closed sets of names, free of any dependency.

Everything that the command line's help, a ``click.Choice`` or a validator needs to
list lives here once, so the command line can describe itself without
importing SQLAlchemy, and no constant is copied between layers.
"""

from __future__ import annotations

#: Artifact types; each is also the top-level folder its files live in.
TYPES: tuple[str, ...] = ("explain", "ledger", "health", "config")

#: How new files are placed in their type folder (``layout``): all in it (``flat``), or in partition folders by
#: the UTC date in their own name, ``TYPE/YYYY/MM/`` (``month``) or ``TYPE/YYYY/MM/DD/`` (``day``).
LAYOUTS: tuple[str, ...] = ("flat", "month", "day")

#: The extensions each type is written with by the typed writers.
STANDARD_EXTS: dict[str, tuple[str, ...]] = {
    "explain": ("json", "csv"),
    "ledger": ("json", "csv"),
    "health": ("json", "jsonl"),
    "config": ("json",),
}

#: Further extensions :meth:`catalog.ops.write.Writer.write_bytes` accepts for any type;
#: stored as opaque bytes (no parse check).
EXTRA_EXTS: tuple[str, ...] = ("txt", "log", "pdf", "parquet", "gz", "zip")

#: Every extension an artifact can have (listings filter on them).
EXTS: tuple[str, ...] = tuple(sorted({ext for exts in STANDARD_EXTS.values() for ext in exts} | set(EXTRA_EXTS)))

#: Extensions whose content is parsed before it is stored.
PARSED_EXTS: tuple[str, ...] = ("json", "jsonl", "csv")

#: An artifact row's status.
STATUSES: tuple[str, ...] = ("active", "archived", "deleted", "missing", "quarantined")

#: Statuses whose file is in the store (counted against folder limits).
ON_DISK: tuple[str, ...] = ("active", "archived", "quarantined")

#: Statuses whose bytes are served and verified.
READABLE: tuple[str, ...] = ("active", "archived")

#: Listing orders: the column sorted on and whether descending. Ties are broken by id in the same direction.
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("created_at", True),
    "oldest": ("created_at", False),
    "path": ("path", False),
    "largest": ("size", True),
    "smallest": ("size", False),
}

#: Output formats of every listing.
FORMATS: tuple[str, ...] = ("table", "json", "csv", "ndjson")

#: Every action the audit log records, with what it means. The set is closed: the unit of work refuses
#: any other, and every filter on actions refuses an unknown name with this list.
ACTIONS: dict[str, str] = {
    "write": "an artifact written through the API",
    "import": "an artifact imported from elsewhere (an explain report and its derived CSV)",
    "adopt": "a complete file without a row adopted by reconcile",
    "move": "a row following its file to a new path (reconcile)",
    "missing": "a row whose file is gone",
    "quarantine": "a file whose bytes no longer match, moved to quarantine/",
    "restore": "a missing row whose file came back unchanged",
    "regenerate": "a lost derived file rebuilt from its primary",
    "archive": "an artifact moved to its archive folder by retention",
    "delete": "an artifact deleted by retention",
    "retain_extend": "an artifact's retain_until extended",
    "retention_intent": "retention about to delete or archive an artifact",
    "retention_run": "the summary of one retention apply",
    "hold_place": "a legal hold placed",
    "hold_release": "a legal hold released",
    "policy_floor": "a type's retention floor set",
    "verify_run": "the summary of one verify run",
    "verify_failure": "a file that failed verification",
    "reconcile_run": "the summary of one reconcile with fix",
    "checkpoint": "a checkpoint of the log taken (its tree size and root hash, signed when a key is configured)",
    "key_rotate": "a new signing key announced, signed by the current one",
    "backup": "a backup of the catalog written",
    "schema_upgrade": "the catalog's schema migrated",
    "finding_resolve": "a finding closed by a person, with the reason",
    "clock_behind": "a writer whose clock was behind the log's (its events were dated by the log's clock)",
    "user_add": "a web account added (its secret is never logged)",
    "user_remove": "a web account removed, with the reason",
    "user_role": "a web account's role changed, with the reason",
}

#: Web account roles. Every role reads every page and downloads verified bytes; only ``compliance`` places
#: and releases legal holds (a legal decision, kept apart from running the system); only ``admin`` sees the
#: list of accounts. Accounts themselves are managed only on the host (``catalog users``), never over the web.
ROLES: tuple[str, ...] = ("viewer", "compliance", "admin")

#: Deployment environments and the base folder each one implies.
ENVIRONMENTS: dict[str, str] = {
    "development": "./artifacts",
    "staging": "/opt/cryptorun/artifacts",
    "production": "/data/cryptorun/artifacts",
}

#: What retention does with an expired artifact.
RETENTION_ACTIONS: tuple[str, ...] = ("delete", "archive")

#: The folder (under the base folder) where reconcile moves files whose bytes no longer match.
QUARANTINE = "quarantine"

#: The file in the base folder holding the key that signs the web view's session cookies (mode 0600).
WEB_KEY_FILE = "catalog.web-key"

#: The alembic revision this code needs, and every revision it knows (oldest first).
#: Kept here so a schema check never imports alembic; a test keeps it equal to alembic's head.
HEAD_REVISION = "0012"
KNOWN_REVISIONS: tuple[str, ...] = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010", "0011", "0012")
