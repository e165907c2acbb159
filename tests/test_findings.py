"""Findings stay open until the artifact is re-checked and passes, or a person resolves them (issue 13, cases 4, 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog.core.errors import NotFoundError, ValidationError
from catalog.core.store import Catalog
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.findings import open_findings, resolve


def flip_a_bit(path: Path) -> bytes:
    original = path.read_bytes()
    path.chmod(0o644)
    data = bytearray(original)
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    return original


def status(run_cli) -> tuple[int, dict]:  # type: ignore[no-untyped-def,type-arg]
    result = run_cli("status", "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def test_a_later_passing_verify_of_other_artifacts_does_not_clear_a_failure(
    catalog: Catalog, writer: AtomicWriter, run_cli
) -> None:  # fmt: skip
    """Case 4: `verify --type ledger` failed, then `verify --sample 0.05 --type health` passed and status forgot."""
    ledger = writer.write_json("ledger", "book", {"cash": 100})
    for n in range(3):
        writer.write_json("health", f"h{n}", {"n": n})
    original = flip_a_bit(catalog.base_dir / ledger.path)
    assert run_cli("verify", "--type", "ledger").exit_code == 1
    assert run_cli("verify", "--type", "health").exit_code == 0
    code, shown = status(run_cli)
    assert code == 1 and shown["findings_outstanding"] == 1 and shown["findings"] == {"verify_failure": 1}
    assert any("1 findings are open (1 verify failure)" in a for a in shown["attention"])
    (finding,) = open_findings(catalog)
    assert (finding.kind, finding.path) == ("verify_failure", ledger.path) and "failed" in finding.detail
    (catalog.base_dir / ledger.path).write_bytes(original)  # the bytes are put right
    assert run_cli("verify", "--type", "ledger").exit_code == 0  # the same artifact re-checked, and it passes
    code, shown = status(run_cli)
    assert code == 0 and shown["findings_outstanding"] == 0, shown


def test_a_quarantine_is_a_finding_a_person_resolves(catalog: Catalog, writer: AtomicWriter, run_cli) -> None:  # type: ignore[no-untyped-def]
    """Case 5: after `reconcile --deep --fix` quarantined a file, status exited 1 forever."""
    record = writer.write_json("ledger", "book", {"cash": 100})
    flip_a_bit(catalog.base_dir / record.path)
    assert run_cli("verify").exit_code == 1
    assert run_cli("reconcile", "--deep", "--fix", "--grace", "0").exit_code == 1
    assert run_cli("verify").exit_code == 0  # nothing left on disk as recorded to fail
    listed = json.loads(run_cli("findings", "ls", "--format", "json").stdout)["findings"]
    assert [f["kind"] for f in listed] == ["quarantined"]  # the verify failure is superseded by the quarantine
    assert status(run_cli)[0] == 1
    finding_id = listed[0]["id"]
    done = run_cli("findings", "resolve", str(finding_id), "--reason", "compared with the backup by hand")
    assert done.exit_code == 0 and f"Finding {finding_id} (quarantined, quarantine/{record.path}) resolved." in done.stdout
    code, shown = status(run_cli)
    assert code == 0 and shown["findings_outstanding"] == 0
    (event,) = [e for e in catalog.events() if e.action == "finding_resolve"]
    assert event.details == {"finding": finding_id, "kind": "quarantined", "reason": "compared with the backup by hand"}
    assert event.artifact_id == record.id and catalog.audit_verify().ok
    again = run_cli("findings", "resolve", str(finding_id), "--reason", "twice")
    assert again.exit_code == 2 and again.stderr.startswith(f"Error: no open finding {finding_id}")


def test_a_missing_file_that_comes_back_closes_its_finding(catalog: Catalog, writer: AtomicWriter, run_cli) -> None:  # type: ignore[no-untyped-def]
    record = writer.write_json("ledger", "book", {"cash": 100})
    path = catalog.base_dir / record.path
    kept = path.read_bytes()
    path.unlink()
    assert run_cli("reconcile", "--fix", "--grace", "0").exit_code == 1
    assert [f.kind for f in open_findings(catalog)] == ["missing"]
    path.write_bytes(kept)
    assert run_cli("reconcile", "--fix", "--grace", "0").exit_code == 1  # "restored" is reported, and fixed
    assert open_findings(catalog) == [] and status(run_cli)[1]["findings_outstanding"] == 0


def test_resolve_refuses_what_is_not_an_open_finding(catalog: Catalog, writer: AtomicWriter) -> None:
    record = writer.write_json("ledger", "book", {"cash": 100})
    write_seq = next(e.seq for e in catalog.events() if e.action == "write")
    with pytest.raises(NotFoundError, match=f"^no open finding {write_seq} "):
        resolve(catalog, write_seq, "not a finding")  # a write event is no finding
    with pytest.raises(ValidationError, match="reason must be 1-1000 characters"):
        resolve(catalog, write_seq, "\x1b[2J")
    assert record and [e.action for e in catalog.events()][-1] == "write"  # nothing written
