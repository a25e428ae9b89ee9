"""Decode photos with Pillow at only the scale needed, upright (EXIF orientation applied), as RGB.

Pure image handling: no dlib, no database. Every error a bad file can cause becomes
:class:`UnreadableImage` with a one-line reason.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# File endings the scanner reads; everything else is counted and skipped.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".webp",
        ".tif",
        ".tiff",
        ".bmp",
        ".gif",
        ".heic",
        ".heif",
        ".hif",
    }
)

_ORIENTATION = 0x0112
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME_DIGITIZED = 36868
_DATETIME = 306

_heif_registered = False


def register_heif() -> None:
    """Teach Pillow HEIC/HEIF (pillow-heif). Idempotent; cheap after the first call."""
    global _heif_registered
    if not _heif_registered:
        from pillow_heif import register_heif_opener

        register_heif_opener()
        _heif_registered = True


class UnreadableImage(Exception):
    """The bytes are not an image we can decode; ``str(exc)`` is the one-line reason."""


@dataclass(frozen=True)
class PhotoInfo:
    """What the file says about itself, read without decoding pixels."""

    width: int  # as displayed, EXIF orientation applied
    height: int
    orientation: int
    taken_at: datetime | None
    format: str


@dataclass(frozen=True)
class View:
    """Upright RGB pixels of a photo at some scale of its displayed size."""

    pixels: np.ndarray  # (h, w, 3) uint8
    scale: float  # view pixels per displayed pixel (<= 1)


def _parse_exif_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip().rstrip("\x00")
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M"):
        try:
            return datetime.strptime(text[:19], fmt)
        except ValueError:
            continue
    return None


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise UnreadableImage(f"image too large (decompression bomb limit): {exc}") from exc
    except UnidentifiedImageError as exc:
        raise UnreadableImage("not an image Pillow can identify") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadableImage(f"cannot open image: {exc}") from exc


def _check_pixels(img: Image.Image) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > 2 * limit:
        raise UnreadableImage(
            f"image too large: {img.width}x{img.height} pixels is over Pillow's "
            f"decompression-bomb limit of {2 * limit} pixels"
        )


def read_info(data: bytes) -> PhotoInfo:
    """Size as displayed, orientation and capture time, from the header only."""
    img = _open(data)
    try:
        _check_pixels(img)
        exif = img.getexif()
        orientation = int(exif.get(_ORIENTATION, 1) or 1)
        if orientation not in range(1, 9):
            orientation = 1
        taken = None
        try:
            sub = exif.get_ifd(_EXIF_IFD)
            taken = _parse_exif_time(sub.get(_DATETIME_ORIGINAL)) or _parse_exif_time(
                sub.get(_DATETIME_DIGITIZED)
            )
        except (KeyError, ValueError, TypeError, OSError):
            taken = None
        taken = taken or _parse_exif_time(exif.get(_DATETIME))
        w, h = img.size
        if orientation in (5, 6, 7, 8):
            w, h = h, w
        return PhotoInfo(w, h, orientation, taken, img.format or "unknown")
    except UnreadableImage:
        raise
    except Exception as exc:  # malformed EXIF and friends: the photo is still usable
        w, h = img.size
        return PhotoInfo(w, h, 1, None, img.format or "unknown") if w and h else _fail(exc)
    finally:
        img.close()


def _fail(exc: Exception) -> PhotoInfo:
    raise UnreadableImage(f"cannot read image header: {exc}") from exc


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: palette, alpha (on white), CMYK, 16-bit and float."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 0.0
        top = 65535.0 if hi > 255 else 255.0
        arr8 = np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_view(data: bytes, long_side: int | None) -> View:
    """Upright RGB pixels whose long side is at most ``long_side`` (None = full size).

    JPEGs are decoded at the smallest DCT scale (1/2, 1/4, 1/8) still at least as large as
    asked, which is most of the speed of a scan; the rest is resized with a box filter.
    """
    img = _open(data)
    try:
        _check_pixels(img)
        full_w, full_h = img.size
        full_long = max(full_w, full_h)
        target = full_long if long_side is None else min(long_side, full_long)
        if img.format == "JPEG" and target < full_long:
            ratio = target / full_long
            img.draft("RGB", (max(1, int(full_w * ratio) + 1), max(1, int(full_h * ratio) + 1)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.load()
        except Image.DecompressionBombError as exc:
            raise UnreadableImage(f"image too large (decompression bomb limit): {exc}") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise UnreadableImage(f"cannot decode image: {exc}") from exc
        # In place: an upright photo is not copied (18 ms a 12-MP photo).
        ImageOps.exif_transpose(img, in_place=True)
        rgb = _to_rgb(img)
        if max(rgb.size) > target:
            factor = target / max(rgb.size)
            size = (max(1, round(rgb.width * factor)), max(1, round(rgb.height * factor)))
            rgb = rgb.resize(
                size, Image.Resampling.BOX if factor < 0.5 else Image.Resampling.BILINEAR
            )
        pixels = np.asarray(rgb, dtype=np.uint8)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise UnreadableImage(f"unexpected pixel layout {pixels.shape}")
        return View(np.ascontiguousarray(pixels), scale=max(pixels.shape[:2]) / full_long)
    except UnreadableImage:
        raise
    except MemoryError as exc:
        raise UnreadableImage("not enough memory to decode this image") from exc
    except Exception as exc:  # Pillow raises many types for broken files; all are per-photo
        raise UnreadableImage(f"cannot decode image: {type(exc).__name__}: {exc}") from exc
    finally:
        img.close()
