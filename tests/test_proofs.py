"""Proofs for people (issue 15, part 3): `audit prove` and `audit verify-proof`.

Every event of every artifact is proven in a signed checkpoint, and every pair
of checkpoints is proven consistent, in a small store (here) and in a store of
100,000 events (slow); each forgery of a proof file fails: a proof hash, the
root, the leaf index, the tree size, the event's text, the signature, the key,
a missing witness. A proof has at most ceil(log2 n) hashes. The verifier needs
the package and the public key only: no store, no configuration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from catalog.core import note, proofs, tlog
from catalog.core.errors import ProofError, SignatureError
from catalog.core.schema import ARTIFACTS, EVENTS
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops import keys
from catalog.ops.checkpoints import take_checkpoint
from catalog.ops.proofs import prove_artifact, prove_consistency

STORE_NAME = "example.com/store"


@pytest.fixture
def keyring(tmp_path: Path, base_dir: Path) -> Path:
    """The store's key, an impostor's key of the same name, and a witness's key (each with its .pub)."""
    folder = tmp_path / "keyring"
    folder.mkdir()
    for file, name in (("store.key", STORE_NAME), ("impostor.key", STORE_NAME), ("witness.key", "witness.example/w1")):
        keys.generate_key(name, folder / file, base_dir)
    return folder


@pytest.fixture
def signed(catalog: Catalog, keyring: Path) -> Iterator[Catalog]:
    """The test's store, opened with the store's key as its signing key."""
    opened = Catalog(replace(catalog.settings, signing_key=keyring / "store.key"))
    yield opened
    opened.close()


def verifier(keyring: Path, name: str = "store.key") -> note.Verifier:
    return keys.load_verifier(keyring / f"{name}.pub")


def build(catalog: Catalog, artifacts: int, size: int, checkpoints: int) -> list[tlog.TreeCheckpoint]:
    """``artifacts`` written (a third moved, a third extended, some missing), then more events in a few big
    units of work up to ``size`` events in all, and ``checkpoints`` signed checkpoints taken along the way (the
    first after the artifacts, the last the log's last event); returns the checkpoints."""
    writer = AtomicWriter(catalog=catalog)
    records = [writer.write_json("ledger", f"a{i}", {"i": i}) for i in range(artifacts)]
    taken = [take_checkpoint(catalog)[0]]
    with catalog.change() as tx:
        for i, record in enumerate(records):
            if i % 3 == 0:
                tx.artifacts.set_status(record.id, action="move", status="active",
                                        path=record.path.replace("ledger/", "ledger/moved-"))  # fmt: skip
            elif i % 3 == 1:
                until = datetime(2099, 1, 1, tzinfo=timezone.utc) + timedelta(days=i)
                tx.artifacts.set_status(record.id, action="retain_extend", status="active", retain_until=until)
            if i % 7 == 0:
                tx.artifacts.set_status(record.id, action="missing", status="missing")
    for n in range(checkpoints - 1, 0, -1):
        with catalog.change() as tx:
            for i in range((size - tx.head[0] - n) // n):
                tx.events.append("verify_run", details={"run": n, "i": i})
        taken.append(take_checkpoint(catalog)[0])
    return taken


def round_trip(proof: proofs.Proof) -> proofs.Proof:
    """The proof as an auditor receives it: written to bytes and parsed back."""
    return proofs.parse_proof(proofs.encode(proof))


def prove_everything(catalog: Catalog, checkpoints: list[tlog.TreeCheckpoint], store: note.Verifier) -> int:
    """Prove every event of every artifact in the last checkpoint, and every pair of checkpoints; returns the
    number of events proven. Each proof holds at most ceil(log2 n) hashes."""
    last = checkpoints[-1]
    bound = (last.size - 1).bit_length()  # ceil(log2 n)
    with catalog.read() as conn:
        rows = conn.execute(select(ARTIFACTS.c.id, ARTIFACTS.c.path, ARTIFACTS.c.original_path)).all()
        expected = conn.execute(select(func.count()).select_from(EVENTS).where(EVENTS.c.artifact_id.is_not(None),
                                                                              EVENTS.c.seq <= last.size)).scalar_one()  # fmt: skip
    proven = 0
    for row in rows:
        by = row.original_path if row.id % 2 else row.path  # either path names the artifact
        proof = round_trip(prove_artifact(catalog, by, last))
        assert isinstance(proof, proofs.InclusionProof) and proof.artifact_id == row.id
        assert all(len(e.proof) <= bound for e in proof.events)
        assert proofs.check(proof, [store]).lines[0].startswith("Proven: ")
        proven += len(proof.events)
    assert proven == expected
    for i, old in enumerate(checkpoints):
        for new in checkpoints[i:]:
            consistency = round_trip(prove_consistency(catalog, old, new))
            assert isinstance(consistency, proofs.ConsistencyProof)
            assert len(consistency.proof) <= (new.size - 1).bit_length() + 1  # RFC 9162: one more at most
            proofs.check(consistency, [store])
    return proven


# -- forgeries ----------------------------------------------------------------------------------------------------


def _note_text(checkpoint_text: str, *, size: int | None = None, root: bytes | None = None, origin: str | None = None,
               signer: note.Signer | None = None) -> str:  # fmt: skip
    """The checkpoint note with its size, root or origin changed: re-signed by ``signer``, else with its old
    signatures (which then no longer verify)."""
    cp = tlog.parse_checkpoint(checkpoint_text.encode())
    text = tlog.checkpoint_text(origin or cp.origin, cp.size if size is None else size, cp.root if root is None else root)
    changed = note.sign(text, signer) if signer is not None else note.Note(text, cp.note.signatures)
    return changed.encode().decode()


def _flip(b64: str) -> str:
    raw = bytearray(note.b64decode(b64, "hash"))
    raw[0] ^= 1
    return note.b64encode(bytes(raw))


def _flip_signature(checkpoint_text: str) -> str:
    cp = tlog.parse_checkpoint(checkpoint_text.encode())
    first = cp.note.signatures[0]
    raw = bytearray(first.signature)
    raw[-1] ^= 1
    flipped = note.Signature(first.name, first.key_id, bytes(raw))
    return note.Note(cp.note.text, (flipped, *cp.note.signatures[1:])).encode().decode()


def _edited(doc: dict[str, Any], edit: Any) -> dict[str, Any]:
    """A deep copy of ``doc`` after ``edit(copy)``."""
    copy = json.loads(json.dumps(doc))
    edit(copy)
    return copy


def inclusion_forgeries(doc: dict[str, Any], insider: note.Signer) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each way of changing an inclusion proof file; ``insider`` holds the store's key (re-signs a checkpoint)."""

    changed = partial(_edited, doc)

    event = doc["events"][0]
    root = tlog.parse_checkpoint(doc["checkpoint"].encode()).root
    size = tlog.parse_checkpoint(doc["checkpoint"].encode()).size
    assert event["proof"], "a forgery of a proof hash needs a tree of 2 leaves or more"
    yield "proof hash", changed(lambda d: d["events"][0]["proof"].__setitem__(0, _flip(event["proof"][0])))
    yield "proof hash dropped", changed(lambda d: d["events"][0]["proof"].pop())
    yield "proof hash added", changed(lambda d: d["events"][0]["proof"].append(event["proof"][0]))
    yield "proof hashes swapped", changed(lambda d: d["events"][0]["proof"].reverse()) if len(event["proof"]) > 1 else (
        changed(lambda d: d["events"][0]["proof"].__setitem__(0, note.b64encode(root))))
    yield "leaf index", changed(lambda d: d["events"][0].update(leaf_index=(event["leaf_index"] + 1) % size))
    yield "seq and leaf index", changed(lambda d: d["events"][0].update(seq=event["seq"] % size + 1,
                                                                       leaf_index=event["seq"] % size))  # fmt: skip
    yield "event text", changed(lambda d: d["events"][0].update(text=event["text"].replace('"v"', '"w"')))
    yield "event text, one space", changed(lambda d: d["events"][0].update(text=event["text"] + " "))
    yield "artifact id", changed(lambda d: d.update(artifact_id=doc["artifact_id"] + 1))
    yield "root", changed(lambda d: d.update(checkpoint=_note_text(d["checkpoint"], root=bytes(32))))
    yield "root, re-signed", changed(lambda d: d.update(checkpoint=_note_text(d["checkpoint"], root=bytes(32),
                                                                              signer=insider)))  # fmt: skip
    yield "size", changed(lambda d: d.update(checkpoint=_note_text(d["checkpoint"], size=size + 1)))
    # Not here: another size re-signed by the key's holder with the true root. The events are still in the tree
    # of that root, and RFC 9162 proofs do not bind the size (only the signature does): the lie is exposed
    # against the log and every honest checkpoint (test_a_proof_can_only_be_made_from_a_log_that_extends_...).
    yield "signature", changed(lambda d: d.update(checkpoint=_flip_signature(d["checkpoint"])))
    yield "signature removed", changed(lambda d: d.update(checkpoint=tlog.parse_checkpoint(
        d["checkpoint"].encode()).note.text))


def consistency_forgeries(doc: dict[str, Any], insider: note.Signer) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each way of changing a consistency proof file (the older checkpoint not a power of two: a proof hash)."""

    changed = partial(_edited, doc)

    assert doc["proof"]
    yield "proof hash", changed(lambda d: d["proof"].__setitem__(0, _flip(d["proof"][0])))
    yield "proof hash dropped", changed(lambda d: d["proof"].pop())
    yield "proof hash added", changed(lambda d: d["proof"].append(d["proof"][0]))
    yield "size1", changed(lambda d: d.update(size1=d["size1"] + 1))
    yield "size2", changed(lambda d: d.update(size2=d["size2"] - 1))
    for key in ("from", "to"):  # not a size re-signed with the true root: see inclusion_forgeries
        yield f"{key} root", changed(lambda d, k=key: d.update({k: _note_text(d[k], root=bytes(32))}))
        yield f"{key} root, re-signed", changed(lambda d, k=key: d.update({k: _note_text(d[k], root=bytes(32),
                                                                                         signer=insider)}))  # fmt: skip
        yield f"{key} signature", changed(lambda d, k=key: d.update({k: _flip_signature(d[k])}))
    yield "another log, re-signed", changed(lambda d: d.update(to=_note_text(d["to"], origin="catalog/0000000000000000",
                                                                             signer=insider)))  # fmt: skip
    yield "swapped", changed(lambda d: d.update({"from": doc["to"], "to": doc["from"], "size1": doc["size2"],
                                                 "size2": doc["size1"]}))  # fmt: skip


def assert_every_forgery_fails(proof: proofs.Proof, keyring: Path, *, witness: bool = False) -> int:
    """Each forgery of ``proof`` is not proven (ProofError or SignatureError); nor is the proof under a wrong key
    or without a required witness. Returns the number of forgeries tried."""
    store, insider = verifier(keyring), keys.load_signer(keyring / "store.key")
    doc = proof.to_dict()
    forge = inclusion_forgeries if isinstance(proof, proofs.InclusionProof) else consistency_forgeries
    tried = 0
    for name, forged in forge(doc, insider):
        with pytest.raises((ProofError, SignatureError)):
            proofs.check(proofs.parse_proof(json.dumps(forged).encode()), [store])
            pytest.fail(f"forgery not caught: {name}")
        tried += 1
    with pytest.raises(SignatureError, match="not signed by any key given"):
        proofs.check(proof, [verifier(keyring, "impostor.key")])  # same name, another key
    if not witness:
        with pytest.raises(SignatureError, match="carries no cosignature of the witness"):
            proofs.check(proof, [store], [verifier(keyring, "witness.key")])
    return tried


# -- a small store: everything, quickly ---------------------------------------------------------------------------


def test_every_artifact_and_every_pair_of_checkpoints_is_proven(signed: Catalog, keyring: Path) -> None:
    checkpoints = build(signed, artifacts=12, size=90, checkpoints=5)
    assert prove_everything(signed, checkpoints, verifier(keyring)) == 12 + 4 + 4 + 2  # written, moved, extended, missing


def test_every_forgery_of_an_inclusion_proof_fails(signed: Catalog, keyring: Path) -> None:
    checkpoints = build(signed, artifacts=6, size=40, checkpoints=2)
    with signed.read() as conn:
        paths = conn.execute(select(ARTIFACTS.c.path).order_by(ARTIFACTS.c.id)).scalars().all()
    for path in paths:
        proof = prove_artifact(signed, path, checkpoints[-1])
        proofs.check(proof, [verifier(keyring)])  # the honest proof is proven
        assert assert_every_forgery_fails(proof, keyring) == 14


def test_every_forgery_of_a_consistency_proof_fails(signed: Catalog, keyring: Path) -> None:
    checkpoints = build(signed, artifacts=3, size=40, checkpoints=4)
    for old, new in [(a, b) for i, a in enumerate(checkpoints) for b in checkpoints[i + 1 :]]:
        proof = prove_consistency(signed, old, new)
        proofs.check(proof, [verifier(keyring)])
        if old.size & (old.size - 1):  # a power-of-two size has an empty proof when the trees are equal
            assert assert_every_forgery_fails(proof, keyring) == 13


def test_a_witness_cosignature_is_required_and_checked(signed: Catalog, keyring: Path, writer: AtomicWriter) -> None:
    record = writer.write_json("ledger", "w", {})
    store, witness = verifier(keyring), verifier(keyring, "witness.key")
    checkpoint = take_checkpoint(signed)[0]
    cosigned = tlog.cosign(checkpoint, keys.load_signer(keyring / "witness.key"), int(time.time()), log_keys=[store],
                           previous=None, proof=[])  # fmt: skip
    proof = prove_artifact(signed, record.path, cosigned)
    lines = proofs.check(round_trip(proof), [store], [witness]).lines
    assert len(lines) == 2 and "witness.example/w1" in lines[1]
    proofs.check(round_trip(proof), [store], [witness.as_cosigner()])  # the witness key in its cosigner form
    with pytest.raises(SignatureError, match="carries no cosignature"):
        proofs.check(round_trip(prove_artifact(signed, record.path, checkpoint)), [store], [witness])
    assert_every_forgery_fails(proof, keyring, witness=True)
    doc = proof.to_dict()
    cp = tlog.parse_checkpoint(doc["checkpoint"].encode())
    cosignature = cp.note.signatures[-1]  # a flipped byte in the witness's cosignature
    flipped = note.Signature(cosignature.name, cosignature.key_id, cosignature.signature[:-1] +
                             bytes([cosignature.signature[-1] ^ 1]))  # fmt: skip
    doc["checkpoint"] = note.Note(cp.note.text, (*cp.note.signatures[:-1], flipped)).encode().decode()
    with pytest.raises(SignatureError, match="does not verify"):
        proofs.check(proofs.parse_proof(json.dumps(doc).encode()), [store], [witness])


def test_a_proof_in_a_rotated_key_is_proven_with_either_key(signed: Catalog, keyring: Path, writer: AtomicWriter) -> None:
    record = writer.write_json("ledger", "r", {})
    proof = round_trip(prove_artifact(signed, record.path))
    both = [verifier(keyring, "witness.key"), verifier(keyring)]  # any one key signing suffices
    assert verifier(keyring).label in proofs.check(proof, both).lines[0]


def test_a_proof_can_only_be_made_from_a_log_that_extends_its_checkpoint(signed: Catalog, keyring: Path,
                                                                         writer: AtomicWriter) -> None:  # fmt: skip
    record = writer.write_json("ledger", "x", {})
    honest = take_checkpoint(signed)[0]
    insider = keys.load_signer(keyring / "store.key")
    forged = tlog.parse_checkpoint(_note_text(honest.encode().decode(), root=bytes(32), signer=insider).encode(), "f")
    with pytest.raises(ProofError, match="the log was rewritten at or before event"):
        prove_artifact(signed, record.path, forged)
    with pytest.raises(ProofError, match="the log was rewritten at or before event"):
        prove_consistency(signed, forged)
    beyond = tlog.parse_checkpoint(_note_text(honest.encode().decode(), size=honest.size + 5, signer=insider).encode())
    with pytest.raises(ProofError, match="events; the log has"):
        prove_artifact(signed, record.path, beyond)
    # The key's holder signs the true root under a size one more: the log has that many events by now, and their
    # root is another; so does every honest checkpoint since, which no consistency proof joins to the lie.
    lie = tlog.parse_checkpoint(_note_text(honest.encode().decode(), size=honest.size + 1, signer=insider).encode())
    later = take_checkpoint(signed)[0]
    with pytest.raises(ProofError, match="the log was rewritten at or before event"):
        prove_consistency(signed, lie, later)
    honest_proof = prove_consistency(signed, honest, later)
    with pytest.raises(ProofError):
        proofs.check(replace(honest_proof, old=lie, sizes=None), [verifier(keyring)])


# -- the command line ---------------------------------------------------------------------------------------------


@pytest.fixture
def cli_signed(run_cli, keyring: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """run_cli with the store's key configured (as CRYPTORUN_SIGNING_KEY)."""
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(keyring / "store.key"))
    return run_cli


def test_prove_then_verify_with_the_public_key_alone(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                     keyring: Path, tmp_path: Path) -> None:
    record = writer.write_json("ledger", "p", {"n": 1})
    writer.write_json("ledger", "q", {"n": 2})
    result = cli_signed("audit", "prove", record.path)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["format"] == proofs.INCLUSION and [e["seq"] for e in doc["events"]] == [2]
    assert list(catalog.events())[-1].action == "checkpoint"  # the default: a new checkpoint, an event of the log
    auditor = tmp_path / "auditor"  # an empty folder: no store, no configuration
    auditor.mkdir()
    (auditor / "proof.json").write_text(result.stdout)
    (auditor / "store.pub").write_bytes((keyring / "store.key.pub").read_bytes())
    os.chdir(auditor)
    shown = cli_signed("audit", "verify-proof", "proof.json", "--key", "store.pub", global_args=[])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith(f"Proven: 1 event(s) of artifact {record.id} ({record.path}), seq 2, are in the log")
    assert sorted(os.listdir(auditor)) == ["proof.json", "store.pub"]  # it wrote nothing
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRYPTORUN_", "CATALOG_"))}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    child = subprocess.run([sys.executable, "-m", "catalog", "audit", "verify-proof", "proof.json", "--key", "store.pub"],
                           cwd=auditor, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert child.returncode == 0 and child.stdout == shown.stdout, child.stderr
    doc["events"][0]["text"] = doc["events"][0]["text"].replace('"write"', '"adopt"')
    (auditor / "forged.json").write_text(json.dumps(doc))
    forged = cli_signed("audit", "verify-proof", "forged.json", "--key", "store.pub", global_args=[])
    assert forged.exit_code == 1 and forged.stdout.startswith("NOT proven: event seq 2 is not proven"), forged.output
    (auditor / "bad.json").write_text("{}")
    bad = cli_signed("audit", "verify-proof", "bad.json", "--key", "store.pub", global_args=[])
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: malformed proof: format"), bad.output


def test_prove_by_the_original_path_after_a_move(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                 keyring: Path, tmp_path: Path) -> None:
    record = writer.write_json("ledger", "m", {})
    with catalog.change() as tx:
        tx.artifacts.set_status(record.id, action="move", status="active", path="ledger/archived/moved.json")
    for path in (record.path, "ledger/archived/moved.json"):
        result = cli_signed("audit", "prove", path)
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert doc["path"] == "ledger/archived/moved.json" and len(doc["events"]) == 2
    (tmp_path / "p.json").write_text(result.stdout)
    shown = cli_signed("audit", "verify-proof", str(tmp_path / "p.json"), "--key", str(keyring / "store.key.pub"))
    assert shown.exit_code == 0 and "2 event(s)" in shown.stdout


def test_prove_in_an_older_checkpoint_leaves_later_events_out(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                              keyring: Path, tmp_path: Path) -> None:
    record = writer.write_json("ledger", "o", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp1.txt")).exit_code == 0
    with catalog.change() as tx:
        tx.artifacts.set_status(record.id, action="missing", status="missing")
    result = cli_signed("audit", "prove", record.path, "--checkpoint", str(tmp_path / "cp1.txt"))
    assert result.exit_code == 0 and len(json.loads(result.stdout)["events"]) == 1
    assert "1 later event(s)" in result.stderr
    early = cli_signed("audit", "prove", writer.write_json("ledger", "late", {}).path, "--checkpoint",
                       str(tmp_path / "cp1.txt"))  # fmt: skip
    assert early.exit_code == 2 and "was recorded after checkpoint" in early.stderr


def test_prove_consistency_between_checkpoints(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                               keyring: Path, tmp_path: Path) -> None:
    writer.write_json("ledger", "c", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp1.txt")).exit_code == 0
    for i in range(3):
        writer.write_json("ledger", f"c{i}", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp2.txt")).exit_code == 0
    for args in (["--to", str(tmp_path / "cp2.txt")], []):  # --to omitted: a new checkpoint
        result = cli_signed("audit", "prove", "--from", str(tmp_path / "cp1.txt"), *args)
        assert result.exit_code == 0, result.output
        (tmp_path / "c.json").unlink(missing_ok=True)
        (tmp_path / "c.json").write_text(result.stdout)
        shown = cli_signed("audit", "verify-proof", str(tmp_path / "c.json"), "--key", str(keyring / "store.key.pub"))
        assert shown.exit_code == 0 and shown.stdout.startswith("Proven: the log catalog/"), shown.output
    backwards = cli_signed("audit", "prove", "--from", str(tmp_path / "cp2.txt"), "--to", str(tmp_path / "cp1.txt"))
    assert backwards.exit_code == 2 and "is newer than" in backwards.stderr


def test_a_witness_cosigns_from_a_consistency_proof_and_the_auditor_requires_it(  # type: ignore[no-untyped-def]
        catalog: Catalog, writer: AtomicWriter, cli_signed, keyring: Path, tmp_path: Path) -> None:  # fmt: skip
    record = writer.write_json("ledger", "w", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp1.txt")).exit_code == 0
    witness = ["--key", str(keyring / "witness.key"), "--log-key", str(keyring / "store.key.pub")]
    assert cli_signed("audit", "cosign", str(tmp_path / "cp1.txt"), *witness, "--first", "-o",
                      str(tmp_path / "w1.txt")).exit_code == 0  # fmt: skip
    writer.write_json("ledger", "w2", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp2.txt")).exit_code == 0
    proof = cli_signed("audit", "prove", "--from", str(tmp_path / "w1.txt"), "--to", str(tmp_path / "cp2.txt"))
    (tmp_path / "c.json").write_text(proof.stdout)
    cosigned = cli_signed("audit", "cosign", str(tmp_path / "cp2.txt"), *witness, "--previous", str(tmp_path / "w1.txt"),
                          "--proof", str(tmp_path / "c.json"), "-o", str(tmp_path / "w2.txt"), global_args=[])  # fmt: skip
    assert cosigned.exit_code == 0, cosigned.output  # the witness needs the proof file, not the store
    keys_args = ["--key", str(keyring / "store.key.pub"), "--witness", str(keyring / "witness.key.pub")]
    for checkpoint, code in (("w2.txt", 0), ("cp2.txt", 1)):
        result = cli_signed("audit", "prove", record.path, "--checkpoint", str(tmp_path / checkpoint))
        (tmp_path / "p.json").write_text(result.stdout)
        shown = cli_signed("audit", "verify-proof", str(tmp_path / "p.json"), *keys_args, global_args=[])
        assert shown.exit_code == code, shown.output
    assert "carries no cosignature of the witness witness.example/w1" in shown.stdout


def test_a_proof_in_an_unsigned_checkpoint_says_so_and_is_not_proven(writer: AtomicWriter, run_cli,  # type: ignore[no-untyped-def]
                                                                     keyring: Path, tmp_path: Path) -> None:
    record = writer.write_json("ledger", "u", {})
    result = run_cli("audit", "prove", record.path)  # no audit.signing_key
    assert result.exit_code == 0 and "a checkpoint of this proof is unsigned" in result.stderr
    (tmp_path / "p.json").write_text(result.stdout)
    shown = run_cli("audit", "verify-proof", str(tmp_path / "p.json"), "--key", str(keyring / "store.key.pub"))
    assert shown.exit_code == 1 and shown.stdout.startswith("NOT proven: the checkpoint is not signed by any key given")
    assert "it carries no signature at all" in shown.stdout


@pytest.mark.parametrize("args, message", [
    (["ledger/20240101-000000-nope-ledger.json"], "no artifact at ledger/20240101-000000-nope-ledger.json"),
    ([], "give either PATH"),
    (["{path}", "--from", "{cp}"], "give either PATH"),
    (["{path}", "--to", "{cp}"], "--to goes with --from"),
    (["--from", "{cp}", "--checkpoint", "{cp}"], "--checkpoint goes with PATH"),
    (["{path}", "--checkpoint", "{missing}"], "does not exist"),
    (["{path}", "--checkpoint", "{json}"], "a checkpoint of an earlier version"),
    (["{path}", "--checkpoint", "{foreign}"], "is of the log 'catalog/0000000000000000', not of this one"),
])  # fmt: skip
def test_prove_refuses_with_one_line_and_records_nothing(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                         keyring: Path, tmp_path: Path, args: list[str],
                                                         message: str) -> None:  # fmt: skip
    record = writer.write_json("ledger", "h", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp.txt")).exit_code == 0
    insider = keys.load_signer(keyring / "store.key")
    (tmp_path / "foreign.txt").write_text(_note_text((tmp_path / "cp.txt").read_text(), origin="catalog/0000000000000000",
                                                     signer=insider))  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps({"format": "catalog-checkpoint/1", "seq": 1, "hash": "0" * 64,
                                                   "at": "2024-01-01T00:00:00Z"}))  # fmt: skip
    names = {"path": record.path, "cp": str(tmp_path / "cp.txt"), "missing": str(tmp_path / "nope.txt"),
             "json": str(tmp_path / "old.json"), "foreign": str(tmp_path / "foreign.txt")}  # fmt: skip
    before = len(list(catalog.events()))
    result = cli_signed("audit", "prove", *(a.format_map(names) for a in args))
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert [line for line in result.stderr.splitlines() if line] == [result.stderr.strip()] and message in result.stderr
    assert len(list(catalog.events())) == before


def test_prove_from_a_rewritten_log_is_a_finding(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                 keyring: Path, tmp_path: Path) -> None:
    record = writer.write_json("ledger", "r", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp.txt")).exit_code == 0
    insider = keys.load_signer(keyring / "store.key")
    (tmp_path / "other.txt").write_text(_note_text((tmp_path / "cp.txt").read_text(), root=bytes(32), signer=insider))
    result = cli_signed("audit", "prove", record.path, "--checkpoint", str(tmp_path / "other.txt"))
    assert result.exit_code == 1 and "the log was rewritten at or before event" in result.stderr


# -- 100,000 events -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_store_of_100k_events_proves_every_artifact_and_every_pair_of_checkpoints(signed: Catalog,
                                                                                   keyring: Path) -> None:  # fmt: skip
    checkpoints = build(signed, artifacts=1000, size=100_000, checkpoints=8)
    assert checkpoints[-1].size == 100_000
    proven = prove_everything(signed, checkpoints, verifier(keyring))
    assert proven == 1000 + 334 + 333 + 143  # written, moved, extended, missing
    with signed.read() as conn:  # forgeries of a sample: the first, a middle and the last artifact
        paths = conn.execute(select(ARTIFACTS.c.path).order_by(ARTIFACTS.c.id)).scalars().all()
    for path in (paths[0], paths[500], paths[-1]):
        assert_every_forgery_fails(prove_artifact(signed, path, checkpoints[-1]), keyring)
    assert_every_forgery_fails(prove_consistency(signed, checkpoints[1], checkpoints[-1]), keyring)


def test_a_cosignature_to_dash_is_printed_as_without_o(catalog: Catalog, writer: AtomicWriter, cli_signed,  # type: ignore[no-untyped-def]
                                                      keyring: Path, tmp_path: Path) -> None:  # fmt: skip
    writer.write_json("ledger", "w", {})
    assert cli_signed("audit", "checkpoint", "-o", str(tmp_path / "cp1.txt")).exit_code == 0
    witness = ["--key", str(keyring / "witness.key"), "--log-key", str(keyring / "store.key.pub")]
    printed = cli_signed("audit", "cosign", str(tmp_path / "cp1.txt"), *witness, "--first", "-o", "-")
    assert printed.exit_code == 0 and printed.stderr == "", printed.output
    assert printed.stdout.startswith((tmp_path / "cp1.txt").read_text()) and "\u2014 witness.example/w1 " in printed.stdout
    assert not Path("-").exists()
