"""The real dlib adapter: what an embedding is (aligned face and its mirror image, averaged)."""

from __future__ import annotations

import numpy as np
import pytest

from photocluster.ingest.encoder import DlibEncoder
from photocluster.ingest.imaging import load_view
from tests.conftest import SAMPLE_DATA


@pytest.fixture(scope="module")
def hopper() -> tuple[DlibEncoder, np.ndarray, tuple[int, int, int, int]]:
    encoder = DlibEncoder()
    pixels = load_view((SAMPLE_DATA / "originals" / "grace_hopper.jpg").read_bytes(), None).pixels
    (box,) = encoder.detect(pixels, 1)
    return encoder, pixels, box


@pytest.mark.dlib
def test_embedding_is_face_recognitions_averaged_with_its_mirror_image(
    hopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dlib
    from PIL import ImageFile

    # face_recognition turns on Pillow's LOAD_TRUNCATED_IMAGES when imported; put it back after
    # this test, or later tests see truncated photos decode.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", ImageFile.LOAD_TRUNCATED_IMAGES)
    import face_recognition

    encoder, pixels, box = hopper
    (ours,) = encoder.encode(pixels, [box], 1)
    left, top, right, bottom = box
    # face_recognition's own embedding of that box: the same alignment as ours
    plain = face_recognition.face_encodings(pixels, [(top, right, bottom, left)], model="small")[0]
    shape = encoder._predictor(pixels, dlib.rectangle(left, top, right, bottom))
    chip = dlib.get_face_chip(pixels, shape, size=150, padding=0.25)
    mirrored = np.asarray(encoder._resnet.compute_face_descriptor(chip[:, ::-1].copy(), 1))
    assert ours.dtype == np.float32 and ours.shape == (128,)
    assert np.linalg.norm(ours - (plain + mirrored) / 2) < 1e-5
    # a different vector from plain dlib's, but the same face by a wide margin
    assert 0.01 < np.linalg.norm(ours - plain) < 0.2


@pytest.mark.dlib
def test_several_faces_and_no_face(hopper) -> None:
    encoder, pixels, box = hopper
    one = encoder.encode(pixels, [box], 1)[0]
    both = encoder.encode(pixels, [box, box], 1)
    assert len(both) == 2 and all(np.allclose(v, one, atol=1e-6) for v in both)
    assert encoder.encode(pixels, [], 1) == []
