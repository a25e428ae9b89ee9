"""Time `export DEST` in each mode on a copy of a real catalog; prints the figures.

    uv run python bench/bench_export.py [--catalog /tmp/shared_faces.sqlite3] \
        [--dest /tmp/export-bench] [--people labels|existing]

The catalog is copied first (never written). With ``--people labels`` (the default) every face
is put in a person named after its label folder (``<source>/<person>/<file>`` -> "person
(source)"), which needs no clustering and gives a realistic number of people and photos.
``existing`` uses the people already in the catalog. For each mode it times: the first export
into an empty DEST, a second run with nothing to do, and a re-run after renaming every person
(which moves every folder). DEST must be outside the photo library and the repository.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from photocluster.catalog.db import open_catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.export.folders import ExportOptions, export_people


def label_people(db: str) -> int:
    catalog = open_catalog(db)
    try:
        with catalog.session() as s:
            s.execute(update(Face).values(person_id=None))
            groups: dict[str, list[int]] = defaultdict(list)
            for face_id, path in s.execute(select(Face.id, Photo.path).join(Photo)):
                parts = Path(path).parts
                label = f"{parts[-2]} ({parts[-3]})" if len(parts) >= 3 else "unknown"
                groups[label].append(face_id)
            for label, face_ids in sorted(groups.items()):
                person = Person(name=label, hidden=False, created_at=datetime.now())
                s.add(person)
                s.flush()
                s.execute(update(Face).where(Face.id.in_(face_ids)).values(person_id=person.id))
        return len(groups)
    finally:
        catalog.close()


def rename_all(db: str, suffix: str) -> None:
    catalog = open_catalog(db)
    try:
        with catalog.session() as s:
            for person in s.scalars(select(Person).where(Person.name.is_not(None))):
                person.name = f"{person.name}{suffix}"
    finally:
        catalog.close()


def du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(root, f))
            total += st.st_blocks * 512
    return total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--catalog", default="/tmp/shared_faces.sqlite3")
    ap.add_argument("--dest", default="/tmp/export-bench")
    ap.add_argument("--people", choices=["labels", "existing"], default="labels")
    ap.add_argument("--modes", default="symlink,hardlink,copy")
    args = ap.parse_args()

    repo = Path(__file__).resolve().parent.parent
    dest_root = Path(args.dest).resolve()
    if dest_root.is_relative_to(repo):
        print(f"--dest must be outside the repository ({repo})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "bench.sqlite3")
        shutil.copy(args.catalog, db)
        if args.people == "labels":
            n = label_people(db)
            print(f"people: {n} (one per label folder; clustering not used)")
        cat = open_catalog(db)
        with cat.session() as s:
            photos = s.query(Photo).count()
        cat.close()
        print(f"catalog: {args.catalog} ({photos} photos), DEST under {dest_root}")
        print(
            f"{'mode':<9} {'first run':>10} {'files':>6} {'no-op re-run':>13} "
            f"{'rename all':>11} {'moved':>6} {'DEST size':>10}"
        )
        for i, mode in enumerate(args.modes.split(",")):
            dest = dest_root / mode
            if dest.exists():
                shutil.rmtree(dest)
            cat = open_catalog(db)
            try:
                t0 = time.perf_counter()
                first = export_people(cat, ExportOptions(dest=str(dest), mode=mode))
                t1 = time.perf_counter()
                again = export_people(cat, ExportOptions(dest=str(dest), mode=mode))
                t2 = time.perf_counter()
            finally:
                cat.close()
            assert again.changed == 0, "a second run must change nothing"
            rename_all(db, f" r{i}")
            cat = open_catalog(db)
            try:
                t3 = time.perf_counter()
                renamed = export_people(cat, ExportOptions(dest=str(dest), mode=mode))
                t4 = time.perf_counter()
            finally:
                cat.close()
            size = du(dest)
            print(
                f"{first.mode:<9} {t1 - t0:>9.2f}s {first.added:>6} {t2 - t1:>12.2f}s "
                f"{t4 - t3:>10.2f}s {renamed.moved:>6} {size / 2**20:>8.1f}MB"
            )
            for note in first.notes:
                print(f"  note: {note}")
            shutil.rmtree(dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
