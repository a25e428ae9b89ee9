"""`tune`: compare clustering parameters on the user's own catalog (reads only)."""

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
from photocluster.errors import PhotoclusterError
from photocluster.evaluation.tuning import (
    DEFAULT_GRID,
    TuneData,
    TuneRow,
    load_tune_data,
    tune_grid,
)
from photocluster.people.assign import saved_params
from photocluster.people.params import ClusterParams

_D = ClusterParams()


def _values(text: str, kind: type, option: str) -> list[float | int]:
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise PhotoclusterError(f"{option} takes comma-separated numbers, not {text!r}") from exc
    if not values:
        raise PhotoclusterError(f"{option} needs at least one value")
    return values


TUNE_LEGEND = """\
Columns: size, samples, spread = --min-cluster-size, --min-samples,
--spread-ratio; people = people found; unassigned = share of faces in no
person; on the faces you named: precision = share of the pairs put together that
are one person, recall = share of each person's pairs put together, purity =
share of faces whose person is mostly theirs (- until you name people);
* = the setting this catalog clusters with (remembered, else the defaults).\
"""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("tune")
def tune_command(
    db: DbOption = None,
    sizes: Annotated[
        str, typer.Option(help="min cluster sizes to try (comma-separated).")
    ] = ",".join(map(str, DEFAULT_GRID["min_cluster_size"])),
    samples: Annotated[str, typer.Option(help="min samples to try (comma-separated).")] = ",".join(
        map(str, DEFAULT_GRID["min_samples"])
    ),
    spreads: Annotated[
        str,
        typer.Option(
            help="spread ratios to try (comma-separated): how far beyond a person's own typical "
            "face a face may sit and still be theirs."
        ),
    ] = ",".join(map(str, DEFAULT_GRID["spread_ratio"])),
    max_faces: Annotated[
        int, typer.Option(help="Cluster a random sample of at most this many faces.", min=10)
    ] = 20_000,
    quiet: QuietOption = False,
    as_json: JsonOption = False,
) -> None:
    """Show how people count, unassigned share and agreement with your names change across a
    small grid of clustering parameters, on this catalog. Writes nothing.

    Precision, recall and purity are measured on faces you confirmed by naming people (run
    `photocluster name` first to get them); purity is the share of those faces whose cluster is
    mostly their own person. The parameters this catalog clusters with (remembered by
    `cluster`, else the defaults) are marked with *; the others not in the grid come from them.

    Example: photocluster tune --sizes 2,4 --spreads 1.4,1.5,1.6
    """
    settings = make_settings(db, quiet)
    grid = {
        "min_cluster_size": _values(sizes, int, "--sizes"),
        "min_samples": _values(samples, int, "--samples"),
        "spread_ratio": _values(spreads, float, "--spreads"),
    }
    try:
        for combo_size in grid["min_cluster_size"]:
            ClusterParams(min_cluster_size=int(combo_size))
        for s in grid["min_samples"]:
            ClusterParams(min_samples=int(s))
        for a in grid["spread_ratio"]:
            ClusterParams(spread_ratio=float(a))
    except ValueError as exc:
        raise PhotoclusterError(str(exc)) from exc
    with catalog_for(settings) as catalog:
        base = saved_params(catalog) or ClusterParams()
        with catalog.session() as session:
            data = load_tune_data(session, max_faces)
    rows = tune_grid(data, base, grid, TqdmProgress(settings.quiet, unit="run"))
    if as_json:
        out(json.dumps(_tune_dict(data, rows), indent=2))
        return
    if len(data.x) < data.sampled_from:
        err(f"Clustered a random sample of {len(data.x)} of {data.sampled_from} faces.")
    out(" size samples spread  people unassigned  precision recall purity")
    for r in rows:
        p = r.params
        mark = "*" if r.is_current else " "
        out(
            f"{mark}{p['min_cluster_size']:>4} {p['min_samples']:>7} {p['spread_ratio']:>6}"
            f"  {r.people:>6} {100 * r.unassigned_share:>9.1f}%  {_fmt(r.precision):>9}"
            f" {_fmt(r.recall):>6} {_fmt(r.purity):>6}"
        )
    out(TUNE_LEGEND)
    if rows and rows[0].named_faces < 2:
        out("(name some people with `photocluster name` to see precision, recall and purity)")
    out(
        "Apply a setting with e.g. `photocluster cluster --full --min-cluster-size "
        f"{_D.min_cluster_size} --min-samples {_D.min_samples} --spread-ratio "
        f"{_D.spread_ratio}` (names and confirmed faces are kept)."
    )


def _tune_dict(data: TuneData, rows: list[TuneRow]) -> dict[str, object]:
    """`tune --json`."""
    return {
        "faces": len(data.x),
        "faces_in_catalog": data.sampled_from,
        "rows": [
            {
                **r.params,
                "current": r.is_current,
                "people": r.people,
                "unassigned_share": round(r.unassigned_share, 4),
                "named_faces": r.named_faces,
                "precision": r.precision,
                "recall": r.recall,
                "purity": r.purity,
            }
            for r in rows
        ],
    }
