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
    err,
    make_settings,
    out,
)
from photocluster.export import MODES, ExportOptions, ExportSummary, export_people


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


@app.command("export")
def export_command(
    dest: Annotated[str, typer.Argument(help="Folder to fill with one sub-folder per person.")],
    db: DbOption = None,
    mode: Annotated[
        str,
        typer.Option(
            help="symlink, hardlink or copy. Default auto: symlinks where DEST's filesystem "
            "allows them, else copies. Links that are impossible fall back to copies.",
            show_default=False,
        ),
    ] = "auto",
    person: Annotated[
        list[str] | None,
        typer.Option("--person", "-p", help="Export only this person (name or id; repeatable)."),
    ] = None,
    include_unnamed: Annotated[
        bool,
        typer.Option("--include-unnamed", help="Also export unnamed people as 'Unknown 0042'."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Print what would change; change nothing.")
    ] = False,
    report: Annotated[
        str | None,
        typer.Option(help="Also write the people report (JSON, photocluster.report/1) here."),
    ] = None,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export one folder per named person into DEST (a photo with several people is in each).

    Re-running applies only the differences: new photos are added, renamed people's folders
    move, entries photocluster made earlier (listed in DEST/.photocluster-export.json) are
    removed when no longer wanted. Files you put in DEST yourself are never touched. DEST may
    not be inside the photo library.

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
        f"Exported {summary.people} people ({summary.photos} photos) to {summary.dest} "
        f"as {summary.mode}s in {summary.seconds:.1f} s"
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
