"""Deterministic stand-ins for dlib, so scan/cluster tests run in milliseconds.

FakeEncoder "detects" a face wherever a test image has a block of saturated colour on a grey
background, and its embedding is a fixed unit-scaled vector chosen by that colour: same colour,
same person (plus a tiny position-dependent jitter, so vectors are not identical).
Draw faces with :func:`make_photo`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from photocluster.ingest.encoder import Box, EncoderParams

BACKGROUND = (128, 128, 128)

# Colours that stand for people in test photos.
PEOPLE = {
    "ada": (220, 30, 30),
    "bob": (30, 200, 30),
    "cyd": (30, 30, 220),
    "dee": (220, 220, 30),
    "eve": (220, 30, 220),
    "fay": (30, 220, 220),
}


def person_vector(rgb: tuple[int, int, int]) -> np.ndarray:
    """The fake identity vector for a colour: quantised so resampling noise doesn't matter."""
    q = tuple(round(c / 64) for c in rgb)
    seed = int(hashlib.sha256(repr(q).encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).normal(size=128)
    return (v / np.linalg.norm(v) * 0.7).astype(np.float32)


class FakeEncoder:
    """Implements photocluster.ingest.encoder.FaceEncoder without dlib. Counts its calls.

    If ``log`` is given, every detect call appends one line to that file (works across worker
    processes), so tests can prove a re-run did no work.
    """

    model_id = "fake_v1"

    def __init__(self, params: EncoderParams | None = None, log: str | None = None) -> None:
        self.params = params
        self.log = log
        self.detect_calls = 0
        self.encode_calls = 0

    def detect(self, pixels: np.ndarray, upsample: int) -> list[Box]:
        self.detect_calls += 1
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(f"{os.getpid()}\n")
        diff = np.abs(pixels.astype(np.int16) - np.array(BACKGROUND, dtype=np.int16)).max(axis=2)
        labels, _count = ndimage.label(diff > 60)
        boxes: list[Box] = []
        for sl in ndimage.find_objects(labels):
            if sl is None:
                continue
            ys, xs = sl
            if xs.stop - xs.start >= 8 and ys.stop - ys.start >= 8:
                boxes.append((xs.start, ys.start, xs.stop, ys.stop))
        return sorted(boxes)

    def encode(self, pixels: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]:
        self.encode_calls += 1
        out = []
        for left, top, right, bottom in boxes:
            region = pixels[top:bottom, left:right].reshape(-1, 3)
            rgb = tuple(int(c) for c in np.median(region, axis=0))
            vec = person_vector(rgb)  # type: ignore[arg-type]
            jitter = np.random.default_rng(left * 7919 + top).normal(scale=0.01, size=128)
            out.append((vec + jitter).astype(np.float32))
        return out


def make_photo(
    path: Path,
    faces: list[tuple[str, tuple[int, int, int]]],
    size: tuple[int, int] = (400, 300),
    fmt: str | None = None,
    exif: Image.Exif | None = None,
) -> Path:
    """A grey photo with one coloured square per (person, (x, y, side)) entry."""
    img = Image.new("RGB", size, BACKGROUND)
    for person, (x, y, side) in faces:
        img.paste(PEOPLE[person], (x, y, x + side, y + side))
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, object] = {}
    if exif is not None:
        kwargs["exif"] = exif
    if (fmt or path.suffix.lower().lstrip(".")) in ("jpg", "jpeg", "JPEG"):
        kwargs["quality"] = 95
    img.save(path, format=fmt, **kwargs)
    return path
