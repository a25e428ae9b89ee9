"""`cluster`, `people`, `show`, `report`, `eval`, `compare`: people from faces, and how good."""

from __future__ import annotations

import json
from pathlib import Path
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
from photocluster.clustering import ClusterParams
from photocluster.errors import PhotoclusterError
from photocluster.people import (
    ClusterChanges,
    ClusterOptions,
    cluster_catalog,
    list_people,
    person_photos,
    resolve_person,
    unassigned_count,
)
from photocluster.report import build_report

_D = ClusterParams()

MinClusterSize = Annotated[
    int,
    typer.Option(help="HDBSCAN: fewest faces that make a person.", min=2),
]
MinSamples = Annotated[
    int,
    typer.Option(
        help="HDBSCAN: neighbours that make a face 'dense' (higher = more cautious).", min=1
    ),
]
Epsilon = Annotated[
    float, typer.Option(help="HDBSCAN cluster_selection_epsilon (0 = off).", min=0.0)
]
Method = Annotated[str, typer.Option(help="HDBSCAN cluster selection: eom or leaf.")]
AttachDistance = Annotated[
    float,
    typer.Option(
        help="A leftover or new face joins the person whose mean face is within this distance "
        "(0 = never).",
        min=0.0,
    ),
]
MergeDistance = Annotated[
    float, typer.Option(help="Merge clusters whose mean faces are this close (0 = never).", min=0.0)
]


def build_params(
    min_cluster_size: int,
    min_samples: int,
    epsilon: float,
    method: str,
    attach_distance: float,
    merge_distance: float,
) -> ClusterParams:
    try:
        return ClusterParams(
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            epsilon=epsilon,
            method=method,  # type: ignore[arg-type]
            attach_distance=attach_distance,
            merge_distance=merge_distance,
        )
    except ValueError as exc:
        raise PhotoclusterError(str(exc)) from exc


def print_changes(c: ClusterChanges) -> None:
    verb = "Would change" if c.dry_run else "Changed"
    out(f"Clustering ({c.mode}{', dry run' if c.dry_run else ''}): {c.faces} faces")
    if c.mode == "incremental":
        out(f"  new faces matched to existing people: {c.matched_to_existing}")
    out(f"  {verb.lower()}: {c.faces_moved} faces moved")
    created = sum(1 for _ in c.people_created)
    in_new = sum(c.people_created.values())
    out(f"  people created: {created} ({in_new} faces)")
    if c.people_merged:
        merged = ", ".join(f"{a} -> {b}" for a, b in c.people_merged)
        out(f"  people merged: {len(c.people_merged)} ({merged})")
    else:
        out("  people merged: 0")
    out(
        f"  people emptied: {len(c.people_emptied)}"
        + (f" ({', '.join(map(str, c.people_emptied))})" if c.people_emptied else "")
    )
    if c.detached_same_photo:
        out(f"  faces kept apart from a same-photo face: {c.detached_same_photo}")
    out(f"  unassigned faces (noise): {c.unassigned_faces}")
    if c.dry_run:
        out("Nothing was written (dry run).")


@app.command("cluster")
def cluster_command(
    db: DbOption = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-cluster every face, not only new ones. Ids and names stay (clusters are "
            "matched to people by their members); confirmed faces and rejections are kept.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
    ] = False,
    min_cluster_size: MinClusterSize = _D.min_cluster_size,
    min_samples: MinSamples = _D.min_samples,
    epsilon: Epsilon = _D.epsilon,
    method: Method = _D.method,
    attach_distance: AttachDistance = _D.attach_distance,
    merge_distance: MergeDistance = _D.merge_distance,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Group faces into people (HDBSCAN), keeping every id, name and decision.

    By default only faces new since the last run are placed: first with the nearest existing
    person, the rest clustered with earlier leftovers. Two faces of one photo never end up in
    one person. Faces HDBSCAN finds no group for stay unassigned. Defaults were measured on
    labelled photos (see README "How thresholds were chosen").

    Example: photocluster cluster --dry-run
    """
    settings = make_settings(db, quiet)
    params = build_params(
        min_cluster_size, min_samples, epsilon, method, attach_distance, merge_distance
    )
    with catalog_for(settings) as catalog:
        changes = cluster_catalog(
            catalog,
            ClusterOptions(params=params),
            full=full,
            dry_run=dry_run,
            progress=TqdmProgress(settings.quiet, unit="step"),
        )
    if as_json:
        out(json.dumps(changes.as_dict(), indent=2))
    else:
        print_changes(changes)


@app.command("people")
def people_command(
    db: DbOption = None,
    named: Annotated[bool, typer.Option("--named", help="Only people with a name.")] = False,
    no_hidden: Annotated[
        bool, typer.Option("--no-hidden", help="Leave out hidden people.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List people, largest first: id, name (or "unnamed"), faces, photos, hidden.

    Example: photocluster people --named
    """
    settings = make_settings(db)
    with catalog_for(settings) as catalog, catalog.session() as session:
        rows = list_people(session, include_hidden=not no_hidden, named_only=named)
        unassigned = unassigned_count(session)
    if as_json:
        out(
            json.dumps(
                [
                    {
                        "id": p.id,
                        "name": p.name,
                        "faces": p.faces,
                        "photos": p.photos,
                        "confirmed_faces": p.confirmed,
                        "hidden": p.hidden,
                    }
                    for p in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        out("No people yet: run `photocluster cluster` after `photocluster scan DIR`.")
        return
    out(f"{'id':>6}  {'name':<30} {'faces':>6} {'photos':>6}  hidden")
    for p in rows:
        out(f"{p.id:>6}  {p.label:<30} {p.faces:>6} {p.photos:>6}  {'yes' if p.hidden else ''}")
    err(f"{len(rows)} people; {unassigned} faces unassigned.")


@app.command("show")
def show_command(
    person: Annotated[str, typer.Argument(help="Person id (as in `people`) or name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the photos a person appears in (path, face box, confirmed), oldest first.

    Example: photocluster show 7
    """
    settings = make_settings(db)
    with catalog_for(settings) as catalog, catalog.session() as session:
        who = resolve_person(session, person)
        pid, name, hidden = who.id, who.name, who.hidden
        photos = person_photos(session, who)
    if as_json:
        out(
            json.dumps(
                {
                    "id": pid,
                    "name": name,
                    "hidden": hidden,
                    "photos": [
                        {
                            "path": p.path,
                            "face_id": p.face_id,
                            "box": dict(
                                zip(("left", "top", "right", "bottom"), p.box, strict=True)
                            ),
                            "confirmed": p.confirmed,
                            "taken_at": p.taken_at.isoformat() if p.taken_at else None,
                        }
                        for p in photos
                    ],
                },
                indent=2,
            )
        )
        return
    err(f"Person {pid} ({name or 'unnamed'}{', hidden' if hidden else ''}): {len(photos)} faces")
    for p in photos:
        mark = "  confirmed" if p.confirmed else ""
        out(f"{p.path}\tface {p.face_id}\tbox {p.box[0]},{p.box[1]},{p.box[2]},{p.box[3]}{mark}")


@app.command("report")
def report_command(
    db: DbOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Write the JSON report (schema photocluster.report/1): photos, people, faces, boxes.

    Boxes are in pixels of the photo as displayed (EXIF orientation applied). The JSON Schema
    ships as photocluster/report_schema.json; the README documents every field.

    Example: photocluster report --output report.json
    """
    settings = make_settings(db)
    with catalog_for(settings) as catalog, catalog.session() as session:
        data = build_report(session)
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if output is None:
        out(text)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise PhotoclusterError(f"Cannot write {output}: {exc.strerror}") from exc
    err(f"Wrote {output} ({data['counts']['people']} people, {data['counts']['faces']} faces).")
