"""`learn`: learn a projection of the embeddings from the user's decisions, or show the stored
one (`--report`). Parses, calls people.projection, prints."""

from __future__ import annotations

import json
import textwrap
from typing import Annotated

import typer

from photocluster.cli.app import app
from photocluster.cli.common import (
    DbOption,
    JsonOption,
    catalog_for,
    count,
    err,
    help_with,
    make_settings,
    out,
)
from photocluster.people.projection import (
    MIN_PEOPLE,
    LearnReport,
    learn_projection,
    relearn_reason,
    stored_report,
)

LEARN_SCHEMA_VERSION = "photocluster.learn/1"


def _pct(v: float | None) -> str:
    return "     -" if v is None else f"{100 * v:5.1f}%"


def _print(report: LearnReport) -> None:
    out(
        f"Learned from {count(report.named_faces, 'confirmed face')} of "
        f"{count(report.people, 'named person', 'named people')} with 2+ faces and "
        f"{count(report.rejections, 'rejection')} (embedding model {report.model or '-'}, "
        f"{report.created_at:%Y-%m-%d %H:%M})."
    )
    if report.methods:
        out("Held-out people (cross-validation, people never in training and test at once):")
        out("  method   TAR@FMR 1%  TAR@FMR 0.1%  rank-1    gain")
        for m in report.methods:
            gain = "     -" if m.gain is None else f"{100 * m.gain:+5.1f}"
            mark = "*" if m.method == report.method and report.used else " "
            out(
                f"{mark} {m.method:<8} {_pct(m.tar_far_1pct):>10} {_pct(m.tar_far_01pct):>13}"
                f" {_pct(m.rank1):>7} {gain:>7}"
            )
        out("  TAR@FMR x: share of same-person pairs accepted where a share x of")
        out("  different-person pairs is; gain: points over raw at the rate compared.")
    state = "not used: the raw embedding is used"
    if report.usable_now:
        state = "used for suggestions and for placing new faces" if report.places else "used"
        if not report.places:
            state += " for suggestions; new faces are placed on the raw embedding"
    out(f"Projection: {report.method if report.used else 'none'} ({state}).")
    out(textwrap.fill(report.reason, 80))
    if report.usable_now and report.placement is None:
        out(
            textwrap.fill(
                "Placing new faces was not measured for this projection (learned by an older "
                "photocluster): new faces are placed on the raw embedding until "
                "`photocluster learn` measures it.",
                80,
            )
        )
    if report.note:
        out(textwrap.fill(report.note, 80))


@app.command("learn")
@help_with(min_people=MIN_PEOPLE)
def learn_command(
    db: DbOption = None,
    report_only: Annotated[
        bool,
        typer.Option(
            "--report", help="Show the stored projection and what it gained; learn nothing."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Learn from your names and rejections how to compare faces in this library.

    Learns a projection of the face embeddings from the faces you confirmed (by naming people,
    merging or assigning) and the faces you rejected, measures it on people it was not learned
    from (cross-validation over your named people), and keeps it only if it accepts more of one
    person's pairs than the raw embedding at the same false-match rate. Otherwise the raw
    embedding stays in use, and the report says why. Needs at least {min_people} named people
    with 2 or more confirmed faces. Learning again replaces what is stored.

    Example: photocluster learn --report
    """
    settings = make_settings(db)
    why: str | None = None
    with catalog_for(settings, write=not report_only) as catalog, catalog.session() as session:
        if report_only:
            report = stored_report(session)
            why = relearn_reason(session)
            if report is None:
                if as_json:
                    out(json.dumps({"schema": LEARN_SCHEMA_VERSION, "projection": None}))
                else:
                    out("Nothing learned yet: the raw embedding is used.")
                if why:
                    err(f"Run `photocluster learn` to learn ({why}).")
                return
        else:
            report = learn_projection(session)
    if as_json:
        out(json.dumps({"schema": LEARN_SCHEMA_VERSION, "projection": report.to_dict()}, indent=2))
        return
    _print(report)
    if report_only and why:
        err(f"Decisions changed since: `photocluster learn` would learn again ({why}).")
    elif report.seconds is not None and report.methods:  # nothing to time when refused
        err(f"Learned in {report.seconds:.1f} s.")
