"""verify holds each batch's folders open (issue 17): one folder open per batch, no symlink followed, no descriptor kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from catalog.core import safe_open
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import verify as verify_module
from catalog.ops.verify import Scope, verify


@pytest.fixture
def many(writer: AtomicWriter, catalog: Catalog) -> list:  # type: ignore[type-arg]
    """23 health artifacts (one folder) and 3 ledger ones (another)."""
    return [writer.write_json("health", f"h{n}", {"n": n}) for n in range(23)] + [
        writer.write_json("ledger", f"l{n}", {"n": n}) for n in range(3)]  # fmt: skip


def _held(base_dir: Path) -> set[str]:
    """This process's descriptors of folders of the store (fd:target)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        if target.startswith(os.path.realpath(base_dir)) and os.path.isdir(target):
            found.add(f"{fd}:{target}")
    return found


@pytest.mark.parametrize(("batch", "opens"), [(500, 2), (10, 4)])
def test_each_batch_opens_each_of_its_folders_once(many, catalog: Catalog, base_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                   batch: int, opens: int) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """26 files in 2 folders: one open of each folder a batch needs (batches of 10: health, health, health + ledger)."""
    opened: list[str] = []
    real = safe_open.open_folder

    def counting(base: Path, rel: str, **kwargs: bool) -> int:
        opened.append(str(rel))
        return real(base, rel, **kwargs)

    monkeypatch.setattr(safe_open, "open_folder", counting)
    monkeypatch.setattr(verify_module, "BATCH", batch)
    run = verify(catalog, Scope())
    assert run.clean and run.checked == run.ok == 26
    assert sorted(opened) == sorted(["health"] * (opens - 1) + ["ledger"])
    assert not _held(base_dir)  # every held folder was closed


def test_a_folder_swapped_for_a_symlink_is_refused_from_the_next_batch(many, catalog: Catalog, base_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """The held folder serves only its batch: once health/ is a symlink (to its own old copy), no file is read through it."""
    monkeypatch.setattr(verify_module, "BATCH", 5)
    seen = 0

    def swap(files: int, size: int) -> None:
        nonlocal seen
        seen += files
        if seen == 5:  # the first batch is done: health/ becomes a link to the very same files
            (base_dir / "health").rename(base_dir / "health.real")
            (base_dir / "health").symlink_to(base_dir / "health.real")

    run = verify(catalog, Scope(), progress=swap)
    assert (run.checked, run.ok, len(run.failed)) == (26, 8, 18)  # 5 read before the swap, the 3 ledger files after it
    assert {f["reason"] for f in run.failed} == {"health/ is a symlink, not a folder"}


def test_past_the_limit_folders_are_opened_per_file_and_closed(many, catalog: Catalog, base_dir: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """With room for one held folder, the second folder's files still verify, and no descriptor is left open."""
    monkeypatch.setattr(safe_open.HeldFolders, "LIMIT", 1)
    run = verify(catalog, Scope(), workers=4)
    assert run.clean and run.checked == 26
    assert not _held(base_dir)
    with safe_open.HeldFolders(catalog.base_dir) as folders:
        folders.sha256_row(many[0].path, many[0].size)
        held = _held(base_dir)
        folders.sha256_row(many[-1].path, many[-1].size)  # not held: opened and closed for this file
        assert _held(base_dir) == held and len(held) == 1
    assert not _held(base_dir)


@pytest.mark.parametrize("path", ["../outside/20240101-000000-x-health.json", "/etc/passwd", "health/./x.json",
                                  "health//20240101-000000-x-health.json", "health/not-an-artifact.txt"])  # fmt: skip
def test_a_row_path_outside_the_rule_is_refused_before_any_open(catalog: Catalog, path: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(safe_open, "open_folder", lambda *a, **k: pytest.fail("opened a folder"))
    with safe_open.HeldFolders(catalog.base_dir) as folders, pytest.raises(safe_open.UnsafePath, match="refused"):
        folders.sha256_row(path, 10)


@pytest.mark.parametrize("workers", [1, 3])
def test_one_worker_hashes_inline_without_a_thread_pool(many, catalog: Catalog, monkeypatch: pytest.MonkeyPatch,
                                                       workers: int) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    """workers=1 makes no ThreadPoolExecutor at all (and gives the same report); more workers make one pool."""
    made: list[int] = []
    real = verify_module.ThreadPoolExecutor

    def counting(max_workers: int) -> verify_module.ThreadPoolExecutor:
        made.append(max_workers)
        return real(max_workers=max_workers)

    monkeypatch.setattr(verify_module, "ThreadPoolExecutor", counting)
    monkeypatch.setattr(verify_module, "BATCH", 10)
    run = verify(catalog, Scope(), workers=workers)
    assert run.clean and run.checked == run.ok == 26
    assert made == ([] if workers == 1 else [workers])
