"""Which module defines each command, read from the command modules' source, so the CLI
imports only the one a command line needs: `photocluster --help` and `status` start without
numpy, clustering or the face model's code.

Each ``*_cmds.py`` module here registers its commands with ``@app.command("name")``; that
decorator line is the whole registry (no table to keep in step). The top-level help lists every
command with its docstring's first paragraph, read with :mod:`ast` without importing anything.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_DECORATOR = re.compile(r'^@app\.command\(\s*"([\w-]+)"', re.MULTILINE)


def _sources() -> list[Path]:
    return sorted(_HERE.glob("*_cmds.py"))


def command_modules() -> dict[str, str]:
    """Command name -> the module (``photocluster.cli.X``) that registers it."""
    found: dict[str, str] = {}
    for path in _sources():
        for match in _DECORATOR.finditer(path.read_text(encoding="utf-8")):
            found[match.group(1)] = f"photocluster.cli.{path.stem}"
    return found


def command_docs() -> dict[str, str]:
    """Command name -> its function's docstring, for help that lists commands not imported."""
    docs: dict[str, str] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Attribute)
                    and deco.func.attr == "command"
                    and deco.args
                    and isinstance(deco.args[0], ast.Constant)
                ):
                    docs[str(deco.args[0].value)] = ast.get_docstring(node) or ""
    return docs


def load_all() -> None:
    """Register every command (tests, and a command line naming no known command)."""
    for module in sorted(set(command_modules().values())):
        importlib.import_module(module)


def load_for(args: list[str]) -> None:
    """Register what ``photocluster ARGS`` needs: the named command's module; nothing for the
    top-level help or --version (the help reads the docstrings); everything for an unknown
    name, so click's error can suggest the right one."""
    name = next((a for a in args if not a.startswith("-")), None)
    if name is None:
        return
    modules = command_modules()
    if name in modules:
        importlib.import_module(modules[name])
    else:
        load_all()
