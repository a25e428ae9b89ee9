"""The `photocluster` command: parses, wires and prints. All real work is in the core modules.

Each area registers its commands on :data:`app` from its own module; :func:`main` imports only
the module of the command being run (:mod:`photocluster.cli.commands`). Code that wants every
command on :data:`app` (tests) calls ``commands.load_all()``.
"""

from __future__ import annotations

import io
import sys

from photocluster.cli.app import app
from photocluster.cli.commands import load_for


def main() -> None:
    # A file name that is not valid UTF-8 prints as its own bytes (as `ls` does) instead of
    # stopping the command; stderr already escapes such bytes.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    load_for(sys.argv[1:])
    app()


__all__ = ["app", "main"]
