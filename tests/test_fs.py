"""The file half of every change (catalog.core.fs): publish never clobbers, links and moves are durable, hashing is right."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from catalog.core import fs, safe_open
from catalog.core.errors import CollisionError, InputError, ValidationError

from helpers import NOT_REGULAR, SYSTEM_TMP, as_nobody, plant


def _listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    made = tmp_path / "ledger"
    made.mkdir()
    return made


@pytest.fixture
def points(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fault hook's points, in the order they were reached."""
    seen: list[str] = []
    monkeypatch.setattr(fs, "FAULT_HOOK", seen.append)
    return seen


# -- publish -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, fs.HASH_BESIDE - 1, fs.HASH_BESIDE, fs.HASH_BESIDE + 1, 3 * fs.CHUNK + 7],
    ids=["empty", "one-byte", "just-below-hash-beside", "hash-beside", "just-above-hash-beside", "over-three-chunks"],
)
def test_publish_returns_the_sha256_and_leaves_one_read_only_file(folder: Path, size: int) -> None:
    data = bytes((i * 31 + 7) % 256 for i in range(size))
    digest = fs.publish(folder, "a.json", data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert _listing(folder) == ["a.json"]  # no temp file left behind
    assert (folder / "a.json").read_bytes() == data
    assert stat.S_IMODE((folder / "a.json").stat().st_mode) == 0o444
    assert (folder / "a.json").stat().st_nlink == 1  # the temp name is gone, not merely hidden


@pytest.mark.parametrize("size", [10, fs.HASH_BESIDE + 10], ids=["small", "hashed-beside"])
def test_publish_never_clobbers(folder: Path, size: int) -> None:
    original = b"o" * size
    fs.publish(folder, "a.json", original)
    with pytest.raises(CollisionError) as caught:
        fs.publish(folder, "a.json", b"n" * size)
    assert str(caught.value) == "ledger/a.json already exists; nothing was overwritten"
    assert (folder / "a.json").read_bytes() == original
    assert _listing(folder) == ["a.json"]


@pytest.mark.parametrize("size", [1, fs.CHUNK, 3 * fs.CHUNK + 7], ids=["one-byte", "one-chunk", "over-three-chunks"])
def test_publish_stream_publishes_what_publish_would(folder: Path, size: int, points: list[str]) -> None:
    data = bytes((i * 31 + 7) % 256 for i in range(size))
    pieces = (data[i : i + 1000] for i in range(0, size, 1000))
    assert fs.publish_stream(folder, "a.json", pieces) == (hashlib.sha256(data).hexdigest(), size)
    assert (folder / "a.json").read_bytes() == data and _listing(folder) == ["a.json"]
    assert stat.S_IMODE((folder / "a.json").stat().st_mode) == 0o444
    assert points == ["temp_written", "published"]


def test_publish_stream_refused_by_its_check_leaves_nothing(folder: Path) -> None:
    seen: list[bytes] = []

    def check(chunks) -> None:  # type: ignore[no-untyped-def]
        for chunk in chunks:
            seen.append(chunk)
            if len(seen) == 2:
                raise ValidationError("refused at the second chunk")

    with pytest.raises(ValidationError, match="second chunk"):
        fs.publish_stream(folder, "a.json", iter([b"a", b"b", b"c"]), check)
    assert seen == [b"a", b"b"] and _listing(folder) == []
    fs.publish(folder, "b.json", b"x")
    with pytest.raises(CollisionError):
        fs.publish_stream(folder, "b.json", [b"y"])
    assert (folder / "b.json").read_bytes() == b"x" and _listing(folder) == ["b.json"]


def test_publish_reaches_its_fault_points_in_order(folder: Path, points: list[str]) -> None:
    fs.publish(folder, "a.json", b"{}")
    assert points == ["temp_written", "published"]


def test_a_collision_stops_before_the_published_point(folder: Path, points: list[str]) -> None:
    fs.publish(folder, "a.json", b"{}")
    points.clear()
    with pytest.raises(CollisionError):
        fs.publish(folder, "a.json", b"[]")
    assert points == ["temp_written"]


def test_a_crash_after_the_temp_write_leaves_neither_temp_nor_final_name(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(point: str) -> None:
        if point == "temp_written":
            raise RuntimeError("killed")

    monkeypatch.setattr(fs, "FAULT_HOOK", crash)
    with pytest.raises(RuntimeError, match="^killed$"):
        fs.publish(folder, "a.json", b"{}")
    assert _listing(folder) == []


# -- links, moves, unlinks ------------------------------------------------------------------


def test_link_durably_links_into_a_new_folder(tmp_path: Path, points: list[str]) -> None:
    source = tmp_path / "a.json"
    source.write_bytes(b"one")
    target = tmp_path / "ledger" / "archived" / "2024-01" / "a.json"
    fs.link_durably(source, target)
    assert target.read_bytes() == b"one"
    assert os.path.samefile(source, target)
    assert points == ["linked"]


def test_link_durably_never_clobbers(tmp_path: Path, points: list[str]) -> None:
    source, target = tmp_path / "a.json", tmp_path / "b.json"
    source.write_bytes(b"new")
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        fs.link_durably(source, target)
    assert target.read_bytes() == b"old" and source.read_bytes() == b"new"
    assert points == []


def test_move_durably_leaves_the_file_under_exactly_one_name(tmp_path: Path, points: list[str]) -> None:
    source = tmp_path / "ledger" / "a.json"
    source.parent.mkdir()
    source.write_bytes(b"bytes")
    target = tmp_path / "ledger" / "quarantine" / "a.json"
    fs.move_durably(source, target)
    assert not source.exists()
    assert target.read_bytes() == b"bytes" and target.stat().st_nlink == 1
    assert _listing(tmp_path / "ledger") == ["quarantine"]
    assert points == ["linked", "unlinked"]


def test_move_durably_never_clobbers_and_keeps_the_source(tmp_path: Path) -> None:
    source, target = tmp_path / "a.json", tmp_path / "b.json"
    source.write_bytes(b"new")
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        fs.move_durably(source, target)
    assert source.read_bytes() == b"new" and target.read_bytes() == b"old"


def test_unlink_durably_says_whether_it_removed_and_always_reaches_its_point(tmp_path: Path, points: list[str]) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"x")
    assert fs.unlink_durably(path) is True
    assert not path.exists()
    assert fs.unlink_durably(path) is False
    assert points == ["unlinked", "unlinked"]


# -- hashing -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 5, fs.CHUNK, 2 * fs.CHUNK + 3], ids=["empty", "small", "one-chunk", "chunks"])
def test_sha256_file_gives_hash_and_size(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert fs.sha256_file(tmp_path, "f") == (hashlib.sha256(data).hexdigest(), size)
    assert fs.sha256_file(tmp_path, "f", size) == (hashlib.sha256(data).hexdigest(), size)


def test_sha256_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.sha256_file(tmp_path, "nope")


# -- reading an artifact: no symlink followed, regular files only, bounded ---------------------


@pytest.fixture
def typed_store(tmp_path: Path) -> Path:
    """A store with explain/a.json; tmp_path/outside is a folder beyond it."""
    base = tmp_path / "store"
    (base / "explain").mkdir(parents=True)
    (base / "explain" / "a.json").write_bytes(b'{"a": 1}\n')
    (tmp_path / "outside").mkdir()
    return base


def test_open_artifact_reads_a_regular_file(typed_store: Path) -> None:
    with fs.open_artifact(typed_store, "explain/a.json") as handle:
        assert handle.read() == b'{"a": 1}\n'
    assert fs.read_artifact(typed_store, "explain/a.json") == b'{"a": 1}\n'


@pytest.mark.parametrize("what", list(NOT_REGULAR))
def test_open_artifact_refuses_anything_but_a_regular_file_reached_without_links(typed_store: Path, what: str) -> None:
    """Issue 14, cases 11 and 16: a FIFO hung every reader; a symlink was followed (even to /dev/zero)."""
    plant(typed_store / "explain" / "a.json", what, typed_store.parent / "outside")
    for read in (lambda: fs.open_artifact(typed_store, "explain/a.json"),
                 lambda: fs.sha256_file(typed_store, "explain/a.json", 9)):  # fmt: skip
        with pytest.raises(fs.UnsafePath) as caught:
            read()
        assert caught.value.reason == NOT_REGULAR[what] and caught.value.strerror == NOT_REGULAR[what]
        assert isinstance(caught.value, OSError)  # every OSError handler still sees it


@pytest.mark.parametrize("rel", ["../copy.json", "/etc/passwd", "explain/../../copy.json", ""])
def test_open_artifact_refuses_a_path_that_leaves_the_store(typed_store: Path, rel: str) -> None:
    with pytest.raises(fs.UnsafePath, match="not a path inside the store"):
        fs.open_artifact(typed_store, rel)


def test_a_missing_artifact_or_folder_is_file_not_found(typed_store: Path) -> None:
    for rel in ("explain/nope.json", "ledger/a.json"):
        with pytest.raises(FileNotFoundError):
            fs.open_artifact(typed_store, rel)


class Endless:
    """A stream that never ends (like /dev/zero), counting what was read."""

    def __init__(self) -> None:
        self.read_so_far = 0

    def read(self, size: int = -1) -> bytes:
        assert size > 0, "an unbounded read"
        self.read_so_far += size
        return b"\0" * size


@pytest.mark.parametrize("size", [0, 5, fs.CHUNK, 3 * fs.CHUNK + 1])
def test_reads_stop_one_byte_past_the_recorded_size(size: int) -> None:
    """Issue 14, case 16: `get -o` of a link to /dev/zero wrote a 3 GB temp file in 10 s."""
    stream = Endless()
    assert sum(len(chunk) for chunk in fs.read_limited(stream, size)) == size + 1  # type: ignore[arg-type]
    assert stream.read_so_far == size + 1


def test_a_file_of_another_size_is_not_hashed(typed_store: Path) -> None:
    assert fs.sha256_file(typed_store, "explain/a.json", 3) == (None, 9)
    digest = hashlib.sha256(b'{"a": 1}\n').hexdigest()
    assert fs.sha256_file(typed_store, "explain/a.json", 9) == (digest, 9)


# -- writing into the store: never through a symlinked folder ------------------------------------


def test_writers_refuse_a_symlinked_type_folder(typed_store: Path, tmp_path: Path) -> None:
    """Issue 14, case 16: a type folder replaced by a link to a folder outside was written through silently."""
    outside = tmp_path / "outside"
    plant(typed_store / "explain" / "a.json", "linked-type-folder", outside)
    before = sorted(os.listdir(outside))
    folder = typed_store / "explain"
    with pytest.raises(fs.UnsafePath, match="^.*explain/ is a symlink, not a folder"):
        fs.ensure_folder(folder, typed_store)
    with pytest.raises(fs.UnsafePath, match="explain/ is a symlink, not a folder"):
        fs.publish(folder, "b.json", b"{}", base=typed_store)
    source = tmp_path / "source.json"
    source.write_bytes(b"{}")
    with pytest.raises(fs.UnsafePath, match="explain/ is a symlink, not a folder"):
        fs.link_durably(source, folder / "archived" / "c.json", typed_store)
    assert sorted(os.listdir(outside)) == before  # nothing was written through the link


def test_ensure_folder_in_the_store_refuses_a_symlink_at_any_depth(typed_store: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (typed_store / "explain" / "archived").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(fs.UnsafePath, match="explain/archived/ is a symlink, not a folder"):
        fs.ensure_folder(typed_store / "explain" / "archived" / "2024-01", typed_store)
    assert os.listdir(tmp_path / "elsewhere") == []
    fs.ensure_folder(typed_store / "ledger" / "archived" / "2024-01", typed_store)  # real folders are made
    assert (typed_store / "ledger" / "archived" / "2024-01").is_dir()


def _recording_fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders (or files) os.fsync is called on from now on, by path."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return synced


@pytest.mark.parametrize("race", [False, True])
def test_open_folder_makes_each_new_folder_durable_in_its_parent_even_when_another_writer_made_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, race: bool) -> None:  # fmt: skip
    """Another writer's mkdir between our open and ours (FileExistsError): we fsync the parent all the same,
    since that writer may crash before its own fsync; a folder this process made durable costs no mkdir nor fsync."""
    monkeypatch.setattr(safe_open, "_DURABLE", set())  # inode numbers of earlier tests' folders may come back
    base = tmp_path / "store"
    base.mkdir()
    real_mkdir = os.mkdir

    def racing_mkdir(path: str, *args: object, dir_fd: int | None = None, **kwargs: object) -> None:
        real_mkdir(path, dir_fd=dir_fd)  # the other writer's
        raise FileExistsError(path)

    if race:
        monkeypatch.setattr(os, "mkdir", racing_mkdir)
    synced = _recording_fsyncs(monkeypatch)
    os.close(safe_open.open_folder(base, "ledger/archived", create=True))
    assert (base / "ledger" / "archived").is_dir()
    assert synced == [str(base), str(base / "ledger")]
    synced.clear()
    os.close(safe_open.open_folder(base, "ledger/archived", create=True))
    assert synced == []


def test_a_folder_another_writer_made_is_made_durable_once_by_this_process(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Found made, with no error to say so, by a writer that may not have fsynced its parent yet: this process
    fsyncs each parent once, the first time it opens the folder, and never again."""
    monkeypatch.setattr(safe_open, "_DURABLE", set())
    base = tmp_path / "store"
    (base / "ledger" / "2026" / "11").mkdir(parents=True)  # another process's mkdirs, durable or not
    synced = _recording_fsyncs(monkeypatch)
    os.close(safe_open.open_folder(base, "ledger/2026/11", create=True))
    assert synced == [str(base), str(base / "ledger"), str(base / "ledger" / "2026")]
    synced.clear()
    for _ in range(3):
        os.close(safe_open.open_folder(base, "ledger/2026/11", create=True))
    os.close(safe_open.open_folder(base, "ledger/2026/11"))  # a reader makes nothing durable
    assert synced == []


def test_link_durably_moves_a_symlink_as_the_link_itself(tmp_path: Path) -> None:
    """Quarantining a planted link must not hard-link the file it points at into the store."""
    target = tmp_path / "victim.json"
    target.write_bytes(b"not ours")
    link = tmp_path / "a.json"
    link.symlink_to(target)
    fs.move_durably(link, tmp_path / "quarantine" / "a.json")
    moved = tmp_path / "quarantine" / "a.json"
    assert moved.is_symlink() and os.readlink(moved) == str(target)
    assert target.stat().st_nlink == 1


# -- files outside the store: a private temp, the umask's mode, never clobbering ---------------


@pytest.fixture
def outdir(tmp_path: Path) -> Path:
    made = tmp_path / "out"
    made.mkdir()
    return made


def test_new_file_beside_follows_the_umask_and_fsyncs_the_folder(outdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[Path] = []
    real = fs.fsync_dir
    monkeypatch.setattr(fs, "fsync_dir", lambda folder: (synced.append(folder), real(folder)))
    target = outdir / "out.bin"
    old = os.umask(0o027)
    try:
        with fs.new_file_beside(target) as tmp:
            tmp.write_bytes(b"data")
    finally:
        os.umask(old)
    assert target.read_bytes() == b"data" and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert synced == [outdir] and _listing(outdir) == ["out.bin"]


def test_new_file_beside_never_writes_through_a_planted_link(outdir: Path) -> None:
    """Issue 14, case 17: a link at backup's fixed temp name overwrote another store's catalog."""
    victim = outdir / "victim.sqlite"
    victim.write_bytes(b"another store's catalog")
    for guess in (".out.bin.tmp", ".out.bin.tmp-journal"):
        (outdir / guess).symlink_to(victim)
    target = outdir / "out.bin"
    with fs.new_file_beside(target) as tmp:
        tmp.write_bytes(b"ours")
    assert victim.read_bytes() == b"another store's catalog" and target.read_bytes() == b"ours"
    assert _listing(outdir) == [".out.bin.tmp", ".out.bin.tmp-journal", "out.bin", "victim.sqlite"]


def test_new_file_beside_never_clobbers_and_cleans_up(outdir: Path) -> None:
    target = outdir / "out.bin"
    with pytest.raises(CollisionError) as caught:
        with fs.new_file_beside(target) as tmp:
            tmp.write_bytes(b"the loser")
            target.write_bytes(b"the winner")  # another writer got there first
    assert str(caught.value) == f"{target} already exists; nothing was overwritten"
    assert target.read_bytes() == b"the winner" and _listing(outdir) == ["out.bin"]
    with pytest.raises(RuntimeError):
        with fs.new_file_beside(outdir / "other.bin") as tmp:
            raise RuntimeError("the writer failed")
    assert _listing(outdir) == ["out.bin"]  # no half-written output, no temp folder


def test_new_file_beside_may_replace_when_asked(outdir: Path) -> None:
    target = outdir / "out.bin"
    target.write_bytes(b"old")
    with fs.new_file_beside(target, replace=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and _listing(outdir) == ["out.bin"]


# -- inside or outside the store -------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    base = tmp_path / "store"
    (base / "ledger").mkdir(parents=True)
    return base


@pytest.mark.parametrize(
    "relative, inside",
    [("store", True), ("store/ledger", True), ("store/ledger/new.json", True), ("store2", False),
     ("store2/ledger", False), ("outside/x.json", False), ("store/../outside", False)],
    ids=["the-store", "a-folder", "a-new-file", "sibling-with-common-prefix", "in-the-sibling", "elsewhere",
         "dotdot-out"],
)  # fmt: skip
def test_is_inside(tmp_path: Path, store: Path, relative: str, inside: bool) -> None:
    (tmp_path / "store2" / "ledger").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    assert fs.is_inside(tmp_path / relative, store) is inside


def test_a_symlink_into_the_store_is_inside(tmp_path: Path, store: Path) -> None:
    link = tmp_path / "innocent"
    link.symlink_to(store / "ledger")
    assert fs.is_inside(link / "backup.sqlite", store) is True
    with pytest.raises(ValidationError) as caught:
        fs.outside_store(store, link / "backup.sqlite", "backup")
    assert str(caught.value) == (
        f"backup {link / 'backup.sqlite'} is inside the store; keep it outside, where the store cannot touch it"
    )


def test_a_symlinked_store_is_still_the_store(tmp_path: Path, store: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(store)
    with pytest.raises(ValidationError, match="^checkpoint file .* is inside the store; "):
        fs.outside_store(alias, store / "c.json", "checkpoint file")


def test_outside_store_returns_an_absolute_path(tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path / "out")
    assert fs.outside_store(store, Path("c.json"), "checkpoint file") == tmp_path / "out" / "c.json"


# -- read_file -----------------------------------------------------------------------------


def test_read_file_reads(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_bytes(b"{}")
    assert fs.read_file(tmp_path / "in.json", "input file", InputError) == b"{}"


def _expect_one_line(error: BaseException, message: str) -> None:
    assert str(error) == message
    assert "\n" not in str(error) and "\r" not in str(error)


def test_read_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        fs.read_file(tmp_path / "gone.json", "input file", InputError)
    _expect_one_line(caught.value, f"input file {tmp_path / 'gone.json'} does not exist")


def test_read_file_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        fs.read_file(tmp_path, "checkpoint", ValidationError)
    _expect_one_line(caught.value, f"checkpoint {tmp_path} is a folder, not a file")


def test_read_file_through_a_file_as_folder(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(InputError) as caught:
        fs.read_file(tmp_path / "plain" / "x.json", "input file", InputError)
    _expect_one_line(caught.value, f"input file {tmp_path / 'plain' / 'x.json'} cannot be read: Not a directory")


def test_read_file_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    short = Path(tempfile.mkdtemp(prefix="cat-", dir=SYSTEM_TMP))  # AF_UNIX paths are short: not under pytest's tmp_path
    try:
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(short / "s"))
            with pytest.raises(InputError) as caught:
                fs.read_file(short / "s", "input file", InputError)
        finally:
            sock.close()
    finally:
        shutil.rmtree(short)
    _expect_one_line(caught.value, f"input file {short / 's'} cannot be read: No such device or address")


def _read_as_nobody(path: Path) -> str:
    """read_file's message in a forked child that dropped root for nobody (root reads anything)."""

    def read() -> str:
        try:
            fs.read_file(path, "input file", InputError)
            return "read it"
        except InputError as exc:
            return str(exc)

    return as_nobody(read)


def test_read_file_permission_denied() -> None:
    # A dedicated folder under /tmp: pytest's own tmp_path is private to its user.
    folder = Path(tempfile.mkdtemp(prefix="cat-perm-", dir=SYSTEM_TMP))
    try:
        folder.chmod(0o755)
        secret = folder / "secret.json"
        secret.write_bytes(b"{}")
        secret.chmod(0o000)
        if os.geteuid() == 0:
            shown = _read_as_nobody(secret)
        else:
            with pytest.raises(InputError) as caught:
                fs.read_file(secret, "input file", InputError)
            shown = str(caught.value)
    finally:
        shutil.rmtree(folder)
    _expect_one_line(Exception(shown), f"input file {secret} cannot be read: permission denied")
