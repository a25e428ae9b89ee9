"""How fast `photocluster name` shows the next person, and how many keystrokes naming takes.

Works on a copy of a catalog (default: the shared labelled faces, /tmp/shared_faces.sqlite3),
clusters it if it has no people, then drives :func:`run_naming` with scripted answers, timing the
gap between an answer and the next person being shown (the `show` call: contact sheet built,
suggestion computed, everything the terminal needs):

1. cold: the first look, crops cut from the photos (no prefetch, to measure the worst case);
2. cached: the same people again, crops from the thumbnail cache;
3. naming: every person named after the label folder of its photos
   (``<source>/<person>/<file>``): Enter when the suggestion is that person, else the name
   typed (plus "y" when it merges into an existing name). Counts keystrokes.

Run: uv run python bench/bench_naming.py [--db /tmp/shared_faces.sqlite3] [--people 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select

from photocluster.catalog.db import Catalog, open_catalog
from photocluster.catalog.models import Face, Person, Photo
from photocluster.decisions.prompter import QueueItem
from photocluster.decisions.session import NamingOptions, run_naming
from photocluster.people.assign import ClusterOptions, cluster_catalog


class TimingPrompter:
    """Answers via ``decide``; records answer->next-show gaps and keystrokes."""

    def __init__(self, catalog: Catalog, limit: int, mode: str) -> None:
        self.catalog = catalog
        self.limit = limit
        self.mode = mode  # "skip" | "label"
        self.gaps: list[float] = []
        self.keystrokes = 0
        self.shown = 0
        self.accepted = 0
        self.typed = 0
        self.wrong_suggestions = 0
        self._answered_at: float | None = None
        self._pending: list[str] = []
        self._item: QueueItem | None = None
        self._asks = 0

    def show(self, item: QueueItem) -> None:
        if self._answered_at is not None:
            self.gaps.append(time.perf_counter() - self._answered_at)
        self.shown += 1
        self._item = item
        self._asks = 0

    def _label(self, person_id: int) -> str:
        with self.catalog.session() as s:
            paths = s.scalars(
                select(Photo.path)
                .join(Face, Face.photo_id == Photo.id)
                .where(Face.person_id == person_id)
            ).all()
        label = Counter(Path(p).parent.name for p in paths).most_common(1)[0][0]
        return label.replace("_", " ").strip() or "unknown"

    def ask(self, prompt: str, names: Sequence[str]) -> str:
        if self.shown > self.limit or self._item is None:
            raise EOFError
        item = self._item
        self._asks += 1
        if self.mode == "skip" or self._asks > 1:  # a refused answer: move on
            answer = "s"
        else:
            label = self._label(item.person_id)
            if label.startswith(" ") or label in ("group", "noface"):
                answer = "s"
            elif item.suggestion and item.suggestion.name == label:
                answer = ""
                self.accepted += 1
            else:
                if item.suggestion:
                    self.wrong_suggestions += 1
                answer = label
                self.typed += 1
                if label in names:
                    self._pending = ["y"]
        self.keystrokes += len(answer) + 1
        self._answered_at = time.perf_counter()
        return answer

    def confirm(self, question: str) -> bool:
        answer = self._pending.pop(0) if self._pending else "y"
        self.keystrokes += len(answer) + 1
        self._answered_at = time.perf_counter()
        return answer == "y"

    def say(self, text: str) -> None:
        pass


def _ms(values: list[float]) -> str:
    if not values:
        return "n/a"
    ms = sorted(v * 1000 for v in values)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    med = statistics.median(ms)
    return f"median {med:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms (n={len(ms)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="/tmp/shared_faces.sqlite3", help="catalog to copy")
    ap.add_argument("--people", type=int, default=40, help="people to show in each pass")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-naming-"))
    db = work / "catalog.sqlite3"
    shutil.copyfile(args.db, db)
    db.chmod(0o644)
    catalog = open_catalog(str(db))
    cache = work / "cache"
    try:
        with catalog.session() as s:
            people = s.scalar(select(func.count()).select_from(Person)) or 0
        if people == 0:
            t = time.perf_counter()
            changes = cluster_catalog(catalog, ClusterOptions())
            print(
                f"clustered {changes.faces} faces into {len(changes.people_created)} people "
                f"in {time.perf_counter() - t:.1f} s"
            )
        options = NamingOptions(prefetch=False, unassigned=False)  # people only
        cold = TimingPrompter(catalog, args.people, "skip")
        t = time.perf_counter()
        run_naming(catalog, cold, cache, options)
        first = time.perf_counter() - t
        print(f"cold (crops cut from photos): {_ms(cold.gaps)}; whole pass {first:.1f} s")
        cached = TimingPrompter(catalog, args.people, "skip")
        run_naming(catalog, cached, cache, options)
        print(f"cached (next person shown):   {_ms(cached.gaps)}")
        naming = TimingPrompter(catalog, 10_000, "label")
        run_naming(catalog, naming, cache, NamingOptions(unassigned=False))
        print(f"naming (decision + next):     {_ms(naming.gaps)}")
        print(
            f"named by label: {naming.shown} people shown, {naming.accepted} suggestions "
            f"accepted with Enter, {naming.typed} names typed, {naming.wrong_suggestions} "
            f"suggestions not the label, {naming.keystrokes} keystrokes in all"
        )
    finally:
        catalog.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
