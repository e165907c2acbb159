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

from catalog.core import fs
from catalog.core.errors import CollisionError, InputError, ValidationError


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
    assert fs.sha256_file(path) == (hashlib.sha256(data).hexdigest(), size)


def test_sha256_file_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        fs.sha256_file(tmp_path / "nope")


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
    short = Path(tempfile.mkdtemp(prefix="cat-"))  # AF_UNIX paths are short: not under pytest's tmp_path
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
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                fs.read_file(path, "input file", InputError)
                message = "read it"
            except InputError as exc:
                message = str(exc)
            os.write(writer, message.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        shown = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, shown
    return shown


def test_read_file_permission_denied() -> None:
    # A dedicated folder under /tmp: pytest's own tmp_path is private to its user.
    folder = Path(tempfile.mkdtemp(prefix="cat-perm-"))
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
