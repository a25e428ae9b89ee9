"""Synthetic face embeddings around real identities, for the scale benchmarks.

Built from a scanned labelled catalog (``--db``/``--root``: ../shared/faces, or ../shared/lfw-dev
with its one-photo strangers). Each labelled photo counts with its face most like its label's
one-face photos (``evaluate.nearest_to_label``, as `eval` scores; the largest face is sometimes
somebody else, who would then widen that person's spread). The real identities are of two
kinds: *people drawn from*, with at least ``MIN_DRAWN`` (4) labelled faces (P of them), and
identities *copied as they are*, with fewer (K): mostly strangers, labelled once.

The real set is copied in blocks, each turned by its own random rotation about the mean of the
real identities. A block holds P synthetic people and the K copied identities, the real set's
proportion (lfw-dev: 100 people, 496 strangers; ../shared/faces: 41 people, 5 strangers and 8
people with two or three faces):

* synthetic person ``i`` is real person ``i % P``; a face of it is that person's (turned)
  centroid plus a blend of two different residuals of *that real person* (a real face minus
  its centroid), turned by the same rotation. Sizes are Poisson around ``per_person``;
* a copied identity is a real one's faces under the block's rotation, each real one at most once
  per block (a partial block takes a random share), its own identity in the truth: a stranger
  stays a stranger with one photo.

So within a block every distance between identities is exactly a real one (stranger to
stranger, stranger to person, person to person) and within-person spread nearly so; blocks do
not pile up (``python bench/synth_faces.py`` prints the check: the nearest other identity's
face is as far at 1 000 000 faces as in the real set; one person's pairs are 5-9 % closer).

An earlier version of this generator drew every real person, and from any two residuals: a
person with one labelled face (5 of the 54 of ../shared/faces) has no residual and came out as
20 identical copies of one face; two or three residuals span a line or a plane, so most faces
sat near the centroid with a few far out; and a residual blended with itself is stretched up
to 1.41 times. Together they gave synthetic people more faces far beyond their own spread than
real people have (4.7 % of faces over 1.5 times the others' median distance to the centroid,
real 2.5 %; now 1.8 %), which the spread-relative steps of clustering eject.

Two earlier generators were unfaithful, and are kept out: mixing centroids crowds identities
together as n grows (at 100 000 faces the median nearest other person was 0.52 away); and adding
*unrotated* residuals drawn from everyone gives all synthetic people the same 1 559 offset
vectors — at 1 000 000 faces that shared structure defeated both ANN indexes (faiss HNSW M 32
found 6.6 of a face's 18.4 same-person neighbours, IVF 2.8), an artefact no real catalog has.

Run alone, it compares a synthetic library with the real set it comes from (distances that
clustering's decisions rest on):

    uv run python bench/synth_faces.py --db /tmp/lfw.sqlite3 --root ../shared/lfw-dev \\
        --faces 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from photocluster.catalog.db import open_catalog
from photocluster.catalog.embeddings import blobs_to_matrix
from photocluster.catalog.models import Face
from photocluster.evaluation.evaluate import labelled_faces, nearest_to_label
from photocluster.people.thresholds import SAME_PERSON

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DB = "/tmp/faces.sqlite3"
DEFAULT_ROOT = os.path.join(HERE, "../../shared/faces")


@dataclass(frozen=True)
class LabelledSet:
    """Every face of a catalog (embedding, photo) and the scored ones: per labelled photo the
    face most like its label's one-face photos (rows ``idx``) and its label (``truth``)."""

    x: np.ndarray
    groups: np.ndarray
    idx: np.ndarray
    truth: np.ndarray
    face_ids: np.ndarray | None = None  # the catalog's face id of each row of x
    names: tuple[str, ...] = ()  # the label of each truth code


def labelled_set(db: str, root: str) -> LabelledSet:
    """The labelled faces of a scanned catalog (opened read-only in intent: no migration)."""
    if not os.path.isfile(db):  # opening would create an empty file and fail on its tables
        raise SystemExit(
            f"{db}: no such catalog. Scan the labelled folder into it first: "
            f"uv run photocluster scan {root} --db {db}"
        )
    catalog = open_catalog(db, migrate=False)
    with catalog.session() as s:
        rows = s.execute(select(Face.id, Face.photo_id, Face.embedding).order_by(Face.id)).all()
        lab = labelled_faces(s, os.path.abspath(root))
    catalog.close()
    x = blobs_to_matrix([r.embedding for r in rows])
    groups = np.array([r.photo_id for r in rows])
    pos = {r.id: i for i, r in enumerate(rows)}
    largest = np.array([pos[i] for i in lab.face_ids], dtype=np.int64)
    names = sorted(set(lab.labels))
    truth = np.array([names.index(label) for label in lab.labels])
    chosen = nearest_to_label(x, groups, largest, truth)
    ids = np.array([r.id for r in rows], dtype=np.int64)
    return LabelledSet(x, groups, chosen, truth, ids, tuple(names))


# A real person is drawn from (synthetic faces around their centroid) only with at least this
# many labelled faces: two or three residuals span a line or a plane, and blends of them put
# most synthetic faces near the centroid with a few far out, a spread no real person has (the
# same floor as clustering's spread-relative eject, which needs four faces for a spread).
MIN_DRAWN = 4


@dataclass(frozen=True)
class Identities:
    """The real identities. People drawn from (``MIN_DRAWN`` or more labelled faces):
    centroids (P x 128), residuals (faces x 128) and whose each one is (0..P-1). Identities
    copied as they are (fewer faces; the one-photo strangers are most of them): their faces
    (faces x 128) and whose each one is (0..K-1)."""

    cents: np.ndarray
    residuals: np.ndarray
    owner: np.ndarray
    copied: np.ndarray
    copied_owner: np.ndarray

    @property
    def strangers(self) -> int:
        """Copied identities with one labelled face."""
        return int((np.bincount(self.copied_owner) == 1).sum()) if len(self.copied) else 0


def real_identities(db: str, root: str) -> Identities:
    """The labelled faces of a scanned catalog as people to draw from and identities to copy."""
    lab = labelled_set(db, root)
    x = lab.x[lab.idx].astype(np.float64)
    _, truth, count = np.unique(lab.truth, return_inverse=True, return_counts=True)
    truth = truth.reshape(-1)
    drawn = count[truth] >= MIN_DRAWN
    _, owner = np.unique(truth[drawn], return_inverse=True)
    owner = owner.reshape(-1)
    cents = np.stack([x[drawn][owner == p].mean(axis=0) for p in range(owner.max() + 1)])
    _, copied_owner = np.unique(truth[~drawn], return_inverse=True)
    return Identities(cents, x[drawn] - cents[owner], owner, x[~drawn], copied_owner.reshape(-1))


def synthesise(
    real: Identities, n: int, per_person: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` faces (float32) and their truth: synthetic people of about ``per_person`` faces
    each, and copies of the identities with few faces (strangers: one each) in the real set's
    proportion to people."""
    rng = np.random.default_rng(seed)
    count, dim = real.cents.shape
    kinds = int(real.copied_owner.max()) + 1 if len(real.copied) else 0
    mu = np.concatenate([real.cents, real.copied]).mean(axis=0)
    dev = real.cents - mu
    odd = real.copied - mu
    by_owner = np.argsort(real.owner, kind="stable")  # residual rows, person by person
    per = np.bincount(real.owner, minlength=count)
    begin = np.concatenate([[0], np.cumsum(per)[:-1]])
    rows_of = [np.flatnonzero(real.copied_owner == k) for k in range(kinds)]
    ratio = kinds / count  # copied identities per drawn person
    people = max(1, int(n // (per_person + len(real.copied) / count)))
    # copied identities up to synthetic person k: round(k * ratio), so a full block gets all K,
    # each once; a partial block a random share of them
    upto = np.round(np.arange(people + 1) * ratio).astype(int)
    blocks = [(start, min(people, start + count)) for start in range(0, people, count)]
    chosen = [rng.permutation(kinds)[: upto[stop] - upto[start]] for start, stop in blocks]
    copied_faces = sum(sum(len(rows_of[k]) for k in c.tolist()) for c in chosen)
    many = n - copied_faces  # faces of drawn people
    if many < 2 * people:
        raise ValueError(f"{n} faces are too few for a synthetic library of this set")
    want = rng.poisson(per_person, size=people) + 1
    share = want * many / want.sum()
    sizes = np.floor(share).astype(int)
    # largest remainders get the faces rounding left over (one each), so no person is inflated
    sizes[np.argsort(sizes - share)[: many - sizes.sum()]] += 1
    first = np.concatenate([[0], np.cumsum(sizes)])
    faces = np.empty((n, dim), dtype=np.float32)
    truth = np.empty(n, dtype=np.int64)
    at = 0  # next row; each block: its people's faces, then its copied identities'
    for (start, stop), copies in zip(blocks, chosen, strict=True):  # one rotation per block
        q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
        rotation = q * np.sign(np.diag(r))  # uniformly random orthogonal matrix
        m = int(first[stop] - first[start])
        who = np.repeat(np.arange(start, stop), sizes[start:stop])
        real_person = who % count
        # Two different residuals of the real person, blended at a random angle: a new face
        # within that person's real variation (the same norm on average), never an exact copy.
        # (One residual blended with itself is stretched up to 1.41 times: further from the
        # centroid than any real photo, which the spread-relative steps would eject.)
        size = per[real_person]
        pick = rng.integers(size)
        a = by_owner[begin[real_person] + pick]
        b = by_owner[begin[real_person] + (pick + 1 + rng.integers(size - 1)) % size]
        angle = rng.uniform(0.0, np.pi / 2, size=(len(a), 1))
        residual = np.cos(angle) * real.residuals[a] + np.sin(angle) * real.residuals[b]
        local = dev[real_person] + residual
        faces[at : at + m] = mu + local @ rotation.T
        truth[at : at + m] = who
        at += m
        # this block's copied identities: distinct real ones, their real faces as they are
        for j, k in enumerate(copies.tolist(), start=people + int(upto[start])):
            rows = rows_of[k]
            faces[at : at + len(rows)] = mu + odd[rows] @ rotation.T
            truth[at : at + len(rows)] = j
            at += len(rows)
    assert at == n
    return faces, truth


def describe(x: np.ndarray, truth: np.ndarray, sample: int = 5000, seed: int = 0) -> dict:
    """Distances clustering decides on, over up to ``sample`` faces: each face's nearest face of
    another identity; for people's faces the nearest face of their own and one random pair of
    their own; the share of people's faces and of strangers with another identity's face within
    ``SAME_PERSON``."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    rng = np.random.default_rng(seed)
    queries = rng.choice(len(x), min(sample, len(x)), replace=False)
    _, t, per = np.unique(truth, return_inverse=True, return_counts=True)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    k = int(min(len(x), per.max() + 2))
    d2, near = index.search(x[queries], k)
    d = np.sqrt(np.maximum(d2, 0))
    t = t.reshape(-1)
    same = t[near] == t[queries][:, None]
    same &= near != queries[:, None]
    other = np.where(~same & (near != queries[:, None]), d, np.inf).min(axis=1)
    own = np.where(same, d, np.inf).min(axis=1)
    stranger = per[t[queries]] == 1
    person = ~stranger
    # one random other face of the same person per query: a pair of one person's photos
    order = np.argsort(t, kind="stable")
    begin = np.concatenate([[0], np.cumsum(per)])
    rank = np.empty(len(t), dtype=np.int64)
    rank[order] = np.arange(len(t)) - begin[t[order]]
    q = queries[person]
    pick = rng.integers(0, per[t[q]] - 1)
    pick += pick >= rank[q]  # never the face itself
    pair = np.linalg.norm(x[q] - x[order[begin[t[q]] + pick]], axis=1)
    return {
        "faces": len(x),
        "people": int((per >= 2).sum()),
        "strangers": int((per == 1).sum()),
        "nearest_other_median": float(np.median(other)),
        "nearest_other_p5": float(np.percentile(other, 5)),
        "nearest_own_median": float(np.median(own[person])) if person.any() else float("nan"),
        "own_pair_median": float(np.median(pair)) if person.any() else float("nan"),
        "own_pair_p95": float(np.percentile(pair, 95)) if person.any() else float("nan"),
        "person_other_within_same": float((other[person] <= SAME_PERSON).mean()),
        "stranger_other_within_same": (
            float((other[stranger] <= SAME_PERSON).mean()) if stranger.any() else float("nan")
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="Compare synthetic libraries with their real set.")
    ap.add_argument("--db", default=DEFAULT_DB)
    ap.add_argument("--root", default=DEFAULT_ROOT)
    ap.add_argument("--faces", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--per-person", type=int, default=20)
    args = ap.parse_args()
    lab = labelled_set(args.db, args.root)
    real = real_identities(args.db, args.root)
    rows = [("real", describe(lab.x[lab.idx], lab.truth))]
    for n in args.faces:
        rows.append((f"{n}", describe(*synthesise(real, n, per_person=args.per_person))))
    print(
        f"{'set':>8} {'faces':>8} {'people':>7} {'strangers':>9} | nearest other identity |"
        " own pair      | nearest | another identity within SAME_PERSON"
    )
    print(f"{'':>35}|   median  5th pct   | median 95th  | own     | people's faces  strangers")
    for name, r in rows:
        print(
            f"{name:>8} {r['faces']:>8} {r['people']:>7} {r['strangers']:>9} |"
            f" {r['nearest_other_median']:8.3f} {r['nearest_other_p5']:8.3f}    |"
            f" {r['own_pair_median']:6.3f} {r['own_pair_p95']:6.3f} |"
            f" {r['nearest_own_median']:7.3f} | {r['person_other_within_same']:14.1%}"
            f" {r['stranger_other_within_same']:10.1%}"
        )


if __name__ == "__main__":
    main()
