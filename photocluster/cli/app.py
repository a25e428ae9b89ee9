"""The Typer application object and the one place exceptions become messages and exit codes."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from photocluster.errors import Interrupted, PhotoclusterError


class _Group(TyperGroup):
    """Translates photocluster's exceptions for every command, in one place (house rule 8)."""

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


app = typer.Typer(
    cls=_Group,
    name="photocluster",
    help="Find every face in a photo library, group faces by person, name them, export albums.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Find every face in a photo library, group faces by person, name them, export albums.

    The catalog is a SQLite file (default ~/.local/share/photocluster/catalog.sqlite3) or any
    SQLAlchemy URL, chosen with --db on every command or the PHOTOCLUSTER_DB variable.
    """
