"""Signed checkpoints, witnesses and keys (issue 15, parts 2 and 5).

The note and key formats are checked against Go's published vectors
(golang.org/x/mod/sumdb/note, note_test.go: the PeterNeumann and EnochRoot keys
and their signed note) and transparency-dev/formats' cosignature/v1 key ids;
then the store: signed checkpoints, verification with trusted and rotated
keys, and a witness that refuses to cosign a rewritten history.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from catalog.core import merkle, note, tlog
from catalog.core.errors import ProofError, SignatureError, ValidationError

# -- Go's vectors (golang.org/x/mod/sumdb/note/note_test.go) ---------------------------------------------------

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def test_go_verifier_key_parses_and_every_mangling_is_refused() -> None:
    verifier = note.parse_verifier(PETER_VKEY)
    assert (verifier.name, verifier.key_id, verifier.alg, verifier.vkey) == ("PeterNeumann", 0xC74F20A3, 1, PETER_VKEY)
    for i in range(len(PETER_VKEY) + 1):  # every proper substring (Go's TestNewVerifier)
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(ValidationError):
                    note.parse_verifier(PETER_VKEY[i:j])
    for i in range(len(PETER_VKEY)):  # every byte incremented
        with pytest.raises(ValidationError):
            note.parse_verifier(PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :])
    with pytest.raises(ValidationError):  # wrong length key, with adjusted key hash
        note.parse_verifier("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    with pytest.raises(ValidationError):  # unknown algorithm, with adjusted key hash
        note.parse_verifier("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_go_private_key_parses_and_every_mangling_is_refused() -> None:
    signer = note.parse_signer(PETER_SKEY)
    assert signer.verifier == note.parse_verifier(PETER_VKEY) and signer.skey == PETER_SKEY
    assert "AYEK" not in repr(signer)  # the private key never shows in a repr (logs, tracebacks)
    for i in range(len(PETER_SKEY) + 1):
        for j in range(i + 1, len(PETER_SKEY) + 1):
            if (i, j) != (0, len(PETER_SKEY)):
                with pytest.raises(ValidationError):
                    note.parse_signer(PETER_SKEY[i:j])
    for i in range(len(PETER_SKEY)):
        with pytest.raises(ValidationError):
            note.parse_signer(PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :])


def test_go_signed_note_is_reproduced_byte_for_byte() -> None:
    signed = note.sign(TEXT, note.parse_signer(PETER_SKEY)).encode()
    assert signed == (TEXT + "\n" + PETER_SIG).encode()
    # Signing again replaces the key's own earlier signature (Go: "existing signature is replaced").
    again = note.Note(TEXT, note.parse_note(signed).signatures).with_line(PETER_SIG)
    assert again.encode() == signed


def test_go_open_one_known_key_verifies_the_other_is_ignored() -> None:
    peter, enoch = note.parse_verifier(PETER_VKEY), note.parse_verifier(ENOCH_VKEY)
    parsed = note.parse_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode())
    assert parsed.text == TEXT and [s.label for s in parsed.signatures] == ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    assert note.verified_by(parsed, [peter]) == [peter]
    assert note.verified_by(parsed, [peter, enoch]) == [peter, enoch]
    assert note.verified_by(parsed, []) == []  # no known key: nothing verified (the caller refuses)
    doubled = note.parse_note((TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG).encode())
    assert note.verified_by(doubled, [peter]) == [peter]


def test_go_invalid_signature_is_refused() -> None:
    forged = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(SignatureError, match="PeterNeumann\\+c74f20a3 does not verify"):
        note.verified_by(note.parse_note(forged.encode()), [note.parse_verifier(PETER_VKEY)])


@pytest.mark.parametrize("message", [
    TEXT,
    TEXT + "\n",
    TEXT + "\n" + PETER_SIG[:-1],
    "\x01" + TEXT + "\n" + PETER_SIG,
    "\xff" + TEXT + "\n" + PETER_SIG,
    TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
    TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    TEXT + "\n" + PETER_SIG * 101,
], ids=["no-signatures", "blank-line-only", "no-final-newline", "control", "latin1", "bad-name", "unexpected-line",
        "101-signatures"])  # fmt: skip
def test_go_malformed_notes_are_refused(message: str) -> None:
    data = b"\xff" + message[1:].encode() if message.startswith("\xff") else message.encode()  # not UTF-8
    with pytest.raises(ValidationError, match="malformed note|not base64"):
        note.parse_note(data)


def test_a_signature_in_a_non_canonical_base64_is_refused() -> None:
    # The last base64 digit of PeterNeumann's signature carries two spare bits: "nAM=" and "nAN=" decode alike,
    # so a bit flip there would go unnoticed if such a spelling were accepted.
    with pytest.raises(ValidationError, match="canonical"):
        note.parse_note((TEXT + "\n" + PETER_SIG.replace("nAM=", "nAN=")).encode())


def test_cosignature_v1_key_ids_match_transparency_dev() -> None:
    # transparency-dev/formats note_cosigv1_test.go: a native 0x04 verifier key.
    native = note.parse_verifier("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
    assert native.alg == note.ALG_COSIGNATURE_V1 and native.as_cosigner() == native
    assert note.Signature("x", 0, base64.b64decode(
        "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==")[4:]
    ).timestamp == 1727964367  # CoSigV1Timestamp's vector  # fmt: skip


def test_a_cosignature_signs_the_header_time_and_text() -> None:
    witness = note.generate("witness.example/w1")
    body = "example.com/log\n3\n" + base64.b64encode(bytes(32)).decode() + "\n"
    line = witness.cosignature_line(body.encode(), 1679315147)
    parsed = note.parse_note((body + "\n" + line).encode())
    (sig,) = parsed.signatures
    cosigner = witness.verifier.as_cosigner()
    assert sig.key_id == note.key_id("witness.example/w1", 0x04, witness.verifier.public) != witness.verifier.key_id
    assert sig.timestamp == 1679315147 and note.verified_by(parsed, [cosigner]) == [cosigner]
    assert note.verified_by(parsed, [witness.verifier]) == []  # the plain (0x01) key id does not match
    message = b"cosignature/v1\ntime 1679315147\n" + body.encode()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    Ed25519PublicKey.from_public_bytes(witness.verifier.public).verify(sig.signature[8:], message)
    later = note.Signature(sig.name, sig.key_id, (1679315148).to_bytes(8, "big") + sig.signature[8:])
    with pytest.raises(SignatureError):  # the time is signed too
        note.verified_by(note.Note(body, (later,)), [cosigner])


# -- checkpoints (C2SP tlog-checkpoint) -----------------------------------------------------------------------


def tree_of(n: int) -> tuple[list[bytes], bytes]:
    leaves = [merkle.leaf_hash(b"event %d" % i) for i in range(n)]
    return leaves, merkle.root_hash(leaves)


def test_the_c2sp_checkpoint_example_parses() -> None:
    example = ("example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n"
               "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n")  # fmt: skip
    checkpoint = tlog.parse_checkpoint(example.encode())
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_b64) == (
        "example.com/behind-the-sofa", 20852163, "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert checkpoint.encode() == example.encode()


@pytest.mark.parametrize("text, why", [
    ("origin\n", "expected origin"),
    ("origin\n012\nAAAA\n", "not a decimal"),
    ("origin\n-1\n" + "A" * 43 + "=\n", "not a decimal"),
    ("origin\n99999999999999999999\n" + "A" * 43 + "=\n", "not a decimal"),
    ("origin\n1\nAAAA\n", "3 bytes, not 32"),
    ("origin\n1\n" + "A" * 43 + "=\n\nextension\n", "malformed note"),
    ("origin\n1\n" + "A" * 43 + "=", "newline"),
    ("\n1\n" + "A" * 43 + "=\n", "none empty"),
], ids=["short", "leading-zero", "negative", "too-big", "short-root", "empty-line", "no-newline", "empty-origin"])  # fmt: skip
def test_malformed_checkpoints_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        tlog.parse_checkpoint(text.encode())


def signed_checkpoint(log: note.Signer, size: int, root: bytes, origin: str = "catalog/0123456789abcdef") -> tlog.TreeCheckpoint:
    return tlog.parse_checkpoint(note.sign(tlog.checkpoint_text(origin, size, root), log).encode(), f"cp{size}")


def test_a_witness_cosigns_only_a_consistent_extension() -> None:
    log, witness = note.generate("example.com/log"), note.generate("witness.example/w1")
    leaves, _ = tree_of(9)
    old = signed_checkpoint(log, 5, merkle.root_hash(leaves[:5]))
    first = tlog.cosign(old, witness, 100, log_keys=[log.verifier], previous=None, proof=[])
    new = signed_checkpoint(log, 9, merkle.root_hash(leaves))
    proof = merkle.consistency_proof(5, 9, lambda a, b: merkle.root_hash(leaves[a:b]))
    done = tlog.cosign(new, witness, 200, log_keys=[log.verifier], previous=first, proof=proof)
    cosigner = witness.verifier.as_cosigner()
    assert note.verified_by(done.note, [log.verifier, cosigner]) == [log.verifier, cosigner]
    assert done.note.signatures[-1].timestamp == 200

    forked = [*leaves[:4], merkle.leaf_hash(b"rewritten"), *leaves[5:]]  # event 5 rewritten, then re-signed
    rewritten = signed_checkpoint(log, 9, merkle.root_hash(forked))
    fork_proof = merkle.consistency_proof(5, 9, lambda a, b: merkle.root_hash(forked[a:b]))
    with pytest.raises(ProofError, match="not consistent with the previous one .* not cosigned"):
        tlog.cosign(rewritten, witness, 300, log_keys=[log.verifier], previous=first, proof=fork_proof)
    with pytest.raises(ProofError, match="fewer than the 9"):
        tlog.cosign(old, witness, 300, log_keys=[log.verifier], previous=done, proof=[])
    other = signed_checkpoint(log, 9, merkle.root_hash(leaves), origin="example.com/another")
    with pytest.raises(ProofError, match="is of the log 'example.com/another'"):
        tlog.cosign(other, witness, 300, log_keys=[log.verifier], previous=first, proof=proof)
    with pytest.raises(SignatureError, match="not signed by the log's key"):
        tlog.cosign(signed_checkpoint(note.generate("example.com/log"), 9, merkle.root_hash(leaves)), witness, 300,
                    log_keys=[log.verifier], previous=first, proof=proof)  # fmt: skip
    with pytest.raises(SignatureError, match="carries no cosignature of this witness"):
        tlog.cosign(new, witness, 300, log_keys=[log.verifier], previous=old, proof=proof)  # old: never cosigned


# -- key rotation ----------------------------------------------------------------------------------------------


def rotation(seq: int, old: note.Signer, new: note.Signer, origin: str = "catalog/0123456789abcdef") -> note.Rotation:
    announcement = note.sign(note.rotation_text(origin, new.verifier), old).encode().decode()
    return note.Rotation(seq, new.verifier.vkey, announcement)


def test_accepted_keys_follow_announcements_from_the_trusted_key_only() -> None:
    k1, k2, k3, mallory = (note.generate(f"example.com/k{i}") for i in range(4))
    origin = "catalog/0123456789abcdef"
    accepted, refused = note.accepted_keys([k1.verifier], origin, [rotation(5, k1, k2), rotation(9, k2, k3)])
    assert accepted == [k1.verifier, k2.verifier, k3.verifier] and refused == []
    # An announcement by a key nobody trusted, or for another log, or naming another key, adds nothing.
    bogus = [rotation(5, mallory, k2), rotation(6, k1, k3, origin="catalog/ffffffffffffffff"),
             note.Rotation(7, k3.verifier.vkey, rotation(7, k1, k2).announcement)]  # fmt: skip
    accepted, refused = note.accepted_keys([k1.verifier], origin, bogus)
    assert accepted == [k1.verifier] and [r.seq for r, _ in refused] == [5, 6, 7]
    assert "no key accepted so far signed it" in refused[0][1] and "does not name" in refused[1][1]
    # Order matters: k3 announced by k2 before k2 itself was announced is refused.
    accepted, refused = note.accepted_keys([k1.verifier], origin, [rotation(5, k2, k3), rotation(6, k1, k2)])
    assert accepted == [k1.verifier, k2.verifier] and [r.seq for r, _ in refused] == [5]


def test_a_rotation_text_never_reads_as_a_checkpoint() -> None:
    text = note.rotation_text("catalog/0123456789abcdef", note.generate("k").verifier)
    with pytest.raises(ValidationError):
        tlog.parse_checkpoint(text.encode())


# -- key files ---------------------------------------------------------------------------------------------------


def test_keys_generate_writes_a_private_file_only_its_owner_reads(run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "keys" / "store.key"
    path.parent.mkdir()
    result = run_cli("keys", "generate", "--name", "example.com/store", "--out", str(path))
    assert result.exit_code == 0, result.stderr
    vkey = result.stdout.splitlines()[0]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert (tmp_path / "keys" / "store.key.pub").read_text() == vkey + "\n"
    signer = note.parse_signer(path.read_text().strip())
    assert signer.verifier == note.parse_verifier(vkey) and signer.name == "example.com/store"
    again = run_cli("keys", "generate", "--name", "example.com/store", "--out", str(path))
    assert again.exit_code == 2 and "already exists; a key file is never overwritten" in again.stderr
    assert note.parse_signer(path.read_text().strip()).skey == signer.skey  # untouched


def test_keys_show_prints_the_configured_verifier(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("keys", "generate", "--name", "example.com/store", "--out", str(tmp_path / "k")).exit_code == 0
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(tmp_path / "k"))
    shown = run_cli("keys", "show")
    assert shown.exit_code == 0 and shown.stdout == (tmp_path / "k.pub").read_text()
    monkeypatch.delenv("CRYPTORUN_SIGNING_KEY")
    missing = run_cli("keys", "show")
    assert missing.exit_code == 2 and "no signing key is configured" in missing.stderr


def test_a_private_key_others_may_read_is_refused(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("keys", "generate", "--name", "example.com/store", "--out", str(tmp_path / "k")).exit_code == 0
    os.chmod(tmp_path / "k", 0o644)
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(tmp_path / "k"))
    result = run_cli("keys", "show")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: signing key {tmp_path / 'k'} may be read by group or others (mode 0644); "
                                     f"a private key must be yours alone: chmod 600 {tmp_path / 'k'}")  # fmt: skip


# -- the store: signed checkpoints -------------------------------------------------------------------------------


@pytest.fixture
def keyring(run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:  # type: ignore[no-untyped-def]
    """A folder with the store's key (configured) and a witness's key, each with its .pub."""
    folder = tmp_path / "keyring"
    folder.mkdir()
    for name, owner in (("store.key", "example.com/store"), ("witness.key", "witness.example/w1")):
        assert run_cli("keys", "generate", "--name", owner, "--out", str(folder / name)).exit_code == 0
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(folder / "store.key"))
    return folder


def checkpoint(run_cli, path: Path) -> tlog.TreeCheckpoint:  # type: ignore[no-untyped-def]
    result = run_cli("audit", "checkpoint", "-o", str(path))
    assert result.exit_code == 0, result.stderr
    return tlog.parse_checkpoint(path.read_bytes(), str(path))


def test_a_checkpoint_is_signed_by_the_configured_key(catalog, writer, run_cli, keyring: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    writer.write_json("ledger", "p", {"n": 1})
    result = run_cli("audit", "checkpoint", "-o", str(tmp_path / "cp.txt"))
    store_key = note.parse_verifier((keyring / "store.key.pub").read_text().strip())
    assert result.exit_code == 0 and f"signed by {store_key.label}" in result.stdout
    cp = tlog.parse_checkpoint((tmp_path / "cp.txt").read_bytes())
    events = list(catalog.events())
    assert cp.size == events[-1].seq and events[-1].action == "checkpoint"  # it covers its own event
    assert events[-1].details["key"] == store_key.label
    assert cp.origin == tlog.store_origin(events[0].hash)
    assert note.verified_by(cp.note, [store_key]) == [store_key]
    verified = run_cli("audit", "verify", "--checkpoint", str(tmp_path / "cp.txt"), "--key", str(keyring / "store.key.pub"))
    assert verified.exit_code == 0, verified.stdout
    assert "Checkpoint signatures: 1 signed by a trusted key, 0 unsigned." in verified.stdout


def test_without_a_key_checkpoints_are_unsigned_and_status_says_so(catalog, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("audit", "checkpoint", "-o", str(tmp_path / "cp.txt"))
    assert result.exit_code == 0 and "unsigned (no audit.signing_key)" in result.stdout
    assert tlog.parse_checkpoint((tmp_path / "cp.txt").read_bytes()).note.signatures == ()
    status = json.loads(run_cli("status", "--format", "json").stdout)
    assert status["evidence"] == "unsigned: no signing key (audit.signing_key)"
    assert status["last_checkpoint"]["signed_by"] is None
    verified = run_cli("audit", "verify", "--checkpoint", str(tmp_path / "cp.txt"))
    assert verified.exit_code == 0 and "0 signed by a trusted key, 1 unsigned" in verified.stdout


def test_status_names_the_signing_key(catalog, run_cli, keyring: Path) -> None:  # type: ignore[no-untyped-def]
    label = note.parse_verifier((keyring / "store.key.pub").read_text().strip()).label
    assert json.loads(run_cli("status", "--format", "json").stdout)["evidence"] == f"signed by {label}"


def test_an_automatic_checkpoint_is_signed(catalog, writer, run_cli, keyring: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    writer.write_json("ledger", "p", {"n": 1})
    monkeypatch.setenv("CRYPTORUN_CHECKPOINT_DIR", str(tmp_path / "worm"))
    assert run_cli("verify").exit_code == 0
    (written,) = (tmp_path / "worm").glob("checkpoint-*.txt")
    cp = tlog.parse_checkpoint(written.read_bytes())
    assert [s.name for s in cp.note.signatures] == ["example.com/store"]
    assert run_cli("audit", "verify").exit_code == 0  # the folder's checkpoints, the configured key


def verify(run_cli, cp: Path, *keys: Path):  # type: ignore[no-untyped-def]
    return run_cli("audit", "verify", "--checkpoint", str(cp), *(a for k in keys for a in ("--key", str(k))))


def test_every_bit_flip_of_a_signed_checkpoint_is_caught(catalog, writer, run_cli, keyring: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.ops.checkpoints import verify_log

    writer.write_json("ledger", "p", {"n": 1})
    good = tmp_path / "cp.txt"
    data = checkpoint(run_cli, good).encode()
    flipped = tmp_path / "flipped.txt"
    for i in range(len(data)):
        for bit in (0, 5):  # a low and a high bit of every byte
            flipped.unlink(missing_ok=True)
            flipped.write_bytes(data[:i] + bytes([data[i] ^ (1 << bit)]) + data[i + 1 :])
            try:
                check = verify_log(catalog, [flipped], [keyring / "store.key.pub"])
            except ValidationError:
                continue  # not a checkpoint any more: refused outright
            assert not check.report.intact, (i, bit)


def test_a_stripped_signature_is_a_problem(catalog, run_cli, keyring: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cp = checkpoint(run_cli, tmp_path / "cp.txt")
    (tmp_path / "stripped.txt").write_text(cp.note.text)
    result = verify(run_cli, tmp_path / "stripped.txt")
    assert result.exit_code == 1
    assert f"carries no signature, but its event (seq {cp.size}) says example.com/store+" in result.stdout


def test_a_checkpoint_signed_by_an_unknown_key_is_a_problem(catalog, run_cli, keyring: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cp = checkpoint(run_cli, tmp_path / "cp.txt")
    impostor = note.generate("example.com/store")  # same name, another key
    (tmp_path / "forged.txt").write_bytes(note.sign(cp.note.text, impostor).encode())
    result = verify(run_cli, tmp_path / "forged.txt")
    assert result.exit_code == 1 and "is signed only by keys not trusted" in result.stdout
    # Trusting the impostor's key instead makes the real checkpoints the problem: nothing passes silently.
    (tmp_path / "impostor.pub").write_text(impostor.verifier.vkey + "\n")
    result = verify(run_cli, tmp_path / "cp.txt", tmp_path / "impostor.pub")
    assert result.exit_code == 1 and "is signed only by keys not trusted" in result.stdout


def test_a_rewritten_root_or_another_store_is_a_problem(catalog, run_cli, keyring: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.ops.keys import load_signer

    cp = checkpoint(run_cli, tmp_path / "cp.txt")
    signer = load_signer(keyring / "store.key")
    rewritten = tlog.checkpoint_text(cp.origin, cp.size, bytes(32))  # signed by the real key: an insider with it
    (tmp_path / "rewritten.txt").write_bytes(note.sign(rewritten, signer).encode())
    result = verify(run_cli, tmp_path / "rewritten.txt")
    assert result.exit_code == 1 and f"BROKEN at seq {cp.size}: rewritten" in result.stdout
    foreign = tlog.checkpoint_text("catalog/ffffffffffffffff", cp.size, cp.root)
    (tmp_path / "foreign.txt").write_bytes(note.sign(foreign, signer).encode())
    result = verify(run_cli, tmp_path / "foreign.txt")
    assert result.exit_code == 1 and "is of the log 'catalog/ffffffffffffffff', not of this one" in result.stdout
    beyond = tlog.checkpoint_text(cp.origin, cp.size + 5, cp.root)
    (tmp_path / "beyond.txt").write_bytes(note.sign(beyond, signer).encode())
    result = verify(run_cli, tmp_path / "beyond.txt")
    assert result.exit_code == 1 and f"covers {cp.size + 5} events; the log has" in result.stdout


def test_legacy_json_checkpoints_are_still_checked(catalog, writer, run_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from catalog.core.chain import Checkpoint

    writer.write_json("ledger", "p", {"n": 1})
    last = list(catalog.events())[-1]
    (tmp_path / "old.json").write_text(json.dumps(Checkpoint(last.seq, last.hash, last.at).to_dict()))
    assert verify(run_cli, tmp_path / "old.json").exit_code == 0
    (tmp_path / "bad.json").write_text(json.dumps(Checkpoint(last.seq, "1" * 64, last.at).to_dict()))
    assert verify(run_cli, tmp_path / "bad.json").exit_code == 1


# -- key rotation ------------------------------------------------------------------------------------------------


def test_a_rotated_key_is_accepted_from_the_old_one(catalog, writer, run_cli, keyring: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    before = checkpoint(run_cli, tmp_path / "before.txt")
    assert run_cli("keys", "generate", "--name", "example.com/store", "--out", str(keyring / "new.key")).exit_code == 0
    rotated = run_cli("keys", "rotate", "--new-key", str(keyring / "new.key"))
    assert rotated.exit_code == 0, rotated.stderr
    event = list(catalog.events())[-1]
    new_key = note.parse_verifier((keyring / "new.key.pub").read_text().strip())
    assert event.action == "key_rotate" and event.details["new_key"] == new_key.vkey
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(keyring / "new.key"))
    writer.write_json("ledger", "q", {"n": 2})
    after = checkpoint(run_cli, tmp_path / "after.txt")
    assert [s.label for s in after.note.signatures] == [new_key.label] and after.size > before.size
    old_pub = keyring / "store.key.pub"  # the auditor trusts only the old key
    result = run_cli("audit", "verify", "--checkpoint", str(tmp_path / "before.txt"), "--checkpoint",
                     str(tmp_path / "after.txt"), "--key", str(old_pub))  # fmt: skip
    assert result.exit_code == 0, result.stdout
    assert "2 signed by a trusted key" in result.stdout
    # Without the announcement the new key is just unknown: a fresh store cannot vouch for it.
    from catalog.ops.keys import trusted_keys

    assert [k.label for k in trusted_keys(catalog, [old_pub])[0]][-1] == new_key.label


def test_a_rotation_not_signed_by_the_trusted_key_is_a_problem(catalog, run_cli, keyring: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    mallory = note.generate("example.com/mallory")
    (tmp_path / "mallory.key").write_text(mallory.skey + "\n")
    os.chmod(tmp_path / "mallory.key", 0o600)
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(tmp_path / "mallory.key"))  # an insider swaps the configured key
    assert run_cli("keys", "rotate", "--new-key", str(keyring / "witness.key.pub")).exit_code == 0
    monkeypatch.setenv("CRYPTORUN_SIGNING_KEY", str(keyring / "witness.key"))
    checkpoint(run_cli, tmp_path / "cp.txt")
    result = verify(run_cli, tmp_path / "cp.txt", keyring / "store.key.pub")  # the auditor trusts the real key
    assert result.exit_code == 1
    assert "is not accepted: no key accepted so far signed it" in result.stdout
    assert "is signed only by keys not trusted" in result.stdout


# -- witnesses ---------------------------------------------------------------------------------------------------


def cosign(run_cli, cp: Path, out: Path, *more: str, keyring: Path):  # type: ignore[no-untyped-def]
    return run_cli("audit", "cosign", str(cp), "--key", str(keyring / "witness.key"), "-o", str(out), *more)


def test_a_witness_cosigns_the_growing_log_and_refuses_a_rewrite(catalog, writer, run_cli, keyring: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:  # fmt: skip
    from catalog.ops.keys import load_signer

    first = checkpoint(run_cli, tmp_path / "cp1.txt")
    result = cosign(run_cli, tmp_path / "cp1.txt", tmp_path / "w1.txt", "--first", keyring=keyring)
    assert result.exit_code == 0, result.stderr
    cosigner = note.parse_verifier((keyring / "witness.key.pub").read_text().strip()).as_cosigner()
    assert f"Cosigned by {cosigner.label}" in result.stdout
    for n in range(3):
        writer.write_json("ledger", f"p{n}", {"n": n})
    second = checkpoint(run_cli, tmp_path / "cp2.txt")
    result = cosign(run_cli, tmp_path / "cp2.txt", tmp_path / "w2.txt", "--previous", str(tmp_path / "w1.txt"),
                    keyring=keyring)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    cosigned = tlog.parse_checkpoint((tmp_path / "w2.txt").read_bytes())
    assert note.verified_by(cosigned.note, [cosigner]) == [cosigner] and cosigned.size == second.size > first.size
    assert run_cli("audit", "verify", "--checkpoint", str(tmp_path / "w2.txt")).exit_code == 0  # cosigned still checks

    # The same proof, from a file (as a witness off the store gets it).
    from catalog.core import tree

    with catalog.read() as conn:
        proof = tree.consistency(conn, first.size, second.size)
    (tmp_path / "proof.json").write_text(json.dumps({"size1": first.size, "size2": second.size,
                                                     "proof": [base64.b64encode(h).decode() for h in proof]}))  # fmt: skip
    result = cosign(run_cli, tmp_path / "cp2.txt", tmp_path / "w2b.txt", "--previous", str(tmp_path / "w1.txt"),
                    "--proof", str(tmp_path / "proof.json"), "--log-key", str(keyring / "store.key.pub"),
                    keyring=keyring)  # fmt: skip
    assert result.exit_code == 0, result.stderr

    # An insider holding the store key signs a different history of the same size: the witness refuses.
    signer = load_signer(keyring / "store.key")
    forged = note.sign(tlog.checkpoint_text(second.origin, second.size, bytes(32)), signer)
    (tmp_path / "forged.txt").write_bytes(forged.encode())
    result = cosign(run_cli, tmp_path / "forged.txt", tmp_path / "w3.txt", "--previous", str(tmp_path / "w1.txt"),
                    "--proof", str(tmp_path / "proof.json"), keyring=keyring)  # fmt: skip
    assert result.exit_code == 1 and "is not consistent with the previous one" in result.stderr
    assert not (tmp_path / "w3.txt").exists()
    result = cosign(run_cli, tmp_path / "cp1.txt", tmp_path / "w3.txt", "--previous", str(tmp_path / "w2.txt"),
                    keyring=keyring)  # fmt: skip
    assert result.exit_code == 1 and "fewer than the" in result.stderr
    result = cosign(run_cli, tmp_path / "cp2.txt", tmp_path / "w3.txt", "--previous", str(tmp_path / "cp1.txt"),
                    keyring=keyring)  # fmt: skip
    assert result.exit_code == 1 and "carries no cosignature of this witness" in result.stderr
    unsigned = tmp_path / "unsigned.txt"
    unsigned.write_text(second.note.text)
    result = cosign(run_cli, unsigned, tmp_path / "w3.txt", "--previous", str(tmp_path / "w1.txt"), keyring=keyring)
    assert result.exit_code == 1 and "is not signed by the log's key" in result.stderr
    assert not (tmp_path / "w3.txt").exists()
