"""`review`: serve the review web page over the catalog (see :mod:`photocluster.review`)."""

from __future__ import annotations

import getpass
import threading
import time
import webbrowser
from typing import Annotated

import typer

from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    catalog_for,
    err,
    make_settings,
    out,
    refuse_missing_catalog,
)


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user} via review"


@app.command("review")
def review_command(
    db: DbOption = None,
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on (0: any free port).", min=0, max=65535)
    ] = 0,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. Anything but 127.0.0.1 lets other machines reach the "
            "page (with the token).",
        ),
    ] = "127.0.0.1",
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the address; do not open a browser.")
    ] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Serve a view that cannot change anything.")
    ] = False,
) -> None:
    """Review and name people in the browser: people, a person's faces, unassigned faces, photos.

    Every action (name, merge, reject, assign, hide, undo) is a decision in the catalog's log,
    the same as the CLI's: `photocluster log` shows it and `photocluster undo` takes it back.
    The page is served on 127.0.0.1 with a random token in the address it prints; requests
    without it are refused. Ctrl-C stops the server.

    Example: photocluster review --port 8750 --no-browser
    """
    # imported when this command runs: the module's other commands start without it
    from photocluster.review.server import (
        ReviewConfig,
        Server,
        bind,
        create_app,
        is_loopback,
        new_token,
        refuse_waiting,
    )

    settings = make_settings(db)
    refuse_missing_catalog(settings)  # before the port: nothing is bound for a missing catalog
    sock = bind(host, port)  # before the catalog: a port in use is refused at once
    with catalog_for(settings, write=not read_only) as catalog:
        catalog.on_wait = refuse_waiting  # a page never hangs behind a long writer
        token = new_token()
        cfg = ReviewConfig(catalog, settings.cache_dir, token, _actor(), read_only=read_only)
        server = Server(create_app(cfg), sock)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{bound}/?token={token}"
        if not is_loopback(host):
            err(
                f"Warning: listening on {host}, not only this computer: anyone who can reach "
                "it and has the address below (with its token) can change your catalog."
            )
        if read_only:
            err("Read-only: the page cannot change anything.")
        out(url)
        err("Ctrl-C stops the server.")
        if not no_browser:
            threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
        server.run()
    err("Review stopped.")


def _open_when_ready(server: object, url: str) -> None:
    for _ in range(100):
        if getattr(server, "started", False):
            break
        time.sleep(0.05)
    webbrowser.open(url)
