"""The web view: ``serve``."""

from __future__ import annotations

import logging
import socket

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
    An address it cannot listen on (in use, unknown host) is one error, exit 2.
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
    listener = listen(host, port)  # first: a refused address is one line, and nothing (the web key) is made

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # uvicorn says where it runs only for a socket it bound itself: say it as it would
                bound_host, bound_port = listener.getsockname()[:2]
                shown = f"[{bound_host}]" if listener.family == socket.AF_INET6 else bound_host
                logging.getLogger("uvicorn.error").info("Uvicorn running on http://%s:%d (Press CTRL+C to quit)",
                                                        shown, bound_port)  # fmt: skip

    with listener:
        app = create_app(state.settings, WebSettings(secure_cookies=secure_cookies))
        server = Server(uvicorn.Config(app, host=host, port=port, log_level="info", server_header=False))
        try:
            server.run(sockets=[listener])
        except KeyboardInterrupt:  # Ctrl-C after a clean shutdown, as uvicorn.run takes it
            pass
    if not server.started:  # stopped before it served (uvicorn.run's exit code for that)
        raise SystemExit(3)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not yet listening), with SO_REUSEADDR as uvicorn binds.

    IPv6 when ``host`` holds a ':'. Raises CLIError (exit 2) naming the
    address and the system's reason: in use, not an address of this host,
    a host name that does not resolve.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:  # socket.gaierror too: a host that does not resolve
        sock.close()
        reason = exc.strerror or str(exc)
        raise cli_error(f"cannot listen on {host}:{port}: {reason[:1].lower()}{reason[1:]}") from None
    return sock
