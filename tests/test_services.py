"""The small pieces the restructure moved out of the command line into the API, tested through the API."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from catalog.core.db import schema_revision
from catalog.core.errors import NotFoundError, Remedy, SchemaError, ValidationError
from catalog.core.settings import Settings
from catalog.core.store import Catalog
from catalog.core.vocabulary import HEAD_REVISION
from catalog.cryptorun.writer import AtomicWriter
from catalog.ops.families import PairRule, pair_rule, register_pair
from catalog.ops.policy import Selector, extend_selected, selector
from catalog.ops.query import ArtifactQuery, Listing
from catalog.ops.write import choose_ext

T0 = datetime(2024, 1, 15, 8, 0, tzinfo=timezone.utc)


# -- families: the pair rule the scanner registers ------------------------------------------


def test_the_explain_pair_is_registered_by_importing_catalog() -> None:
    rule = pair_rule("explain")
    assert rule is not None and (rule.primary_ext, rule.derived_ext) == ("json", "csv")
    assert pair_rule("ledger") is None


@pytest.mark.parametrize(
    "path, twin",
    [("explain/20240115-080000-p-explain.json", "explain/20240115-080000-p-explain.csv"),
     ("explain/20240115-080000-p-explain.csv", "explain/20240115-080000-p-explain.json"),
     ("explain/20240115-080000-a.b-explain.json", "explain/20240115-080000-a.b-explain.csv")],
    ids=["primary", "derived", "dotted-prefix"],
)  # fmt: skip
def test_a_pair_rule_names_the_twin(path: str, twin: str) -> None:
    assert pair_rule("explain").twin(path) == twin  # type: ignore[union-attr]


def test_registering_a_rule_replaces_the_one_of_its_type() -> None:
    original = pair_rule("explain")
    assert original is not None
    try:
        register_pair(PairRule("explain", "json", "txt", lambda data, precision: data))
        assert pair_rule("explain").derived_ext == "txt"  # type: ignore[union-attr]
    finally:
        register_pair(original)
    assert pair_rule("explain") is original


# -- the put extension guess ----------------------------------------------------------------


@pytest.mark.parametrize(
    "source, ext, expected",
    [("scan.json", None, "json"), ("/x/y/trace.JSONL", None, "jsonl"), ("notes", "txt", "txt"), (None, ".CSV", "csv")],
    ids=["from-the-file", "upper-case-suffix", "given", "stream-given-with-dot"],
)  # fmt: skip
def test_choose_ext(source: str | None, ext: str | None, expected: str) -> None:
    assert choose_ext("health" if expected == "jsonl" else "ledger", source, ext) == expected


@pytest.mark.parametrize(
    "source, ext, message",
    [(None, None, "reading standard input needs ext (for example ext json)"),
     ("notes", None, "input file notes has no extension: give one with ext"),
     ("scan.exe", None, "extension 'exe' is not allowed for type 'ledger'")],
    ids=["stream-without-ext", "file-without-suffix", "not-allowed"],
)  # fmt: skip
def test_choose_ext_refuses(source: str | None, ext: str | None, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        choose_ext("ledger", source, ext)
    assert str(refused.value) == message or message in str(refused.value)
    assert "--" not in str(refused.value)


# -- one selector for holds and extensions ---------------------------------------------------


def test_selector_takes_exactly_one() -> None:
    assert selector("a/b.json", None, None) == Selector("path", "a/b.json")
    assert selector(None, "p*", None) == Selector("prefix", "p*")
    assert selector(None, None, "ledger") == Selector("type", "ledger")
    for given in ((None, None, None), ("a", "p", None), ("a", "p", "ledger")):
        with pytest.raises(ValidationError, match="^give exactly one of: path, prefix, artifact_type$"):
            selector(*given)
    with pytest.raises(ValidationError, match="^a hold covers exactly one of"):
        selector(None, None, None, lead="a hold covers")
    with pytest.raises(ValidationError, match="unknown artifact type 'ledgers'"):
        selector(None, None, "ledgers")


def test_extend_selected_counts_what_it_covered(catalog: Catalog, writer: AtomicWriter) -> None:
    a = writer.write_json("ledger", "alpha", {"n": 1}, created_at=T0)
    writer.write_json("ledger", "beta", {"n": 2}, created_at=T0)
    until = datetime.now(timezone.utc) + timedelta(days=3650)
    changed, covered, gone = extend_selected(catalog, prefix="alpha", until=until, reason="audit")
    assert (covered, gone) == (1, 0) and [r.id for r in changed] == [a.id] and changed[0].retain_until == until
    assert extend_selected(catalog, prefix="alpha", until=until, reason="audit") == ([], 1, 0)  # kept that long already
    with pytest.raises(NotFoundError, match="no artifact at ledger/nope.json in the catalog"):
        extend_selected(catalog, path="ledger/nope.json", until=until, reason="audit")


# -- the pagination cursor -------------------------------------------------------------------


def test_listing_gives_the_cursor_of_a_full_page_only(catalog: Catalog, writer: AtomicWriter) -> None:
    records = [writer.write_json("ledger", f"p{n}", {"n": n}, created_at=T0 + timedelta(minutes=n)) for n in range(5)]
    newest_first = [r.path for r in reversed(records)]
    page = Listing(catalog, ArtifactQuery(limit=2))
    assert [r.path for r in page] == newest_first[:2] and page.next_after == newest_first[1]
    rest = Listing(catalog, ArtifactQuery(limit=2, after=page.next_after))
    assert [r.path for r in rest] == newest_first[2:4] and rest.next_after == newest_first[3]
    last = Listing(catalog, ArtifactQuery(limit=2, after=rest.next_after))
    assert [r.path for r in last] == newest_first[4:] and last.next_after is None  # a short page ends it
    unbounded = Listing(catalog, ArtifactQuery())
    assert len(list(unbounded)) == 5 and unbounded.next_after is None


# -- schema checks without the command line -----------------------------------------------------


def test_schema_revision_and_upgrade_of_an_existing_catalog(settings: Settings, catalog: Catalog) -> None:
    assert schema_revision(settings) == HEAD_REVISION
    assert catalog.upgrade(existing=True) == (HEAD_REVISION, HEAD_REVISION)


def test_no_catalog_is_refused_with_the_remedy(tmp_path: Path) -> None:
    from catalog.core.settings import load_settings

    settings = load_settings(overrides={"base_dir": str(tmp_path / "none")}, env={})
    with pytest.raises(SchemaError, match="^no catalog at ") as refused:
        schema_revision(settings)
    assert refused.value.remedy is Remedy.INIT and "catalog init" not in str(refused.value)
    (tmp_path / "none").mkdir()
    with Catalog(settings, check=False) as empty, pytest.raises(SchemaError, match="^no catalog at ") as again:
        empty.upgrade(existing=True)
    assert again.value.remedy is Remedy.INIT
