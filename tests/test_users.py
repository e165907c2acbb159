"""Web accounts (issue 16): added, changed and removed only through the unit of work, each with its event;
only a salted scrypt hash is kept; the secret never reaches the log or the catalog."""

from __future__ import annotations

import json

import pytest

from catalog.core.errors import NotFoundError, ValidationError
from catalog.core.schema import USERS
from catalog.core.store import Catalog
from catalog.ops import users
from catalog.ops.users import add_user, authenticate, hash_secret, list_users, remove_user, secret_matches, set_role

from helpers import Cli


def _stored(catalog: Catalog) -> list[dict[str, object]]:
    with catalog.read() as conn:
        return [dict(r._mapping) for r in conn.execute(USERS.select())]


def test_an_added_account_keeps_only_a_salted_scrypt_hash(catalog: Catalog) -> None:
    alice, secret = add_user(catalog, "alice", "compliance")
    bob, other = add_user(catalog, "bob", "viewer")
    assert len(secret) == 43 and secret != other  # 32 random bytes, URL-safe base64
    rows = {r["name"]: r for r in _stored(catalog)}
    kept = str(rows["alice"]["secret_hash"])
    assert kept.startswith("scrypt$16384$8$1$") and secret not in kept
    assert kept.split("$")[4] != str(rows["bob"]["secret_hash"]).split("$")[4]  # a salt per account
    assert authenticate(catalog, "alice", secret) == alice
    assert authenticate(catalog, "alice", other) is None
    assert authenticate(catalog, "carol", secret) is None
    assert authenticate(catalog, "../alice", secret) is None
    assert [u.to_dict()["role"] for u in list_users(catalog)] == ["compliance", "viewer"]
    assert alice.to_dict().keys() == {"name", "role", "created_at", "created_by"}


def test_the_secret_is_in_no_event_and_every_change_is_one(catalog: Catalog) -> None:
    _, secret = add_user(catalog, "alice", "viewer")
    assert set_role(catalog, "alice", "admin", "runs the host") == "viewer"
    remove_user(catalog, "alice", "left the firm")
    events = [e for e in catalog.events() if e.action.startswith("user_")]
    assert [(e.action, dict(e.details)) for e in events] == [
        ("user_add", {"name": "alice", "role": "viewer"}),
        ("user_role", {"name": "alice", "from": "viewer", "to": "admin", "reason": "runs the host"}),
        ("user_remove", {"name": "alice", "role": "admin", "reason": "left the firm"}),
    ]
    everything = json.dumps([e.to_dict() for e in catalog.events()])
    assert secret not in everything and "scrypt$" not in everything
    assert _stored(catalog) == [] and catalog.audit_verify().ok


@pytest.mark.parametrize("name", ["", "-alice", "al ice", "al/ice", "../x", "a\x00", "a\nb", "é", "x" * 65])
def test_bad_names_are_refused_and_nothing_is_written(catalog: Catalog, name: str) -> None:
    with pytest.raises(ValidationError, match="name"):
        add_user(catalog, name, "viewer")
    assert _stored(catalog) == [] and not [e for e in catalog.events() if e.action == "user_add"]


def test_refusals(catalog: Catalog) -> None:
    add_user(catalog, "alice", "viewer")
    with pytest.raises(ValidationError, match="already exists"):
        add_user(catalog, "alice", "admin")
    with pytest.raises(ValidationError, match="unknown role 'root'; choose one of: viewer, compliance, admin"):
        add_user(catalog, "bob", "root")
    with pytest.raises(NotFoundError, match="no account named 'bob'"):
        remove_user(catalog, "bob", "gone")
    with pytest.raises(NotFoundError):
        set_role(catalog, "bob", "admin", "why")
    with pytest.raises(ValidationError, match="reason"):
        remove_user(catalog, "alice", "  ")
    with pytest.raises(ValidationError, match="reason"):
        set_role(catalog, "alice", "admin", "a\nforged line")
    assert [(u.name, u.role) for u in list_users(catalog)] == [("alice", "viewer")]


def test_a_malformed_or_foreign_hash_never_matches() -> None:
    good = hash_secret("s3cret")
    assert secret_matches("s3cret", good) and not secret_matches("s3cret!", good)
    assert not secret_matches("s3cret", "plain")
    assert not secret_matches("s3cret", good.replace("$16384$", "$3$"))  # N must be a power of two: refused
    assert not secret_matches("s3cret", good.replace("$16384$", "$1073741824$"))  # beyond the memory allowed


def test_the_parameters_are_the_documented_ones() -> None:
    assert (users.SCRYPT_N, users.SCRYPT_R, users.SCRYPT_P, users.SALT_BYTES, users.HASH_BYTES) == (2**14, 8, 1, 16, 32)


def test_the_users_commands(catalog: Catalog, run_cli: Cli) -> None:
    added = run_cli("users", "add", "alice", "--role", "compliance")
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip().splitlines()[-1]
    assert authenticate(catalog, "alice", secret) is not None
    listed = run_cli("users", "ls", "--format", "json")
    assert [u["name"] for u in json.loads(listed.stdout)["users"]] == ["alice"] and secret not in listed.stdout
    assert run_cli("users", "role", "alice", "admin", "--reason", "ops").stdout.strip() == "Account alice: compliance -> admin."
    again = run_cli("users", "add", "alice", "--role", "viewer")
    assert again.exit_code == 2 and again.stderr.strip() == "Error: an account named 'alice' already exists"
    bad = run_cli("users", "add", "al/ice", "--role", "viewer")
    assert bad.exit_code == 2 and "NAME 'al/ice' must be 1-64 ASCII letters" in bad.stderr
    assert run_cli("users", "remove", "alice", "--reason", "left").exit_code == 0
    gone = run_cli("users", "remove", "alice", "--reason", "left")
    assert gone.exit_code == 2 and gone.stderr.strip() == "Error: no account named 'alice'"
    assert run_cli("users", "ls").stdout.strip() == "(no rows)"
