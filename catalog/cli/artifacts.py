"""Artifacts: ``put``, ``get``, ``ls``, ``show``, ``find`` and ``stats``."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..core.vocabulary import EXTRA_EXTS, EXTS, READABLE, SORTS, STATUSES, TYPES
from .render import ALL_RECORD_COLUMNS, echo, show_batches, show_dicts, show_records, show_rows
from .root import State, UTCTime, cli, complete_files, complete_paths, format_option, open_input, pass_state


@cli.command()
@click.argument("source", metavar="FILE|-", shell_complete=complete_files)
@click.option("--type", "artifact_type", required=True, type=click.Choice(TYPES), help="Artifact type.")
@click.option("--prefix", required=True, help="Name part: 1-64 of A-Z a-z 0-9 _ . and inner -.")
@click.option("--ext", help=f"Extension (default: the file's). Standard: json, csv, jsonl; also {', '.join(EXTRA_EXTS)}.")
@format_option()
@pass_state
def put(state: State, source: str, artifact_type: str, prefix: str, ext: str | None, fmt: str) -> None:
    """Import FILE (or - for standard input) into the store and catalog it.

    The bytes are stored unchanged under TYPE/YYYYMMDD-HHMMSS-PREFIX-TYPE.EXT
    (UTC now). JSON, JSONL and CSV must parse (JSON without NaN); they are
    checked as they are copied, so a file of any size streams through in
    little memory, except that one JSON document (a .json file, a line of a
    .jsonl) is checked whole: at most 64 MiB.

    \b
    Example:
      catalog put scan.json --type explain --prefix momentum_scan
      producer | catalog put - --type health --prefix traces --ext jsonl
    """
    from ..core.names import validate_prefix
    from ..ops.write import Writer, choose_ext

    validate_prefix(prefix)
    with open_input(source) as stream:  # a file that cannot be read is named as such first
        ext = choose_ext(artifact_type, None if source == "-" else source, ext)
        with state.catalog() as catalog:
            record = Writer(catalog=catalog).write_stream(artifact_type, prefix, stream, ext)
    show_records([record], fmt)


@cli.command()
@click.argument("path", shell_complete=complete_paths(READABLE))
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of standard output (-o - prints, as without -o).",
              shell_complete=complete_files)  # fmt: skip
@pass_state
def get(state: State, path: str, output: str | None) -> None:
    """Print an artifact's bytes, refused if they no longer match the catalog.

    PATH is the catalog path (as `catalog ls` shows it), the original path
    of an archived one, or a path inside the store. Nothing is written
    unless the SHA-256 matched; a symlink, FIFO or anything but a regular
    file at its path is refused like changed bytes (exit 1). FILE is
    replaced if it exists; -o - prints the bytes, as without -o.

    \b
    Example:
      catalog get explain/20240115-103000-momentum_scan-explain.json -o report.json
      catalog get explain/20240115-103000-momentum_scan-explain.json -o - | jq .
    """
    from ..ops.read import export
    from .outputs import output_or_stdout

    target = output_or_stdout(output, "-o") if output else None
    with state.catalog() as catalog:
        export(catalog, path, target, sys.stdout.buffer if target is None else None)


@cli.command("ls")
@click.option("--type", "types", multiple=True, type=click.Choice(TYPES), help="Only this type (repeatable).")
@click.option("--prefix", help="Only this prefix; * and ? match any characters / one character.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status (repeatable).")
@click.option("--ext", "exts", multiple=True, type=click.Choice(EXTS), help="Only files with this extension (repeatable).")
@click.option("--since", type=UTCTime(), help="Created at or after TIME (ISO-8601; no zone means UTC).")
@click.option("--until", type=UTCTime(), help="Created before TIME (ISO-8601; no zone means UTC).")
@click.option("--sort", type=click.Choice(list(SORTS)), default="newest", show_default=True, help="Order of the rows.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option("--after", metavar="PATH", help="Continue after this artifact (keyset pagination; see next_after).")
@click.option("--as-of", "as_of", type=UTCTime(), help="What existed at TIME, where, with what status (from the audit log).")
@format_option()
@pass_state
def ls(
    state: State, types: tuple[str, ...], prefix: str | None, statuses: tuple[str, ...], exts: tuple[str, ...],
    since: Any, until: Any, sort: str, limit: int | None, after: str | None, as_of: Any, fmt: str,
) -> None:  # fmt: skip
    """List catalogued artifacts (newest first by default).

    Rows stream as they are read, so even a huge listing starts at once.
    With --limit, JSON output ends with "next_after": the PATH to pass to
    --after for the next page. --as-of answers from the audit log: the
    artifacts that existed at that moment (by recorded time), at the path
    and with the status they had then; deleted ones are gone, archived ones
    are listed at their archive path.

    \b
    Example:
      catalog ls --type explain --ext json --since 2024-01-01 --limit 20
      catalog ls --as-of 2024-03-31T23:59:59Z --type ledger
      catalog ls --prefix 'momentum*' --status active --format json | jq '.artifacts[].path'
      catalog ls --limit 100 --after explain/20240115-103000-momentum_scan-explain.json
    """
    from ..ops.exports import listing_batches
    from ..ops.query import ArtifactQuery, Listing

    query = ArtifactQuery(types, prefix, statuses, since, until, sort, after, limit, as_of, exts)
    with state.catalog() as catalog:
        listing = Listing(catalog, query)
        if fmt == "table":
            show_records(listing, fmt)
        else:  # an export: rows straight from the database, no record per row
            show_batches(listing_batches(listing), ALL_RECORD_COLUMNS, fmt, "artifacts",
                         trailer=lambda: {"next_after": listing.next_after})  # fmt: skip


def _show_stories(stories: list[Any], fmt: str) -> None:
    if fmt == "json":
        data = stories[0].to_dict() if len(stories) == 1 else {"matches": [s.to_dict() for s in stories], "count": len(stories)}
        click.echo(json.dumps(data, indent=2))
        return
    for number, story in enumerate(stories):
        if number:
            echo()
        data = story.to_dict()
        for key, value in data["artifact"].items():
            echo(f"{key + ':':<15}{'' if value is None else value}")
        file, recorded = data["file"], data["artifact"]
        state = ("missing" if not file["present"] else "matches the catalog" if file["matches"]
                 else f"DIFFERS from the catalog: {file['problem']}" if file["problem"]
                 else f"DIFFERS from the catalog (size {file['size']} bytes, recorded {recorded['size']})"
                 if file["size"] != recorded["size"] else f"DIFFERS from the catalog (SHA-256 {file['sha256']})")  # fmt: skip
        echo(f"{'file:':<15}{state}")
        echo("events:")
        show_rows(
            ({"seq": e["seq"], "at": e["at"], "action": e["action"], "actor": e["actor"],
              "details": json.dumps(e["details"], sort_keys=True)} for e in data["events"]),
            ("seq", "at", "action", "actor", "details"), "table", "events",
        )  # fmt: skip


@cli.command()
@click.argument("path", shell_complete=complete_paths())
@format_option(("table", "json"))
@pass_state
def show(state: State, path: str, fmt: str) -> None:
    """One artifact: its row, its file as it is now, and its whole history.

    PATH is the current path, the original path, or a path inside the store.

    \b
    Example:
      catalog show explain/20240115-103000-momentum_scan-explain.json
      catalog show ledger/20240115-080000-portfolio-ledger.json --format json
    """
    from ..ops.query import show as show_story

    with state.catalog() as catalog:
        _show_stories([show_story(catalog, path)], fmt)


@cli.command()
@click.option("--sha256", "digest", required=True, metavar="HASH", help="A full SHA-256, or a unique prefix (4+ hex digits).")
@format_option(("table", "json"))
@pass_state
def find(state: State, digest: str, fmt: str) -> None:
    """Find artifacts by content: the rows whose SHA-256 is HASH.

    Identical bytes written under several names are all shown. No match is
    an empty answer, exit 0 (JSON: "matches": [], "count": 0).

    \b
    Example:
      catalog find --sha256 3f9a2c71
      sha256sum report.json | cut -c1-64 | xargs catalog find --format json --sha256
    """
    from ..ops.query import find_sha256

    with state.catalog() as catalog:
        stories = find_sha256(catalog, digest)
    if stories:
        _show_stories(stories, fmt)
    elif fmt == "json":
        click.echo(json.dumps({"matches": [], "count": 0}, indent=2))
    else:
        echo(f"No artifact has a SHA-256 starting with {digest.strip().lower()}.")


@cli.command()
@format_option()
@pass_state
def stats(state: State, fmt: str) -> None:
    """Counts and bytes by type, by folder and by status, and for the whole store.

    Answered from the catalog alone: no folder is read. Type, folder and
    store totals count files on disk (active, archived, quarantined); the
    status rows count every row.

    \b
    Example:
      catalog stats
      catalog stats --format json | jq '.stats[] | select(.group == "folder")'
    """
    from ..ops.query import stats as catalog_stats

    with state.catalog() as catalog:
        rows = catalog_stats(catalog)
    show_dicts(rows, ("group", "name", "count", "bytes"), fmt, "stats")
