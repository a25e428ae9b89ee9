"""`tune`: how clustering parameters change the people of *this* catalog, without writing.

Runs the pure clustering over the catalog's embeddings for a small grid of parameters and
reports, per setting: people found, unassigned share, and — when the user has named people —
how well the clusters agree with those names (pairwise precision/recall of the named faces and
cluster purity). Nothing in the catalog changes.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face, Person
from photocluster.evaluation.evaluate import pairwise_prf
from photocluster.people.assign import check_clusterable
from photocluster.people.clustering import cluster_embeddings
from photocluster.people.params import ClusterParams
from photocluster.progress import NoProgress, Progress

DEFAULT_GRID: dict[str, Sequence[float | int]] = {
    "min_cluster_size": (2, 4, 8),
    "min_samples": (2, 3, 5),
    # The one parameter that matters most (README "How thresholds were chosen"); the attach
    # distance is only a cap behind it.
    "spread_ratio": (1.4, 1.5, 1.6),
}


@dataclass(frozen=True)
class TuneRow:
    params: dict[str, float | int]
    is_current: bool
    people: int
    unassigned_share: float
    named_faces: int
    precision: float | None  # pairwise, over faces of named people
    recall: float | None
    purity: float | None  # share of named faces whose cluster's majority name is theirs


@dataclass(frozen=True)
class TuneData:
    x: np.ndarray
    photo: np.ndarray
    name: np.ndarray  # the confirmed person's name, or "" for faces without one
    sampled_from: int


def load_tune_data(session: Session, max_faces: int, seed: int = 0) -> TuneData:
    """Embeddings, photos and confirmed names; a random sample of at most ``max_faces``."""
    check_clusterable(session)
    rows = session.execute(
        select(Face.photo_id, Face.embedding, Face.confirmed, Person.name)
        .outerjoin(Person, Face.person_id == Person.id)
        .order_by(Face.id)
    ).all()
    total = len(rows)
    if total > max_faces:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_faces, replace=False))
        rows = [rows[i] for i in keep]
    return TuneData(
        x=blobs_to_matrix([r.embedding for r in rows]).astype(np.float64),
        photo=np.array([r.photo_id for r in rows], dtype=np.int64),
        name=np.array([(r.name or "") if r.confirmed else "" for r in rows], dtype=object),
        sampled_from=total,
    )


def _purity(names: np.ndarray, labels: np.ndarray) -> float:
    """Share of named faces in a cluster whose majority name is their own (noise counts wrong)."""
    good = 0
    by_cluster: dict[int, Counter[str]] = {}
    for name, lab in zip(names.tolist(), labels.tolist(), strict=True):
        if lab >= 0:
            by_cluster.setdefault(lab, Counter())[name] += 1
    for counts in by_cluster.values():
        good += counts.most_common(1)[0][1]
    return good / len(names) if len(names) else 1.0


def tune_grid(
    data: TuneData,
    base: ClusterParams,
    grid: Mapping[str, Sequence[float | int]] | None = None,
    progress: Progress | None = None,
) -> list[TuneRow]:
    """Cluster once per grid point (other parameters from ``base``) and summarise each run."""
    grid = grid or DEFAULT_GRID
    progress = progress or NoProgress()
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    named = data.name != ""
    names = data.name[named]
    rows = []
    progress.start(len(combos), "Tuning")
    for combo in combos:
        values = dict(zip(keys, combo, strict=True))
        params = dataclasses.replace(base, **values)  # type: ignore[arg-type]
        labels = cluster_embeddings(data.x, params, data.photo)
        people = len(set(labels[labels >= 0].tolist()))
        unassigned = float((labels < 0).mean()) if len(labels) else 0.0
        precision = recall = purity = None
        if named.sum() >= 2:
            truth = np.unique(names, return_inverse=True)[1]
            prf = pairwise_prf(truth, labels[named])
            precision, recall = prf.precision, prf.recall
            purity = _purity(names, labels[named])
        rows.append(
            TuneRow(
                params=values,
                is_current=all(getattr(base, k) == v for k, v in values.items()),
                people=people,
                unassigned_share=unassigned,
                named_faces=int(named.sum()),
                precision=precision,
                recall=recall,
                purity=purity,
            )
        )
        progress.advance()
    progress.finish()
    return rows
