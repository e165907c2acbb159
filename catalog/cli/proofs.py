"""Proofs for people: ``audit prove`` (an artifact's events, or one checkpoint extending another) and ``audit verify-proof``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..core.errors import ProofError, SignatureError, ValidationError
from .audit import audit
from .render import echo
from .root import State, complete_files, exit_after, pass_state


@audit.command("prove")
@click.argument("path", required=False, shell_complete=complete_files)
@click.option("--checkpoint", metavar="FILE", shell_complete=complete_files,
              help="Prove PATH's events in this checkpoint's tree (default: a new checkpoint, taken now).")  # fmt: skip
@click.option("--from", "old", metavar="OLD", shell_complete=complete_files,
              help="Instead of PATH: prove the log extends this older checkpoint file.")
@click.option("--to", "new", metavar="NEW", shell_complete=complete_files,
              help="With --from: the newer checkpoint file (default: a new checkpoint, taken now).")
@pass_state
def audit_prove(state: State, path: str | None, checkpoint: str | None, old: str | None, new: str | None) -> None:
    """Print a proof (JSON) that an auditor checks with `audit verify-proof` and the store's public key alone.

    With PATH (the artifact's current or original path): the inclusion proof
    of every event about that artifact (written, adopted, moved, archived,
    status changes...) in a checkpoint's Merkle tree, each with the event's
    text so the auditor hashes it. It proves these events are in the log; it
    does not prove the artifact has no others. With --from OLD: the
    consistency proof that the log at NEW extends the log at OLD (nothing
    before was changed or removed). The proof carries the checkpoint(s)
    themselves, signed, so the file stands alone; hashes are base64.

    Without --checkpoint (or --to), a new checkpoint is taken first, exactly
    as `audit checkpoint` does: an event of the log, signed with
    audit.signing_key, written into audit.checkpoint_dir if set. Events after
    a checkpoint given with --checkpoint are left out. Exit 0 when printed, 1
    when the log no longer extends a checkpoint given, 2 on error (an unknown
    PATH, a checkpoint of another store).

    \b
    Example:
      catalog audit prove ledger/20240131-120000-portfolio-ledger.json > proof.json
      catalog audit prove --from /mnt/worm/checkpoint-000000001000-20240101T000000Z.txt > extends.json
    """
    from ..core import proofs
    from ..ops.proofs import later_events, prove_artifact, prove_consistency, tree_checkpoint

    if (path is None) == (old is None):
        raise ValidationError("give either PATH (an artifact's events) or --from OLD (a checkpoint extended), not both")
    if path is not None and new is not None:
        raise ValidationError("--to goes with --from; for PATH, give the checkpoint with --checkpoint")
    if old is not None and checkpoint is not None:
        raise ValidationError("--checkpoint goes with PATH; with --from, give the newer checkpoint with --to")
    chosen = checkpoint or new
    with state.catalog() as catalog:
        given = tree_checkpoint(Path(chosen)) if chosen is not None else None
        proof: proofs.Proof
        if path is not None:
            proof = included = prove_artifact(catalog, path, given)
            later = later_events(catalog, included)
            if later:
                echo(f"Note: {later} later event(s) of {included.path} are not in this checkpoint's tree; a newer "
                     "checkpoint covers them.", err=True)  # fmt: skip
        else:
            assert old is not None
            proof = prove_consistency(catalog, tree_checkpoint(Path(old)), given)
    checkpoints = [proof.checkpoint] if isinstance(proof, proofs.InclusionProof) else [proof.old, proof.new]
    if any(not c.note.signatures for c in checkpoints):
        echo("Note: a checkpoint of this proof is unsigned (no audit.signing_key when it was taken): "
             "`audit verify-proof` will not accept it.", err=True)  # fmt: skip
    sys.stdout.write(proofs.encode(proof).decode())


@audit.command("verify-proof")
@click.argument("proof_file", metavar="PROOF.json", shell_complete=complete_files)
@click.option("--key", "key_files", multiple=True, required=True, metavar="PUBKEY", shell_complete=complete_files,
              help="The store's public key file (repeatable: a checkpoint signed by any one of them counts).")  # fmt: skip
@click.option("--witness", "witness_files", multiple=True, metavar="PUBKEY", shell_complete=complete_files,
              help="A witness's public key file: its cosignature is required on every checkpoint (repeatable).")  # fmt: skip
def audit_verify_proof(proof_file: str, key_files: tuple[str, ...], witness_files: tuple[str, ...]) -> None:
    """Check a proof from `audit prove` with only the public key(s): no catalog, no store, no configuration.

    Each checkpoint in the proof must be signed by one of the --key keys
    (give every key of a rotation) and cosigned by every --witness. An
    inclusion proof: each event's text hashes to a leaf of the checkpoint's
    Merkle tree (RFC 9162) and is that event of that artifact. A consistency
    proof: the newer checkpoint's tree extends the older one's. Exit 0
    proven, 1 not proven (what failed is named), 2 for a file or key that is
    malformed or unreadable.

    \b
    Example:
      catalog audit verify-proof proof.json --key cryptorun.pub --witness auditor.pub
    """
    from ..ops.proofs import verify_proof

    try:
        proven = verify_proof(Path(proof_file), [Path(k) for k in key_files], [Path(w) for w in witness_files])
    except (ProofError, SignatureError) as exc:
        exit_after(1)
        echo(f"NOT proven: {exc}")
        return
    exit_after(0)
    for line in proven.lines:
        echo(line)
