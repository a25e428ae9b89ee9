"""One photo in, one result out: the per-photo work a scan worker does. No database here.

Detection runs on a small view (JPEG draft decode + downscale); each face is then encoded from
a view detailed enough that it is at least ``chip_face`` px wide (or the full image), so small
faces in group photos keep their detail. Any failure becomes ``PhotoStatus.FAILED`` with a reason.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from photocluster.catalog.photo_status import PhotoStatus
from photocluster.ingest.encoder import Box, EncoderParams, FaceEncoder
from photocluster.ingest.imaging import UnreadableImage, load_view, read_info

READ_CHUNK = 1 << 20


@dataclass
class FoundFace:
    box: Box  # displayed-image pixels
    embedding: np.ndarray  # (128,) float32


@dataclass
class PhotoResult:
    """Everything the writer needs to record one photo. Picklable."""

    path: str
    size: int
    mtime_ns: int
    content_hash: str | None = None
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    status: str = PhotoStatus.OK
    error: str | None = None
    faces: list[FoundFace] = field(default_factory=list)


def hash_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _clip(box: Box, width: int, height: int) -> Box:
    left, top, right, bottom = box
    return (max(0, left), max(0, top), min(width, right), min(height, bottom))


def _scale_box(box: tuple[float, float, float, float], factor: float) -> Box:
    return (
        round(box[0] * factor),
        round(box[1] * factor),
        round(box[2] * factor),
        round(box[3] * factor),
    )


def analyse_bytes(
    data: bytes, encoder: FaceEncoder, params: EncoderParams
) -> tuple[int, int, datetime | None, list[FoundFace]]:
    """Displayed size, capture time and faces of an image given as bytes."""
    info = read_info(data)
    long_side = max(info.width, info.height)
    if long_side == 0:
        raise UnreadableImage("image has no pixels")
    detect_view = load_view(data, params.detect_size)
    raw = encoder.detect(detect_view.pixels, params.upsample)
    vh, vw = detect_view.pixels.shape[:2]
    boxes_view = [_clip(b, vw, vh) for b in raw]
    boxes_view = [b for b in boxes_view if b[2] - b[0] >= 4 and b[3] - b[1] >= 4]
    if not boxes_view:
        return info.width, info.height, info.taken_at, []
    to_displayed = 1.0 / detect_view.scale
    boxes = [_clip(_scale_box(b, to_displayed), info.width, info.height) for b in boxes_view]

    # The encode view: the smallest scale at which every face is at least chip_face wide.
    smallest = min(b[2] - b[0] for b in boxes)
    need_scale = min(1.0, params.chip_face / max(1, smallest))
    if need_scale <= detect_view.scale * 1.05:
        view = detect_view
    else:
        view = load_view(data, round(long_side * need_scale))
    eh, ew = view.pixels.shape[:2]
    boxes_enc = [_clip(_scale_box(b, view.scale), ew, eh) for b in boxes]
    vectors = encoder.encode(view.pixels, boxes_enc, params.jitters)
    faces = [
        FoundFace(box=b, embedding=np.asarray(v, dtype=np.float32))
        for b, v in zip(boxes, vectors, strict=True)
    ]
    return info.width, info.height, info.taken_at, faces


def analyse_file(
    path: str, size: int, mtime_ns: int, encoder: FaceEncoder, params: EncoderParams
) -> PhotoResult:
    """Read, hash, decode and encode one file. Never raises for a bad photo."""
    result = PhotoResult(path=path, size=size, mtime_ns=mtime_ns)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
            st = os.fstat(fh.fileno())
        result.size, result.mtime_ns = st.st_size, st.st_mtime_ns
    except FileNotFoundError:
        return _failed(result, "file vanished during the scan")
    except PermissionError:
        return _failed(result, "permission denied")
    except IsADirectoryError:
        return _failed(result, "is a directory")
    except OSError as exc:
        return _failed(result, f"cannot read file: {exc.strerror or exc}")
    result.content_hash = hash_bytes(data)
    if not data:
        return _failed(result, "empty file (0 bytes)")
    try:
        w, h, taken, faces = analyse_bytes(data, encoder, params)
    except UnreadableImage as exc:
        return _failed(result, str(exc))
    except MemoryError:
        return _failed(result, "not enough memory to process this image")
    result.width, result.height, result.taken_at, result.faces = w, h, taken, faces
    result.status = PhotoStatus.OK if faces else PhotoStatus.NO_FACES
    return result


def _failed(result: PhotoResult, reason: str) -> PhotoResult:
    result.status = PhotoStatus.FAILED
    result.error = reason.splitlines()[0][:500] if reason else "unknown error"
    return result
