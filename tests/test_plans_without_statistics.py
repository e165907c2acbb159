"""PostgreSQL plans by its statistics, and a catalog just restored or bulk-loaded has none until autovacuum has
analyzed it. `ls --as-of` must not then walk the whole log once per artifact (issue 17: a benchmark's
`ls --as-of` of 100,000 artifacts had run more than 6½ minutes on its first page of 20, unfinished, before the
tables were analyzed).

SQLite never gathers statistics (the catalog runs no ANALYZE): its plans are checked in test_page_queries.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event

from catalog.core.records import PublishedFile
from catalog.core.store import Catalog
from catalog.ops.exports import artifact_batches
from catalog.ops.query import ArtifactQuery, iter_artifacts

ROWS = 3000


@pytest.fixture
def unanalyzed(catalog: Catalog) -> Catalog:
    """A PostgreSQL catalog of ``ROWS`` artifacts and their events that autovacuum has not analyzed (and may not)."""
    if catalog.db.is_sqlite:
        pytest.skip("PostgreSQL's planner: SQLite's plans do not depend on statistics")
    with catalog.db.engine.begin() as conn:  # the test's own database: no analyze may land while it runs
        for table in ("artifacts", "events"):
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    items = []
    for n in range(ROWS):
        at = start + timedelta(minutes=n)
        name = f"{at:%Y%m%d-%H%M%S}-b{n}-ledger.json"
        items.append(PublishedFile(path=f"ledger/{name}", type="ledger", prefix=f"b{n}", ext="json", created_at=at,
                                   size=2, sha256=hashlib.sha256(str(n).encode()).hexdigest()))  # fmt: skip
    with catalog.change() as tx:
        tx.artifacts.record_many(items)
    with catalog.read() as conn:
        analyzed = conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stats WHERE tablename IN ('artifacts', 'events')").scalar_one()  # fmt: skip
    assert analyzed == 0, "the tables have statistics: this test needs them without"
    return catalog


def _plans(catalog: Catalog, read: Any) -> str:
    """EXPLAIN of every SELECT ``read()`` runs (with its parameters), as one text."""
    seen: list[tuple[str, Any]] = []

    def capture(conn: object, cursor: object, statement: str, parameters: Any, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(catalog.db.engine, "before_cursor_execute", capture)
    try:
        read()
    finally:
        event.remove(catalog.db.engine, "before_cursor_execute", capture)
    assert seen
    with catalog.read() as conn:
        return "\n\n".join("\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + s, p)) for s, p in seen)


@pytest.mark.parametrize("reader", ["export", "records"])
def test_as_of_without_statistics_reads_each_artifacts_last_event_from_its_own_index_range(
    unanalyzed: Catalog, reader: str
) -> None:  # fmt: skip
    query = ArtifactQuery(as_of=datetime(2099, 1, 1, tzinfo=timezone.utc))
    if reader == "export":  # ls --as-of --format ndjson|csv|json
        plans = _plans(unanalyzed, lambda: next(artifact_batches(unanalyzed, query, batch=500)))
    else:  # ls --as-of as a table, and the web's list
        plans = _plans(unanalyzed, lambda: [r for r, _ in zip(iter_artifacts(unanalyzed, query, batch=500), range(600))])
    lookups = [part for plan in plans.split("\n\n") for part in re.split(r"\n *SubPlan \d+\n", plan)[1:]]
    assert lookups, plans
    for lookup in lookups:  # each artifact's last event: the newest entry of its own range of the index, no more
        assert "Index Scan Backward using ix_events_artifact_id_seq" in lookup, plans
        # before: the whole log newest first (pk_events, at 100,000 rows), or all events up to the time (ix_events_at)
        assert not any(other in lookup for other in ("pk_events", "ix_events_at", "Seq Scan", "Bitmap")), plans


def test_as_of_without_statistics_answers_what_existed(unanalyzed: Catalog) -> None:
    then = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=ROWS // 2)
    with unanalyzed.read() as conn:  # every row was recorded now: as of any moment before now, none existed
        assert conn.exec_driver_sql("SELECT count(*) FROM events WHERE artifact_id IS NOT NULL").scalar_one() == ROWS
    assert list(iter_artifacts(unanalyzed, ArtifactQuery(as_of=then))) == []
    listed = list(iter_artifacts(unanalyzed, ArtifactQuery(as_of=datetime(2099, 1, 1, tzinfo=timezone.utc))))
    assert len(listed) == ROWS
