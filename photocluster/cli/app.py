"""The Typer application object, its help layout, and the one place exceptions become messages
and exit codes."""

from __future__ import annotations

import inspect
from typing import Annotated, Any, get_args, get_origin

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from photocluster import __version__
from photocluster.cli.commands import command_docs
from photocluster.errors import Interrupted, PhotoclusterError

# `photocluster --help` lists commands in the order a user meets them, not in import order.
JOURNEY: list[tuple[str, list[str]]] = [
    ("1. Scan", ["scan", "status"]),
    ("2. People", ["cluster", "people", "show"]),
    (
        "3. Name",
        ["name", "review", "rename", "merge", "reject", "assign", "hide", "unhide", "undo", "log"],
    ),
    ("4. Export", ["export", "export-xmp", "import-xmp", "report"]),
    ("Look up and measure", ["find", "index", "compare", "tune", "learn", "eval"]),
]
_METAVARS = {int: "INTEGER", float: "NUMBER", str: "TEXT"}


def _metavar(param: TyperOption) -> str:
    """What an option's value looks like in help: ``--jobs INTEGER``, not Typer's ``<int>``."""
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        return "[" + "|".join(str(getattr(c, "value", c)) for c in desc.choices) + "]"
    annotation: Any = desc.annotation
    if get_origin(annotation) is list:
        annotation = get_args(annotation)[0]
    if desc.is_path:
        return "PATH"
    return _METAVARS.get(annotation, "VALUE")


class _Command(TyperCommand):
    """Plain help that reads in an 80-column terminal: ``Usage: photocluster export [OPTIONS]
    DEST``, ``--mode TEXT``; no ``{dest}``, ``<str>`` or ``<bool>`` tags, nothing cut off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None:
                param.metavar = (param.name or "arg").upper()
            elif (
                isinstance(param, TyperOption)
                and param.metavar is None
                and not (param.is_flag or param.count)
            ):
                param.metavar = _metavar(param)

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "arg").upper()
                piece = name if param.required else f"[{name}]"
                pieces.append(piece + ("..." if param.nargs != 1 else ""))
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if getattr(param, "hidden", False):
                continue
            if isinstance(param, TyperArgument):
                help_text = param.help or ""
                default = param.default
                if not param.required and default not in (None, (), []):
                    help_text += f"  [default: {default}]"
                args.append((param.metavar or (param.name or "arg").upper(), help_text))
            else:
                record = param.get_help_record(ctx)
                if record is not None:
                    opts.append(record)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


class _Group(TyperGroup):
    """Translates photocluster's exceptions for every command, in one place (house rule 8), and
    lists the commands by the user's journey."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except Interrupted as exc:
            typer.echo(f"\nInterrupted: {exc}", err=True)
            raise typer.Exit(130) from None
        except PhotoclusterError as exc:
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(1) from None
        except (KeyboardInterrupt, typer.Abort):
            typer.echo("\nInterrupted. Everything already saved is kept.", err=True)
            raise typer.Exit(130) from None

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        ordered = [name for _, names in JOURNEY for name in names if name in self.commands]
        return ordered + [name for name in self.commands if name not in ordered]

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        placed: set[str] = set()
        # Commands whose module was not imported (photocluster --help imports none of them):
        # their help is read from the source (cli/commands.py).
        docs: dict[str, str] = {}
        if any(name not in self.commands for _, names in JOURNEY for name in names):
            docs = command_docs()
        sections = [*JOURNEY, ("Other commands", [*self.commands, *docs])]
        for title, names in sections:
            rows = []
            for name in names:
                cmd = self.commands.get(name)
                if (cmd is None and name not in docs) or (cmd and cmd.hidden) or name in placed:
                    continue
                placed.add(name)
                text = (cmd.short_help or cmd.help or "") if cmd else docs[name]
                # The whole first paragraph, wrapped, instead of a line cut off with "...".
                first = inspect.cleandoc(text).split("\n\n")[0]
                rows.append((name, " ".join(first.split())))
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class _App(typer.Typer):
    """Every command gets :class:`_Command`'s help layout unless it asks for another class."""

    def command(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("cls", _Command)
        return super().command(*args, **kwargs)


app = _App(
    cls=_Group,
    name="photocluster",
    help="Find every face in a photo library, group faces by person, name them, export albums.\n\n"
    "Start with `photocluster scan FOLDER`, then `photocluster name`, then `photocluster "
    "export DEST`. The catalog is a SQLite file (default: catalog.sqlite3 in "
    "$PHOTOCLUSTER_HOME, else $XDG_DATA_HOME/photocluster, else ~/.local/share/photocluster) "
    "or any SQLAlchemy URL, chosen with "
    "--db on every command or the PHOTOCLUSTER_DB variable.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain (click) help: paragraphs re-wrapped to the terminal, no boxes eating the width.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"photocluster {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Find every face in a photo library, group faces by person, name them, export albums."""
