"""Regenerate the derived files of the demo photo library in ``sample_data/``.

Every photo in ``sample_data/`` is either a byte-identical copy of a public-domain / CC0
image shipped inside a PyPI package (kept in ``sample_data/originals/``) or a file this
script derives from those copies. Provenance and licences: ``sample_data/README.md``.

Usage (from the repository root)::

    uv run python tools/make_sample_data.py            # rebuild derived files, then verify
    uv run python tools/make_sample_data.py --check    # verify only, write nothing
    uv run python tools/make_sample_data.py --import-originals DIR
        # (re)create sample_data/originals/ from the package archives in DIR, fetched with
        #   pip download --no-deps --only-binary :all: matplotlib==3.11.2 scikit-image==0.25.2 \
        #       --python-version 3.11 --platform manylinux2014_x86_64 -d DIR

The output is deterministic: the same originals and the same Pillow build give the same
bytes (the files in the repository were written with Pillow 13.0.0). Verification runs
dlib's HOG detector (upsample 1, after EXIF transpose) and compares with EXPECTED_FACES.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parent.parent / "sample_data"
ORIG = ROOT / "originals"

JPEG_QUALITY = 85
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 36867
CAPTURE_TIME = "2021:06:01 12:00:00"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
SIZE_BUDGET = 3 * 1024 * 1024


@dataclass(frozen=True)
class Original:
    archive: str  # glob for the downloaded package archive
    member: str  # path inside the archive
    sha256: str


# No image that is also in the labelled test set beside the project (../shared/faces) is kept
# here: face_recognition's test photos (Obama, Biden) and scikit-image's chelsea.png are in it,
# so they were dropped although their licences allow them.
ORIGINALS: dict[str, Original] = {
    "grace_hopper.jpg": Original(
        "matplotlib-3.11.2-*.whl",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    ),
    "astronaut.png": Original(
        "scikit_image-0.25.2-*.whl",
        "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
    "camera.png": Original(
        "scikit_image-0.25.2-*.whl",
        "skimage/data/camera.png",
        "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
    ),
}

# Faces found by dlib HOG (get_frontal_face_detector, upsample 1) on the upright pixels
# (ImageOps.exif_transpose). None = Pillow cannot decode the file.
EXPECTED_FACES: dict[str, int | None] = {
    "originals/grace_hopper.jpg": 1,
    "originals/astronaut.png": 2,  # Eileen Collins + a false positive on the mission patch
    "originals/camera.png": 0,  # a person, but in profile behind a camera
    "hopper_exif_rotated.jpg": 1,
    "group_photo.jpg": 2,
    "corrupt_truncated.jpg": None,
    "family/hopper_cropped_bright.jpg": 1,
    "family/collins_dated_2021.jpg": 1,
}

NOTES_TXT = """\
This is not a photo. photocluster should count this file and skip it
(it exists to exercise the "skipped by extension" report of the scanner).
"""

# Head and shoulders of Eileen Collins in astronaut.png (512x512); stops above the mission
# patch on her suit, which dlib's HOG detector mistakes for a face.
COLLINS_BOX = (60, 0, 400, 320)
# Grace Hopper's face and cap in grace_hopper.jpg (512x600).
HOPPER_BOX = (80, 40, 470, 520)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_jpeg(img: Image.Image, path: Path, exif: Image.Exif | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, object] = {"quality": JPEG_QUALITY}
    if exif is not None:
        kwargs["exif"] = exif
    img.convert("RGB").save(path, "JPEG", **kwargs)


def fit(img: Image.Image, box: tuple[int, int]) -> Image.Image:
    scale = min(box[0] / img.width, box[1] / img.height)
    size = (round(img.width * scale), round(img.height * scale))
    return img.resize(size, Image.Resampling.LANCZOS)


def import_originals(src: Path) -> None:
    """Copy the originals out of downloaded package archives (wheel zip or sdist tar.gz)."""
    ORIG.mkdir(parents=True, exist_ok=True)
    for name, o in ORIGINALS.items():
        matches = sorted(src.glob(o.archive))
        if not matches:
            sys.exit(f"no archive matching {o.archive} in {src}")
        archive = matches[0]
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                data = zf.read(o.member)
        else:
            with tarfile.open(archive) as tf:
                fh = tf.extractfile(o.member)
                if fh is None:
                    sys.exit(f"{o.member} is not a regular file in {archive}")
                data = fh.read()
        if hashlib.sha256(data).hexdigest() != o.sha256:
            sys.exit(f"{archive.name}:{o.member} has an unexpected sha256")
        (ORIG / name).write_bytes(data)
        print(f"imported originals/{name} from {archive.name}")


def check_originals() -> None:
    for name, o in ORIGINALS.items():
        path = ORIG / name
        if not path.is_file():
            sys.exit(f"missing {path}; run with --import-originals DIR")
        if sha256(path) != o.sha256:
            sys.exit(f"{path} does not match the sha256 recorded in this script")


def build() -> None:
    check_originals()
    hopper = Image.open(ORIG / "grace_hopper.jpg").convert("RGB")
    collins = Image.open(ORIG / "astronaut.png").convert("RGB").crop(COLLINS_BOX)

    # 1. Pixels stored rotated 90 degrees counter-clockwise, Orientation=6 ("rotate 90 CW to
    #    display"): upright only when the EXIF orientation is honoured.
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    save_jpeg(hopper.transpose(Image.Transpose.ROTATE_90), ROOT / "hopper_exif_rotated.jpg", exif)

    # 2. "Group photo": Hopper and Collins side by side on a 1600x800 canvas.
    canvas = Image.new("RGB", (1600, 800), (224, 224, 220))
    for i, portrait in enumerate((hopper, collins)):
        p = fit(portrait, (760, 760))
        canvas.paste(p, (i * 800 + (800 - p.width) // 2, 800 - p.height))
    save_jpeg(canvas, ROOT / "group_photo.jpg")

    # 3. Corrupt file: the first 40% of the bytes of a real JPEG.
    data = (ORIG / "grace_hopper.jpg").read_bytes()
    (ROOT / "corrupt_truncated.jpg").write_bytes(data[: len(data) * 40 // 100])

    # 4. A second, different-looking "photo" of Hopper: tighter crop, smaller, brighter.
    variant = hopper.crop(HOPPER_BOX)
    variant = variant.resize(
        (variant.width * 3 // 4, variant.height * 3 // 4), Image.Resampling.LANCZOS
    )
    variant = ImageEnhance.Brightness(variant).enhance(1.25)
    save_jpeg(variant, ROOT / "family" / "hopper_cropped_bright.jpg")

    # 5. A second photo of Collins (head and shoulders) with an EXIF capture time.
    exif = Image.Exif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = CAPTURE_TIME
    save_jpeg(collins, ROOT / "family" / "collins_dated_2021.jpg", exif)

    # 6. A non-image file inside the nested folder.
    (ROOT / "family" / "notes.txt").write_text(NOTES_TXT, encoding="utf-8", newline="\n")


def verify() -> bool:
    import dlib
    import numpy as np

    check_originals()
    det = dlib.get_frontal_face_detector()
    ok = True

    def fail(msg: str) -> None:
        nonlocal ok
        ok = False
        print("FAIL:", msg)

    found: dict[str, int | None] = {}
    for path in sorted(p for p in ROOT.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(ROOT).as_posix()
        try:
            with Image.open(path) as im:
                im.load()
                upright = ImageOps.exif_transpose(im).convert("RGB")
        except OSError:
            found[rel] = None
        else:
            found[rel] = len(det(np.asarray(upright), 1))
    for rel in sorted(set(found) | set(EXPECTED_FACES)):
        want = EXPECTED_FACES.get(rel, "not listed")
        got = found.get(rel, "missing")
        shown = "unreadable" if got is None else got
        print(f"{rel:40s} faces={shown}")
        if want != got:
            fail(f"{rel}: expected {want}, found {got}")

    rotated = ROOT / "hopper_exif_rotated.jpg"
    with Image.open(rotated) as im:
        if im.getexif().get(ORIENTATION) != 6:
            fail("hopper_exif_rotated.jpg lacks Orientation=6")
        if len(det(np.asarray(im.convert("RGB")), 1)) != 0:
            fail("hopper_exif_rotated.jpg: a face is found in the raw (un-rotated) pixels")

    with Image.open(ROOT / "family" / "collins_dated_2021.jpg") as im:
        if im.getexif().get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL) != CAPTURE_TIME:
            fail("collins_dated_2021.jpg lacks DateTimeOriginal")

    total = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    print(f"total size of sample_data/: {total} bytes")
    if total > SIZE_BUDGET:
        fail(f"sample_data/ is larger than {SIZE_BUDGET} bytes")
    print("OK" if ok else "VERIFICATION FAILED")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify only; write nothing")
    ap.add_argument(
        "--import-originals",
        type=Path,
        metavar="DIR",
        help="copy the originals out of the package archives in DIR first",
    )
    args = ap.parse_args()
    if args.import_originals:
        import_originals(args.import_originals)
    if not args.check:
        build()
    sys.exit(0 if verify() else 1)


if __name__ == "__main__":
    main()
