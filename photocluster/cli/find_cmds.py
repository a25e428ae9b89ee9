"""`find PHOTO` ("who is this?") and `index` (the face index behind it)."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Annotated

import typer

from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    JsonOption,
    QuietOption,
    catalog_for,
    count,
    err,
    help_with,
    make_settings,
    out,
)
from photocluster.errors import PhotoclusterError
from photocluster.index.store import SyncReport
from photocluster.people.thresholds import (
    ATTACH_NEIGHBOURS,
    ATTACH_SHARE,
    FIND_KNOWN_DISTANCE,
    FIND_KNOWN_SHARE,
    SPREAD_RATIO,
)


def _index_note(report: SyncReport, quiet: bool) -> None:
    if report.not_saved:
        err(f"note: could not save the face index ({report.not_saved}); it is rebuilt next time.")
    if quiet:
        return
    if report.rebuilt:
        err(
            f"Face index built ({report.kind}, {report.faces} faces"
            + (f"; previous one {report.reason}" if report.reason not in ("", "missing") else "")
            + ")."
        )
    elif report.added or report.removed or report.updated:
        err(f"Face index updated: {_changes(report)} ({report.kind}).")


def _changes(report: SyncReport) -> str:
    """+added / -removed faces, and the faces of changed photos read again."""
    text = f"+{report.added} / -{report.removed} faces"
    if report.updated:
        text += f", {report.updated} re-read (their photo changed)"
    return text


@app.command("find")
@help_with(
    known_distance=f"{FIND_KNOWN_DISTANCE:.2f}",
    spread_ratio=SPREAD_RATIO,
    known=round(FIND_KNOWN_SHARE * ATTACH_NEIGHBOURS),
    probably=round(ATTACH_SHARE * ATTACH_NEIGHBOURS),
    neighbours=ATTACH_NEIGHBOURS,
)
def find_command(
    photo: Annotated[
        str, typer.Argument(help="A photo to look up (it is not added to the catalog).")
    ],
    top: Annotated[
        int,
        typer.Option(
            "--top", "-k", help="Most similar catalog faces to list per face.", min=1, max=1000
        ),
    ] = 5,
    db: DbOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Who is this? Each face in PHOTO: the best matching person and a verdict, and the most
    similar faces in the catalog with their photos.

    Verdicts, relative to each person (measured on labelled photos with strangers among them):
    known (within {known_distance} of the person's mean face and within {spread_ratio}x their
    own spread, clearly nearer than to anyone else, and {known} of the face's {neighbours}
    nearest catalog faces theirs: 2.4 % of strangers where faces are dense), probably (the same
    distances, {probably} of {neighbours} nearest faces), unknown. Exit 1 when the photo has no
    face or the catalog has none to compare with.

    Example: photocluster find party.jpg --top 3
    """
    # imported when this command runs: the module's other commands start without it
    from photocluster.ingest.backends import make_encoder
    from photocluster.people.find import catalog_params, find_in_photo

    settings = make_settings(db, quiet)
    started = time.perf_counter()
    with catalog_for(settings) as catalog:
        params = catalog_params(catalog)
        result = find_in_photo(
            catalog, settings.cache_dir, photo, make_encoder(params), params, top=top
        )
    took = time.perf_counter() - started
    _index_note(result.index, settings.quiet)
    if as_json:
        doc = dataclasses.asdict(result)
        doc["seconds"] = round(took, 3)
        out(json.dumps(doc, indent=2))
        return
    out(f"{result.photo}: {count(len(result.faces), 'face')}")
    for n, face in enumerate(result.faces, 1):
        left, top_, right, bottom = face.box
        where = f"face {n} at ({left},{top_})-({right},{bottom})"
        best = face.best
        if best is None:
            out(f"{where}: unknown (no named or clustered person near it)")
        elif face.verdict == "unknown":
            # A name beside "unknown" reads as an answer: say it is only the nearest, no match.
            name = best.name or f"unnamed person #{best.person_id}"
            out(
                f"{where}: unknown (nearest: {name}, {best.centroid_distance:.3f} to their "
                "centre, not a match)"
            )
        else:
            name = best.name or f"unnamed person #{best.person_id}"
            out(
                f"{where}: {face.verdict} — {name} (distance {best.centroid_distance:.3f} to "
                f"their centre, nearest face {best.nearest_face:.3f})"
            )
        for nb in face.neighbours:
            who = nb.person or (f"#{nb.person_id}" if nb.person_id is not None else "unassigned")
            out(f"    {nb.distance:.3f}  {who:<20} {nb.photo}")


@app.command("index")
def index_command(
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Build it afresh from the catalog.")
    ] = False,
    db: DbOption = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the face index used by `find` up to date (scan does this too).

    It lives beside the catalog (<catalog>-cache/face-index/). A missing, stale or damaged index
    is rebuilt, never trusted.

    Example: photocluster index --rebuild
    """
    # imported when this command runs: the module's other commands start without it
    from photocluster.index.store import sync_index

    settings = make_settings(db, quiet)
    started = time.perf_counter()
    with catalog_for(settings) as catalog:
        _index, report = sync_index(catalog, settings.cache_dir, rebuild=rebuild)
    took = time.perf_counter() - started
    if report.not_saved:
        raise PhotoclusterError(f"Cannot save the face index: {report.not_saved}")
    if as_json:
        doc = dataclasses.asdict(report)
        doc["seconds"] = round(took, 3)
        out(json.dumps(doc, indent=2))
        return
    what = "rebuilt" if report.rebuilt else "up to date"
    out(
        f"Face index {what}: {report.faces} faces"
        f"{' and an HNSW graph for clustering' if report.kind == 'hnsw' else ''} "
        f"({_changes(report)}) in {took:.1f} s."
    )
