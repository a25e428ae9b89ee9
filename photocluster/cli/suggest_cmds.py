"""`suggestions`: who each face in no person (and each small unnamed person) may be."""

from __future__ import annotations

import json
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
from photocluster.index.store import FaceIndex, sync_index
from photocluster.people.projection import relearn_reason
from photocluster.people.suggestions import (
    LIKELY,
    SMALL_PERSON_FACES,
    Suggestion,
    as_json,
    face_places,
    shown_items,
    suggest,
)

MinScore = Annotated[
    float,
    typer.Option(
        help="Show suggestions whose best score is at least this (0 = all, with the ones "
        "probably nobody you named).",
        min=0.0,
        max=1.0,
    ),
]


@app.command("suggestions")
@help_with(small=SMALL_PERSON_FACES)
def suggestions_command(
    db: DbOption = None,
    as_json_: JsonOption = False,
    min_score: MinScore = LIKELY,
) -> None:
    """Who each face in no person may be: the named people it may be, best first, each with a
    score, the chance that it is that person.

    Small unnamed people (up to {small} faces) are suggested as a whole. Each line ends with
    the face's photo (a small person's first photo). Scores are measured on your own names
    (each named face looked up as if new, and as a stranger would be; every rejection, and
    every face of a person not named yet, counts as a wrong answer), so they sharpen as you
    name. Accept one with `assign FACE... --to NAME` (or `merge PERSON --into NAME`); refuse
    it with `reject FACE... --from NAME`, and that person is never suggested for those faces
    again. `name` offers them after the unnamed people. Reads only.

    Example: photocluster suggestions --min-score 0.8
    """
    settings = make_settings(db)
    with catalog_for(settings) as catalog:
        try:  # the face index's graph (a large library has one, from `scan`) finds neighbours
            index: FaceIndex | None = sync_index(catalog, settings.cache_dir)[0]
        except OSError:  # a cache folder that cannot be written: search without it
            index = None
        with catalog.session() as session:
            result = suggest(session, index=index)
            relearn = relearn_reason(session)
            if as_json_:
                out(json.dumps(as_json(session, result, min_score), indent=2))
                return
            shown = shown_items(result, min_score)
            places = face_places(session, {f for s in shown for f in s.face_ids})
    if result.note:
        err(result.note)
    photos = {f: path for f, (path, _box) in places.items()}
    for s in shown:
        out(_line(s, photos))
    left = len(result.items) - len(shown)
    if result.items or not result.note:
        err(
            f"{count(len(shown), 'suggestion')} (best score {min_score} or more)"
            + (f"; {left} more below it (--min-score 0 lists them)" if left else "")
            + f"; distances in the {result.space} embedding."
        )
    if relearn:
        err(
            f"Learning from your decisions is due ({relearn}): `photocluster learn` (or "
            "`photocluster name`) does it; until then distances are in the "
            f"{result.space} embedding."
        )
    if result.unclustered:
        err(
            f"{count(result.unclustered, 'face')} not clustered yet (not suggested): run "
            "`photocluster cluster`."
        )


def _line(s: Suggestion, photos: dict[int, str]) -> str:
    """`face 12` or `person 7 (3 faces)`, each candidate with its score, then the face's photo
    (a small person's first one, "+N more")."""
    what = (
        f"face {s.face_ids[0]}"
        if s.person_id is None
        else f"person {s.person_id} ({count(len(s.face_ids), 'face')})"
    )
    who = "; ".join(
        f"{c.name} {'?' if c.score is None else f'{c.score:.2f}'}" for c in s.candidates
    )
    verdict = "probably nobody you named" if s.nobody else f"probably {s.candidates[0].name}"
    where = [photos[f] for f in s.face_ids if f in photos]
    photo = (where[0] + (f" (+{len(where) - 1} more)" if len(where) > 1 else "")) if where else ""
    return f"{what}\t{verdict}\t{who or 'no named person near'}\t{photo}"
