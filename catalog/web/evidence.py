"""The evidence pages: a signed bundle of a window, an artifact's inclusion proof, an explain report to look at.

- ``GET /export`` the form, ``POST /export`` (and ``POST /api/export``) the
  bundle itself: the same ZIP as ``catalog audit export`` (compliance and
  admin only: it is signed with the store's key, names the web user as its
  exporter, and with files can copy the whole store).
- ``GET /artifact/proof?path=…``: the JSON ``catalog audit prove PATH
  --checkpoint FILE`` writes, against the checkpoint the artifact page shows.
- ``GET /explain?path=…`` (and ``/api/explain``): one catalogued explain
  report, as ``catalog explain show --format json`` (plus ``path``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from starlette.responses import Response, StreamingResponse

from ..ops.bundles import export_bundle
from .views import Context, Page, Spec, file_chunks

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


PAGES: tuple[Spec, ...] = (
    Spec("/export", export_form, roles=EXPORTERS),
    Spec("/export", export, "POST", EXPORTERS, EXPORT_PARAMS),
)
