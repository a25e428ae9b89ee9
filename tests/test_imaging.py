"""Decoding: formats, modes, EXIF orientation and capture time, and every kind of bad file."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photocluster.ingest.imaging import UnreadableImage, load_view, read_info, register_heif


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _marked(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """A landscape image with a white block in its top-left corner, to see rotations."""
    img = Image.new("RGB", size, (40, 40, 40))
    img.paste((255, 255, 255), (0, 0, 30, 30))
    return img


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_common_formats_decode_to_rgb(fmt: str) -> None:
    view = load_view(_encode(_marked(), fmt), None)
    assert view.pixels.shape == (100, 200, 3)
    assert view.pixels.dtype == np.uint8
    assert view.pixels[5, 5].min() > 200  # the marker survived


def test_heic_decodes_through_pillow_heif() -> None:
    register_heif()
    data = _encode(_marked(), "HEIF")
    assert read_info(data).format in ("HEIF", "HEIC")
    assert load_view(data, None).pixels.shape == (100, 200, 3)


def test_gif_first_frame_is_used() -> None:
    frames = [Image.new("RGB", (50, 40), c) for c in ((250, 0, 0), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    px = load_view(buf.getvalue(), None).pixels
    assert px[10, 10, 0] > 200 and px[10, 10, 2] < 50


@pytest.mark.parametrize(
    ("orientation", "corner"),
    [(1, (0, 0)), (3, (-1, -1)), (6, (0, -1)), (8, (-1, 0))],
)
def test_exif_orientation_is_applied(orientation: int, corner: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = _encode(_marked(), "JPEG", exif=exif, quality=95)
    info = read_info(data)
    px = load_view(data, None).pixels
    if orientation in (6, 8):
        assert (info.width, info.height) == (100, 200)
        assert px.shape[:2] == (200, 100)
    else:
        assert (info.width, info.height) == (200, 100)
    y = 5 if corner[0] == 0 else px.shape[0] - 6
    x = 5 if corner[1] == 0 else px.shape[1] - 6
    assert px[y, x].min() > 200, "the marker is where the upright photo shows it"


def test_capture_time_comes_from_exif() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2021:06:01 12:34:56"
    info = read_info(_encode(_marked(), "JPEG", exif=exif))
    assert info.taken_at == datetime(2021, 6, 1, 12, 34, 56)
    assert read_info(_encode(_marked(), "PNG")).taken_at is None


def test_garbage_capture_time_is_ignored() -> None:
    exif = Image.Exif()
    exif[306] = "not a date"
    assert read_info(_encode(_marked(), "JPEG", exif=exif)).taken_at is None


def test_draft_decoding_returns_at_most_the_asked_size() -> None:
    data = _encode(Image.new("RGB", (4000, 3000), (90, 90, 90)), "JPEG")
    view = load_view(data, 1000)
    assert max(view.pixels.shape[:2]) == 1000
    assert view.scale == pytest.approx(0.25)
    # Never upscaled
    assert max(load_view(data, 8000).pixels.shape[:2]) == 4000


@pytest.mark.parametrize("mode", ["CMYK", "L", "LA", "P", "RGBA", "I;16", "I", "F", "1"])
def test_every_pixel_mode_becomes_rgb(mode: str) -> None:
    if mode in ("I;16", "I", "F"):
        arr = np.full((30, 40), 40000 if mode != "F" else 0.5, dtype=np.uint16)
        img = Image.fromarray(arr.astype(np.uint16)).convert(mode)
        fmt = "TIFF" if mode in ("F", "I") else "PNG"
    else:
        img = _marked((40, 30)).convert(mode)
        fmt = "TIFF" if mode == "CMYK" else "PNG"
    px = load_view(_encode(img, fmt), None).pixels
    assert px.shape == (30, 40, 3) and px.dtype == np.uint8


def test_sixteen_bit_keeps_its_brightness() -> None:
    arr = np.full((20, 20), 32768, dtype=np.uint16)
    px = load_view(_encode(Image.fromarray(arr), "PNG"), None).pixels
    assert 120 <= int(px[0, 0, 0]) <= 135  # half of full scale, not clipped to white


def test_transparent_pixels_become_white() -> None:
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    px = load_view(_encode(img, "PNG"), None).pixels
    assert px[0, 0].tolist() == [255, 255, 255]


def test_truncated_jpeg_is_unreadable() -> None:
    data = _encode(Image.effect_noise((400, 300), 60).convert("RGB"), "JPEG")
    with pytest.raises(UnreadableImage, match="decode"):
        load_view(data[: len(data) // 3], None)


@pytest.mark.parametrize("data", [b"", b"this is a text file, not a JPEG\n" * 10])
def test_non_images_are_unreadable(data: bytes) -> None:
    with pytest.raises(UnreadableImage, match="not an image"):
        read_info(data)


def test_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encode(Image.new("L", (300, 300)), "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)
    with pytest.raises(UnreadableImage, match="too large"):
        read_info(data)
    with pytest.raises(UnreadableImage, match="too large"):
        load_view(data, 100)


def test_sample_data_rotated_photo_reads_upright() -> None:
    path = Path(__file__).resolve().parent.parent / "sample_data" / "hopper_exif_rotated.jpg"
    info = read_info(path.read_bytes())
    assert info.orientation == 6
    assert info.height > info.width  # a portrait once rotated
