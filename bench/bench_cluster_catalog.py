"""`photocluster cluster` end to end on a synthetic catalog of 100 k or 1 M faces.

``bench_cluster_scale.py`` times the clustering arrays alone; this times what a user waits for:
the command reading every face from the catalog, clustering, matching clusters to people and
writing the people back. Above the face index's ANN size the first run also builds the HNSW
index (`find` uses it; clustering takes its k-NN graph from it). The catalog (SQLite, in a
temporary folder) holds one synthetic face per photo (``bench/synth_faces.py``: drawn around
the real identities of the labelled catalog ``--db``/``--root``, ../shared/faces by default;
from ../shared/lfw-dev with its one-photo strangers).

Three runs, each a fresh ``photocluster`` process timed from outside, with its peak RSS:

* ``first``: ``cluster`` on a catalog with no people (every face new);
* ``again``: ``cluster`` right after (incremental, nothing new: should cost little);
* ``full``: ``cluster --full`` (re-cluster everything and match clusters to the same people).

Pairwise precision, recall and F of the people against the synthetic truth (unassigned faces
as singletons, each stranger its own identity) and the share of strangers left alone are
printed for the first run.

    uv run python bench/bench_cluster_catalog.py --faces 100000
    uv run python bench/bench_cluster_catalog.py --faces 1000000 --keep /tmp/cat1m
    uv run python bench/bench_cluster_catalog.py --faces 1000000 \\
        --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import numpy as np
from sqlalchemy import insert, select

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from synth_faces import DEFAULT_DB, DEFAULT_ROOT, real_identities, synthesise

from photocluster.catalog.db import open_catalog
from photocluster.catalog.models import Face, Photo
from photocluster.evaluation.evaluate import pairwise_prf, people_and_strangers
from photocluster.ingest.encoder import EncoderParams


def build(db: str, x: np.ndarray, batch: int = 20_000) -> None:
    """A catalog with one photo and one face per row of ``x``, written in batches."""
    catalog = open_catalog(db)
    now = datetime.now()
    encoder = EncoderParams().key()
    with catalog.session() as s:
        for start in range(0, len(x), batch):
            stop = min(len(x), start + batch)
            s.execute(
                insert(Photo),
                [
                    {
                        "id": i + 1,
                        "path": f"/synthetic/{i // 1000:05d}/{i:08d}.jpg",
                        "size": 1,
                        "mtime_ns": 0,
                        "width": 1000,
                        "height": 1000,
                        "status": "ok",
                        "encoder": encoder,
                        "scanned_at": now,
                    }
                    for i in range(start, stop)
                ],
            )
            s.execute(
                insert(Face),
                [
                    {
                        "id": i + 1,
                        "photo_id": i + 1,
                        "left": 100,
                        "top": 100,
                        "right": 300,
                        "bottom": 300,
                        "size": 200,
                        "embedding": x[i].astype("<f4").tobytes(),
                        "confirmed": False,
                    }
                    for i in range(start, stop)
                ],
            )
            s.commit()
            print(f"  wrote {stop} faces", file=sys.stderr, flush=True)
    catalog.close()


def run(db: str, *args: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `photocluster cluster` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "photocluster", "cluster", "--db", db, *args],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    took = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest of any child so far: report it only when it grew.
    return took, (peak / 1024 if peak > before else float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=100_000)
    ap.add_argument("--db", default=DEFAULT_DB, help="scanned labelled catalog of --root")
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument("--keep", help="folder for the synthetic catalog (kept; reused if present)")
    args = ap.parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="pc-bench-")
    os.makedirs(folder, exist_ok=True)
    db = os.path.join(folder, f"synthetic-{args.faces}.sqlite3")
    real = real_identities(args.db, os.path.abspath(args.root))
    x, truth = synthesise(real, args.faces)
    if os.path.exists(db):
        os.remove(db)
    t = time.perf_counter()
    build(db, x)
    print(f"catalog of {args.faces} faces written in {time.perf_counter() - t:.0f} s", flush=True)
    del x
    # (the face index, built by the first run, goes beside the catalog: <catalog>-cache/)
    try:
        for name, extra in (("first", ()), ("again", ()), ("full", ("--full",))):
            took, peak = run(db, *extra)
            rss = f"{peak:.0f} MiB" if peak == peak else "no more than before"  # nan: not grown
            line = f"{args.faces:>8} faces: cluster {name:5} {took:7.1f} s, peak RSS {rss}"
            if name == "first":
                catalog = open_catalog(db, migrate=False)
                with catalog.session() as s:
                    rows = s.execute(select(Face.id, Face.person_id).order_by(Face.id)).all()
                catalog.close()
                got = np.array([r.person_id or 0 for r in rows])
                # unassigned faces count as singletons
                solo = got == 0
                got[solo] = -np.arange(1, solo.sum() + 1)
                prf = pairwise_prf(truth, got)
                people = len(set(got[~solo].tolist()))
                per = np.bincount(truth)
                _, strangers = people_and_strangers(truth, np.where(solo, -1, got))
                line += (
                    f", {people} people for {(per >= 2).sum()} true + {(per == 1).sum()}"
                    f" strangers, unassigned {solo.mean():.1%}, pairwise F {prf.f:.3f} "
                    f"(P {prf.precision:.3f} R {prf.recall:.3f})"
                )
                if strangers.left_alone_share is not None:
                    line += f", strangers left alone {strangers.left_alone_share:.1%}"
            print(line, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
