"""The web pages' statements stay cheap at any size (issue 16): no COUNT(*), and every filter of the artifacts
list and the audit log read as an ordered index range, as SQLite's EXPLAIN QUERY PLAN shows it.

No timing here: the plans SQLite picks for these statements do not depend on the number of rows (the catalog
never runs ANALYZE), so a store of a few artifacts shows the plan a store of a million gets. PostgreSQL plans by
its statistics (a small table is always read whole), so this runs on SQLite only; benchmarks/run.py --only web
EXPLAINs the same statements on both backends at 1,000,000 rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from urllib.parse import quote

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed (pip install -e '.[web]')")

from sqlalchemy import event  # noqa: E402
from starlette.exceptions import StarletteDeprecationWarning  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from catalog.core.settings import Settings  # noqa: E402
from catalog.core.store import Catalog  # noqa: E402
from catalog.cryptorun.demo import make_report  # noqa: E402
from catalog.cryptorun.writer import AtomicWriter  # noqa: E402
from catalog.ops.policy import add_hold  # noqa: E402
from catalog.ops.users import add_user  # noqa: E402
from catalog.web import create_app  # noqa: E402


class Pages:
    """The web app over a small store, and the plan of every SELECT one request runs."""

    def __init__(self, catalog: Catalog, settings: Settings, writer: AtomicWriter) -> None:
        self.catalog = catalog
        self.json, self.csv = writer.write_explain_report(make_report(3, seed=1), "scan")
        writer.write_json("ledger", "book", {"cash": 1})
        add_hold(catalog, path=self.json.path, reason="a path hold: the artifact page looks up the pair it reaches")
        _, secret = add_user(catalog, "reader", "viewer")
        self.client = TestClient(create_app(settings, catalog=catalog), headers={"Authorization": f"Bearer reader:{secret}"})

    def plans(self, url: str) -> list[tuple[str, list[str]]]:
        """(statement, its plan lines) of each SELECT ``url`` runs; the request must answer 200.

        A line of a correlated subquery's plan is indented (``    SEARCH …``): only the statement's own lines
        start at the margin."""
        seen: list[tuple[str, object]] = []

        def capture(conn: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
            seen.append((statement, parameters))

        engines = [self.catalog.db.engine, self.catalog.db.read_engine]  # SQLite reads on an engine of their own
        for engine in engines:
            event.listen(engine, "before_cursor_execute", capture)
        try:
            answer = self.client.get(url)
        finally:
            for engine in engines:
                event.remove(engine, "before_cursor_execute", capture)
        assert answer.status_code == 200, answer.text
        out = []
        with self.catalog.read() as conn:
            for statement, parameters in seen:
                if statement.lstrip().upper().startswith("SELECT") and "FROM users" not in statement:
                    rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()  # type: ignore[arg-type]
                    out.append((" ".join(statement.split()), _indented(rows)))
        return out


def _indented(rows: list[object]) -> list[str]:
    """EXPLAIN QUERY PLAN rows ``(id, parent, _, detail)`` as lines, those under a subquery indented."""
    nested = {0: False}
    lines = []
    for node, parent, _, detail in rows:  # type: ignore[misc]
        lines.append(("    " if nested.get(parent) else "") + detail)
        nested[node] = nested.get(parent, False) or "SUBQUERY" in detail
    return lines


@pytest.fixture
def pages(catalog: Catalog, settings: Settings, writer: AtomicWriter) -> Iterator[Pages]:
    if not catalog.db.is_sqlite:
        pytest.skip("plans by EXPLAIN QUERY PLAN: SQLite only (PostgreSQL plans by its statistics)")
    yield Pages(catalog, settings, writer)


#: page -> the index range its filter must be read as (None: any plan, as long as it reads no table whole)
LISTS = {
    "/api/artifacts": None,
    "/api/artifacts?type=ledger": "USING INDEX ix_artifacts_type_created_at (type=?)",
    "/api/artifacts?prefix=scan": "USING INDEX ix_artifacts_prefix_created_at (prefix=?)",
    "/api/artifacts?status=quarantined": "USING INDEX ix_artifacts_status_created_at (status=?)",
    "/api/artifacts?since=2020-01-01&until=2099-01-01": "USING INDEX ix_artifacts_created_at_id (created_at>? AND",
    "/api/artifacts?sort=oldest&as_of=2099-01-01": "SEARCH events USING INDEX ix_events_artifact_id_seq (artifact_id=?)",
    "/api/audit": None,
    "/api/audit?action=hold_place": "USING INDEX ix_events_action_seq (action=? AND seq>?)",
    "/api/audit?action=write&action=hold_place": "USING INDEX ix_events_action_seq (action=? AND seq>?)",
    "/api/audit?path=ledger/x.json": "USING INDEX ix_events_path_seq (path=? AND seq>?)",
}


@pytest.mark.parametrize("url", list(LISTS))
def test_a_list_page_reads_an_ordered_index_range_and_counts_nothing(pages: Pages, url: str) -> None:
    plans = pages.plans(url)
    assert plans, url
    for statement, plan in plans:
        assert "count(" not in statement.lower(), statement
        assert not any(line.startswith("SCAN events") for line in plan), (statement, plan)  # the log read whole
        assert not any(line in ("SCAN artifacts", "SCAN then") for line in plan), (statement, plan)
        assert not any(line.startswith("USE TEMP B-TREE") for line in plan), (statement, plan)  # every match sorted
    if LISTS[url] is not None:
        assert any(LISTS[url] in line for _, plan in plans for line in plan), plans


def test_the_artifact_page_reads_no_table_whole(pages: Pages) -> None:
    """Its row, story, pair, the holds covering it (a path hold looks up the pair it reaches, by path or original
    path) and its verify history: each by an index, whatever the store's size."""
    for path in (pages.json.path, pages.csv.path):
        plans = pages.plans("/api/artifacts/" + quote(path))
        assert len(plans) >= 5, plans
        for statement, plan in plans:
            assert "count(" not in statement.lower(), statement
            assert not any(line.startswith(("SCAN artifacts", "SCAN events", "SCAN verify")) for line in plan), (
                statement, plan)  # fmt: skip
