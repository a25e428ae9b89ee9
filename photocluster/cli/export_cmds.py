"""`export`, `export-xmp` and `import-xmp`: per-person folders and XMP face regions."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    JsonOption,
    QuietOption,
    TqdmProgress,
    catalog_for,
    count,
    err,
    make_settings,
    out,
)
from photocluster.export.entries import MODES
from photocluster.export.folders import ExportOptions, ExportSummary, export_people
from photocluster.export.xmp.importer import ImportOptions, import_xmp
from photocluster.export.xmp.regions import MIN_OVERLAP
from photocluster.export.xmp.writer import XmpExportOptions, export_xmp

_PLURAL = {"symlink": "symlinks", "hardlink": "hard links", "copy": "copies"}


def _export_dict(s: ExportSummary) -> dict[str, object]:
    return {
        "dest": s.dest,
        "mode": s.mode,
        "dry_run": s.dry_run,
        "people": s.people,
        "photos": s.photos,
        "folders": s.folders,
        "added": s.added,
        "moved": s.moved,
        "updated": s.updated,
        "removed": s.removed,
        "unchanged": s.unchanged,
        "kept_changed": s.kept_changed,
        "failures": [{"entry": e, "reason": r} for e, r in s.failures],
        "notes": s.notes,
        "actions": [{"action": a.kind, "entry": a.rel, "from": a.source} for a in s.actions],
        "report": s.report_path,
        "seconds": round(s.seconds, 3),
    }


# `export`'s options
_ExportMode = Annotated[
    str,
    typer.Option(
        help="symlink, hardlink or copy. Default auto: symlinks where DEST's filesystem "
        "allows them, else copies. Links that are impossible fall back to copies.",
        show_default=False,
    ),
]
_ExportPerson = Annotated[
    list[str] | None,
    typer.Option("--person", "-p", help="Export only this person (name or id; repeatable)."),
]
_ExportIncludeUnnamed = Annotated[
    bool,
    typer.Option("--include-unnamed", help="Also export unnamed people as 'Unknown 0042'."),
]
_ExportDryRun = Annotated[
    bool, typer.Option("--dry-run", "-n", help="Print what would change; change nothing.")
]
_ExportReport = Annotated[
    str | None,
    typer.Option(help="Also write the people report (JSON, photocluster.report/2) here."),
]


@app.command("export")
def export_command(
    dest: Annotated[str, typer.Argument(help="Folder to fill with one sub-folder per person.")],
    db: DbOption = None,
    mode: _ExportMode = "auto",
    person: _ExportPerson = None,
    include_unnamed: _ExportIncludeUnnamed = False,
    dry_run: _ExportDryRun = False,
    report: _ExportReport = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export one folder per named person into DEST (a photo with several people is in each).

    Re-running applies only the differences: new photos are added, renamed people's folders
    move, entries photocluster made earlier (listed in DEST/.photocluster-export.json) are
    removed when no longer wanted. Files you put in DEST yourself are never touched, and a copy
    you edited is never deleted or overwritten (it is reported and left). A run with nothing to
    change writes nothing. DEST may not be inside a folder you scanned.

    Example: photocluster export ~/People --dry-run
    """
    if mode not in MODES:
        raise typer.BadParameter(f"use one of {', '.join(MODES)}", param_hint="--mode")
    settings = make_settings(db, quiet)
    options = ExportOptions(
        dest=dest,
        mode=mode,
        people=list(person or []),
        include_unnamed=include_unnamed,
        dry_run=dry_run,
        report_path=report,
    )
    with catalog_for(settings) as catalog:
        summary = export_people(catalog, options, TqdmProgress(settings.quiet, unit="file"))
    for note in summary.notes:
        err(note)
    if as_json:
        out(json.dumps(_export_dict(summary), indent=2, ensure_ascii=False))
        return
    if summary.dry_run:
        for a in summary.actions:
            if a.kind == "move":
                out(f"move    {a.source} -> {a.rel}")
            else:
                out(f"{a.kind:<7} {a.rel}" + (f"  <- {a.source}" if a.kind != "remove" else ""))
        out(
            f"Dry run: would add {summary.added}, move {summary.moved}, update "
            f"{summary.updated}, remove {summary.removed}; {summary.unchanged} unchanged "
            f"({summary.people} people, {summary.photos} photos, mode {summary.mode})."
        )
        return
    out(
        f"Exported {count(summary.people, 'person', 'people')} ({summary.photos} photos) to "
        f"{summary.dest} "
        f"as {_PLURAL.get(summary.mode, summary.mode)} in {summary.seconds:.1f} s"
    )
    out(
        f"  added {summary.added}, moved {summary.moved}, updated {summary.updated}, "
        f"removed {summary.removed}, unchanged {summary.unchanged}"
    )
    for rel in summary.kept_changed:
        err(f"warning: left {rel}: it changed since photocluster made it")
    for rel, reason in summary.failures:
        err(f"warning: {rel}: {reason}")
    if summary.report_path:
        out(f"  report: {summary.report_path}")


@app.command("export-xmp")
def export_xmp_command(
    db: DbOption = None,
    sidecar: Annotated[
        str,
        typer.Option(
            help="Sidecar naming: ext = IMG_1.jpg.xmp (digiKam, darktable), base = IMG_1.xmp "
            "(Lightroom, Capture One), auto = whichever exists, else ext.",
        ),
    ] = "auto",
    in_place: Annotated[
        bool,
        typer.Option("--in-place", help="Write into the photos themselves instead of sidecars."),
    ] = False,
    keywords: Annotated[
        bool, typer.Option("--keywords", help="Also add the names as keywords (dc:subject).")
    ] = False,
    person: Annotated[
        list[str] | None,
        typer.Option("--person", "-p", help="Only this person (name or id; repeatable)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="List the files that would change.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write named faces as XMP face regions (MWG) that digiKam, Lightroom and exiftool read.

    Each photo with named faces gets mwg-rs:Regions (Type Face, Name, normalised centre x/y/w/h
    of the face as displayed) and Iptc4xmpExt:PersonInImage in its sidecar. Existing sidecars
    keep every other tag; face regions on faces photocluster names are replaced. Originals are
    never modified unless --in-place is given. Needs exiftool.

    Example: photocluster export-xmp --sidecar ext --keywords
    """
    settings = make_settings(db, quiet)
    options = XmpExportOptions(
        sidecar=sidecar,
        in_place=in_place,
        keywords=keywords,
        people=list(person or []),
        dry_run=dry_run,
    )
    with catalog_for(settings) as catalog:
        summary = export_xmp(catalog, options, TqdmProgress(settings.quiet))
    if as_json:
        out(
            json.dumps(
                {
                    "photos": summary.photos,
                    "regions": summary.regions,
                    "written": summary.written,
                    "unchanged": summary.unchanged,
                    "failures": [{"file": f, "reason": r} for f, r in summary.failures],
                    "dry_run": summary.dry_run,
                    "seconds": round(summary.seconds, 3),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        verb = "would write" if summary.dry_run else "wrote"
        if summary.dry_run:
            for path in summary.written:
                out(path)
        out(
            f"{summary.photos} photos with named faces ({summary.regions} regions): {verb} "
            f"{len(summary.written)}, unchanged {summary.unchanged}, failed "
            f"{len(summary.failures)} ({summary.seconds:.1f} s)"
        )
    for path, reason in summary.failures:
        err(f"warning: {path}: {reason}")


@app.command("import-xmp")
def import_xmp_command(
    folder: Annotated[str, typer.Argument(help="Folder of scanned photos with XMP face regions.")],
    db: DbOption = None,
    min_overlap: Annotated[
        float,
        typer.Option(
            help="How much a region must overlap a detected face (intersection over union).",
            min=0.05,
            max=1.0,
        ),
    ] = MIN_OVERLAP,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be named; change nothing.")
    ] = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Seed people from names already tagged in digiKam, Lightroom & co (MWG face regions).

    Reads regions from sidecars (IMG_1.jpg.xmp or IMG_1.xmp) and XMP embedded in the photos;
    each named region that overlaps a detected face confirms that face as the named person
    (created if new). Faces you already confirmed as someone else are left alone and listed.
    Every change is one undoable decision per name. Scan FOLDER first.

    Example: photocluster import-xmp ~/Pictures --dry-run
    """
    settings = make_settings(db, quiet)
    options = ImportOptions(folder=folder, min_overlap=min_overlap, dry_run=dry_run)
    with catalog_for(settings, write=not dry_run) as catalog:
        summary = import_xmp(catalog, options, TqdmProgress(settings.quiet))
    if as_json:
        out(
            json.dumps(
                {
                    "files_read": summary.files_read,
                    "photos": summary.photos,
                    "regions": summary.regions,
                    "matched": summary.matched,
                    "assigned": summary.assigned,
                    "already": summary.already,
                    "by_name": summary.by_name,
                    "people_created": summary.people_created,
                    "unmatched": [{"photo": p, "name": n} for p, n in summary.unmatched],
                    "conflicts": [
                        {"photo": p, "xmp_name": n, "catalog": c} for p, n, c in summary.conflicts
                    ],
                    "skipped": [{"file": f, "reason": r} for f, r in summary.skipped],
                    "dry_run": summary.dry_run,
                    "seconds": round(summary.seconds, 3),
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        verb = "Would confirm" if summary.dry_run else "Confirmed"
        out(
            f"Read {summary.files_read} XMP packets: {summary.regions} named face regions on "
            f"{summary.photos} photos, {summary.matched} matched a detected face."
        )
        out(
            f"{verb} {summary.assigned} faces for {len(summary.by_name)} people "
            f"({len(summary.people_created)} new); already confirmed {summary.already}."
        )
        for name, n in sorted(summary.by_name.items()):
            out(f"  {n:>5}  {name}")
        if summary.unmatched:
            out(f"{len(summary.unmatched)} regions matched no detected face (see --json).")
    for photo, name, current in summary.conflicts:
        err(f"warning: {photo}: XMP says {name!r}, you confirmed {current!r}; left as is")
    for path, reason in summary.skipped:
        err(f"skipped {path}: {reason}")
