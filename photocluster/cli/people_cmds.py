"""`cluster`, `people`, `show`, `report`, `eval`, `compare`: people from faces, and how good."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    JsonOption,
    QuietOption,
    TqdmProgress,
    catalog_for,
    count,
    encoder_factory,
    err,
    help_with,
    make_settings,
    out,
)
from photocluster.errors import PhotoclusterError
from photocluster.export.report import build_report
from photocluster.people.assign import ClusterChanges, ClusterOptions, cluster_catalog, saved_params
from photocluster.people.params import ClusterParams
from photocluster.people.queries import list_people, person_photos, resolve_person, unassigned_count
from photocluster.people.thresholds import ATTACH_NEIGHBOURS, SAME_PERSON
from photocluster.settings import Settings

if TYPE_CHECKING:
    from photocluster.catalog.db import Catalog
    from photocluster.evaluation.evaluate import EvalResult

_D = ClusterParams()


def _remembered(text: str) -> str:
    return (
        f"{text} Remembered in the catalog for later runs (also the clustering after `scan`); "
        "default: the last value used, else the built-in default."
    )


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
PairDistance = Annotated[
    float,
    typer.Option(
        help=(
            "Last, faces still left over this close to each other (each among the other's two "
            "nearest) form a small person (2-3 photos; 0 = never)."
        ),
        min=0.0,
    ),
]
_SPLIT_HELP = (
    "Cut a cluster in two when fewer than this share of the face pairs across the cut look like "
    "one person (0 = never)."
)
SplitShare = Annotated[float, typer.Option(help=_SPLIT_HELP, min=0.0, max=1.0)]
_MERGE_SHARE_HELP = (
    "Join two clusters when at least this share of the face pairs across them look like one "
    "person (0 = never)."
)
MergeShare = Annotated[float, typer.Option(help=_MERGE_SHARE_HELP, min=0.0, max=1.0)]
_SPREAD_HELP = (
    "A face belongs to a person only within this many times the person's own spread (the median "
    "distance of its faces to their mean): members further out leave, leftover and new faces "
    "join only inside it (0 = no such limit)."
)
SpreadRatio = Annotated[float, typer.Option(help=_SPREAD_HELP, min=0.0)]
_ATTACH_SHARE_HELP = (
    f"A leftover or new face joins a person only when at least this share of its "
    f"{ATTACH_NEIGHBOURS} nearest faces are that person's (0 = no such test)."
)
AttachShare = Annotated[float, typer.Option(help=_ATTACH_SHARE_HELP, min=0.0, max=1.0)]
_ATTACH_MUTUAL_HELP = (
    "Beyond a person's spread, a leftover or new face still joins when at least this many of its "
    f"{ATTACH_NEIGHBOURS} nearest faces are that person's and count it among their own "
    f"{ATTACH_NEIGHBOURS} nearest (mutual nearest neighbours; 0 = never)."
)
AttachMutual = Annotated[int, typer.Option(help=_ATTACH_MUTUAL_HELP, min=0, max=ATTACH_NEIGHBOURS)]
_VERIFY_SHARE_HELP = (
    f"A group of faces is a person only when at least this share of its face pairs look like one "
    f"person (within the same-person distance {SAME_PERSON}); otherwise its faces are left "
    "unassigned (0 = never)."
)
VerifyShare = Annotated[float, typer.Option(help=_VERIFY_SHARE_HELP, min=0.0, max=1.0)]
_SEPARATION_HELP = (
    "A group of faces is a person only when its faces are nearer one another than to the faces "
    "around them: per face, the distance to its nearest face in the group over the distance to "
    "its nearest face outside it; the median over the group at most this (0 = never test)."
)
Separation = Annotated[float, typer.Option(help=_SEPARATION_HELP, min=0.0, max=1.0)]
_ATTACH_POSTERIOR_HELP = (
    "After the rules, a face left in no person joins the person among its nearest faces that it "
    "is more likely than this to be, as the library's own people measure it: evidence learnt "
    "from their faces, and the share of the faces left over near a person that are people's "
    "rather than strangers' (near 0 where strangers are many: then nothing joins). 0 = never."
)
AttachPosterior = Annotated[float, typer.Option(help=_ATTACH_POSTERIOR_HELP, min=0.0, max=0.99)]
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
    pair_distance: float = _D.pair_distance,
    split_share: float = _D.split_share,
    merge_share: float = _D.merge_share,
    spread_ratio: float = _D.spread_ratio,
    attach_share: float = _D.attach_share,
    attach_mutual: int = _D.attach_mutual,
    verify_share: float = _D.verify_share,
    separation: float = _D.separation,
    attach_posterior: float = _D.attach_posterior,
) -> ClusterParams:
    try:
        return ClusterParams(
            min_cluster_size=min_cluster_size,
            min_samples=min_samples,
            epsilon=epsilon,
            method=method,  # type: ignore[arg-type]
            attach_distance=attach_distance,
            merge_distance=merge_distance,
            pair_distance=pair_distance,
            split_share=split_share,
            merge_share=merge_share,
            spread_ratio=spread_ratio,
            attach_share=attach_share,
            attach_mutual=attach_mutual,
            verify_share=verify_share,
            separation=separation,
            attach_posterior=attach_posterior,
        )
    except ValueError as exc:
        raise PhotoclusterError(str(exc)) from exc


# `cluster`'s parameter options: unset (None) means "as remembered in the catalog".
_MinClusterSizeR = Annotated[
    int | None, typer.Option(help=_remembered("Fewest faces that make a person."), min=2)
]
_MinSamplesR = Annotated[
    int | None,
    typer.Option(
        help=_remembered("Neighbours that make a face 'dense' (higher = more cautious)."), min=1
    ),
]
_EpsilonR = Annotated[
    float | None, typer.Option(help=_remembered("HDBSCAN cluster_selection_epsilon."), min=0.0)
]
_MethodR = Annotated[
    str | None, typer.Option(help=_remembered("HDBSCAN cluster selection: eom or leaf."))
]
_AttachDistanceR = Annotated[
    float | None,
    typer.Option(
        help=_remembered(
            "A leftover or new face joins the person whose mean face "
            "is within this distance (0 = never)."
        ),
        min=0.0,
    ),
]
_MergeDistanceR = Annotated[
    float | None,
    typer.Option(
        help=_remembered("Merge people whose mean faces are this close (0 = never)."), min=0.0
    ),
]
_PairDistanceR = Annotated[
    float | None,
    typer.Option(
        help=_remembered(
            "Last, faces still left over this close to each other (each among the other's two "
            "nearest) form a small person (0 = never)."
        ),
        min=0.0,
    ),
]
_SplitShareR = Annotated[
    float | None, typer.Option(help=_remembered(_SPLIT_HELP), min=0.0, max=1.0)
]
_MergeShareR = Annotated[
    float | None, typer.Option(help=_remembered(_MERGE_SHARE_HELP), min=0.0, max=1.0)
]
_SpreadRatioR = Annotated[float | None, typer.Option(help=_remembered(_SPREAD_HELP), min=0.0)]
_AttachShareR = Annotated[
    float | None, typer.Option(help=_remembered(_ATTACH_SHARE_HELP), min=0.0, max=1.0)
]
_AttachMutualR = Annotated[
    int | None,
    typer.Option(help=_remembered(_ATTACH_MUTUAL_HELP), min=0, max=ATTACH_NEIGHBOURS),
]
_VerifyShareR = Annotated[
    float | None, typer.Option(help=_remembered(_VERIFY_SHARE_HELP), min=0.0, max=1.0)
]
_SeparationR = Annotated[
    float | None, typer.Option(help=_remembered(_SEPARATION_HELP), min=0.0, max=1.0)
]
_AttachPosteriorR = Annotated[
    float | None, typer.Option(help=_remembered(_ATTACH_POSTERIOR_HELP), min=0.0, max=0.99)
]
_PARAMS = tuple(f.name for f in dataclasses.fields(ClusterParams))


def print_changes(c: ClusterChanges) -> None:
    verb = "Would change" if c.dry_run else "Changed"
    out(f"Clustering ({c.mode}{', dry run' if c.dry_run else ''}): {c.faces} faces")
    if c.mode == "incremental":
        out(f"  new faces matched to existing people: {c.matched_to_existing}")
        if c.placed_with:
            out(f"  (placed in the space learned from your names: {c.placed_with})")
    out(f"  {verb.lower()}: {c.faces_moved} faces moved")
    _print_moves(c)
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
    gone = {a for a, _ in c.people_merged} | set(c.people_emptied)
    already_empty = [p for p in c.people_deleted if p not in gone]
    if already_empty:
        out(
            f"  empty unnamed people {'to remove' if c.dry_run else 'removed'}: "
            f"{len(already_empty)} ({', '.join(map(str, already_empty))})"
        )
    if c.detached_same_photo:
        out(f"  faces kept apart from a same-photo face: {c.detached_same_photo}")
    out(f"  unassigned faces (noise): {c.unassigned_faces}")
    if c.mode == "full" or c.named_leaving:
        _print_named_leaving(c)
    if c.replanned:
        out(
            f"  planned again {count(c.replanned, 'time')}: the catalog changed while this run "
            "was planning (a decision or a scan), which it now includes"
        )
    if c.dry_run:
        out("Nothing was written (dry run).")


MOVES_LISTED = 20


def _where(c: ClusterChanges, person: int | None, new_number: dict[int, int]) -> str:
    if person is None:
        return "unassigned"
    if person in c.people_created:
        return f"new person {new_number[person] if c.dry_run else person}"
    return f"person {person}"


def _print_moves(c: ClusterChanges) -> None:
    """Which faces move, grouped by from and to, largest group first; at most MOVES_LISTED."""
    new_number = {k: i for i, k in enumerate(sorted(c.people_created, reverse=True), 1)}
    groups: dict[tuple[str, str], list[int]] = {}
    for m in c.moves:
        key = (_where(c, m.from_person, new_number), _where(c, m.to_person, new_number))
        groups.setdefault(key, []).append(m.face_id)
    shown = 0
    for (source, dest), ids in sorted(groups.items(), key=lambda g: -len(g[1])):
        if shown >= MOVES_LISTED:
            break
        listed = sorted(ids)[: MOVES_LISTED - shown]
        more = f" and {len(ids) - len(listed)} more" if len(listed) < len(ids) else ""
        word = "face" if len(ids) == 1 else "faces"
        out(f"    {source} -> {dest}: {word} {', '.join(map(str, listed))}{more}")
        shown += len(listed)
    if shown < len(c.moves):
        out(f"    ({len(c.moves) - shown} more not listed; --json lists every move)")


def _print_named_leaving(c: ClusterChanges) -> None:
    """Per named person, the faces that leave it, grouped by where they go."""
    leave = "would leave" if c.dry_run else "left"
    total = sum(len(n.moves) for n in c.named_leaving)
    note = (
        ""
        if c.reassign_named or c.mode != "full"
        else " (named people keep their unconfirmed faces unless --reassign-named)"
    )
    out(f"  faces that {leave} named people: {total}{note}")
    # New people have no id in a dry run: number them in the order of their placeholders.
    new_number = {k: i for i, k in enumerate(sorted(c.people_created, reverse=True), 1)}
    for n in c.named_leaving:
        out(f"    {n.name} (person {n.person_id}): {count(len(n.moves), 'face')}")
        by_dest: dict[str, list[int]] = {}
        for m in n.moves:
            to = m.to_person
            if to is None:
                dest = "unassigned"
            elif to in c.people_created:
                dest = f"new person {new_number[to] if c.dry_run else to}"
            else:
                dest = f"person {to}"
            by_dest.setdefault(dest, []).append(m.face_id)
        for dest, ids in by_dest.items():
            out(f"      -> {dest}: face{'s' if len(ids) != 1 else ''} {', '.join(map(str, ids))}")


# `cluster`'s other options
_ClusterFull = Annotated[
    bool,
    typer.Option(
        "--full",
        help="Re-cluster every face, not only new ones: unnamed people follow the new "
        "clustering as a fresh catalog would (clusters and people are matched one to one "
        "by their members, so ids and hidden flags stay; other pieces become new people). "
        "Named people keep their faces; confirmed faces and rejections are kept.",
    ),
]
_ClusterReassignNamed = Annotated[
    bool,
    typer.Option(
        "--reassign-named",
        help="With --full: named people's unconfirmed faces follow the new clustering too "
        "(the name stays on the best-matching cluster). Try it with --dry-run first: it "
        "lists the faces that would leave each named person.",
    ),
]
_ClusterDryRun = Annotated[
    bool, typer.Option("--dry-run", help="Print what would change; write nothing.")
]
_ClusterDefaults = Annotated[
    bool,
    typer.Option("--defaults", help="Forget remembered parameters and use the built-in defaults."),
]


@app.command("cluster")
@help_with(d=_D, merge_distance=_D.merge_distance or "off")
def cluster_command(
    db: DbOption = None,
    full: _ClusterFull = False,
    reassign_named: _ClusterReassignNamed = False,
    dry_run: _ClusterDryRun = False,
    min_cluster_size: _MinClusterSizeR = None,
    min_samples: _MinSamplesR = None,
    epsilon: _EpsilonR = None,
    method: _MethodR = None,
    attach_distance: _AttachDistanceR = None,
    merge_distance: _MergeDistanceR = None,
    pair_distance: _PairDistanceR = None,
    split_share: _SplitShareR = None,
    merge_share: _MergeShareR = None,
    spread_ratio: _SpreadRatioR = None,
    attach_share: _AttachShareR = None,
    attach_mutual: _AttachMutualR = None,
    verify_share: _VerifyShareR = None,
    separation: _SeparationR = None,
    attach_posterior: _AttachPosteriorR = None,
    defaults: _ClusterDefaults = False,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Group faces into people (HDBSCAN), keeping every id, name and decision.

    By default only faces new since the last run are placed: first with an existing person
    when the face is near that person's mean face, within the person's own spread (or, beyond
    it, mutual nearest neighbours with some of that person's faces), and most of its nearest
    faces are that person's; the rest are clustered with earlier leftovers. Two
    faces of one photo never end up in one person. Faces with no clear person stay unassigned
    (cheap to review; a wrong face in a person costs a correction). Defaults were measured on
    labelled photos, with and without many one-photo strangers (README "How thresholds were
    chosen").

    Built-in defaults: min cluster size {d.min_cluster_size}, min samples {d.min_samples},
    spread ratio {d.spread_ratio}, attach share {d.attach_share}, attach mutual
    {d.attach_mutual}, attach distance {d.attach_distance}, pair distance {d.pair_distance},
    split share {d.split_share}, merge share {d.merge_share}, verify share {d.verify_share},
    separation {d.separation}, attach posterior {d.attach_posterior}, merge distance
    {merge_distance}.
    Parameters you give are remembered; --defaults forgets them.

    --full re-clusters every face. Unnamed faces then group as in a fresh catalog (confirmed
    faces and rejections aside), so a wrong merge made with other parameters is undone; named
    people keep their unconfirmed faces unless --reassign-named. The output lists, per named
    person, the faces that leave it.

    Example: photocluster cluster --full --reassign-named --dry-run
    """
    _check_reassign_named(full, reassign_named)
    settings = make_settings(db, quiet)
    given = {k: v for k, v in locals().items() if k in _PARAMS and v is not None}  # options given
    with catalog_for(settings, write=not dry_run, verify=True) as catalog:
        changes = cluster_catalog(
            catalog,
            ClusterOptions(params=_cluster_params(catalog, defaults, given)),
            full=full,
            reassign_named=reassign_named,
            dry_run=dry_run,
            progress=TqdmProgress(settings.quiet, unit="step"),
            index_dir=settings.cache_dir,
        )
    if as_json:
        out(json.dumps(changes.as_dict(), indent=2))
    else:
        print_changes(changes)


def _check_reassign_named(full: bool, reassign_named: bool) -> None:
    """Refuse --reassign-named without --full."""
    if reassign_named and not full:
        raise PhotoclusterError(
            "--reassign-named only applies to a full re-cluster: add --full "
            "(see first with `photocluster cluster --full --reassign-named --dry-run`)."
        )


def _cluster_params(catalog: Catalog, defaults: bool, given: dict[str, Any]) -> ClusterParams:
    """The parameters remembered in the catalog (the built-in defaults with --defaults or when
    none are), with the options given on top; a bad value is the user's error."""
    base = (None if defaults else saved_params(catalog)) or ClusterParams()
    try:
        return dataclasses.replace(base, **given)
    except ValueError as exc:
        raise PhotoclusterError(str(exc)) from exc


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

    People whose faces all left (rejected or moved) are not people any more and are not listed.
    Faces in no person are counted at the end: review them with `photocluster name` (after the
    people) or list them with `photocluster show unassigned`.

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
    where = (
        " (review them in `photocluster name`, list them with `photocluster show unassigned`)"
        if unassigned
        else ""
    )
    err(f"{count(len(rows), 'person', 'people')}; {count(unassigned, 'face')} unassigned{where}.")


@app.command("show")
def show_command(
    person: Annotated[
        str,
        typer.Argument(help="Person id (as in `people`) or name, or `unassigned`."),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the photos a person appears in (path, face box, confirmed), oldest first.

    `show unassigned` lists the faces in no person instead, grouped by the person each looks
    most like, with `find`'s verdict: known or probably that person, or probably nobody you
    named (the nearest person is still given). `photocluster name` shows them as contact sheets
    after the people, to name them. (A person really called "unassigned": use their id.)

    Example: photocluster show 7
    """
    settings = make_settings(db)
    if person.strip().lower() == "unassigned":
        _show_unassigned(settings, as_json)
        return
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


def _show_unassigned(settings: Settings, as_json: bool) -> None:
    # imported when this command runs: the module's other commands start without it
    from photocluster.people.suggestions import review_with_suggestions

    with catalog_for(settings) as catalog, catalog.session() as session:
        review = review_with_suggestions(session)
    if as_json:
        out(
            json.dumps(
                {
                    "unassigned": True,
                    "unclustered_faces": review.unclustered,
                    "photos": [
                        {
                            "path": f.photo,
                            "face_id": f.face_id,
                            "box": dict(
                                zip(("left", "top", "right", "bottom"), f.box, strict=True)
                            ),
                            "verdict": f.verdict,
                            "score": None if f.score is None else round(f.score, 4),
                            "nearest": None
                            if f.best is None
                            else {
                                "id": f.best.person_id,
                                "name": f.best.name,
                                "hidden": f.best.hidden,
                                "distance": round(f.best.centroid_distance, 4),
                            },
                        }
                        for g in review.groups
                        for f in g.faces
                    ],
                },
                indent=2,
            )
        )
        return
    err(f"Faces in no person: {review.faces}, in {count(len(review.groups), 'group')}")
    for g in review.groups:
        who = f"probably {g.label}" if g.likely else "probably nobody you named"
        if g.likely and g.score is not None:
            who += f" (score {g.score:.2f})"
        if not g.likely and g.person_id is not None:
            who += f" (nearest: {g.label})"
        for f in g.faces:
            b = f.box
            out(f"{f.photo}\tface {f.face_id}\tbox {b[0]},{b[1]},{b[2]},{b[3]}\t{who}")
    if review.faces:
        err("Name them in `photocluster name` (after the people), or `photocluster assign`.")
    if review.unclustered:
        err(
            f"{count(review.unclustered, 'face')} not clustered yet (not listed): run "
            "`photocluster cluster`."
        )


@app.command("report")
def report_command(
    db: DbOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")
    ] = None,
) -> None:
    """Write the JSON report (schema photocluster.report/2): photos, people, faces, boxes.

    Boxes are in pixels of the photo as displayed (EXIF orientation applied). The JSON Schema
    ships as photocluster/export/report_schema.json; the README documents every field.

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
    c = data["counts"]
    hidden = f", {c['hidden_people']} hidden" if c["hidden_people"] else ""
    err(
        f"Wrote {output} ({count(c['people'], 'person', 'people')}{hidden}, "
        f"{count(c['faces'], 'face')})."
    )


# `eval`'s options besides the clustering parameters
_EvalLabelledDir = Annotated[
    str, typer.Argument(help="Folder of <person>/<photos> (nested sources allowed).")
]
_EvalCatalog = Annotated[
    str | None,
    typer.Option(
        "--catalog",
        help="Scan into this catalog and keep it (re-runs only cluster). Default: a "
        "throw-away catalog.",
    ),
]
_EvalJobs = Annotated[int, typer.Option("--jobs", "-j", help="Scan workers (0 = all).", min=0)]
_EvalTargetFmr = Annotated[
    float, typer.Option(help="False-match rate for the verification threshold.", min=0.0)
]


@app.command("eval")
def eval_command(
    labelled_dir: _EvalLabelledDir,
    catalog: _EvalCatalog = None,
    jobs: _EvalJobs = 0,
    target_fmr: _EvalTargetFmr = 0.001,
    min_cluster_size: MinClusterSize = _D.min_cluster_size,
    min_samples: MinSamples = _D.min_samples,
    epsilon: Epsilon = _D.epsilon,
    method: Method = _D.method,
    attach_distance: AttachDistance = _D.attach_distance,
    merge_distance: MergeDistance = _D.merge_distance,
    pair_distance: PairDistance = _D.pair_distance,
    split_share: SplitShare = _D.split_share,
    merge_share: MergeShare = _D.merge_share,
    spread_ratio: SpreadRatio = _D.spread_ratio,
    attach_share: AttachShare = _D.attach_share,
    attach_mutual: AttachMutual = _D.attach_mutual,
    verify_share: VerifyShare = _D.verify_share,
    separation: Separation = _D.separation,
    attach_posterior: AttachPosterior = _D.attach_posterior,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Measure clustering and verification on labelled photos.

    Scans LABELLED_DIR (the label is a photo's folder name, shared across sources; folders
    starting with _ are unlabelled extras) and clusters with the same defaults as `cluster`.
    Each labelled photo with a face is scored on one face: the face most like its label's
    one-face photos (nearest their mean; the photo's largest face when the label has no one-face
    photo), as the largest face is often somebody else (a spouse, an opponent). On those faces:
    pairwise and BCubed precision/recall/F (noise counted as singletons), NMI, unassigned share,
    and the ROC over all labelled pairs (EER and the threshold for a target false-match rate).
    Then: pairwise P/R/F by the old largest-face rule; pairwise P/R/F over the people with 2+
    labelled photos only; and the one-photo labels ("strangers": exactly one labelled photo with
    a face), how many and the share left alone (its face unassigned, or its person holds no
    other labelled face; the rest are absorbed). The headline pairwise counts every scored face,
    each stranger a class of its own. The label check says in how many photos with several faces
    the largest face looks less like the label than another face, and the best score the
    largest-face rule allows.

    --json: the same figures; "version" is 2 since the headline figures moved from the largest
    face to the face most like the label (output without a "version" field scored the largest);
    new fields: pairwise_largest_face, multi_photo_people, strangers (left_alone_share is null
    without strangers).

    Example: photocluster eval ../shared/faces --catalog /tmp/faces-eval.sqlite3
    """
    params = build_params(
        min_cluster_size,
        min_samples,
        epsilon,
        method,
        attach_distance,
        merge_distance,
        pair_distance,
        split_share,
        merge_share,
        spread_ratio,
        attach_share,
        attach_mutual,
        verify_share,
        separation,
        attach_posterior,
    )
    result = _scan_and_evaluate(labelled_dir, catalog, jobs, params, target_fmr, quiet)
    if as_json:
        out(json.dumps(result.as_dict(), indent=2))
    else:
        _print_eval(result)


def _scan_and_evaluate(
    labelled_dir: str,
    catalog: str | None,
    jobs: int,
    params: ClusterParams,
    target_fmr: float,
    quiet: bool,
) -> EvalResult:
    """Scan ``labelled_dir`` into ``catalog`` (a throw-away one when None) and measure."""
    # imported when eval runs: the module's other commands start without the scan's code
    import tempfile

    # imported when this command runs: the module's other commands start without it
    from photocluster.catalog.db import open_catalog
    from photocluster.evaluation.evaluate import evaluate_catalog
    from photocluster.ingest.scan import ScanOptions, scan

    with tempfile.TemporaryDirectory(prefix="photocluster-eval-") as tmp:
        path = catalog or str(Path(tmp) / "eval.sqlite3")
        cat = open_catalog(path)
        try:
            # the descriptor code `scan` runs (ONNX Runtime when it can be had), not dlib's own:
            # the same embeddings as a scanned library, in a seventh of the time
            factory, _backend = encoder_factory("auto", "local", quiet)
            options = ScanOptions(root=labelled_dir, jobs=jobs, encoder_factory=factory)
            scan(cat, options, TqdmProgress(quiet))
            return evaluate_catalog(cat, labelled_dir, params, target_fmr)
        finally:
            cat.close()


def _print_eval(result: EvalResult) -> None:
    """`eval`'s text: the figures of the module docstring of photocluster.evaluation.evaluate, one
    a line."""
    v = result.verification
    out(f"Evaluated {result.root}")
    out(
        f"  photos {result.photos} (labelled {result.photos_labelled}, no face found "
        f"{result.photos_without_face}, failed {result.photos_failed}); faces {result.faces}"
    )
    out(
        f"  labelled faces {result.labelled_faces} of {result.identities} people; "
        f"people found {result.people}"
    )
    out("  scored: per labelled photo, the face most like its label's one-face photos")
    for name, m in (("pairwise", result.pairwise), ("BCubed", result.bcubed)):
        out(f"  {name:<8} precision {m.precision:.3f}  recall {m.recall:.3f}  F {m.f:.3f}")
    out(f"  NMI {result.nmi:.3f}; labelled faces left unassigned {result.unassigned_share:.1%}")
    m = result.pairwise_largest_face
    out(
        f"  largest face instead: pairwise precision {m.precision:.3f}  recall {m.recall:.3f}  "
        f"F {m.f:.3f}"
    )
    several, strangers = result.multi_photo_people, result.strangers
    m = several.pairwise
    out(
        f"  people with 2+ photos ({count(several.people, 'person', 'people')}, "
        f"{count(several.faces, 'face')}): pairwise precision {m.precision:.3f}  "
        f"recall {m.recall:.3f}  F {m.f:.3f}"
    )
    if strangers.left_alone_share is None:
        out("  one-photo strangers: none")
    else:
        out(
            f"  one-photo strangers {strangers.count}: {strangers.left_alone_share:.1%} left "
            f"alone, {strangers.absorbed} absorbed into a person"
        )
    out(
        f"  verification over {v.genuine_pairs} same / {v.impostor_pairs} different pairs: "
        f"AUC {v.auc:.4f}, EER {v.eer:.3f} at distance {v.eer_threshold:.3f}"
    )
    out(
        f"  false-match rate {v.target_fmr:g} at distance <= {v.threshold_at_target:.3f} "
        f"(accepts {v.tmr_at_target:.1%} of same-person pairs)"
    )
    out(
        f"  at SAME_PERSON {v.same_person}: false matches {v.fmr_at_same_person:.3%}, "
        f"true matches {v.tmr_at_same_person:.1%}"
    )
    c = result.labels
    if c.largest_unlike_label:
        out(
            f"  labels: in {c.largest_unlike_label} of {c.multi_face_photos} labelled photos with "
            "several faces another face looks more like\n"
            "    the label's one-face photos than the largest (somebody else in the photo?)"
        )
        out(
            f"    a clustering right about every face scores F {c.ceiling.f:.3f} by the "
            "largest-face rule"
        )


@app.command("compare")
@help_with(same_person=SAME_PERSON)
def compare_command(
    photo_a: Annotated[str, typer.Argument(help="First photo (its largest face is used).")],
    photo_b: Annotated[str, typer.Argument(help="Second photo.")],
    threshold: Annotated[
        float,
        typer.Option(
            help="Same person below this distance. Default: SAME_PERSON, the distance at which "
            "0.1% of different-person pairs match on the labelled test photos (measured with "
            "`photocluster eval`; dlib documents 0.6).",
            min=0.0,
        ),
    ] = SAME_PERSON,
    as_json: JsonOption = False,
) -> None:
    """Compare the largest face of two photos: distance and a same/different verdict.

    The verdict threshold is photocluster.people.thresholds.SAME_PERSON ({same_person}): on the
    labelled test photos 0.08% of different-person pairs are closer than that, and 79% of
    same-person pairs.

    Example: photocluster compare a.jpg b.jpg
    """
    # imported when this command runs: the module's other commands start without it
    from photocluster.evaluation.evaluate import encode_largest_face
    from photocluster.ingest.backends import make_encoder
    from photocluster.ingest.encoder import EncoderParams

    params = EncoderParams()
    encoder = make_encoder(params)
    a = encode_largest_face(photo_a, encoder, params)
    b = encode_largest_face(photo_b, encoder, params)
    distance = float(((a - b) ** 2).sum() ** 0.5)
    same = distance < threshold
    if as_json:
        out(json.dumps({"distance": round(distance, 4), "threshold": threshold, "same": same}))
        return
    verdict = "same person" if same else "different people"
    out(f"distance {distance:.3f} (threshold {threshold}): {verdict}")
