"""Pieces every command shares: the --db option, settings, opening the catalog, progress bars."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from photocluster.errors import NoCatalog
from photocluster.settings import ENV_DB, Settings, default_db, demo_db, resolve_db

if TYPE_CHECKING:
    from photocluster.catalog.db import Catalog
    from photocluster.ingest.executors import EncoderFactory

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="Catalog: a SQLite file or an SQLAlchemy URL (postgresql://...). Default: "
        "$PHOTOCLUSTER_DB, else catalog.sqlite3 in $PHOTOCLUSTER_HOME, else in "
        "$XDG_DATA_HOME/photocluster, else ~/.local/share/photocluster/catalog.sqlite3.",
        envvar=ENV_DB,
        show_default=False,
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars (results still print).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
F = TypeVar("F", bound=Callable[..., Any])


def help_with(**values: object) -> Callable[[F], F]:
    """Fill the ``{name}`` places of a command's docstring (its --help) with ``values``: the
    help then quotes the constants the code uses, never a copy of them."""

    def fill(command: F) -> F:
        command.__doc__ = (command.__doc__ or "").format(**values)
        return command

    return fill


def make_settings(db: str | None, quiet: bool = False) -> Settings:
    return Settings(db=resolve_db(db), quiet=quiet)


@contextmanager
def catalog_for(
    settings: Settings, *, create: bool = False, write: bool = False, verify: bool = False
) -> Iterator[Catalog]:
    """Open the catalog for a command. ``create``: the command may start a new SQLite catalog
    (only `scan`: every other command refuses a catalog file that does not exist, before any
    work and without creating a file); ``write``: the command changes it (a read-only catalog
    is refused before any work); ``verify``: check every page first (before long work).

    The default (or demo) catalog's folder is created when `scan` starts it; a --db or
    $PHOTOCLUSTER_DB in a folder that does not exist is refused (a typo or an unmounted drive
    must not silently start an empty catalog). A new catalog is announced on stderr. A server
    URL is opened as it is: an empty PostgreSQL database is how a shared catalog starts.
    """
    # imported here: SQLAlchemy is the bulk of a command's start-up, and `status` on an
    # up-to-date SQLite catalog does without it (catalog.status)
    from photocluster.catalog.db import open_catalog

    try:
        catalog = open_catalog(
            settings.db,
            create=create,
            create_folder=_made_on_first_use(settings),
            write=write,
            verify=verify,
            on_wait=_waiting,
        )
    except NoCatalog as exc:
        raise _no_catalog_here(settings, exc) from None
    if catalog.created:
        err(f"New catalog: {catalog.path or catalog.url}")
    try:
        yield catalog
    finally:
        catalog.close()


def refuse_missing_catalog(settings: Settings) -> None:
    """Refuse now, as :func:`catalog_for` would, a SQLite catalog that does not exist (or is in
    a missing folder, or is not a catalog), opening nothing: for a command with set-up of its
    own before it opens the catalog (`review` binds its port)."""
    from photocluster.catalog.db import create_catalog_engine

    try:
        engine = create_catalog_engine(
            settings.db, create=False, create_folder=_made_on_first_use(settings)
        )
    except NoCatalog as exc:
        raise _no_catalog_here(settings, exc) from None
    engine.dispose()


def _made_on_first_use(settings: Settings) -> bool:
    """The default and demo catalogs' folder is made when `scan` starts the catalog."""
    return settings.db in (default_db(), demo_db())


def _no_catalog_here(settings: Settings, exc: NoCatalog) -> NoCatalog:
    """The catalog's own refusal, said for the default catalog: it needs no --db to be scanned
    into, and whoever scanned only the sample photos is pointed to the demo catalog."""
    if settings.db != default_db() or exc.path is None:
        return exc
    message = (
        f"No catalog at {exc.path} yet: scan a folder into it first (photocluster scan FOLDER)."
    )
    if Path(demo_db()).is_file():
        message += f" The sample photos are in the demo catalog: add --db {demo_db()}"
    return NoCatalog(message, path=exc.path)


def _waiting(holder: str) -> None:
    err(
        f"Waiting for {holder} to finish writing the catalog… "
        "(Ctrl-C stops this command; nothing is lost)"
    )


class TqdmProgress:
    """Renders core progress reports as a tqdm bar on stderr (count, rate, ETA)."""

    def __init__(self, quiet: bool, unit: str = "photo") -> None:
        self.quiet = quiet
        self.unit = unit
        self._bar: Any = None

    def start(self, total: int, description: str) -> None:
        if self.quiet or total == 0:  # nothing to do: no bar ("Exporting: 0file")
            return
        from tqdm import tqdm

        self._bar = tqdm(
            total=total, desc=description, unit=self.unit, file=sys.stderr, dynamic_ncols=True
        )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def count(n: int, word: str, plural: str | None = None) -> str:
    """``1 face``, ``2 faces``, ``1 person``, ``3 people``."""
    return f"{n} {word if n == 1 else plural or word + 's'}"


def out(text: str = "") -> None:
    """Results go to stdout."""
    typer.echo(text)


def err(text: str) -> None:
    """Notes and warnings go to stderr."""
    typer.echo(text, err=True)


def encoder_factory(backend: str, executor: str, quiet: bool) -> tuple[EncoderFactory, str]:
    """Decide once, before any worker starts, which descriptor code runs (converting dlib's
    model for ONNX Runtime the first time); a fallback to dlib is one line on stderr. `scan`
    and `eval` scan with the same code."""
    # imported when this command runs: the module's other commands start without it
    from photocluster.ingest.backends import make_encoder

    if backend == "dlib":
        return functools.partial(make_encoder, backend="dlib"), "dlib"
    # imported when this command runs: the module's other commands start without it
    from photocluster.ingest.onnx_encoder import choose_encoder

    choice = choose_encoder(backend)
    if choice.note:
        err(f"note: {choice.note}")
    if choice.converted and not quiet:
        err(f"Converted dlib's face model for ONNX Runtime (checked): {choice.onnx_path}")
    # Dask workers may be other machines: each finds (or makes) the model in its own cache.
    path = str(choice.onnx_path) if choice.onnx_path and executor == "local" else None
    return functools.partial(make_encoder, backend=choice.backend, onnx_path=path), choice.backend
