"""The evidence pages: a signed bundle of a window, an artifact's inclusion proof, an explain report to look at.

- ``GET /export`` the form, ``POST /export`` (and ``POST /api/export``) the
  bundle itself: the same ZIP as ``catalog audit export`` (compliance and
  admin only: it is signed with the store's key, names the web user as its
  exporter, and with files can copy the whole store).
- ``GET /artifact/proof?path=…``: the JSON ``catalog audit prove PATH
  --checkpoint FILE`` writes, against the checkpoint the artifact page shows.
- ``GET /explain?path=…`` (and ``/api/explain``): one catalogued explain
  report, as ``catalog explain show --format json`` (plus ``path``); the
  list of reports is ``/artifacts?type=explain``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from starlette.responses import Response, StreamingResponse

from ..core import proofs
from ..core.errors import CatalogError, ValidationError
from ..core.store import Catalog
from ..cryptorun.explain import GATES
from ..cryptorun.reports import parse_report, read_catalogued
from ..ops.bundles import export_bundle
from ..ops.proofs import standing_proof
from .views import Context, Page, Spec, error_message, file_chunks, store_path

#: The roles that may export evidence.
EXPORTERS = ("compliance", "admin")
EXPORT_PARAMS = ("since", "until", "include_files")


def export_form(ctx: Context) -> Page:
    """The export form: a window (UTC), whether to include the files; JSON ``{"signed": bool}`` (a key is configured)."""
    return "export.html", {"signed": ctx.catalog.settings.signing_key is not None}, {}


def export(ctx: Context) -> Response:
    """The evidence bundle of the events recorded in [since, until) as a ZIP download (a read: no event recorded).

    The bundle is built in a private temporary folder (``mkdtemp``, mode 0700)
    which is removed before the first byte is sent: the answer streams from
    the open file, so no copy is left behind whether the download completes,
    the client goes away or the export fails. Headers: ``Content-Disposition``
    ``catalog-bundle-<UTC stamp>.zip``, ``X-Bundle-Signed-By`` (the key's
    label, or ``unsigned``), ``X-Bundle-Events``. Raises ValidationError for a
    bad window (before anything is written) and what
    :func:`catalog.ops.bundles.export_bundle` raises.
    """
    p = ctx.params
    since, until, include_files = p.time("since"), p.time("until"), p.flag("include_files")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = f"catalog-bundle-{stamp}.zip"
    folder = Path(tempfile.mkdtemp(prefix="catalog-export-"))
    try:
        summary = export_bundle(ctx.catalog, folder / name, since, until, include_files)
        handle = open(summary.path, "rb")  # noqa: SIM115 (closed by the stream, or below)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    try:
        size = os.fstat(handle.fileno()).st_size
    except BaseException:
        handle.close()
        raise
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Content-Length": str(size),
               "X-Bundle-Signed-By": summary.signed_by or "unsigned", "X-Bundle-Events": str(summary.events)}  # fmt: skip
    return StreamingResponse(file_chunks(handle), media_type="application/zip", headers=headers)


# -- an artifact's inclusion proof ----------------------------------------------------------------


def proof_summary(catalog: Catalog, path: str) -> dict[str, Any]:
    """The artifact page's proof: its checkpoint, each event's leaf and audit path, and where to download it.

    ``{"checkpoint": {origin, size, root, signed_by, source, recorded}, "events": [{seq, leaf_index, action,
    proof}], "later_events", "note", "download"}``; a proof that cannot be made is ``{"error": message}`` (the
    rest of the page still answers).
    """
    try:
        standing = standing_proof(catalog, path)
    except CatalogError as exc:
        return {"error": error_message(exc)}
    proof, checkpoint = standing.proof, standing.proof.checkpoint
    source = PurePosixPath(checkpoint.source).name if standing.recorded else checkpoint.source
    return {
        "checkpoint": {"origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root_b64,
                       "signed_by": [s.label for s in checkpoint.note.signatures], "source": source,
                       "recorded": standing.recorded},
        "events": [{"seq": e.seq, "leaf_index": e.index, "action": json.loads(e.text).get("action"),
                    "proof": e.to_dict()["proof"]} for e in proof.events],
        "later_events": standing.later,
        "note": standing.why, "download": "/artifact/proof?path=" + quote(proof.path, safe="/"),
    }  # fmt: skip


def proof_download(ctx: Context) -> Response:
    """The proof file ``catalog audit prove PATH --checkpoint FILE`` writes, FILE the checkpoint the page shows.

    ``X-Proof-Checkpoint``: ``recorded`` (a file of the configured folder) or
    ``head`` (the log's head now, unsigned: ``audit verify-proof`` refuses it).
    """
    path = ctx.params.text("path")
    if path is None:
        raise ValidationError("give the artifact's path: /artifact/proof?path=ledger/…")
    standing = standing_proof(ctx.catalog, store_path(path))
    name = PurePosixPath(standing.proof.path).stem
    headers = {"Content-Disposition": f'attachment; filename="proof-{name}.json"',
               "X-Proof-Checkpoint": "recorded" if standing.recorded else "head"}  # fmt: skip
    return Response(proofs.encode(standing.proof), media_type="application/json", headers=headers)


# -- an explain report ------------------------------------------------------------------------------


def explain(ctx: Context) -> Page:
    """One catalogued explain report: the ranked table, the gates that failed, meta, config, health, broken rules.

    Read through :func:`catalog.cryptorun.reports.read_catalogued` (the CSV
    of a pair stands for its JSON; bytes checked against their SHA-256 before
    anything is parsed: 409 if they no longer match). JSON: what ``catalog
    explain show --format json`` prints, plus ``path`` (the JSON read).
    ValidationError (400) for an artifact of another type or bytes that are
    not a report.
    """
    path = ctx.params.text("path")
    if path is None:
        raise ValidationError("give the report's path: /explain?path=explain/…json (the artifacts of type explain)")
    data, read = read_catalogued(ctx.catalog, store_path(path))
    loaded = parse_report(data)
    report = loaded.report
    failures = [{"symbol": a.symbol, "rank": a.rank, "gate": name, "value": gate.value, "threshold": gate.threshold,
                 "reason": gate.reason} for a in report.universe for name, gate in a.gate_results.failed()]  # fmt: skip
    rows = [{"asset": a, "failed": [name for name, _ in a.gate_results.failed()]} for a in report.universe]
    json_data = {"path": read, "report": report.to_dict(), "broken_rules": loaded.broken_rules}
    return "explain.html", json_data, {"r": report, "rows": rows, "failures": failures, "gates": GATES,
                                       "broken": loaded.broken_rules}  # fmt: skip


PAGES: tuple[Spec, ...] = (
    Spec("/export", export_form, roles=EXPORTERS),
    Spec("/export", export, "POST", EXPORTERS, EXPORT_PARAMS),
    Spec("/artifact/proof", proof_download, params=("path",), html_only=True),
    Spec("/explain", explain, params=("path",)),
)
