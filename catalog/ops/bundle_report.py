"""What an evidence bundle tells a person: its README (what it holds, how to verify it) and its HTML report.

Both are members of the bundle, listed in ``bundle.json`` and so signed with
it. The report is one static page: every value escaped
(:func:`html.escape`), no script, no external resource.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ..core.formats import format_time
from ..core.records import ArtifactRecord


def readme(facts: Mapping[str, Any], name: str, artifacts: int, files: int) -> str:
    """The bundle's README.txt: plain language, the window, who exported it, and the exact command that verifies it."""
    window = (f"events {facts['first_seq']} to {facts['last_seq']} of the audit log" if facts["first_seq"]
              else "no events (nothing was recorded in the window)")  # fmt: skip
    since, until = facts["since"] or "the first event", facts["until"] or "the export"
    key = facts["signed_by"]
    signed = (f"It is signed with the store's key {key}." if key else
              "It is NOT signed: the store had no signing key (audit.signing_key) when it was exported, so it can "
              "prove only that it is consistent with itself, not who made it.")  # fmt: skip
    return f"""CATALOG EVIDENCE BUNDLE  {name}

What this is
  The audit trail of the artifact store {facts['catalog']} for the time from
  {since} to {until} (recorded at or after the first, before the second):
  {window}, the {artifacts} artifact records they name, and {files} of the artifact files.
  Exported {facts['exported_at']} by {facts['exported_by']}.
  {signed}

What it holds
  bundle.json             the facts of this export and the SHA-256 of every other file in it
  signature.txt           the store's signature over bundle.json and the checkpoint
  checkpoint.txt          the state of the whole log at the export ({facts['tree']['size']} events; log
                          {facts['origin']}), signed: keep it, and give it when you verify the next bundle
  events.ndjson           the events of the window, one per line
  defining-events.ndjson  older or later events that set the state of the records carried, and key changes,
                          each with a proof that it is part of the same log
  artifacts.ndjson        the artifact records; manifest.json: their files and checksums
  checkpoints.json        the store's earlier checkpoints, each with a proof that this log extends it
  report.html             the same, for reading: the events, holds, deletions and verification runs
  files/                  the artifact files themselves (if they were included)

How to verify it (on any machine; the catalog is not needed)
  pip install cryptorun-catalog, then:

    catalog audit verify-bundle {name} --key STORE.pub --checkpoint YOUR-LAST-CHECKPOINT.txt

  STORE.pub is the store's public key{f' ({key})' if key else ''}: take it from the store's
  operator by a channel you trust, never from this bundle. YOUR-LAST-CHECKPOINT is the last checkpoint
  you kept (for example checkpoint.txt of the previous bundle): the check then proves this log extends
  what you saw before, so no event you saw was changed or removed. Add --witness WITNESS.pub for each
  witness whose cosignature you require. Exit 0 means it verifies; 1 names what does not.
"""


_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
          "th,td{border:1px solid #999;padding:2px 6px;text-align:left;vertical-align:top;font-size:90%}"
          "th{background:#eee}td.d{font-family:monospace;word-break:break-all}")  # fmt: skip


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td{' class=d' if i == len(columns) - 1 else ''}>{escape(_text(v))}</td>"
                                    for i, v in enumerate(row)) + "</tr>\n" for row in rows)  # fmt: skip
    if not body:
        return f"<h2>{escape(title)}</h2>\n<p>{escape(empty)}</p>\n"
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    return f"<h2>{escape(title)}</h2>\n<table>\n<tr>{head}</tr>\n{body}</table>\n"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "astimezone"):
        return format_time(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def report_html(facts: Mapping[str, Any], events: Sequence[Mapping[str, Any]], rows: Sequence[ArtifactRecord],
                holds: Sequence[Mapping[str, Any]]) -> bytes:  # fmt: skip
    """The bundle's report.html (UTF-8): the facts, the window's events, holds, deletions with reasons, verify runs."""
    bodies = [json.loads(event["text"]) for event in events]
    summary = [("Exported", facts["exported_at"]), ("Exported by", facts["exported_by"]), ("Store", facts["catalog"]),
               ("Log", facts["origin"]), ("Window", f"{facts['since'] or '(start)'} to {facts['until'] or '(export)'}"),
               ("Events", f"{facts['first_seq']}..{facts['last_seq']}" if events else "none"),
               ("Log size at export", facts["tree"]["size"]), ("Signed by", facts["signed_by"] or "NOT SIGNED")]  # fmt: skip
    parts = [
        _table("Summary", ("What", "Value"), summary, ""),
        _table("Deletions", ("Seq", "At", "Path", "Actor", "Reason"),
               [(b["seq"], b["at"], b["path"], b["actor"], b["details"].get("reason")) for b in bodies
                if b["action"] == "delete"], "No artifact was deleted in the window."),
        _table("Holds (as at the export)", ("Id", "Selector", "Reason", "Placed", "By", "Released", "By", "Why released"),
               [(h["id"], f"{h['selector_kind']}: {h['selector']}", h["reason"], h["placed_at"], h["placed_by"],
                 h["released_at"], h["released_by"], h["release_reason"]) for h in holds], "No legal hold was ever placed."),
        _table("Verify runs", ("Seq", "At", "Actor", "Result"),
               [(b["seq"], b["at"], b["actor"], b["details"]) for b in bodies if b["action"] == "verify_run"],
               "No verify run in the window."),
        _table("Artifacts", ("Id", "Path", "Status", "Size", "SHA-256"),
               [(r.id, r.path, r.status, r.size, r.sha256) for r in rows], "No artifact is named by the window."),
        _table("Events", ("Seq", "At", "Action", "Path", "Status", "Actor", "Details"),
               [(b["seq"], b["at"], b["action"], b["path"], b["status"], b["actor"], b["details"]) for b in bodies],
               "No event was recorded in the window."),
    ]  # fmt: skip
    title = f"Evidence bundle: {facts['origin']}, exported {facts['exported_at']}"
    page = (f"<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n<p>This page is for reading; "
            "README.txt says how to verify the bundle.</p>\n" + "".join(parts) + "</body></html>\n")  # fmt: skip
    return page.encode("utf-8")
