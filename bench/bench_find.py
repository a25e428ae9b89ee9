"""`find`: search speed and recall at scale, and how trustworthy its verdicts are.

``speed`` (synthetic faces around the real identities of ../shared/faces, bench/synth_faces.py):
for each catalog size, 1 000 held-out faces are looked up one at a time by exact blocked NumPy
search (what `find` does; the baseline, same run) and by the HNSW index (at each ``--ef``
efSearch). Prints queries/s, recall@10 of HNSW against exact search, build time, and the saved
index's size and load time (read + CRC check + deserialise).

``verdicts`` (real faces): the scanned ../shared/faces catalog is split by photo; one half (minus
every photo of a few people, who stay strangers) is clustered and its people named after the
majority label of their faces (a user naming them); the other half's labelled faces are then
looked up with `find`'s matching. Prints how often each verdict comes out and how often its
person is right, and what strangers get.

    uv run python bench/bench_find.py speed --sizes 100000 1000000 --ef 128 256 512 1024
    uv run python bench/bench_find.py verdicts --db /tmp/shared_faces.sqlite3 --root ../shared/faces
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
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import DEFAULT_DB, DEFAULT_ROOT, real_identities, synthesise

from photocluster import face_index
from photocluster.face_index import FaceIndex, Fingerprint, exact_search

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


def verdicts(db: str, root: str, strangers: int) -> None:
    from sqlalchemy import delete, select, update

    from photocluster.db import blob_to_embedding, open_catalog
    from photocluster.evaluate import label_of
    from photocluster.face_index import sync_index
    from photocluster.find import match_faces
    from photocluster.models import Face, Person, Photo
    from photocluster.people import ClusterOptions, cluster_catalog

    tmp = Path(tempfile.mkdtemp(prefix="bench-find-"))
    try:
        work = str(tmp / "catalog.sqlite3")
        shutil.copy(db, work)
        catalog = open_catalog(work)
        with catalog.session() as s:
            rows = s.execute(select(Photo.id, Photo.path, Photo.content_hash)).all()
        labels = {pid: label_of(path, root) for pid, path, _ in rows}
        people = sorted({v for v in labels.values() if v})
        rng = np.random.default_rng(0)
        absent = set(rng.choice(people, size=strangers, replace=False).tolist())
        # photos go to the query half by content hash; strangers' photos all leave the catalog
        query_half = {pid for pid, _, h in rows if h and int(h[:8], 16) % 2}
        gone = query_half | {pid for pid, lab in labels.items() if lab in absent}
        with catalog.session() as s:
            largest: dict[int, tuple[int, bytes]] = {}
            for photo_id, size, blob in s.execute(
                select(Face.photo_id, Face.size, Face.embedding).where(Face.photo_id.in_(gone))
            ):
                if photo_id not in largest or size > largest[photo_id][0]:
                    largest[photo_id] = (size, blob)
            s.execute(delete(Photo).where(Photo.id.in_(gone)))
        queries = [(labels[p], blob_to_embedding(b)) for p, (_, b) in largest.items() if labels[p]]
        cluster_catalog(catalog, ClusterOptions(), full=True)
        with catalog.session() as s:  # a user names each person after most of their faces
            owners = s.execute(
                select(Face.person_id, Photo.id)
                .join(Photo, Photo.id == Face.photo_id)
                .where(Face.person_id.is_not(None))
            ).all()
            votes: dict[int, Counter[str]] = {}
            for pid, photo_id in owners:
                if labels.get(photo_id):
                    votes.setdefault(pid, Counter())[labels[photo_id]] += 1
            names = {pid: c.most_common(1)[0][0] for pid, c in votes.items()}
            s.execute(update(Person).values(name=None))
            used: set[str] = set()
            for pid, name in names.items():
                if name not in used:  # names are unique: a split person keeps one name
                    s.execute(update(Person).where(Person.id == pid).values(name=name))
                    used.add(name)
        index, _ = sync_index(catalog, tmp / "cache")
        x = np.stack([v for _, v in queries])
        t = time.perf_counter()
        answers = match_faces(catalog, index, x, [(0, 0, 1, 1)] * len(x), top=K)
        took = time.perf_counter() - t
        catalog.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table: dict[tuple[bool, str], Counter[str]] = {}
    for (truth, _), a in zip(queries, answers, strict=True):
        best = a.best
        got = (best.name or names.get(best.person_id)) if best else None
        outcome = "right" if got == truth else "wrong"
        table.setdefault((truth in absent, a.verdict), Counter())[outcome] += 1
    known = [q for q in queries if q[0] not in absent]
    print(
        f"{len(queries)} query faces ({len(known)} of people in the catalog, "
        f"{len(queries) - len(known)} of {strangers} strangers); "
        f"{len(index.ids)} catalog faces; {took / len(x) * 1000:.1f} ms per face"
    )
    for stranger in (False, True):
        total = len(queries) - len(known) if stranger else len(known)
        print("strangers:" if stranger else "people in the catalog:")
        for v in ("known", "probably", "unknown"):
            c = table.get((stranger, v), Counter())
            n = c["right"] + c["wrong"]
            right = f", person right {c['right'] / n:.1%}" if n and not stranger else ""
            print(f"  {v:<9} {n:5} ({n / max(1, total):.1%}){right}")
    confusions = Counter(
        (truth, (a.best.name or "?") if a.best else "?")
        for (truth, _), a in zip(queries, answers, strict=True)
        if truth in absent and a.verdict == "known"
    )
    if confusions:
        print(
            "  strangers called known: "
            + ", ".join(f"{t} as {g} x{n}" for (t, g), n in confusions.most_common(6))
        )
    # what other thresholds would do: share of faces accepted (any verdict but unknown)
    rows = []
    for (truth, _), a in zip(queries, answers, strict=True):
        b = a.best
        if b is None:
            continue
        runner = a.runner_up.centroid_distance if a.runner_up else 9.0
        right = (b.name or names.get(b.person_id)) == truth
        rows.append((truth in absent, right, b.centroid_distance, b.nearest_face, runner))
    r = np.array(rows, dtype=float)
    print("accepted if ...                      in catalog: right / wrong | strangers")
    for label, ok in (
        ("centroid <= 0.50, margin 0.05", (r[:, 2] <= 0.50) & (r[:, 4] - r[:, 2] >= 0.05)),
        ("centroid <= 0.55, margin 0.05", (r[:, 2] <= 0.55) & (r[:, 4] - r[:, 2] >= 0.05)),
        ("centroid <= 0.55", r[:, 2] <= 0.55),
        ("centroid <= 0.60", r[:, 2] <= 0.60),
        ("nearest face <= 0.50", r[:, 3] <= 0.50),
        ("nearest face <= 0.53", r[:, 3] <= 0.53),
        ("nearest face <= 0.58", r[:, 3] <= 0.58),
        ("centroid <= 0.55 or nearest <= 0.53", (r[:, 2] <= 0.55) | (r[:, 3] <= 0.53)),
        ("centroid <= 0.55 or nearest <= 0.58", (r[:, 2] <= 0.55) | (r[:, 3] <= 0.58)),
    ):
        inside = (r[:, 0] == 0) & ok
        print(
            f"  {label:<32} {(inside & (r[:, 1] == 1)).sum() / max(1, len(known)):7.1%} / "
            f"{(inside & (r[:, 1] == 0)).sum() / max(1, len(known)):6.1%} | "
            f"{((r[:, 0] == 1) & ok).sum() / max(1, len(queries) - len(known)):6.1%}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["speed", "verdicts"])
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--root", default=DEFAULT_ROOT)
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
        verdicts(args.db, root, args.strangers)


if __name__ == "__main__":
    main()
