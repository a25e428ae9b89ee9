"""Scan throughput (photos/s): 1 vs 2 local workers, and a local Dask cluster (run by hand).

    uv run python bench/bench_scan_throughput.py [--photos 40] [--size 1600] [--keep DIR]

Builds ``--photos`` JPEGs (long side ``--size`` px) in a temporary folder from the labelled
photos in ../shared/faces (never copied into the repository): even photos are one upscaled
portrait, odd ones a composite of 2-4 people. Then times ``photocluster scan`` into a fresh
SQLite catalog with ``-j 1``, ``-j 2``, and ``--executor dask`` against a `dask scheduler` with
two single-threaded `dask worker` processes on 127.0.0.1, cold (first scan: workers load dlib)
and warm (a second fresh catalog: models already loaded). The machine load (`uptime`) is
printed beside the figures, because the CPU may be shared. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import NO_CLUSTER, labelled_photos

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "faces"
LOCAL = ["--host", "127.0.0.1", "--dashboard-address", ":0"]
ONE_THREAD = ["--nworkers", "1", "--nthreads", "1"]
DASK = Path(sys.executable).parent / "dask"


def build(out: Path, n: int, size: int, seed: int = 11) -> None:
    rng = random.Random(seed)
    pool = labelled_photos()
    out.mkdir(parents=True, exist_ok=True)
    w, h = size, size * 3 // 4
    for i in range(n):
        canvas = Image.new("RGB", (w, h), (rng.randrange(60, 200),) * 3)
        if i % 2 == 0:
            src = Image.open(rng.choice(pool)).convert("RGB")
            src = src.resize((round(src.width * h / src.height), h), Image.Resampling.BICUBIC)
            canvas.paste(src, ((w - src.width) // 2, 0))
        else:
            count = rng.randrange(2, 5)
            for k in range(count):
                src = Image.open(rng.choice(pool)).convert("RGB")
                src.thumbnail((w // count, h))
                canvas.paste(src, (k * (w // count), rng.randrange(0, max(1, h - src.height))))
        canvas.save(out / f"photo_{i:03d}.jpg", quality=90)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def scan(folder: Path, db: Path, *args: str) -> tuple[float, dict[str, object]]:
    cmd = [sys.executable, "-m", "photocluster", "scan", str(folder), "--db", str(db)]
    cmd += ["--json", "-q", *NO_CLUSTER, *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"scan failed: {proc.stderr}")
    return wall, json.loads(proc.stdout)


class LocalDask:
    """`dask scheduler` + n single-threaded `dask worker` processes on 127.0.0.1."""

    def __init__(self, tmp: Path, workers: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        sched_file = tmp / "scheduler.json"
        common = {"cwd": ROOT, "start_new_session": True, "stderr": subprocess.DEVNULL}
        self.procs.append(
            subprocess.Popen(
                [
                    str(DASK),
                    "scheduler",
                    *LOCAL,
                    "--port",
                    "0",
                    "--scheduler-file",
                    str(sched_file),
                ],
                **common,  # type: ignore[call-overload]
            )
        )
        while not sched_file.exists() or not sched_file.read_text():
            time.sleep(0.1)
        time.sleep(0.1)
        self.address = json.loads(sched_file.read_text())["address"]
        for _ in range(workers):
            self.procs.append(
                subprocess.Popen(
                    [str(DASK), "worker", *LOCAL, *ONE_THREAD, "--scheduler-file", str(sched_file)],
                    **common,  # type: ignore[call-overload]
                )
            )
        from distributed import Client

        with Client(self.address, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--size", type=int, default=1600)
    parser.add_argument("--keep", type=Path, help="build the photos here and keep them")
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"needs the labelled photos in {SHARED}")
    tmp = Path(tempfile.mkdtemp(prefix="pc-throughput-"))
    photos = args.keep or tmp / "photos"
    try:
        if not (photos.exists() and len(list(photos.glob("*.jpg"))) == args.photos):
            build(photos, args.photos, args.size)
        print(f"{args.photos} photos, long side {args.size} px, in {photos}")
        print(f"load before: {uptime()}")
        rows: list[tuple[str, float, float, int]] = []

        def record(name: str, wall: float, summary: dict[str, object]) -> None:
            n = int(summary["new"])  # type: ignore[call-overload]
            assert n == args.photos, summary
            scan_s = float(summary["seconds"])  # type: ignore[arg-type]
            rows.append((name, wall, scan_s, int(summary["faces_found"])))  # type: ignore[call-overload]
            print(
                f"{name:<28} {n / scan_s:6.2f} photos/s  (scan {scan_s:6.1f} s, "
                f"process {wall:6.1f} s, faces {summary['faces_found']})",
                flush=True,
            )

        for jobs in (1, 2):
            record(f"local -j {jobs}", *scan(photos, tmp / f"local{jobs}.sqlite3", "-j", str(jobs)))
        cluster = LocalDask(tmp, workers=2)
        try:
            for run in ("cold", "warm"):
                record(
                    f"dask 2x1 thread ({run})",
                    *scan(
                        photos,
                        tmp / f"dask_{run}.sqlite3",
                        "--executor",
                        "dask",
                        "--scheduler",
                        cluster.address,
                    ),
                )
        finally:
            cluster.close()
        print(f"load after:  {uptime()}")
        one = rows[0][2]
        for name, _wall, scan_s, faces in rows[1:]:
            print(f"speed-up vs local -j 1: {name:<28} {one / scan_s:5.2f}x (faces {faces})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
