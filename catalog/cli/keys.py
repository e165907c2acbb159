"""Signing keys: ``keys generate``, ``keys show`` and ``keys rotate``."""

from __future__ import annotations

from pathlib import Path

import click

from .render import echo
from .root import State, cli, cli_error, complete_files, pass_state


@cli.group()
def keys() -> None:
    """Ed25519 keys that sign the store's checkpoints, and witnesses' keys that cosign them.

    Keys are in the signed-note format of C2SP and Go (PRIVATE+KEY+NAME+ID+KEY,
    and NAME+ID+KEY for the public verifier key). The store's key is set with
    audit.signing_key (env CRYPTORUN_SIGNING_KEY).

    \b
    Example:
      catalog keys generate --name example.com/cryptorun --out /secure/cryptorun.key
      catalog keys show
    """


@keys.command("generate")
@click.option("--name", required=True, help="The key's name: no spaces or '+', e.g. example.com/cryptorun.")
@click.option("--out", "output", required=True, metavar="PATH", shell_complete=complete_files,
              help="The private key file to create (outside the store; not -); the public key goes to PATH.pub.")  # fmt: skip
@pass_state
def keys_generate(state: State, name: str, output: str) -> None:
    """Make an Ed25519 key pair: the private key (mode 0600) and its public verifier key beside it.

    Neither file may exist: a key is never overwritten. Print the verifier
    key, and give PATH.pub to whoever checks the store's checkpoints (an
    auditor, a witness). A witness makes its key the same way and keeps it.

    \b
    Example:
      catalog keys generate --name example.com/cryptorun --out /secure/cryptorun.key
    """
    from ..ops.keys import generate_key, public_path
    from .outputs import output_file

    target = output_file(output, "--out")
    signer = generate_key(name, target, state.settings.base_dir)
    path = target.absolute()
    echo(signer.verifier.vkey)
    echo(f"Private key written to {path} (mode 0600, yours alone: keep it secret and backed up); public key to "
         f"{public_path(path)}. To sign this store's checkpoints with it, set audit.signing_key: {path}")  # fmt: skip


@keys.command("show")
@pass_state
def keys_show(state: State) -> None:
    """Show the public half of the configured signing key (audit.signing_key): its verifier key and key id.

    \b
    Example:
      catalog keys show > cryptorun.pub
    """
    from ..ops.keys import configured_signer

    signer = configured_signer(state.settings)
    if signer is None:
        raise cli_error("no signing key is configured (audit.signing_key, env CRYPTORUN_SIGNING_KEY): checkpoints "
                        "are unsigned; make one with `catalog keys generate`")  # fmt: skip
    echo(signer.verifier.vkey)
    echo(f"key id {signer.verifier.key_id:08x} ({signer.verifier.label}), from {state.settings.signing_key}", err=True)


@keys.command("rotate")
@click.option("--new-key", required=True, metavar="PATH", shell_complete=complete_files,
              help="The new key: its private key file, or its public key (PATH.pub).")  # fmt: skip
@pass_state
def keys_rotate(state: State, new_key: str) -> None:
    """Announce a new signing key in the audit log, signed by the current one (audit.signing_key).

    Appends a key_rotate event that carries the new public key and the
    current key's signature over it; whoever trusts the current key then
    accepts checkpoints signed by the new one. Afterwards set
    audit.signing_key to the new key. A lost key cannot announce its
    successor: make a new key, have a witness cosign a checkpoint signed by
    it, and give auditors its public key.

    \b
    Example:
      catalog keys generate --name example.com/cryptorun --out /secure/cryptorun-2025.key
      catalog keys rotate --new-key /secure/cryptorun-2025.key
    """
    from ..ops.keys import rotate_key

    with state.catalog() as catalog:
        old, new, seq = rotate_key(catalog, Path(new_key))
    echo(f"Key {new.label} announced at seq {seq}, signed by {old.label}. Now point audit.signing_key at the new "
         "private key; whoever trusts the old key accepts checkpoints signed by the new one.")  # fmt: skip
