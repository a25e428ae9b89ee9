"""`find`: search speed and recall at scale, and how trustworthy its verdicts are.

``speed`` (synthetic faces around the real identities of ../shared/faces, bench/synth_faces.py):
for each catalog size, 1 000 held-out faces are looked up one at a time by exact blocked NumPy
search (what `find` does; the baseline, same run) and by the HNSW index (at each ``--ef``
efSearch). Prints queries/s, recall@10 of HNSW against exact search, build time, and the saved
index's size and load time (read + CRC check + deserialise).

``verdicts`` (real faces, on each ``--catalog DB ROOT``): a copy of the scanned, labelled catalog
is split by photo; one half (minus every photo of ``--strangers`` people with several photos) is
clustered and its people named after the majority label of their faces (a user naming them);
the other half's largest faces are then looked up with `find`'s matching. A query is a stranger's
when no photo of its label is left in the catalog: the people left out, and on ../shared/lfw-dev
(100 people with 6-12 photos among 500 with one) the one-photo people whose photo fell in the
query half. Prints each verdict's share of in-catalog faces (how often its person is right, and
how many of the wrong ones went to a person holding some of that person's photos: a mixed
cluster, which `find` cannot undo) and of strangers, then what other rules would accept.

    uv run python bench/bench_find.py speed --sizes 100000 1000000 --ef 128 256 512 1024
    uv run python bench/bench_find.py verdicts --catalog /tmp/x/faces.sqlite3 ../shared/faces \\
        --catalog /tmp/x/lfw.sqlite3 ../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import DEFAULT_DB, DEFAULT_ROOT, real_identities, synthesise

from photocluster.index import store as face_index
from photocluster.index.store import FaceIndex, Fingerprint, exact_search
from photocluster.people.find import FaceAnswer, neighbour_share, own_spread

if TYPE_CHECKING:
    from photocluster.catalog.db import Catalog

K = 10


def speed(db: str, root: str, sizes: list[int], queries: int, efs: list[int]) -> None:
    default_ef = face_index.HNSW_EF_SEARCH
    real = real_identities(db, root)
    for n in sizes:
        x, _ = synthesise(real, n + queries, seed=n)
        pick = np.random.default_rng(n).choice(len(x), size=queries, replace=False)
        held = np.zeros(len(x), dtype=bool)
        held[pick] = True
        q, x = x[held], x[~held]
        ids = np.arange(1, n + 1, dtype=np.int64)
        # exact, one query at a time
        exact = FaceIndex.build(ids, x, ann=False)
        singles = min(queries, 200 if n >= 500_000 else queries)
        t = time.perf_counter()
        for row in q[:singles]:
            exact.search(row[None, :], K)
        exact_qps = singles / (time.perf_counter() - t)
        _, truth = exact_search(x, ids, q, K)
        truth_d = np.linalg.norm(x[truth - 1].astype(np.float64) - q[:, None, :], axis=2)
        # Near-ties (burst shots, near-identical faces) make the exact top 10 arbitrary in its
        # last places, so recall also counts an answer as right when it is as near as the exact
        # 10th, within 1e-4 (float32 rounding; distances that matter are 0.3-0.6).
        limit = truth_d.max(axis=1, keepdims=True) + 1e-4
        del exact
        t = time.perf_counter()
        ann = FaceIndex.build(ids, x, ann=True)
        build = time.perf_counter() - t
        print(
            f"{n:>8} faces: exact {exact_qps:8.1f} q/s (one query at a time, the baseline); "
            f"HNSW built in {build:.1f} s",
            flush=True,
        )
        for ef in efs:
            face_index.HNSW_EF_SEARCH = ef
            t = time.perf_counter()
            got = np.vstack([ann.search(row[None, :], K)[1] for row in q])
            ann_qps = queries / (time.perf_counter() - t)
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(got, truth, strict=True)])
            rows = np.maximum(got, 1) - 1  # ids are 1..n
            true_d = np.linalg.norm(x[rows].astype(np.float64) - q[:, None, :], axis=2)
            by_distance = float(np.mean((true_d <= limit) & (got > 0)))
            top1 = float(np.mean(true_d[:, 0] <= truth_d.min(axis=1) + 1e-4))
            print(
                f"{'':8}  HNSW efSearch {ef:5}: {ann_qps:8.1f} q/s (x{ann_qps / exact_qps:.1f}), "
                f"recall@{K} {by_distance:.4f} by distance ({recall:.4f} by id), "
                f"nearest right {top1:.4f}",
                flush=True,
            )
        face_index.HNSW_EF_SEARCH = default_ef
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            ann.save(folder, Fingerprint.of_ids(ids), "bench")
            size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
            t = time.perf_counter()
            FaceIndex.load(folder, "bench")
            load = time.perf_counter() - t
            t = time.perf_counter()
            FaceIndex.load(folder, "bench", graph=False)  # as find loads it
            load_find = time.perf_counter() - t
        del ann
        print(
            f"{'':8}  index files {size:5.0f} MiB; load (read + CRC + deserialise) with the "
            f"graph {load:5.2f} s, without it (as find does) {load_find:5.2f} s"
            f" | peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
            flush=True,
        )


@dataclass
class Lookup:
    """One query face of the verdicts bench: its truth and what `find` answered."""

    truth: str
    stranger: bool  # no photo of this person is in the catalog
    right: bool  # the best candidate carries the truth's name
    mixed: bool  # not right, but the best candidate holds catalog photos of the truth
    got: str | None  # the best candidate's name (a user's, after most of their labels)
    answer: FaceAnswer


def verdict_lookups(db: str, root: str, strangers: int) -> tuple[list[Lookup], str]:
    """Split a labelled catalog (a copy of ``db``) by photo, cluster and name one half, look the
    other half up. Returns the lookups and a line saying what was measured."""
    from photocluster.catalog.db import open_catalog
    from photocluster.index.store import sync_index
    from photocluster.people.assign import ClusterOptions, cluster_catalog
    from photocluster.people.find import match_faces

    tmp = Path(tempfile.mkdtemp(prefix="bench-find-"))
    try:
        work = str(tmp / "catalog.sqlite3")
        for suffix in ("", "-wal", "-shm"):  # a catalog in WAL mode may hold rows beside it
            if os.path.exists(db + suffix):
                shutil.copy(db + suffix, work + suffix)
        catalog = open_catalog(work)
        labels, absent, in_catalog, queries = split_catalog(catalog, root, strangers)
        cluster_catalog(catalog, ClusterOptions(), full=True)
        votes, names = name_people(catalog, labels)
        index, _ = sync_index(catalog, tmp / "cache")
        x = np.stack([v for _, v in queries])
        t = time.perf_counter()
        answers = match_faces(catalog, index, x, [(0, 0, 1, 1)] * len(x), top=K)
        took = time.perf_counter() - t
        catalog.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    lookups = []
    for (truth, _), a in zip(queries, answers, strict=True):
        got = (a.best.name or names.get(a.best.person_id)) if a.best else None
        holds = a.best is not None and truth in votes.get(a.best.person_id, Counter())
        lookups.append(
            Lookup(truth, truth not in in_catalog, got == truth, holds and got != truth, got, a)
        )
    n_strangers = sum(q.stranger for q in lookups)
    left_out = sum(q.stranger and q.truth in absent for q in lookups)
    about = (
        f"{len(lookups)} query faces ({len(lookups) - n_strangers} of people in the catalog, "
        f"{n_strangers} of strangers: {left_out} of {strangers} people left out, "
        f"{n_strangers - left_out} of people whose every photo is in the query half); "
        f"{len(index.ids)} catalog faces; {took / len(x) * 1000:.1f} ms per face"
    )
    return lookups, about


def split_catalog(
    catalog: Catalog, root: str, strangers: int
) -> tuple[dict[int, str | None], set[str], set[str], list[tuple[str, np.ndarray]]]:
    """Photos leave the catalog by content hash (the query half), and every photo of
    ``strangers`` people drawn among those with several photos. Returns each photo's label, the
    people left out, the labels still in the catalog and the query faces (label, embedding:
    each query photo's largest face)."""
    from sqlalchemy import delete, select

    from photocluster.catalog.embeddings import blob_to_embedding
    from photocluster.catalog.models import Face, Photo
    from photocluster.evaluation.evaluate import label_of

    with catalog.session() as s:
        rows = s.execute(select(Photo.id, Photo.path, Photo.content_hash)).all()
    labels = {pid: label_of(path, root) for pid, path, _ in rows}
    photos_of = Counter(v for v in labels.values() if v)
    # people left out are drawn among those with several photos (one-photo people whose
    # photo falls in the query half are strangers already)
    people = sorted(v for v, n in photos_of.items() if n > 1)
    rng = np.random.default_rng(0)
    absent = set(rng.choice(people, size=strangers, replace=False).tolist())
    # photos go to the query half by content hash; left-out people's photos all leave
    query_half = {pid for pid, _, h in rows if h and int(h[:8], 16) % 2}
    gone = query_half | {pid for pid, lab in labels.items() if lab in absent}
    in_catalog = {lab for pid, lab in labels.items() if lab and pid not in gone}
    with catalog.session() as s:
        largest: dict[int, tuple[int, bytes]] = {}
        for photo_id, size, blob in s.execute(
            select(Face.photo_id, Face.size, Face.embedding).where(Face.photo_id.in_(gone))
        ):
            if photo_id not in largest or size > largest[photo_id][0]:
                largest[photo_id] = (size, blob)
        s.execute(delete(Photo).where(Photo.id.in_(gone)))
    queries = [(str(labels[p]), blob_to_embedding(b)) for p, (_, b) in largest.items() if labels[p]]
    return labels, absent, in_catalog, queries


def name_people(
    catalog: Catalog, labels: dict[int, str | None]
) -> tuple[dict[int, Counter[str]], dict[int, str]]:
    """Each person named as a user would: after most of their faces' labels (names are unique:
    a split person keeps one name). Returns the label votes per person and the names."""
    from sqlalchemy import select, update

    from photocluster.catalog.models import Face, Person, Photo

    with catalog.session() as s:
        owners = s.execute(
            select(Face.person_id, Photo.id)
            .join(Photo, Photo.id == Face.photo_id)
            .where(Face.person_id.is_not(None))
        ).all()
        votes: dict[int, Counter[str]] = {}
        for pid, photo_id in owners:
            if labels.get(photo_id):
                votes.setdefault(pid, Counter())[str(labels[photo_id])] += 1
        names = {pid: c.most_common(1)[0][0] for pid, c in votes.items()}
        s.execute(update(Person).values(name=None))
        used: set[str] = set()
        for pid, name in names.items():
            if name not in used:
                s.execute(update(Person).where(Person.id == pid).values(name=name))
                used.add(name)
    return votes, names


def _rule(
    cap: float, margin: float = 0.0, ratio: float = 0.0, share: float = 0.0, own: bool = True
) -> Callable[[Lookup], bool]:
    """Accept the best candidate within ``cap`` of its centroid, ``margin`` before the runner-up,
    within ``ratio`` x its spread (``own``: corrected for the faces being part of their own
    centroid, as `find` does; else the raw median, as `cluster` uses for faces it attaches) and
    with ``share`` of the face's nearest catalog faces theirs (0: no such test)."""

    def accept(q: Lookup) -> bool:
        b, r = q.answer.best, q.answer.runner_up
        if b is None or b.centroid_distance > cap:
            return False
        if (r.centroid_distance if r else np.inf) - b.centroid_distance < margin:
            return False
        spread = own_spread(b) if own else b.spread
        if ratio > 0 and (b.faces < 2 or b.centroid_distance > ratio * spread):
            return False
        return neighbour_share(b) >= share

    return accept


RULES: list[tuple[str, Callable[[Lookup], bool]]] = [
    ("centroid <= 0.50, margin 0.05 (known before)", _rule(0.50, 0.05)),
    ("... and within 1.5 x own spread", _rule(0.50, 0.05, 1.5)),
    ("... and within 1.5 x raw spread", _rule(0.50, 0.05, 1.5, own=False)),
    ("... and 3 of 5 nearest faces theirs", _rule(0.50, 0.05, share=0.6)),
    ("... and 4 of 5 nearest faces theirs", _rule(0.50, 0.05, share=0.8)),
    ("... 1.5 x own spread, 3 of 5 nearest", _rule(0.50, 0.05, 1.5, 0.6)),
    ("... 1.5 x own spread, 4 of 5 (known now)", _rule(0.50, 0.05, 1.5, 0.8)),
    ("... the same with 1.4 x own spread", _rule(0.50, 0.05, 1.4, 0.8)),
    ("... the same with centroid <= 0.54", _rule(0.54, 0.05, 1.5, 0.8)),
    (
        "centroid <= 0.54 or a face <= 0.51 (any before)",
        lambda q: (
            _rule(0.54)(q) or (q.answer.best is not None and q.answer.best.nearest_face <= 0.51)
        ),
    ),
    ("centroid <= 0.50, 1.5 x spread, 3 of 5 (any now)", _rule(0.50, 0.0, 1.5, 0.6)),
    ("the same with 2 x own spread", _rule(0.50, 0.0, 2.0, 0.6)),
    ("cluster's attach rule (0.54, 0.05, 1.5 x, 3 of 5)", _rule(0.54, 0.05, 1.5, 0.6)),
]


def verdicts(catalogs: list[tuple[str, str]], strangers: int) -> None:
    for db, root in catalogs:
        lookups, about = verdict_lookups(db, os.path.abspath(root), strangers)
        print(f"== {db} ({root})\n{about}")
        print_verdicts(lookups)


def print_verdicts(lookups: list[Lookup]) -> None:
    known = [q for q in lookups if not q.stranger]
    n_strangers = len(lookups) - len(known)
    print(
        "verdict      people in the catalog (person right; wrong: of them to a person holding"
        " some of their photos) | strangers"
    )
    for v in ("known", "probably", "unknown"):
        mine = [q for q in known if q.answer.verdict == v]
        right = sum(q.right for q in mine)
        mixed = sum(q.mixed for q in mine)
        others = [q for q in lookups if q.stranger and q.answer.verdict == v]
        print(
            f"  {v:<9} {len(mine):5} ({len(mine) / max(1, len(known)):5.1%}; right {right:4}, "
            f"wrong {len(mine) - right:3}: {mixed:3} mixed) | {len(others):4} "
            f"({len(others) / max(1, n_strangers):5.1%})"
        )
    confusions = Counter(
        (q.truth, q.got or "?") for q in lookups if q.stranger and q.answer.verdict == "known"
    )
    if confusions:
        print(
            "  strangers called known (as ?: a person seen only in unlabelled photos): "
            + ", ".join(f"{t} as {g} x{n}" for (t, g), n in confusions.most_common(8))
        )
    # what other rules would do: faces each accepts
    print(
        "accepted if ...                                    in catalog: right / wrong (mixed)"
        " | strangers"
    )
    right = np.array([q.right for q in lookups], dtype=bool)
    mixed = np.array([q.mixed for q in lookups], dtype=bool)
    stranger = np.array([q.stranger for q in lookups], dtype=bool)
    for label, accept in RULES:
        ok = np.array([accept(q) for q in lookups], dtype=bool)
        print(
            f"  {label:<50} {(ok & right & ~stranger).sum() / max(1, len(known)):6.1%} / "
            f"{(ok & ~right & ~stranger).sum() / max(1, len(known)):5.1%} "
            f"({(ok & mixed).sum() / max(1, len(known)):5.1%})"
            f" | {(ok & stranger).sum() / max(1, n_strangers):5.1%}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["speed", "verdicts"])
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument(
        "--catalog",
        nargs=2,
        action="append",
        metavar=("DB", "ROOT"),
        help="verdicts: a labelled catalog and its photo folder (repeatable; default --db --root)",
    )
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument(
        "--ef", type=int, nargs="+", default=[face_index.HNSW_EF_SEARCH], help="efSearch values"
    )
    ap.add_argument("--strangers", type=int, default=8, help="people left out of the catalog")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    if args.mode == "speed":
        speed(args.db, root, args.sizes, args.queries, args.ef)
    else:
        verdicts(args.catalog or [(args.db, root)], args.strangers)


if __name__ == "__main__":
    main()
