"""The `photocluster` command: parses, wires and prints. All real work is in the core modules.

Each area registers its commands on :data:`app` from its own module.
"""

from __future__ import annotations

import io
import sys

from photocluster.cli import export_cmds as _export_cmds  # noqa: F401  (registers commands)
from photocluster.cli import find_cmds as _find_cmds  # noqa: F401  (registers commands)
from photocluster.cli import naming_cmds as _naming_cmds  # noqa: F401  (registers commands)
from photocluster.cli import people_cmds as _people_cmds  # noqa: F401  (registers commands)
from photocluster.cli import scan_cmds as _scan_cmds  # noqa: F401  (registers commands)
from photocluster.cli import tune_cmds as _tune_cmds  # noqa: F401  (registers commands)
from photocluster.cli.app import app


def main() -> None:
    # A file name that is not valid UTF-8 prints as its own bytes (as `ls` does) instead of
    # stopping the command; stderr already escapes such bytes.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="surrogateescape")
    app()


__all__ = ["app", "main"]
