"""Scan benchmarks (run by hand, not in CI). Prints figures; asserts nothing.

    uv run python bench/bench_scan.py speed   [--photos 24] [--baseline-photos 12]
                                              [--groups-every 3] [--encoders dlib,onnx]
    uv run python bench/bench_scan.py rescan  [--photos 10000]
    uv run python bench/bench_scan.py rss     [--sizes 500,2000,8000]

speed: 12-MP JPEGs (4032x3024, no EXIF rotation) built from ../shared/faces photos: upscaled
portraits, and every ``--groups-every``-th photo a multi-person composite with small faces
(3: 16 portraits and 8 group photos of 24). Times `photocluster scan` as a user runs it (the
whole process: start-up, the scan and the clustering after it; ``--no-cluster`` leaves that
out) with 1 and 2 workers and each ``--encoders`` face descriptor (dlib's own, or its ONNX
Runtime conversion) against the plain face_recognition loop (load_image_file +
face_encodings, one process) on the same photos in the same run, and reports which of the
loop's faces photocluster also finds (box IoU >= 0.3), split at 100 px wide. Then the encoding
time per 150x150 chip, dlib against ONNX Runtime, on the chips of those photos (each photo's
faces and mirror images in one batch, one thread, as a scan worker runs them).

(Start-up, `--help`, `status` and `cluster` on 100 faces against `import typer`: bench_startup.py.)
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "faces"
W, H = 4032, 3024
# Run the CLI as on a user's machine: Python caches compiled bytecode (some sandboxes and CI set
# PYTHONDONTWRITEBYTECODE, which makes every start recompile ~200 modules, ~0.5-1 s).
USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# Time the scan alone, not the clustering that follows it by default.
_HELP = subprocess.run(
    [sys.executable, "-m", "photocluster", "scan", "--help"], capture_output=True, text=True
).stdout
NO_CLUSTER = ["--no-cluster"] if "--no-cluster" in _HELP else []


def labelled_photos() -> list[Path]:
    photos = []
    for p in sorted(SHARED.rglob("*")):
        rel = p.relative_to(SHARED).parts
        if (
            len(rel) == 3
            and not rel[1].startswith("_")
            and p.suffix.lower() in (".jpg", ".jpeg", ".png")
            and "glint360k" not in rel[0]
        ):
            photos.append(p)
    return photos


def build_12mp(out: Path, n: int, seed: int = 7, groups_every: int = 2) -> list[Path]:
    """n 12-MP JPEGs: every ``groups_every``-th (from the second) a composite of 6-12 people,
    the others one upscaled portrait."""
    rng = random.Random(seed)
    pool = labelled_photos()
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(n):
        canvas = Image.new("RGB", (W, H), (rng.randrange(60, 200),) * 3)
        if i % groups_every != groups_every - 1:
            src = Image.open(rng.choice(pool)).convert("RGB")
            src = src.resize((round(src.width * H / src.height), H), Image.Resampling.BICUBIC)
            canvas.paste(src, ((W - src.width) // 2, 0))
        else:
            count = rng.randrange(6, 13)
            cols = 4
            for k in range(count):
                src = Image.open(rng.choice(pool)).convert("RGB")
                side = rng.randrange(300, 1100)  # long side: faces roughly 60-450 px wide
                src.thumbnail((side, side))
                x = (k % cols) * (W // cols) + rng.randrange(0, 80)
                y = (k // cols) * (H // 3) + rng.randrange(0, 80)
                canvas.paste(src, (x, y))
        path = out / f"photo_{i:03d}.jpg"
        canvas.save(path, quality=90)
        made.append(path)
    return made


def plain_loop(photos: list[Path]) -> tuple[float, dict[str, list[tuple[int, int, int, int]]]]:
    import warnings

    warnings.simplefilter("ignore")
    import face_recognition

    found: dict[str, list[tuple[int, int, int, int]]] = {}
    t0 = time.perf_counter()
    cpu0 = _cpu_self()
    for p in photos:
        img = face_recognition.load_image_file(str(p))
        locs = face_recognition.face_locations(img, 1)
        face_recognition.face_encodings(img, locs)
        found[str(p)] = [(left, top, right, bottom) for top, right, bottom, left in locs]
    global PLAIN_CPU
    PLAIN_CPU = _cpu_self() - cpu0
    return time.perf_counter() - t0, found


PLAIN_CPU = 0.0  # CPU seconds of the last plain_loop
LAST_CPU = 0.0  # CPU seconds (user + system, the whole process tree) of the last run_scan


def _cpu_self() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_scan(
    folder: Path, db: Path, jobs: int, *extra: str, cluster: bool = False
) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB, largest process of the tree) of a CLI scan."""
    cmd = [
        sys.executable,
        "-m",
        "photocluster",
        "scan",
        str(folder),
        "--db",
        str(db),
        "--jobs",
        str(jobs),
        "--quiet",
        *([] if cluster else NO_CLUSTER),
        *extra,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=USER_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    global LAST_CPU
    LAST_CPU = usage.ru_utime + usage.ru_stime  # workers included: the scan waited for them
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"scan failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss


def catalog_faces(db: Path) -> dict[str, list[tuple[int, int, int, int]]]:
    con = sqlite3.connect(db)
    out: dict[str, list[tuple[int, int, int, int]]] = {}
    for path, left, top, right, bottom in con.execute(
        "SELECT p.path, f.left, f.top, f.right, f.bottom FROM faces f JOIN photos p "
        "ON p.id = f.photo_id"
    ):
        out.setdefault(path, []).append((left, top, right, bottom))
    con.close()
    return out


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def recall(ref: dict[str, list], got: dict[str, list], big: bool) -> tuple[int, int]:
    hit = total = 0
    for path, boxes in ref.items():
        for box in boxes:
            if (box[2] - box[0] >= 100) != big:
                continue
            total += 1
            hit += any(iou(box, g) >= 0.3 for g in got.get(path, []))
    return hit, total


def chip_times(photos: list[Path]) -> tuple[int, float, float]:
    """Chips, and seconds per chip for dlib and for ONNX Runtime on the same chips: each photo's
    faces and their mirror images in one call, one thread (as one scan worker)."""
    from photocluster.ingest.analyse import analyse_file
    from photocluster.ingest.encoder import DlibEncoder, EncoderParams
    from photocluster.ingest.onnx_encoder import OnnxEncoder, ensure_model

    class Timed(OnnxEncoder):
        def __init__(self, onnx_path: Path) -> None:
            super().__init__("hog", onnx_path)
            self.n, self.dlib_s, self.onnx_s = 0, 0.0, 0.0

        def descriptors(self, chips, jitters):  # type: ignore[no-untyped-def]
            DlibEncoder.descriptors(self, chips[:1], 1)  # models loaded outside the timing
            super().descriptors(chips[:1], 1)
            t0 = time.perf_counter()
            DlibEncoder.descriptors(self, chips, jitters)
            t1 = time.perf_counter()
            out = super().descriptors(chips, jitters)
            t2 = time.perf_counter()
            self.n += len(chips)
            self.dlib_s += t1 - t0
            self.onnx_s += t2 - t1
            return out

    encoder = Timed(ensure_model()[0].onnx_path)
    for p in photos:
        st = p.stat()
        analyse_file(str(p), st.st_size, st.st_mtime_ns, encoder, EncoderParams())
    return encoder.n, encoder.dlib_s / max(1, encoder.n), encoder.onnx_s / max(1, encoder.n)


def speed(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="pc-bench-"))
    print(f"load average at the start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
    photos = build_12mp(work / "photos", args.photos, groups_every=args.groups_every)
    base_photos = photos[: args.baseline_photos]
    groups = sum(1 for i in range(len(photos)) if i % args.groups_every == args.groups_every - 1)
    base_groups = sum(
        1 for i in range(len(base_photos)) if i % args.groups_every == args.groups_every - 1
    )
    print(
        f"{len(photos)} photos of {W}x{H} in {work / 'photos'}: {len(photos) - groups} "
        f"portraits, {groups} group photos; plain loop on the first {len(base_photos)} "
        f"({len(base_photos) - base_groups} portraits, {base_groups} group photos)"
    )
    base_s, base_faces = plain_loop(base_photos)
    per_base = base_s / len(base_photos)
    cpu_base = PLAIN_CPU / len(base_photos)
    print(
        f"plain face_recognition loop: {per_base:.2f} s/photo ({cpu_base:.2f} CPU s), "
        f"{sum(map(len, base_faces.values()))} faces"
    )
    extra = ["--detect-size", str(args.detect_size)] if args.detect_size else []
    if "onnx" in args.encoders.split(","):
        from photocluster.ingest.onnx_encoder import ensure_model

        ensure_model()  # converted once, before the timing (what every later scan finds)
    cluster = not args.no_cluster
    what = "scan + clustering, whole process" if cluster else "scan, whole process"
    rows = []
    for encoder in args.encoders.split(","):
        for jobs in (1, 2):
            db = work / f"cat-{encoder}-{jobs}.sqlite3"
            wall, _ = run_scan(
                work / "photos", db, jobs, "--encoder", encoder, *extra, cluster=cluster
            )
            per = wall / len(photos)
            got = catalog_faces(db)
            big = recall(base_faces, got, True)
            small = recall(base_faces, got, False)
            faces = sum(map(len, got.values()))
            cpu = LAST_CPU / len(photos)
            rows.append((encoder, jobs, per, per_base / per, big, small, faces, cpu))
    for encoder, jobs, per, ratio, big, small, faces, cpu in rows:
        print(
            f"photocluster --encoder {encoder} --jobs {jobs} ({what}): {per:.3f} s/photo  "
            f"speed-up x{ratio:.1f}  ({cpu:.2f} CPU s/photo: x{cpu_base / cpu:.1f} in CPU "
            f"time)  faces {faces}; of the loop's faces >=100 px found "
            f"{big[0]}/{big[1]} ({100 * big[0] / max(1, big[1]):.1f} %), smaller "
            f"{small[0]}/{small[1]} ({100 * small[0] / max(1, small[1]):.1f} %)"
        )
    by = {(e, j): per for e, j, per, *_ in rows}
    for encoder in args.encoders.split(","):
        if (encoder, 1) in by and (encoder, 2) in by:
            print(
                f"--encoder {encoder}: --jobs 2 is x{by[encoder, 1] / by[encoder, 2]:.2f} --jobs 1"
            )
    n, dlib_s, onnx_s = chip_times(photos[: args.baseline_photos])
    print(
        f"encoding per 150x150 chip ({n} chips, faces and mirrors, batched per photo, 1 "
        f"thread): dlib {1000 * dlib_s:.1f} ms, ONNX Runtime {1000 * onnx_s:.1f} ms "
        f"(x{dlib_s / onnx_s:.1f})"
    )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


def make_tiny_tree(root: Path, n: int) -> None:
    img = Image.new("RGB", (48, 36), (120, 120, 120))
    for i in range(n):
        d = root / f"d{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        img.putpixel((0, 0), (i % 256, (i // 256) % 256, 0))
        img.save(d / f"p{i:05d}.jpg", quality=80)


def rescan(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="pc-rescan-"))
    make_tiny_tree(work / "tree", args.photos)
    db = work / "cat.sqlite3"
    first, _ = run_scan(work / "tree", db, 2)
    times = [run_scan(work / "tree", db, 2)[0] for _ in range(3)]
    print(
        f"{args.photos} small photos: first scan {first:.1f} s; unchanged rescan "
        f"{min(times):.2f} s best / {sum(times) / len(times):.2f} s mean of 3 "
        "(whole CLI process, incl. Python start-up)"
    )


def rss(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="pc-rss-"))
    sizes = [int(s) for s in args.sizes.split(",")]
    print("photos  peak RSS of the largest scan process (MiB)")
    for n in sizes:
        make_tiny_tree(work / f"tree{n}", n)
        _, peak = run_scan(work / f"tree{n}", work / f"cat{n}.sqlite3", 2)
        print(f"{n:>6}  {peak / 1024:.0f}")
    # And on real 12-MP photos, where decoding dominates memory.
    photos = build_12mp(work / "big", 8)
    _, peak = run_scan(photos[0].parent, work / "big.sqlite3", 2)
    print(f"{len(photos):>6} 12-MP photos: {peak / 1024:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--photos", type=int, default=24)
    p.add_argument("--baseline-photos", type=int, default=12)
    p.add_argument("--detect-size", type=int, default=0)
    p.add_argument("--groups-every", type=int, default=2, help="every Nth photo a group photo")
    p.add_argument("--encoders", default="dlib,onnx", help="face descriptors to time")
    p.add_argument("--no-cluster", action="store_true", help="time the scan without clustering")
    p = sub.add_parser("rescan")
    p.add_argument("--photos", type=int, default=10_000)
    p = sub.add_parser("rss")
    p.add_argument("--sizes", default="500,2000,8000")
    args = parser.parse_args()
    if not SHARED.exists() and args.what != "rescan":
        raise SystemExit(f"{SHARED} is missing: this benchmark needs the labelled photos")
    {"speed": speed, "rescan": rescan, "rss": rss}[args.what](args)


if __name__ == "__main__":
    main()
