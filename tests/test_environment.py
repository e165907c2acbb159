"""The store in a hostile environment: file systems without hard links, other users, read-only media, shared
folders of VMs, a full disk (issue 14, cases 7, 8, 9 and 12).

There is no vfat here: a file system without hard links is simulated by making ``os.link`` fail as vfat does
(EPERM). Other users are a forked child that dropped root for ``nobody`` (the interpreter lives in /root, which
nobody may read, so the parent runs every command once first and the child needs no new import). Read-only
media is a read-only bind mount and a full disk a small tmpfs, both mounted as root when this sandbox allows it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from catalog.core import fs, sqlite_file, tlog
from catalog.core.db import Database
from catalog.core.errors import CatalogDatabaseError, ConfigError, StoreError
from catalog.core.schema import ARTIFACTS
from catalog.core.settings import load_settings
from catalog.core.sqlite_file import reader_uri, require_local_filesystem
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter

from helpers import BACKEND, NOBODY, SYSTEM_TMP, Cli, all_records, as_nobody, store_files

sqlite_only = pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite-specific behaviour")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: to act as another user, or to mount")


def _no_hard_links(inside: Path | None = None, source: Path | None = None) -> Callable[..., None]:
    """An os.link that fails as vfat's does (EPERM), for targets inside ``inside`` (None: everywhere) or ``source``."""
    real = os.link

    def link(src: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if Path(src) == source if source is not None else inside is None or Path(target).is_relative_to(inside):
            raise OSError(errno.EPERM, "Operation not permitted", str(src), None, str(target))
        real(src, target, *args, **kwargs)

    return link


# -- case 7: file systems without hard links ----------------------------------------------------------------------


def test_init_says_the_file_system_has_no_hard_links(run_cli: Cli, base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links())
    result = run_cli("init")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: cannot write to the store {base_dir}")
    assert "does not support hard links" in result.stderr and "ext4" in result.stderr
    assert not (base_dir / "catalog.sqlite").exists()
    assert [p.name for p in base_dir.rglob("*") if p.is_file()] == []  # the probe left nothing


def test_put_says_the_store_has_no_hard_links_and_publishes_nothing(
    catalog: Catalog, run_cli: Cli, base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.json"
    source.write_text("{}")
    monkeypatch.setattr(os, "link", _no_hard_links())
    result = run_cli("put", str(source), "--type", "health", "--prefix", "p")
    assert result.exit_code == 2 and "does not support hard links" in result.stderr
    assert "Operation not permitted" not in result.stderr
    assert store_files(base_dir) == [] and all_records(catalog) == []


def test_publish_without_hard_links_says_why_and_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "health"
    folder.mkdir()
    monkeypatch.setattr(os, "link", _no_hard_links())
    with pytest.raises(OSError) as caught:
        fs.publish(folder, "a.json", b"{}")
    assert caught.value.errno == errno.EPERM and "does not support hard links" in str(caught.value)
    assert list(folder.iterdir()) == []


def test_a_link_refused_for_one_file_keeps_its_reason_or_names_protected_hardlinks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "theirs.json"
    source.write_text("{}")
    monkeypatch.setattr(os, "link", _no_hard_links(source=source))  # the kernel refuses this file, not every file
    with pytest.raises(OSError) as immutable:
        fs.link_durably(source, tmp_path / "archived" / "theirs.json")
    assert immutable.value.strerror == "Operation not permitted"  # chattr +i, say: link(2)'s own words
    monkeypatch.setattr(os, "geteuid", lambda: os.stat(source).st_uid + 1)  # someone else, not root
    with pytest.raises(OSError, match="protected_hardlinks"):
        fs.link_durably(source, tmp_path / "archived" / "theirs.json")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["archived", "cwd", "theirs.json"]  # no probe left


def test_files_written_outside_the_store_work_on_a_stick_without_hard_links(
    writer: AtomicWriter, run_cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.write_json("ledger", "p", {"a": 1})
    stick = tmp_path / "stick"
    stick.mkdir()
    monkeypatch.setattr(os, "link", _no_hard_links(stick))
    checkpoint = run_cli("audit", "checkpoint", "-o", str(stick / "cp.json"))
    assert checkpoint.exit_code == 0, checkpoint.output
    assert tlog.parse_checkpoint((stick / "cp.json").read_bytes()).size >= 2
    bundle = run_cli("audit", "export", str(stick / "evidence.zip"), "--include-files")
    assert bundle.exit_code == 0, bundle.output
    assert run_cli("audit", "verify-bundle", str(stick / "evidence.zip"), global_args=[]).exit_code == 0
    assert run_cli("audit", "verify", "--checkpoint", str(stick / "cp.json")).exit_code == 0
    expected = ["cp.json", "evidence.zip"]
    if BACKEND == "sqlite":
        backup = run_cli("backup", str(stick / "catalog.sqlite"))
        assert backup.exit_code == 0, backup.output
        with contextlib.closing(sqlite3.connect(stick / "catalog.sqlite")) as copy:
            assert copy.execute("SELECT count(*) FROM artifacts").fetchone() == (1,)
        expected.append("catalog.sqlite")
    assert sorted(p.name for p in stick.iterdir()) == sorted(expected)  # no temp file left over
    before = (stick / "cp.json").read_bytes()
    again = run_cli("audit", "checkpoint", "-o", str(stick / "cp.json"))
    assert again.exit_code == 2 and "already exists" in again.stderr and (stick / "cp.json").read_bytes() == before


def test_place_exclusive_without_hard_links_never_replaces_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "link", _no_hard_links())
    source, target = tmp_path / ".new.tmp", tmp_path / "out.zip"
    source.write_bytes(b"new")
    target.write_bytes(b"theirs")
    with pytest.raises(FileExistsError):
        fs.place_exclusive(source, target)
    assert target.read_bytes() == b"theirs" and source.read_bytes() == b"new"
    target.unlink()
    fs.place_exclusive(source, target)
    assert target.read_bytes() == b"new" and not source.exists()


# -- case 8: other users, read-only media, group-shared stores ---------------------------------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder every user may enter (pytest's own tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="cat-env-", dir=SYSTEM_TMP))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def _run(base: Path, args: list[str]) -> tuple[int, str]:
    from click.testing import CliRunner

    from catalog.cli import cli

    result = CliRunner().invoke(cli, ["--base-dir", str(base), *args])
    return result.exit_code, result.output


def _as_nobody(base: Path, commands: list[list[str]], groups: tuple[int, ...] = ()) -> list[tuple[int, str]]:
    """Run CLI commands against ``base`` as nobody (with ``groups``): (exit code, output) each."""

    def run() -> str:
        os.chdir(base.parent)  # the test's own working folder is private to root
        return json.dumps([_run(base, args) for args in commands])

    return [(code, output) for code, output in json.loads(as_nobody(run, groups))]


def _group_store(base: Path, *prefixes: str) -> tuple[list[str], Path]:
    """:func:`_store` at ``base`` inside a folder of root's shared with the group ``nobody`` (setgid, 2775), made
    under umask 002 as a team's shell would."""
    base.parent.mkdir()
    os.chown(base.parent, 0, NOBODY)
    base.parent.chmod(0o2775)
    old = os.umask(0o002)
    try:
        return _store(base, *prefixes)
    finally:
        os.umask(old)


def _store(base: Path, *prefixes: str) -> tuple[list[str], Path]:
    """A store at ``base`` with one health artifact per prefix; returns their paths and a file to put."""
    settings = load_settings(overrides={"base_dir": str(base)}, env={})
    catalog, _, _ = Catalog.init(settings)
    with catalog, AtomicWriter(catalog=catalog) as writer:
        paths = [writer.write_json("health", prefix, {"p": prefix}).path for prefix in prefixes]
    source = base.parent / "in.json"
    source.write_text('{"new": 1}')
    source.chmod(0o644)
    return paths, source


def _read_verbs(path: str) -> list[list[str]]:
    return [["ls", "--format", "json"], ["show", path], ["get", path], ["audit", "verify"], ["audit", "log"],
            ["stats"], ["limits"], ["reconcile"], ["retention", "plan"], ["status"]]  # fmt: skip


def _warm_up(base: Path, reads: list[list[str]], *writes: list[str]) -> None:
    """Run every command once as root (``writes`` on a scratch store): the child, which may not read /root where
    the interpreter lives, then imports nothing new."""
    for args in reads:
        _run(base, args)
    scratch = base.parent / "scratch"
    _store(scratch)
    for args in writes:
        _run(scratch, args)
    shutil.rmtree(scratch)


@sqlite_only
@as_root
@pytest.mark.parametrize("writer_open", [False, True], ids=["no-wal", "a-writer-has-the-wal-open"])
def test_a_user_who_may_only_read_runs_every_read_verb(shared_dir: Path, writer_open: bool) -> None:
    base = shared_dir / "store"
    paths, source = _store(base, "first")
    put = ["put", str(source), "--type", "health", "--prefix", "nobody"]
    reads = _read_verbs(paths[0])
    _warm_up(base, reads, ["verify"], put)
    with contextlib.ExitStack() as stack:
        if writer_open:  # a root process keeps the -wal and -shm; the second artifact is only in the -wal
            held = stack.enter_context(contextlib.closing(sqlite3.connect(base / "catalog.sqlite")))
            held.execute("SELECT 1 FROM artifacts").fetchall()
            with Catalog.open(base) as catalog, AtomicWriter(catalog=catalog) as writer:
                paths.append(writer.write_json("health", "second", {}).path)
            assert sqlite_file._size(Path(f"{base}/catalog.sqlite-wal")) > 0
        else:
            assert not Path(f"{base}/catalog.sqlite-wal").exists()
        results = _as_nobody(base, [*reads, ["verify"], put])
    for args, (code, output) in zip(reads, results):
        assert code == (1 if args[0] == "status" else 0), (args, output)  # status: no verify run yet, a finding
    assert sorted(row["path"] for row in json.loads(results[0][1])["artifacts"]) == sorted(paths)
    for code, output in results[-2:]:  # verify records its run; put publishes and records
        assert code == 2 and f"cannot record changes: this user may not write {base / 'catalog.sqlite'}" in output
        assert "nothing was written" in output and "readonly database" not in output
    assert store_files(base) == sorted(paths)


@sqlite_only
@as_root
def test_a_user_who_may_only_read_is_told_so_by_retention_apply(shared_dir: Path) -> None:
    base = shared_dir / "store"
    paths, _ = _store(base, "first")
    lock = Path(f"{base}/catalog.sqlite-lifecycle")
    assert not lock.exists()  # apply never ran here: nobody would have to create its lock file
    apply = ["retention", "apply", "--yes"]
    _warm_up(base, [], apply)
    [(code, output)] = _as_nobody(base, [apply])
    assert code == 2 and output.count("\n") == 1, output
    assert f"cannot record changes: this user may not write {base / 'catalog.sqlite'}" in output
    assert "nothing was written" in output and "No such file" not in output
    assert not lock.exists() and store_files(base) == paths


@sqlite_only
def test_a_lifecycle_lock_that_cannot_be_opened_is_said_in_words(
    catalog: Catalog, run_cli: Cli, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(path: Path) -> int:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(sqlite_file, "open_lock_file", refused)  # the catalog is writable, its lock file is not
    result = run_cli("retention", "apply", "--yes")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot open its lock file {base_dir / 'catalog.sqlite-lifecycle'}: Permission denied" in result.stderr
    assert "nothing was written" in result.stderr


def _head_seq(base: Path) -> int:
    with contextlib.closing(sqlite3.connect(base / "catalog.sqlite")) as conn:
        return int(conn.execute("SELECT seq FROM chain_head").fetchone()[0])


@sqlite_only
@as_root
def test_a_user_who_may_only_read_is_told_so_by_backup_before_any_copy(shared_dir: Path) -> None:
    base, out = shared_dir / "store", shared_dir / "out"
    _store(base, "first")
    out.mkdir(mode=0o777)
    out.chmod(0o777)  # nobody may write the backup here, only not the catalog
    backup = ["backup", str(out / "b.sqlite")]
    _warm_up(base, [], ["backup", str(shared_dir / "warm-up.sqlite")])  # not at OUT: it must stay free
    events = _head_seq(base)
    [(code, output)] = _as_nobody(base, [backup])
    assert code == 2 and output.count("\n") == 1, output
    assert f"cannot record changes: this user may not write {base / 'catalog.sqlite'}" in output
    assert "nothing was written" in output and "readonly database" not in output
    assert list(out.iterdir()) == [] and _head_seq(base) == events  # no copy, no backup event


@sqlite_only
@as_root
def test_a_backup_into_a_folder_this_user_may_not_write_names_the_output(shared_dir: Path) -> None:
    base, out = shared_dir / "team" / "store", shared_dir / "out"
    _group_store(base, "first")
    out.mkdir()
    out.chmod(0o755)  # root's: nobody may not write here
    backup = ["backup", str(out / "b.sqlite")]
    _warm_up(base, [], ["backup", str(shared_dir / "warm-up.sqlite")])  # not at OUT: it must stay free
    [(code, output)] = _as_nobody(base, [backup], groups=(NOBODY,))
    assert (code, output) == (2, f"Error: cannot write {out / 'b.sqlite'}: Permission denied\n")
    assert list(out.iterdir()) == []


@contextlib.contextmanager
def _mounted(*commands: list[str]) -> Iterator[None]:
    done = []
    try:
        for command in commands:
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"cannot mount here: {result.stderr.strip()}")
            done.append(command[-1])
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", target], check=False)


@sqlite_only
@as_root
def test_a_store_on_read_only_media_answers_every_read_verb(shared_dir: Path) -> None:
    base, media = shared_dir / "store", shared_dir / "media"
    paths, source = _store(base, "first")
    media.mkdir()
    with _mounted(["mount", "--bind", str(base), str(media)], ["mount", "-o", "remount,bind,ro", str(media)]):
        for args in _read_verbs(paths[0]):
            code, output = _run(media, args)
            assert code in ((1,) if args[0] == "status" else (0,)), (args, output)
        assert sorted(row["path"] for row in json.loads(_run(media, ["ls", "--format", "json"])[1])["artifacts"]) == paths
        code, output = _run(media, ["put", str(source), "--type", "health", "--prefix", "ro"])
        assert code == 2 and "it is on a read-only file system" in output and "nothing was written" in output
        code, output = _run(media, ["verify"])  # it records a verify run
        assert code == 2 and "it is on a read-only file system" in output
        assert not Path(f"{media}/catalog.sqlite-shm").exists()
    assert store_files(base) == paths


@sqlite_only
@as_root
def test_a_group_shared_store_lets_a_second_user_write(shared_dir: Path) -> None:
    base = shared_dir / "team" / "store"
    paths, source = _group_store(base, "first")
    made = {p.name: p.stat() for p in base.iterdir() if p.name.startswith("catalog.sqlite")}
    assert set(made) >= {"catalog.sqlite", "catalog.sqlite-lock"}
    for name, st in made.items():
        assert (st.st_mode & 0o777, st.st_gid) == (0o664, NOBODY), name
    (base / "catalog.sqlite-lock").chmod(0o644)  # lock files as an older version made them: flock needs no write
    (base / "catalog.sqlite-lifecycle").touch(0o644)
    put = ["put", str(source), "--type", "health", "--prefix", "second"]
    _warm_up(base, [], ["retention", "apply", "--yes"], put)
    (code, output), (applied, _) = _as_nobody(base, [put, ["retention", "apply", "--yes"]], groups=(NOBODY,))
    assert code == 0 and applied == 0, output
    with Catalog.open(base) as catalog:
        assert sorted(r.prefix for r in all_records(catalog)) == ["first", "second"]


@sqlite_only
@as_root
def test_a_writer_that_cannot_commit_publishes_nothing(shared_dir: Path) -> None:
    base = shared_dir / "store"
    paths, source = _store(base, "first")
    for folder in (base, *(p for p in base.iterdir() if p.is_dir())):
        os.chown(folder, 0, NOBODY)
        folder.chmod(0o2775)  # the folders are the group's, the catalog (as an older init made it) is not
    (base / "catalog.sqlite").chmod(0o644)
    put = ["put", str(source), "--type", "health", "--prefix", "second"]
    _warm_up(base, [], put)
    [(code, output)] = _as_nobody(base, [put], groups=(NOBODY,))
    assert code == 2 and f"may not write {base / 'catalog.sqlite'}" in output, output
    assert "group-writable" in output and "nothing was written" in output
    assert store_files(base) == paths


def test_reader_uri_opens_read_only_when_it_must(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "catalog.sqlite"
    db.touch()
    assert reader_uri(db) == f"{db.as_uri()}?mode=rw"
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: mode != os.W_OK)  # may read, may not write
    assert reader_uri(db) == f"{db.as_uri()}?mode=ro&immutable=1"  # nothing beside it: the file holds everything
    Path(f"{db}-wal").touch()
    assert reader_uri(db).endswith("immutable=1")  # an empty -wal holds no commit
    Path(f"{db}-shm").touch()
    assert reader_uri(db).endswith("?mode=ro")  # SQLite reads the -wal through the -shm
    Path(f"{db}-shm").unlink()
    Path(f"{db}-wal").write_bytes(b"frames")
    assert reader_uri(db).endswith("?mode=ro")  # never immutable past commits in the -wal: SQLite refuses instead
    assert "has a write-ahead log (catalog.sqlite-wal) but no catalog.sqlite-shm" in sqlite_file.why_not_open(db)


@sqlite_only
def test_an_immutable_reader_is_replaced_once_a_writer_starts(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog.close()
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: mode != os.W_OK)
    reader = Catalog(catalog.settings)
    try:
        with reader.read() as conn:
            assert conn.execute(select(ARTIFACTS.c.id)).all() == []
        monkeypatch.undo()
        with AtomicWriter(catalog=Catalog(catalog.settings)) as writer:
            held = writer.catalog
            writer.write_json("health", "later", {})  # its connection stays open: the -wal holds the row
            monkeypatch.setattr(os, "access", lambda path, mode, **kw: mode != os.W_OK)
            with reader.read() as conn:
                assert len(conn.execute(select(ARTIFACTS.c.id)).all()) == 1
            held.close()
    finally:
        reader.close()


@sqlite_only
@pytest.mark.parametrize("name", ["odd?dir", "100%41", "a?b=%2F#c"])
def test_a_store_whose_folder_name_reads_as_url_syntax_keeps_its_catalog_inside(tmp_path: Path, name: str) -> None:
    """A '?' in the base folder's path once started the URL's query (the catalog landed beside the store, named
    after the text before it) and '%41' was read as 'A'; every verb must find the same catalog inside the store."""
    place = tmp_path / "place"
    base, source = place / name / "store", place / "in.json"
    base.parent.mkdir(parents=True)
    source.write_text('{"a": 1}')
    cli = Cli(base, None)
    assert cli("init").exit_code == 0
    assert cli("put", str(source), "--type", "health", "--prefix", "odd").exit_code == 0
    listing = cli("ls", "--format", "json")
    assert listing.exit_code == 0 and [row["prefix"] for row in json.loads(listing.stdout)["artifacts"]] == ["odd"]
    assert (base / "catalog.sqlite").is_file()
    assert sorted(p.name for p in place.iterdir()) == sorted(["in.json", name])  # nothing made beside the store
    assert [p.name for p in base.parent.iterdir()] == ["store"]
    assert cli("audit", "verify").exit_code == 0


@pytest.mark.parametrize("shape", ["dangling", "loop", "dangling parent"])
def test_a_base_folder_through_a_symlink_to_nothing_is_named_as_such(tmp_path: Path, catalog_url: str | None,
                                                                     shape: str) -> None:  # fmt: skip
    """init said 'cannot create the store folders: File exists', and read verbs 'does not exist: run catalog init'."""
    place = tmp_path / "place"
    place.mkdir()
    if shape == "loop":
        (place / "a").symlink_to("b")
        (place / "b").symlink_to("a")
        base, link = place / "a", place / "a"
    else:
        (place / "a").symlink_to(place / "nowhere")
        base, link = (place / "a" / "store", place / "a") if shape == "dangling parent" else (place / "a", place / "a")
    for args in (["init"], ["ls"], ["put", "-", "--type", "health", "--prefix", "p", "--ext", "json"]):
        result = Cli(base, catalog_url)(*args, input=b"{}")
        assert result.exit_code == 2, result.output
        assert f"{link} is a symlink to " in result.stderr and "which leads nowhere" in result.stderr, result.stderr
    assert sorted(p.name for p in place.iterdir()) == ["a"] + (["b"] if shape == "loop" else [])  # nothing made


# -- case 9: SQLite only on local file systems ---------------------------------------------------------------------


@pytest.mark.parametrize("fstype", ["vboxsf", "drvfs", "fuse.vmhgfs-fuse", "fuse.juicefs", "virtiofs", "9p", "nfs4",
                                    "cifs", "fuse.sshfs", "fuseblk"])  # fmt: skip
def test_sqlite_is_refused_on_file_systems_not_known_to_be_local(fstype: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_file, "filesystem_type", lambda path, mountinfo=None: fstype)
    with pytest.raises(StoreError) as caught:
        require_local_filesystem(Path("/srv/store"))
    assert f"on a {fstype} file system, not one known to be local" in str(caught.value)
    assert "sqlite.allow_filesystems" in str(caught.value) and "PostgreSQL" in str(caught.value)
    require_local_filesystem(Path("/srv/store"), frozenset({fstype}))  # the documented override


@pytest.mark.parametrize("fstype", ["ext4", "xfs", "btrfs", "zfs", "tmpfs", "f2fs", "overlay", None])
def test_sqlite_is_accepted_on_local_file_systems(fstype: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_file, "filesystem_type", lambda path, mountinfo=None: fstype)
    require_local_filesystem(Path("/srv/store"))


@sqlite_only
def test_a_vm_shared_folder_is_refused_at_init_and_open_unless_allowed(
    run_cli: Cli, base_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_file, "filesystem_type", lambda path, mountinfo=None: "vboxsf")
    refused = run_cli("init")
    assert refused.exit_code == 2 and "on a vboxsf file system" in refused.stderr and "--catalog-url" in refused.stderr
    assert not (base_dir / "catalog.sqlite").exists()
    monkeypatch.setenv("CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS", "fuse.juicefs, vboxsf")
    assert run_cli("init").exit_code == 0
    assert run_cli("ls").exit_code == 0
    monkeypatch.delenv("CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS")
    reopened = run_cli("ls")  # opening an existing store checks too
    assert reopened.exit_code == 2 and "on a vboxsf file system" in reopened.stderr


def test_the_allow_filesystems_setting_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("sqlite:\n  allow_filesystems: [vboxsf, fuse.juicefs]\n")
    settings = load_settings(config, env={}, cwd=tmp_path)
    assert settings.sqlite_allow_filesystems == {"vboxsf", "fuse.juicefs"}
    assert settings.sources["sqlite.allow_filesystems"] == f"file:{config}"
    assert settings.values()["sqlite.allow_filesystems"] == ["fuse.juicefs", "vboxsf"]
    env = load_settings(env={"CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS": "drvfs,,9p "}, cwd=tmp_path)
    assert env.sqlite_allow_filesystems == {"drvfs", "9p"}
    assert load_settings(env={}, cwd=tmp_path).sqlite_allow_filesystems == frozenset()
    for bad in ("vboxsf", "[1]", "['has space']", "['../x']"):
        config.write_text(f"sqlite:\n  allow_filesystems: {bad}\n")
        with pytest.raises(ConfigError, match=f"config file {config}: key 'sqlite.allow_filesystems' must be a list"):
            load_settings(config, env={}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="env:CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS: key 'sqlite.allow_filesystems'"):
        load_settings(env={"CRYPTORUN_SQLITE_ALLOW_FILESYSTEMS": "vbox sf"}, cwd=tmp_path)


# -- case 12: a full disk ----------------------------------------------------------------------------------------


def _fill(folder: Path) -> None:
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


@sqlite_only
@as_root
def test_a_full_disk_says_no_space_left_not_disk_io_error(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    source = tmp_path / "in.json"
    source.write_text('{"a": 1}')
    with _mounted(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)]):
        base = disk / "store"
        _store(base)
        _fill(disk)
        cli = Cli(base, None)
        put = cli("put", str(source), "--type", "health", "--prefix", "full")
        assert put.exit_code == 2 and "no space left on the device" in put.stderr, put.stderr
        assert "disk I/O error" not in put.stderr
        listing = cli("ls")  # opening the catalog needs room for SQLite's -shm
        assert listing.exit_code == 2 and "no space left on the device" in listing.stderr, listing.stderr
        assert store_files(base) == []
        (disk / "filler").unlink()
        fs.FAULT_HOOK = _filler_hook(disk)  # the disk fills between publishing and the commit
        try:
            late = cli("put", str(source), "--type", "health", "--prefix", "late")
        finally:
            fs.FAULT_HOOK = None
        assert late.exit_code == 2 and "could not record it" in late.stderr and "no space left on the device" in late.stderr
        (disk / "filler").unlink()
        assert cli("reconcile", "--fix", "--grace", "0").exit_code == 1  # drift: the published file is adopted
        with Catalog.open(base) as catalog:
            assert [r.prefix for r in all_records(catalog)] == ["late"]


def _filler_hook(disk: Path) -> Callable[[str], None]:
    def hook(point: str) -> None:
        if point == "published":
            _fill(disk)

    return hook


def test_sqlite_disk_errors_say_no_space_when_the_disk_is_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(f"sqlite:///{tmp_path / 'catalog.sqlite'}")
    orig = sqlite3.OperationalError("disk I/O error")
    orig.sqlite_errorcode = 4874  # type: ignore[attr-defined]  # SQLITE_IOERR_SHMSIZE
    error = OperationalError("PRAGMA journal_mode", {}, orig)
    monkeypatch.setattr(sqlite_file, "free_bytes", lambda folder: 4096)
    explained = database._explain(error)
    assert isinstance(explained, CatalogDatabaseError)
    assert str(explained) == (f"catalog {tmp_path / 'catalog.sqlite'}: no space left on the device (4096 bytes free "
                              f"in {tmp_path}); free some space and try again")  # fmt: skip
    monkeypatch.setattr(sqlite_file, "free_bytes", lambda folder: 10 * 2**30)  # room enough: another I/O error
    assert str(database._explain(error)) == f"catalog {tmp_path / 'catalog.sqlite'}: disk I/O error"
    database.dispose()
