"""Evidence bundles that cannot be forged (issue 15, part 4): signed, tied to the log's tree, every row to its events.

The forger below is what an insider without the store's key can do to a
bundle: edit any member, then rebuild the chain, the Merkle tree, the
checkpoint, bundle.json, the signature note's text and the seal. What stops
them is the signature (with ``--key``), the auditor's checkpoint (with
``--checkpoint``), and the rows' ties to their events (always).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import select
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from catalog.core import bundle_format as fmt
from catalog.core import chain, note, tlog
from catalog.core.tree import Frontier, leaf
from catalog.ops.bundles import export_bundle
from catalog.ops.keys import generate_key

from helpers import catalog_env, tamper

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def keys(tmp_path: Path, base_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with the store's key (configured as audit.signing_key) and a witness's key, each with its .pub."""
    folder = tmp_path / "keys"
    folder.mkdir()
    generate_key("example.com/store", folder / "store.key", base_dir)
    generate_key("witness.example/w1", folder / "witness.key", base_dir)
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(folder / "store.key"))
    return folder


def verifier(path: Path) -> note.Verifier:
    return note.parse_verifier(path.read_text().strip())


def members_of(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def ndjson(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def forge(source: Path, target: Path, edit: Callable[[dict[str, bytes]], None], *,
          signer: note.Signer | None = None) -> None:  # fmt: skip
    """Rewrite ``source`` as a forger would: ``edit`` its members, then rebuild everything that depends on them.

    The chain and the tree of the window (the bundle must hold the whole log:
    exported without --since), the checkpoint (signed by ``signer``, else
    carrying the store's old signature lines), bundle.json, the signature
    note (likewise) and the seal.
    """
    members = members_of(source)
    bundle = json.loads(members.pop(fmt.MANIFEST))
    old_signature = note.parse_note(members.pop(fmt.SIGNATURE), signed=False)
    edit(members)
    assert bundle["tree"]["base"] == 0, "the forger rebuilds the tree of a bundle that holds the whole log"
    events, prev, frontier = ndjson(members[fmt.EVENTS]), chain.GENESIS_HASH, Frontier()
    for event in events:
        event["hash"] = prev = chain.chain_hash(prev, event["text"])
        frontier.add(leaf(event["text"]))
    members[fmt.EVENTS] = "".join(json.dumps(e, sort_keys=True) + "\n" for e in events).encode()
    root, size = frontier.root(), frontier.size
    old = tlog.parse_checkpoint(members[fmt.CHECKPOINT])

    def signed(text: str, like: note.Note) -> bytes:
        return (note.sign(text, signer) if signer else note.Note(text, like.signatures)).encode()

    members[fmt.CHECKPOINT] = signed(tlog.checkpoint_text(old.origin, size, root), old.note)
    bundle["tree"].update(size=size, root=note.b64encode(root), end_proof=[])
    bundle["last_seq"] = size
    bundle["members"] = {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}
    manifest = json.dumps(bundle, indent=2).encode()
    text = fmt.signature_text(old.origin, size, root, hashlib.sha256(manifest).hexdigest())
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(fmt.MANIFEST, manifest)
        archive.writestr(fmt.SIGNATURE, signed(text, old_signature))
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = b"\0" * fmt.SEAL_LENGTH
    fmt.seal(target)


def verify(run_cli, bundle: Path, *args: str):  # type: ignore[no-untyped-def]
    result = run_cli("audit", "verify-bundle", str(bundle), *args, global_args=[])
    assert "Traceback" not in result.output
    return result


def delete(catalog: Any, record: Any, reason: str = "expired under the 30-day policy") -> None:
    catalog.change_status(record.id, action="delete", status="deleted", details={"reason": reason})


# -- an honest store -------------------------------------------------------------------------------------------


def test_an_honest_signed_bundle_verifies_elsewhere_with_the_catalog_deleted(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                             tmp_path: Path, base_dir: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    records = [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(3)]
    assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "held.txt")).exit_code == 0  # what the auditor keeps
    delete(catalog, records[0])
    exported = run_cli("audit", "export", str(tmp_path / "b.zip"), "--include-files")
    assert exported.exit_code == 0, exported.output
    store_key = verifier(keys / "store.key.pub")
    assert f"signed by {store_key.label}" in exported.stdout and "NOT signed" not in exported.stderr
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    for name in ("b.zip", "held.txt", "keys/store.key.pub", "keys/witness.key.pub"):
        shutil.copy(tmp_path / name, elsewhere / Path(name).name)
    catalog.close()
    shutil.rmtree(base_dir)  # the catalog is gone (SQLite); on PostgreSQL the command never connects anyway
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("CRYPTORUN_SIGNING_KEY")
    result = verify(run_cli, Path("b.zip"), "--key", "store.key.pub", "--checkpoint", "held.txt")
    assert result.exit_code == 0, result.stdout
    assert result.stdout.startswith("Bundle verifies: events 1..6 chain intact, 3 artifact rows and 2 files")
    assert f"signed by {store_key.label}, extends 1 checkpoint(s) you hold" in result.stdout
    unauthenticated = verify(run_cli, Path("b.zip"))
    assert unauthenticated.exit_code == 0
    assert unauthenticated.stdout.startswith("NOT authenticated: no --key was given")
    wrong_key = verify(run_cli, Path("b.zip"), "--key", "witness.key.pub")
    assert wrong_key.exit_code == 1 and "is not signed by a trusted key" in wrong_key.stdout
    checked = json.loads(verify(run_cli, Path("b.zip"), "--key", "store.key.pub", "--format", "json").stdout)
    assert checked["ok"] and checked["authenticated"] and checked["tree_size"] == 6


def test_an_unsigned_export_says_so_and_fails_with_a_key(catalog, writer, run_cli, tmp_path: Path, base_dir: Path) -> None:  # type: ignore[no-untyped-def]
    writer.write_json("ledger", "p", {"n": 1})
    exported = run_cli("audit", "export", str(tmp_path / "b.zip"))
    assert exported.exit_code == 0 and "UNSIGNED" in exported.stdout
    assert exported.stderr.startswith("Warning: the bundle is NOT signed (no audit.signing_key)")
    generate_key("example.com/store", tmp_path / "store.key", base_dir)
    result = verify(run_cli, tmp_path / "b.zip", "--key", str(tmp_path / "store.key.pub"))
    assert result.exit_code == 1
    assert "Bundle does NOT verify: the bundle is not signed by a trusted key (signed by nobody" in result.stdout


def test_a_bundle_to_dash_goes_to_standard_output_and_verifies(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:  # fmt: skip
    writer.write_json("ledger", "p", {"n": 1})
    exported = run_cli("audit", "export", "-", "--include-files")
    assert exported.exit_code == 0, exported.stderr
    store_key = verifier(keys / "store.key.pub")
    assert exported.stderr.splitlines() == [
        "Wrote the bundle to standard output: events 1..2 (2), 1 artifact rows, 1 files; log of 2 events, "
        f"signed by {store_key.label}."]  # fmt: skip
    assert not Path("-").exists()
    (tmp_path / "b.zip").write_bytes(exported.stdout_bytes)
    result = verify(run_cli, tmp_path / "b.zip", "--key", str(keys / "store.key.pub"))
    assert result.exit_code == 0 and result.stdout.startswith("Bundle verifies: events 1..2 chain intact"), result.stdout


def test_a_bundle_to_dash_on_a_terminal_is_refused_in_one_line(catalog, writer, base_dir: Path,  # type: ignore[no-untyped-def]
                                                               catalog_url: str | None) -> None:  # fmt: skip
    import catalog as package

    writer.write_json("ledger", "p", {"n": 1})
    env = {**catalog_env(base_dir, catalog_url), "PYTHONPATH": str(Path(package.__file__).resolve().parents[1])}
    terminal, tty = os.openpty()
    try:
        child = subprocess.run([sys.executable, "-m", "catalog", "audit", "export", "-"], stdout=tty,
                               stderr=subprocess.PIPE, text=True, env=env, timeout=120)  # fmt: skip
        shown = os.read(terminal, 65536) if select.select([terminal], [], [], 0)[0] else b""
    finally:
        os.close(tty)
        os.close(terminal)
    assert (child.returncode, shown) == (2, b""), (child.returncode, shown, child.stderr)
    assert child.stderr.splitlines() == ["Error: OUT.zip - writes a binary ZIP to standard output, which is a terminal: "
                                         "redirect it (> FILE, | COMMAND) or give a file path"]  # fmt: skip
    assert sorted(os.listdir()) == []


# -- forgeries ---------------------------------------------------------------------------------------------------


def test_a_forged_bundle_fails_with_the_key(catalog, writer, run_cli, keys: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's insider: the actor of every delete event rewritten, chain, tree, manifest and seal rebuilt."""
    for record in [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(4)]:
        delete(catalog, record)
    genuine, forged = tmp_path / "genuine.zip", tmp_path / "forged.zip"
    assert run_cli("audit", "export", str(genuine)).exit_code == 0

    def blame_someone_else(members: dict[str, bytes]) -> None:
        events = ndjson(members[fmt.EVENTS])
        for event in events:
            body = json.loads(event["text"])
            if body["action"] == "delete":
                event["text"] = chain.canonical_json({**body, "actor": "compliance-officer@host:1"})
        members[fmt.EVENTS] = "".join(json.dumps(e) + "\n" for e in events).encode()

    store_key, mallory = keys / "store.key.pub", note.generate("example.com/store")
    for signer, why in ((None, "does not verify: the note was altered or forged"),
                        (mallory, "is not signed by a trusted key")):  # fmt: skip
        forged.unlink(missing_ok=True)
        forge(genuine, forged, blame_someone_else, signer=signer)
        assert verify(run_cli, forged).exit_code == 0  # self-consistent: exactly what a key is for
        result = verify(run_cli, forged, "--key", str(store_key))
        assert result.exit_code == 1 and why in result.stdout, result.stdout
        assert result.stdout.startswith("Bundle does NOT verify: the bundle")
    assert verify(run_cli, genuine, "--key", str(store_key)).exit_code == 0


def test_every_single_bit_flip_of_a_bundle_fails(catalog, writer, keys: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.core.errors import ValidationError

    record = writer.write_json("ledger", "p", {"n": 1})
    delete(catalog, record)
    bundle = tmp_path / "b.zip"
    catalog.settings = dataclasses.replace(catalog.settings, signing_key=keys / "store.key")
    export_bundle(catalog, bundle, None, None)
    key = verifier(keys / "store.key.pub")
    assert fmt.verify_bundle(bundle, [key]).authenticated
    data = bundle.read_bytes()
    flipped = tmp_path / "flipped.zip"
    for position in range(len(data)):  # every byte, each time another bit of it: all members, headers and the seal
        altered = bytearray(data)
        altered[position] ^= 1 << (position % 8)
        flipped.write_bytes(bytes(altered))
        try:
            report = fmt.verify_bundle(flipped, [key])
        except ValidationError:
            continue  # no longer a bundle at all (exit 2)
        assert not report.ok and not report.authenticated, position


def test_a_consistently_rewritten_log_does_not_extend_the_auditors_checkpoint(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                             tmp_path: Path) -> None:  # fmt: skip
    """An insider with the database and the key rewrites the delete events and exports a signed bundle."""
    records = [writer.write_json("ledger", f"p{n}", {"n": n}) for n in range(3)]
    for record in records:
        delete(catalog, record)
    assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "held.txt")).exit_code == 0
    writer.write_json("ledger", "later", {"n": 9})
    rewrite_log(catalog, lambda body: {**body, "actor": "compliance-officer"} if body["action"] == "delete" else body)
    assert catalog.audit_verify().intact  # the log itself is consistent again: only a checkpoint held outside tells
    for window in ((), ("--since", "2000-01-01")):
        out = tmp_path / f"rewritten{len(window)}.zip"
        assert run_cli("audit", "export", str(out), *window).exit_code == 0
        result = verify(run_cli, out, "--key", str(keys / "store.key.pub"), "--checkpoint", str(tmp_path / "held.txt"))
        assert result.exit_code == 1, result.stdout
        assert "hash to another root than checkpoint" in result.stdout
    refused = run_cli("audit", "export", str(tmp_path / "c.zip"), "--since-checkpoint", str(tmp_path / "held.txt"))
    assert refused.exit_code == 1 and "the log does not extend checkpoint" in refused.stderr


def rewrite_log(catalog: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite events' texts behind the catalog's back, and re-chain and re-tree the whole log consistently."""
    from sqlalchemy import select

    from catalog.core.schema import EVENTS

    with catalog.read() as conn:
        events = conn.execute(select(EVENTS.c.seq, EVENTS.c.text).order_by(EVENTS.c.seq)).all()
    statements, prev = [], chain.GENESIS_HASH
    for seq, text in events:
        body = change(json.loads(text))
        text = chain.canonical_json(body)
        prev = chain.chain_hash(prev, text)
        quoted = text.replace("'", "''")
        statements.append(f"UPDATE events SET text = '{quoted}', actor = '{body['actor']}', hash = '{prev}' "
                          f"WHERE seq = {seq}")  # fmt: skip
    statements.append(f"UPDATE chain_head SET hash = '{prev}'")
    tamper(catalog, *statements, tree=True)


def swap_row(members: dict[str, bytes], path: str, data: bytes) -> None:
    """Give the artifact at ``path`` other bytes: its row, its manifest entry and its file, consistently."""
    digest = hashlib.sha256(data).hexdigest()
    rows = ndjson(members[fmt.ARTIFACTS])
    for row in rows:
        if row["path"] == path:
            row.update(sha256=digest, size=len(data))
    members[fmt.ARTIFACTS] = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows).encode()
    manifest = json.loads(members[fmt.FILES])
    for entry in manifest:
        if entry["path"] == path:
            entry.update(sha256=digest, size=len(data))
    members[fmt.FILES] = json.dumps(manifest).encode()
    members[f"files/{path}"] = data


def test_an_explain_import_swapped_in_a_bundle_fails_even_unsigned(catalog, writer, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: rows were tied only to write/adopt events, so an imported report could be swapped."""
    (report, _csv), _ = writer.import_explain((GOLDEN / "go-explain-1-asset.json").read_bytes(), "scan")
    genuine, forged = tmp_path / "genuine.zip", tmp_path / "forged.zip"
    assert run_cli("audit", "export", str(genuine), "--include-files").exit_code == 0
    assert verify(run_cli, genuine).exit_code == 0
    forge(genuine, forged, lambda members: swap_row(members, report.path, b'{"score": 100}\n'))
    result = verify(run_cli, forged)
    assert result.exit_code == 1
    assert result.stdout.startswith(f"Bundle does NOT verify: artifact {report.id} ({report.path}): its row says "
                                    f"size=15, its events say {report.size}")  # fmt: skip


def test_a_row_written_before_since_is_tied_to_its_write_event(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:  # fmt: skip
    with freeze_time("2024-03-01"):
        old = writer.write_json("ledger", "old", {"n": 1})
        writer.write_json("ledger", "other", {"n": 2})
    with freeze_time("2024-03-05"):
        catalog.change_status(old.id, action="archive", status="archived", path=f"ledger/archived/{Path(old.path).name}")
    bundle = tmp_path / "window.zip"
    assert run_cli("audit", "export", str(bundle), "--since", "2024-03-02").exit_code == 0
    defining = ndjson(members_of(bundle)[fmt.DEFINING])
    assert [(json.loads(e["text"])["action"], json.loads(e["text"])["artifact_id"]) for e in defining] == [("write", old.id)]
    assert verify(run_cli, bundle, "--key", str(keys / "store.key.pub")).exit_code == 0

    def swap_before_since(members: dict[str, bytes]) -> None:  # the forger cannot rebuild a windowed tree: only rows
        rows = ndjson(members[fmt.ARTIFACTS])
        rows[0].update(sha256="0" * 64, size=3)
        members[fmt.ARTIFACTS] = "".join(json.dumps(r) + "\n" for r in rows).encode()
        manifest = json.loads(members[fmt.FILES])
        manifest[0].update(sha256="0" * 64, size=3)
        members[fmt.FILES] = json.dumps(manifest).encode()

    members = members_of(bundle)
    swap_before_since(members)
    bundle_json = json.loads(members.pop(fmt.MANIFEST))
    bundle_json["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n != fmt.SIGNATURE}
    forged = tmp_path / "forged.zip"
    with zipfile.ZipFile(forged, "w") as archive:
        archive.writestr(fmt.MANIFEST, json.dumps(bundle_json))
        for name, data in members.items():
            archive.writestr(name, data)
        archive.comment = b"\0" * fmt.SEAL_LENGTH
    fmt.seal(forged)
    result = verify(run_cli, forged)
    assert result.exit_code == 1
    assert f"artifact {old.id} (ledger/archived/" in result.stdout and "its row says size=3" in result.stdout
    # Without the write event (the old export) the row had nothing to be checked against.
    members = members_of(bundle)
    members[fmt.DEFINING] = b""
    assert "the bundle carries no event that recorded it" in "".join(
        fmt.verify_bundle(_rebuilt(members, tmp_path / "nodefining.zip")).problems)


def _rebuilt(members: dict[str, bytes], target: Path) -> Path:
    """``members`` with bundle.json's digests updated (the signature left as it was) and sealed again."""
    bundle = json.loads(members[fmt.MANIFEST])
    bundle["members"] = {n: hashlib.sha256(d).hexdigest() for n, d in members.items() if n not in (fmt.MANIFEST, fmt.SIGNATURE)}
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(fmt.MANIFEST, json.dumps(bundle))
        for name, data in members.items():
            if name != fmt.MANIFEST:
                archive.writestr(name, data)
        archive.comment = b"\0" * fmt.SEAL_LENGTH
    fmt.seal(target)
    return target


# -- checkpoints, witnesses, rotated keys ----------------------------------------------------------------------


def test_the_auditors_checkpoints_before_inside_and_after_the_window(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path) -> None:  # fmt: skip
    with freeze_time("2024-03-01"):
        writer.write_json("ledger", "a", {"n": 1})
        assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "before.txt")).exit_code == 0
        writer.write_json("ledger", "a2", {"n": 1})  # so the window starts after it (at its size: no proof needed)
    with freeze_time("2024-03-03"):
        writer.write_json("ledger", "b", {"n": 2})
        assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "inside.txt")).exit_code == 0
        writer.write_json("ledger", "c", {"n": 3})
    with freeze_time("2024-03-05"):
        writer.write_json("ledger", "d", {"n": 4})
    key = ("--key", str(keys / "store.key.pub"))
    window = ("--since", "2024-03-02", "--until", "2024-03-04")
    plain, proven = tmp_path / "plain.zip", tmp_path / "proven.zip"
    assert run_cli("audit", "export", str(plain), *window).exit_code == 0
    result = run_cli("audit", "export", str(proven), *window, "--since-checkpoint", str(tmp_path / "before.txt"))
    assert result.exit_code == 0, result.output
    inside = verify(run_cli, plain, *key, "--checkpoint", str(tmp_path / "inside.txt"))
    assert inside.exit_code == 0, inside.stdout  # recomputed from the border and the window: no proof needed
    before = verify(run_cli, plain, *key, "--checkpoint", str(tmp_path / "before.txt"))
    assert before.exit_code == 1 and "holds no consistency proof from checkpoint" in before.stdout
    assert "give that checkpoint to the export, which then carries one" in before.stdout
    both = verify(run_cli, proven, *key, "--checkpoint", str(tmp_path / "before.txt"), "--checkpoint",
                  str(tmp_path / "inside.txt"))  # fmt: skip
    assert both.exit_code == 0 and "extends 2 checkpoint(s) you hold" in both.stdout, both.stdout
    assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "after.txt")).exit_code == 0
    after = verify(run_cli, proven, *key, "--checkpoint", str(tmp_path / "after.txt"))
    assert after.exit_code == 1 and "the bundle's log only" in after.stdout


def test_a_required_witness_must_have_cosigned_a_checkpoint_covering_the_bundle(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                               tmp_path: Path) -> None:  # fmt: skip
    writer.write_json("ledger", "a", {"n": 1})
    assert run_cli("audit", "checkpoint", "-o", str(tmp_path / "cp.txt")).exit_code == 0
    cosigned = run_cli("audit", "cosign", str(tmp_path / "cp.txt"), "--key", str(keys / "witness.key"), "--first",
                       "-o", str(tmp_path / "cosigned.txt"))  # fmt: skip
    assert cosigned.exit_code == 0, cosigned.output
    args = ("--key", str(keys / "store.key.pub"), "--witness", str(keys / "witness.key.pub"))
    assert run_cli("audit", "export", str(tmp_path / "without.zip")).exit_code == 0
    missing = verify(run_cli, tmp_path / "without.zip", *args)
    assert missing.exit_code == 1 and "cosigned no checkpoint that covers the bundle's events" in missing.stdout
    assert run_cli("audit", "export", str(tmp_path / "with.zip"), "--since-checkpoint",
                   str(tmp_path / "cosigned.txt")).exit_code == 0  # fmt: skip
    witnessed = verify(run_cli, tmp_path / "with.zip", *args)
    assert witnessed.exit_code == 0, witnessed.stdout
    assert f"witnessed by {verifier(keys / 'witness.key.pub').as_cosigner().label}" in witnessed.stdout
    writer.write_json("ledger", "b", {"n": 2})  # events the witness has not seen
    assert run_cli("audit", "export", str(tmp_path / "later.zip"), "--since-checkpoint",
                   str(tmp_path / "cosigned.txt")).exit_code == 0  # fmt: skip
    assert verify(run_cli, tmp_path / "later.zip", *args).exit_code == 1


def test_a_bundle_signed_by_a_rotated_key_verifies_with_the_old_one(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    with freeze_time("2024-03-01"):
        writer.write_json("ledger", "a", {"n": 1})
        generate_key("example.com/store", keys / "new.key", tmp_path / "store")
        assert run_cli("keys", "rotate", "--new-key", str(keys / "new.key")).exit_code == 0
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(keys / "new.key"))
    with freeze_time("2024-03-05"):
        writer.write_json("ledger", "b", {"n": 2})
    assert run_cli("audit", "export", str(tmp_path / "b.zip"), "--since", "2024-03-04").exit_code == 0
    result = verify(run_cli, tmp_path / "b.zip", "--key", str(keys / "store.key.pub"))
    assert result.exit_code == 0, result.stdout
    assert f"signed by {verifier(keys / 'new.key.pub').label}" in result.stdout


# -- for people ---------------------------------------------------------------------------------------------------


def test_the_readme_and_report_are_signed_and_escape_what_they_show(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path) -> None:  # fmt: skip
    record = writer.write_json("ledger", "p", {"n": 1})
    assert run_cli("hold", "add", record.path, "--reason", "<script>alert(1)</script> & co").exit_code == 0
    delete(catalog, writer.write_json("ledger", "q", {"n": 2}), reason="<b>expired</b>")
    assert run_cli("verify").exit_code == 0
    assert run_cli("audit", "export", str(tmp_path / "b.zip"), "--since", "2000-01-01").exit_code == 0
    members = members_of(tmp_path / "b.zip")
    listed = json.loads(members[fmt.MANIFEST])["members"]
    assert {fmt.README, fmt.REPORT} <= set(listed)
    readme = members[fmt.README].decode()
    assert catalog.actor in readme and "events 1 to" in readme
    assert "catalog audit verify-bundle b.zip --key STORE.pub --checkpoint YOUR-LAST-CHECKPOINT.txt" in readme
    page = members[fmt.REPORT].decode()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page
    assert "&lt;b&gt;expired&lt;/b&gt;" in page and "<h2>Verify runs</h2>\n<table>" in page
    assert "src=" not in page and "href" not in page and "<script" not in page  # nothing external, no script
    replaced = dict(members)
    replaced[fmt.REPORT] = page.replace("expired", "consented").encode()
    forged = _rebuilt(replaced, tmp_path / "forged.zip")
    assert verify(run_cli, forged).exit_code == 1  # the signature note names bundle.json's old digest


def test_the_configured_folders_checkpoints_are_carried_with_their_proofs(catalog, writer, run_cli, keys: Path,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("CRYPTORUN_CHECKPOINT_DIR", str(folder))
    with freeze_time("2024-03-01"):
        writer.write_json("ledger", "a", {"n": 1})
        assert run_cli("audit", "checkpoint").exit_code == 0
        writer.write_json("ledger", "b", {"n": 2})
    (taken,) = folder.iterdir()
    with freeze_time("2024-03-05"):
        writer.write_json("ledger", "c", {"n": 3})
    key = ("--key", str(keys / "store.key.pub"))
    assert run_cli("audit", "export", str(tmp_path / "b.zip"), "--since", "2024-03-04").exit_code == 0
    carried = json.loads(members_of(tmp_path / "b.zip")[fmt.CHECKPOINTS])
    assert [(c["source"], len(c["proof"]) > 0) for c in carried] == [(taken.name, True)]
    assert verify(run_cli, tmp_path / "b.zip", *key, "--checkpoint", str(taken)).exit_code == 0
    assert run_cli("audit", "export", str(tmp_path / "empty.zip"), "--since", "2099-01-01").exit_code == 0
    empty = verify(run_cli, tmp_path / "empty.zip", *key, "--checkpoint", str(taken))
    assert empty.exit_code == 0 and empty.stdout.startswith("Bundle verifies: no events chain intact, 0 artifact rows")
