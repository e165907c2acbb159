"""The web view: ``serve``."""

from __future__ import annotations

import click

from .root import State, Whole, cli, cli_error, pass_state


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", type=Whole(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--secure-cookies", is_flag=True,
              help="Send the session cookie over HTTPS only (set this behind a TLS reverse proxy).")  # fmt: skip
@pass_state
def serve(state: State, host: str, port: int, secure_cookies: bool) -> None:
    """Serve the evidence room: a web view and JSON API of this store, for accounts made with `catalog users add`.

    Every page needs an account except /login and /healthz. Sessions are
    signed with CRYPTORUN_WEB_SECRET, else with the key in catalog.web-key in
    the base folder (made once, mode 0600). Programs call /api/... with
    `Authorization: Bearer NAME:SECRET`. It speaks plain HTTP: put it behind
    a TLS reverse proxy (and pass --secure-cookies) to reach it from elsewhere.
    Needs the web extra: pip install 'cryptorun-catalog[web]'.

    \b
    Example:
      catalog users add alice --role compliance
      catalog serve --port 8080
      curl -H "Authorization: Bearer alice:SECRET" http://127.0.0.1:8080/api/holds
    """
    try:
        import uvicorn

        from ..web import WebSettings, create_app
    except ImportError as exc:
        raise cli_error(f"catalog serve needs the web extra ({exc.name} is not installed): "
                        "pip install 'cryptorun-catalog[web]'") from None  # fmt: skip
    app = create_app(state.settings, WebSettings(secure_cookies=secure_cookies))
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
