"""Synthetic face embeddings around real identity centroids, for the scale benchmarks.

Each synthetic identity is a real identity's centroid turned by a random rotation about the mean
centroid; each face is its identity's centre plus a real within-identity residual (a real face
minus its person's centroid), so within-person spread and between-person distances are those of
the labelled photos. (Mixing centroids instead, as an earlier benchmark did, crowds identities
together as n grows: at 100 000 faces the median nearest other person was 0.52 away.)
"""

from __future__ import annotations

import os

import numpy as np

from photocluster.db import open_catalog
from photocluster.evaluate import labelled_faces

DEFAULT_DB = "/tmp/shared_faces.sqlite3"
DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "../../shared/faces")


def real_identities(db: str, root: str) -> tuple[np.ndarray, np.ndarray]:
    """Centroids (people x 128) and residuals (faces x 128) of the labelled faces."""
    catalog = open_catalog(db, migrate=False)
    with catalog.session() as s:
        lab = labelled_faces(s, os.path.abspath(root))
    catalog.close()
    x = lab.embeddings.astype(np.float64)
    names = sorted(set(lab.labels))
    truth = np.array([names.index(v) for v in lab.labels])
    cents = np.stack([x[truth == k].mean(axis=0) for k in range(len(names))])
    return cents, x - cents[truth]


def synthesise(
    cents: np.ndarray, residuals: np.ndarray, n: int, per_person: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` faces (float32) of about ``n / per_person`` synthetic people, and their truth.

    Synthetic person ``i`` is real person ``i % P`` (P real people) with its deviation from the
    mean centroid turned by a random rotation shared by each block of P synthetic people, so
    people within a block are as far apart as the real ones and blocks do not pile up. Faces
    are the centre plus a random real residual.
    """
    rng = np.random.default_rng(seed)
    mu = cents.mean(axis=0)
    dev = cents - mu
    real, dim = dev.shape
    people = max(1, n // per_person)
    centres = np.empty((people, dim))
    for start in range(0, people, real):
        q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
        rotation = q * np.sign(np.diag(r))  # uniformly random orthogonal matrix
        block = min(real, people - start)
        centres[start : start + block] = mu + dev[:block] @ rotation.T
    want = rng.poisson(per_person, size=people) + 1
    share = want * n / want.sum()
    sizes = np.floor(share).astype(int)
    # largest remainders get the faces rounding left over (one each), so no person is inflated
    sizes[np.argsort(sizes - share)[: n - sizes.sum()]] += 1
    truth = np.repeat(np.arange(people), sizes)
    faces = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # bounded float64 temporaries
        part = truth[start : start + 100_000]
        pick = rng.integers(0, len(residuals), size=len(part))
        faces[start : start + len(part)] = centres[part] + residuals[pick]
    return faces, truth
