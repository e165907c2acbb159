"""Web accounts: ``users add``, ``users ls``, ``users role`` and ``users remove``."""

from __future__ import annotations

import click

from ..core.vocabulary import ROLES
from .render import echo, show_dicts
from .root import State, cli, format_option, pass_state


@cli.group()
def users() -> None:
    """Accounts of the web view (`catalog serve`): each a name, a role and a secret.

    Roles: viewer reads every page; compliance also places and releases legal
    holds; admin also sees the accounts. Accounts are managed only here, on
    the host, never over the web.

    \b
    Example:
      catalog users add alice --role compliance
      catalog users ls
    """


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the account may do.")
@pass_state
def users_add(state: State, name: str, role: str) -> None:
    """Add an account NAME and print its secret, once.

    The secret is 32 random bytes; only a salted scrypt hash of it is kept in
    the catalog, so it cannot be shown again: to replace a lost one, remove
    the account and add it again. Recorded as a user_add event.

    \b
    Example:
      catalog users add alice --role compliance
    """
    from ..ops.users import add_user

    with state.catalog() as catalog:
        user, secret = add_user(catalog, name, role)
    echo(f"Account {user.name} ({user.role}) added. Its secret, shown only this once:")
    click.echo(secret)


@users.command("ls")
@format_option()
@pass_state
def users_ls(state: State, fmt: str) -> None:
    """List the accounts with their roles (never their secrets).

    \b
    Example:
      catalog users ls --format json
    """
    from ..ops.users import list_users

    with state.catalog() as catalog:
        found = list_users(catalog)
    show_dicts(found, ("name", "role", "created_at", "created_by"), fmt, "users")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pass_state
def users_role(state: State, name: str, role: str, reason: str) -> None:
    """Give the account NAME the role ROLE (takes effect on its next request).

    \b
    Example:
      catalog users role alice viewer --reason "moved to engineering"
    """
    from ..ops.users import set_role

    with state.catalog() as catalog:
        before = set_role(catalog, name, role, reason)
    echo(f"Account {name}: {before} -> {role}.")


@users.command("remove")
@click.argument("name")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
@pass_state
def users_remove(state: State, name: str, reason: str) -> None:
    """Remove the account NAME: its sessions and API calls stop working at once.

    \b
    Example:
      catalog users remove alice --reason "left the firm"
    """
    from ..ops.users import remove_user

    with state.catalog() as catalog:
        remove_user(catalog, name, reason)
    echo(f"Account {name} removed.")
