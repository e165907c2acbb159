"""The audit log: ``audit log``, ``verify``, ``checkpoint``, ``cosign``, ``export`` and ``verify-bundle``."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import click

from ..core.vocabulary import ACTIONS
from .render import echo, show_batches, show_rows
from .root import State, UTCTime, cli, cli_error, complete_files, exit_after, format_option, pass_state


@cli.group()
def audit() -> None:
    """The hash-chained audit log: read it, prove it intact, export evidence.

    \b
    Example:
      catalog audit verify --checkpoint /secure/checkpoint.json
      catalog audit log --since 2024-01-01 --action write
    """


_ACTIONS_HELP = "\n".join(f"  {name:<17} {meaning}" for name, meaning in ACTIONS.items())


@audit.command("log", epilog="\b\nActions:\n" + _ACTIONS_HELP)
@click.option("--since", type=UTCTime(), help="Recorded at or after TIME.")
@click.option("--until", type=UTCTime(), help="Recorded before TIME.")
@click.option("--action", "actions", multiple=True, metavar="ACTION", type=click.Choice(list(ACTIONS)),
              help="Only this action (repeatable), e.g. delete; the actions are listed below.")  # fmt: skip
@click.option("--path", help="Only events about this path; * and ? match any characters / one character.")
@click.option("--actor", "actor_text", metavar="TEXT", help="Only events whose actor contains TEXT.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many events.")
@format_option()
@pass_state
def audit_log(
    state: State, since: Any, until: Any, actions: tuple[str, ...], path: str | None, actor_text: str | None,
    limit: int | None, fmt: str,
) -> None:  # fmt: skip
    """The audit events, oldest first: who did what to which artifact, when.

    \b
    Example:
      catalog audit log --path 'ledger/*' --since 2024-01-01T00:00:00Z
      catalog audit log --actor alice --format ndjson > alice.ndjson
    """
    from ..ops.exports import EVENT_FIELDS, event_log_batches
    from ..ops.query import EventQuery, iter_event_log

    query = EventQuery(since, until, actions, path, actor_text, limit)
    with state.catalog() as catalog:
        if fmt == "table":
            rows = ({**event.to_dict(), "details": json.dumps(event.details, sort_keys=True)}
                    for event in iter_event_log(catalog, query))  # fmt: skip
            show_rows(rows, ("seq", "at", "action", "path", "status", "actor", "details"), fmt, "events")
            return
        # an export: rows straight from the database; in CSV, details as one cell of JSON text
        show_batches(event_log_batches(catalog, query, details_text=fmt == "csv"), EVENT_FIELDS, fmt, "events")


@audit.command("verify")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="A checkpoint the log must still extend (repeatable); those in audit.checkpoint_dir are added.")  # fmt: skip
@click.option("--key", "key_files", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="A public key the checkpoints must be signed by (repeatable; default: the audit.signing_key's).")  # fmt: skip
@format_option(("table", "json"), tables=False)
@pass_state
def audit_verify(state: State, checkpoints: tuple[str, ...], key_files: tuple[str, ...], fmt: str) -> None:
    """Prove the log intact: recompute the chain and the tree, replay every row, hold and floor, check checkpoints.

    It checks the log and the catalog's rows, not the files' bytes: `catalog
    verify` re-reads the files against their recorded SHA-256. A row, hold or
    floor that is not what its events say is a problem, and so is a
    configured checkpoint folder that is missing, holds no checkpoint, or
    has lost one the log says was written into it. Events dated
    in the future, or before the event they follow, by more than
    audit.max_clock_skew_seconds are clock findings. A checkpoint must be
    signed by a trusted key (--key, else the audit.signing_key's, and the keys
    they announced with `keys rotate`) unless it was taken without one.
    Exit 0 when the log is intact and its times sound, 1 when anything is
    broken (the first broken sequence number is named) or a time is wrong, 2
    on error.

    \b
    Example:
      catalog audit verify
      catalog audit verify --checkpoint /mnt/worm/checkpoint-000000001234-20240131T000000Z.txt --key cryptorun.pub
    """
    from ..ops.checkpoints import verify_log

    with state.catalog() as catalog:
        check = verify_log(catalog, [Path(p) for p in checkpoints], [Path(k) for k in key_files])
    report = check.report
    exit_after(0 if report.ok else 1)
    signatures = {"signed": check.signed, "unsigned": check.unsigned, "unchecked": check.unchecked,
                  "keys": [k.label for k in check.keys]}  # fmt: skip
    if fmt == "json":
        click.echo(json.dumps({**report.to_dict(), "signatures": signatures}, indent=2))
    elif report.intact:
        extra = f" and extends {report.checkpoints} checkpoint(s)" if report.checkpoints else ""
        echo(f"The log is intact: {report.count} events chain from the first to the head (seq {report.head_seq}), "
             f"all {report.artifacts} artifact rows agree with their events{extra}.")  # fmt: skip
        if check.signed or check.unsigned or check.unchecked:
            echo(f"Checkpoint signatures: {check.signed} signed by a trusted key, {check.unsigned} unsigned"
                 + (f", {check.unchecked} not checked (no key known: give --key)" if check.unchecked else "") + ".")
        for problem in report.clock[:20]:
            echo(f"CLOCK at seq {problem.seq}: {problem.message}")
        if len(report.clock) > 20:
            echo(f"  … and {len(report.clock) - 20} more (see --format json)")
        if report.clock:
            echo("The chain is sound, but these times are wrong: check the writers' clocks (NTP); the log "
                 "keeps what they said.")  # fmt: skip
        echo("This checks the log and the rows, not the files' bytes: `catalog verify` re-reads the files.")
    else:
        first = report.first
        assert first is not None  # not intact: there is a problem
        echo(f"BROKEN{f' at seq {first.seq}' if first.seq is not None else ''}: {first.kind}: {first.message}")
        for problem in [*report.problems[1:], *report.clock][:19]:
            echo(f"  also: seq {problem.seq}: {problem.kind}: {problem.message}")
        if len(report.problems) + len(report.clock) > 20:
            echo(f"  … and {len(report.problems) + len(report.clock) - 20} more (see --format json)")
        echo("Keep this catalog as it is (it is evidence) and compare it with your backups and checkpoints.")


@audit.command("checkpoint")
@click.option("-o", "--output", metavar="FILE", help="Write the checkpoint to FILE (outside the store); - prints it.",
              shell_complete=complete_files)  # fmt: skip
@pass_state
def audit_checkpoint(state: State, output: str | None) -> None:
    """Record the log's tree (size, root hash), signed with the store's key, to keep outside the store.

    A C2SP tlog-checkpoint: this store's origin, the number of events, the
    base64 root hash of their Merkle tree, then the signature of
    audit.signing_key (none if no key is configured: the checkpoint is then
    unsigned). Written to FILE, else into audit.checkpoint_dir, else printed
    (-o - prints it even with audit.checkpoint_dir).
    The checkpoint is itself an event of the log, and the last it covers.
    Later, `audit verify --checkpoint FILE` proves the log still extends it,
    which catches even a consistent rewrite of the whole chain.

    \b
    Example:
      catalog audit checkpoint -o /mnt/worm/checkpoint-$(date -u +%Y%m%d).txt
      catalog audit checkpoint -o - | ssh worm-host 'cat > checkpoint.txt'
    """
    from ..ops.checkpoints import take_checkpoint
    from .outputs import output_or_stdout

    target = output_or_stdout(output, "-o") if output else None  # no -o: the checkpoint folder, else printed
    with state.catalog() as catalog:
        checkpoint, data, written = take_checkpoint(catalog, target, folder=output != "-")
    if written is None:
        sys.stdout.write(data.decode())
    else:
        signed = ", ".join(s.label for s in checkpoint.note.signatures)
        echo(f"Checkpoint of {checkpoint.size} events written to {written}, "
             + (f"signed by {signed}." if signed else "unsigned (no audit.signing_key)."))


@audit.command("cosign")
@click.argument("checkpoint", metavar="CHECKPOINT", shell_complete=complete_files)
@click.option("--key", "witness_key", required=True, metavar="FILE", shell_complete=complete_files,
              help="The witness's private key (`catalog keys generate`).")  # fmt: skip
@click.option("--previous", metavar="FILE", shell_complete=complete_files,
              help="The last checkpoint of this log the witness cosigned.")  # fmt: skip
@click.option("--first", is_flag=True, help="This witness has cosigned no checkpoint of this log yet.")
@click.option("--proof", metavar="FILE", shell_complete=complete_files,
              help='Consistency proof from --previous to CHECKPOINT: {"size1", "size2", "proof": [base64…]} '
                   "(default: computed from the store).")  # fmt: skip
@click.option("--log-key", "log_keys", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="The store's public key (repeatable; default: audit.signing_key's, with the keys it announced).")  # fmt: skip
@click.option("-o", "--output", metavar="FILE", shell_complete=complete_files,
              help="Write the cosigned checkpoint to FILE (new); default, or -: print it.")  # fmt: skip
@pass_state
def audit_cosign(state: State, checkpoint: str, witness_key: str, previous: str | None, first: bool,
                 proof: str | None, log_keys: tuple[str, ...], output: str | None) -> None:  # fmt: skip
    """As a witness, add your cosignature to a checkpoint, only if it extends the last one you cosigned.

    The witness checks the store's signature (--log-key), that --previous
    carries its own cosignature and is of the same log, and that CHECKPOINT
    is consistent with it (a Merkle consistency proof: --proof, or computed
    from the store): a witness never signs a rewritten history. The
    cosignature is C2SP tlog-cosignature (cosignature/v1, Ed25519,
    timestamped). Keep the output: it is your --previous next time. Exit 0
    when cosigned, 1 when refused (naming why), 2 on error.

    \b
    Example:
      catalog audit cosign new.txt --key /witness/w1.key --previous last.txt -o new-cosigned.txt
    """
    from ..ops.checkpoints import cosign, new_file
    from ..ops.keys import load_signer, load_verifier
    from .outputs import output_or_stdout

    if first == (previous is not None):
        raise cli_error("give --previous (the last checkpoint this witness cosigned) or --first, one of them")
    chosen = output_or_stdout(output, "-o") if output else None
    target = None if chosen is None else new_file(state.settings.base_dir, chosen, "cosigned checkpoint")
    witness = load_signer(Path(witness_key), "witness key")
    given = [load_verifier(Path(p), "log key") for p in log_keys]
    with nullcontext() if given and (first or proof) else state.catalog() as store:
        done = cosign(Path(checkpoint), witness, log_keys=given, previous=None if previous is None else Path(previous),
                      proof=None if proof is None else Path(proof), catalog=store, output=target)  # fmt: skip
    if target is None:
        sys.stdout.write(done.encode().decode())
    else:
        echo(f"Cosigned by {witness.verifier.as_cosigner().label}: {done.size} events of {done.origin}, "
             f"written to {target}.")  # fmt: skip


@audit.command("export")
@click.argument("output", metavar="OUT.zip", shell_complete=complete_files)
@click.option("--since", type=UTCTime(), help="Events recorded at or after TIME.")
@click.option("--until", type=UTCTime(), help="Events recorded before TIME.")
@click.option("--include-files", is_flag=True, help="Put the artifact files themselves in the bundle too.")
@click.option("--since-checkpoint", "since_checkpoints", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="A checkpoint the auditor holds: the bundle proves its log extends it (repeatable; those in "
                   "audit.checkpoint_dir are added).")  # fmt: skip
@pass_state
def audit_export(state: State, output: str, since: Any, until: Any, include_files: bool,
                 since_checkpoints: tuple[str, ...]) -> None:  # fmt: skip
    """Write a signed evidence bundle that `audit verify-bundle` checks anywhere, without the catalog.

    The bundle holds the events of the window (a contiguous run of the log),
    the artifact rows they name with every event that set those rows (even
    before --since), a manifest of the files with their checksums, the
    checkpoint of the whole log at the export signed with audit.signing_key,
    consistency proofs from the checkpoints given and configured, a README
    and an HTML report; with --include-files the files too (one that no
    longer matches, or is a symlink or not a regular file, is left out and
    listed). Without a signing key the bundle is unsigned (said on stderr):
    it then proves only that it is consistent with itself. OUT.zip must not
    exist; it gets the mode the umask gives. OUT.zip - writes the ZIP to
    standard output (not to a terminal), and what it wrote to standard
    error. The export records no event.

    \b
    Example:
      catalog audit export --since 2024-01-01 --until 2024-04-01 --since-checkpoint last-quarter.txt q1.zip
      catalog audit export --since 2024-01-01 - | ssh auditor-host 'cat > q1.zip'
    """
    from ..ops.bundles import export_bundle, export_bundle_to
    from .outputs import output_or_stdout

    target = output_or_stdout(output, "OUT.zip")
    to_stdout = target is None
    if to_stdout and sys.stdout.isatty():
        raise cli_error("OUT.zip - writes a binary ZIP to standard output, which is a terminal: "
                        "redirect it (> FILE, | COMMAND) or give a file path")  # fmt: skip
    checkpoints = [Path(p) for p in since_checkpoints]
    with state.catalog() as catalog:
        if target is None:
            summary = export_bundle_to(sys.stdout.buffer, catalog, since, until, include_files, checkpoints)
        else:
            summary = export_bundle(catalog, target, since, until, include_files, checkpoints)
    span = f"events {summary.first_seq}..{summary.last_seq}" if summary.events else "no events"
    signed = f"signed by {summary.signed_by}" if summary.signed_by else "UNSIGNED"
    echo(f"Wrote {'the bundle to standard output' if to_stdout else summary.path}: {span} ({summary.events}), "
         f"{summary.artifacts} artifact rows, {summary.files} files; log of {summary.tree_size} events, {signed}.",
         err=to_stdout)  # fmt: skip
    for path in summary.skipped_files:
        echo(f"  not included (missing, not a regular file or no longer matching the catalog): {path}", err=to_stdout)
    if summary.signed_by is None:
        click.echo("Warning: the bundle is NOT signed (no audit.signing_key): it proves only that it is consistent "
                   "with itself, not who exported it. Configure a key (`catalog keys generate`).", err=True)  # fmt: skip


@audit.command("verify-bundle")
@click.argument("bundle", metavar="BUNDLE.zip", shell_complete=complete_files)
@click.option("--key", "key_files", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="The store's public key (repeatable); keys it announced in the log are accepted too.")
@click.option("--checkpoint", "checkpoints", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="A checkpoint you hold: the bundle's log must extend it (repeatable).")
@click.option("--witness", "witness_files", multiple=True, metavar="FILE", shell_complete=complete_files,
              help="A witness's public key whose cosignature is required (repeatable).")
@format_option(("table", "json"), tables=False)
def audit_verify_bundle(bundle: str, key_files: tuple[str, ...], checkpoints: tuple[str, ...],
                        witness_files: tuple[str, ...], fmt: str) -> None:  # fmt: skip
    """Check an evidence bundle on any machine, without the catalog.

    It recomputes the window's chain and the log's Merkle tree, checks every
    artifact row against the events that set it and every file against its
    row, and the proofs that the bundle's signed checkpoint extends each
    --checkpoint (one older than the window needs its proof in the bundle:
    give it to `audit export --since-checkpoint`). A --witness must have
    cosigned a checkpoint covering every event of the bundle. With --key it checks the store's signature (or that of a
    key the log announced from it); without, it proves only self-consistency
    and says so first. Exit 0 when it verifies, 1 when anything fails (named),
    2 on error.

    \b
    Example:
      catalog audit verify-bundle q1.zip --key cryptorun.pub --checkpoint last-quarter.txt --witness w1.pub
    """
    from ..core.bundle_format import verify_bundle
    from ..core.chain import read_checkpoint
    from ..ops.keys import load_verifier

    keys = [load_verifier(Path(p), "public key") for p in key_files]
    witnesses = [load_verifier(Path(p), "witness key") for p in witness_files]
    held = [read_checkpoint(Path(p)) for p in checkpoints]
    report = verify_bundle(Path(bundle), keys, held, witnesses)
    exit_after(0 if report.ok else 1)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    if report.ok and not report.authenticated:
        echo("NOT authenticated: no --key was given, so this proves only that the bundle is consistent with itself, "
             "not who made it.")  # fmt: skip
    if report.ok:
        span = f"events {report.first_seq}..{report.last_seq}" if report.events else "no events"
        signed = f"signed by {', '.join(report.signed_by)}" if report.signed_by else "signature not checked"
        echo(f"Bundle verifies: {span} chain intact, {report.artifacts} artifact rows and {report.files} "
             f"files match their events and records; log {report.origin} of {report.tree_size} events, {signed}"
             + (f", extends {report.checkpoints} checkpoint(s) you hold" if report.checkpoints else "")
             + (f", witnessed by {', '.join(report.witnessed_by)}" if report.witnessed_by else "") + ".")  # fmt: skip
    else:
        echo(f"Bundle does NOT verify: {report.problems[0]}")
        for problem in report.problems[1:20]:
            echo(f"  also: {problem}")
