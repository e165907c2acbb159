"""Many writer processes, one catalog: every write lands, the chain stays gapless."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_audit import walk_chain_by_hand

from catalog.core.store import Catalog

from helpers import all_records, catalog_env, store_files

WRITER = """
import sys
from catalog.cryptorun.writer import AtomicWriter
worker = int(sys.argv[1])
with AtomicWriter() as writer:
    for n in range(50):
        writer.write_json("ledger", f"w{worker}-n{n}", {"worker": worker, "n": n})
"""


def test_eight_processes_write_fifty_artifacts_each(catalog: Catalog, base_dir: Path, catalog_url) -> None:
    env = catalog_env(base_dir, catalog_url)
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(w)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for w in range(8)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs):
        assert proc.returncode == 0, err.decode()
    records = all_records(catalog)
    assert len(records) == 400
    assert len(store_files(base_dir)) == 400
    assert sorted(r.path for r in records) == store_files(base_dir)
    count, _ = walk_chain_by_hand(catalog)
    assert count == 401  # schema_upgrade + 400 writes
    assert catalog.audit_verify().ok
