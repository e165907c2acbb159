"""The evidence room: a web view and JSON API over the same Python API as the CLI (``catalog serve``).

Starlette with Jinja2 templates, served by uvicorn; installed with the ``web``
extra (``pip install 'cryptorun-catalog[web]'``). :mod:`.app` builds the
application and its error boundary, :mod:`.auth` checks accounts, sessions,
bearer credentials and CSRF tokens, :mod:`.params` every query and form
parameter, :mod:`.pages` the pages, :mod:`.evidence` the evidence pages (bundle
export, inclusion proofs, explain reports), :mod:`.views` what they share. The pages
read and change the store only through :mod:`catalog.ops`; the layer sits
beside :mod:`catalog.cli`, and neither imports the other.
"""

from .app import WebSettings, create_app

__all__ = ["WebSettings", "create_app"]
