"""Start-up: `photocluster --help`, `status` and `cluster` (100 faces) against `import typer`.

Each command runs as a whole process, as a user starts it, in turn with the baseline
``python -c "import typer"`` (A B A B ..., after one warm-up each), so a drift of the machine's
speed hits both alike. Printed per command: the median wall time of each, and the median over
the pairs of the difference and of the ratio. The goals of issue 21: ``--help`` and ``status``
within 0.3 s of the baseline, ``cluster`` on a 100-face catalog under 1 s in all.

The catalog: 100 synthetic faces (one a photo) drawn around the real identities of a scanned
labelled catalog (``bench/synth_faces.py``; ``--db``/``--root``, ../shared/faces by default), or,
without one, around random identities; ``cluster`` runs on a fresh copy of it each time (every
face new: HDBSCAN and every step after it, people written), ``status`` on the clustered copy.

    uv run python bench/bench_startup.py
    uv run python bench/bench_startup.py --runs 11 --db /tmp/faces.sqlite3

The commands run without PYTHONDONTWRITEBYTECODE, as a user runs them (the warm-up writes the
bytecode caches). Replaces `bench_scan.py startup`, which scanned real photos first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_cluster_catalog import build
from synth_faces import DEFAULT_DB, DEFAULT_ROOT, real_identities, synthesise

BASELINE = [sys.executable, "-c", "import typer"]
# as a user runs them: Python may write its bytecode caches (this machine's test setting is off)
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def photocluster() -> list[str]:
    """The installed `photocluster` script beside this Python, else ``python -m``."""
    script = Path(sys.executable).with_name("photocluster")
    return [str(script)] if script.exists() else [sys.executable, "-m", "photocluster"]


def faces(n: int, db: str, root: str) -> np.ndarray:
    """``n`` synthetic faces around a labelled catalog's identities, or random ones."""
    if os.path.exists(db):
        return synthesise(real_identities(db, os.path.abspath(root)), n)[0]
    print(f"({db} not found: faces around random identities)", flush=True)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(n // 5, 128))
    centres *= 0.75 / np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[np.arange(n) % len(centres)] + rng.normal(scale=0.04, size=(n, 128))
    return x.astype(np.float32)


def wall(cmd: list[str], before: Callable[[], None] | None = None) -> float:
    """Seconds of one run of ``cmd`` (its output discarded); ``before`` runs first, untimed."""
    if before is not None:
        before()
    t = time.perf_counter()
    subprocess.run(
        cmd, check=True, env=USER_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - t


def paired(label: str, cmd: list[str], runs: int, before: Callable[[], None] | None = None) -> None:
    """``cmd`` and the baseline in turn; the medians, differences and ratios printed."""
    wall(cmd, before), wall(BASELINE)  # warm-up: bytecode caches, the page cache
    a, b = [], []
    for _ in range(runs):
        a.append(wall(cmd, before))
        b.append(wall(BASELINE))
    diff = statistics.median(x - y for x, y in zip(a, b, strict=True))
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    print(
        f"{label:28} {statistics.median(a):6.3f} s (min {min(a):.3f})   import typer "
        f"{statistics.median(b):.3f} s   difference {diff:+.3f} s   ratio {ratio:.1f}",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each (after a warm-up)")
    ap.add_argument("--faces", type=int, default=100)
    ap.add_argument("--db", default=DEFAULT_DB, help="scanned labelled catalog of --root")
    ap.add_argument("--root", default=DEFAULT_ROOT)
    args = ap.parse_args()
    folder = tempfile.mkdtemp(prefix="pc-startup-")
    try:
        empty = os.path.join(folder, "new.sqlite3")
        build(empty, faces(args.faces, args.db, args.root))
        db = os.path.join(folder, "catalog.sqlite3")

        def fresh() -> None:  # every face new again: no people, no face index
            for path in Path(folder).glob("catalog.sqlite3*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            shutil.copyfile(empty, db)

        pc = photocluster()
        print(f"{args.runs} runs each after a warm-up, median wall time (whole process)")
        paired("photocluster --help", [*pc, "--help"], args.runs)
        paired(
            f"cluster ({args.faces} new faces)",
            [*pc, "cluster", "--db", db, "-q"],
            args.runs,
            fresh,
        )
        paired("status", [*pc, "status", "--db", db], args.runs)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
