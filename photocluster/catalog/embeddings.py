"""Embeddings as the catalog stores them: float32 blobs of EMBEDDING_DIM values, through one
converter each way, with a length check."""

from __future__ import annotations

import struct

import numpy as np

EMBEDDING_DIM = 128  # values per embedding (dlib's ResNet); the blob converters check it
_EMBEDDING_BYTES = EMBEDDING_DIM * 4


def embedding_to_blob(vector: np.ndarray) -> bytes:
    """The one way an embedding becomes bytes: 128 little-endian float32."""
    arr = np.asarray(vector, dtype="<f4").reshape(-1)
    if arr.size != EMBEDDING_DIM:
        raise ValueError(f"embedding has {arr.size} values, expected {EMBEDDING_DIM}")
    return arr.tobytes()


def blob_to_embedding(blob: bytes) -> np.ndarray:
    """The inverse of :func:`embedding_to_blob`, with a length check."""
    if len(blob) != _EMBEDDING_BYTES:
        raise ValueError(f"embedding blob has {len(blob)} bytes, expected {_EMBEDDING_BYTES}")
    return np.frombuffer(blob, dtype="<f4")


def blobs_to_matrix(blobs: list[bytes]) -> np.ndarray:
    """Many blobs into one (n, 128) float32 matrix without a Python loop per value."""
    if not blobs:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    for blob in blobs:
        if len(blob) != _EMBEDDING_BYTES:
            raise ValueError(f"embedding blob has {len(blob)} bytes, expected {_EMBEDDING_BYTES}")
    return np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), EMBEDDING_DIM).copy()


assert struct.calcsize("<f") == 4
