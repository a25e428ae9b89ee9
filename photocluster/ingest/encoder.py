"""The dlib adapter: face detection, 5-point alignment and ResNet 128-d embeddings.

dlib and its model files are loaded lazily, once per process, on first use, so importing
photocluster stays cheap and tests can substitute :class:`FaceEncoder` fakes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # numpy and Pillow are imported where used: `photocluster status` needs neither
    import numpy as np

# dlib's ResNet on the aligned face and on its mirror image, averaged (test-time flip
# augmentation). On ../shared/faces it raises the same-person pairs accepted at a 1e-3
# false-match rate from 78.4 % to 80.2 % (1e-4: 59.8 % -> 63.3 %) for twice the encoding time
# (76 -> 149 ms a face): see README "How thresholds were chosen". A new id, because the
# distances differ from plain dlib embeddings and must not be mixed with them.
MODEL_ID = "dlib_resnet_v1_flip"
CHIP_SIZE = 150  # dlib's ResNet input: a 150 x 150 chip aligned by dlib.get_face_chip
CHIP_PADDING = 0.25

# A dlib HOG box is at least ~80 px wide at the scale it scans; upsampling halves that.
HOG_MIN_BOX = 80


@dataclass(frozen=True)
class EncoderParams:
    """Everything that changes which faces a photo yields. Part of every photo's cache key."""

    detector: str = "hog"  # hog | cnn
    # Long side the detector sees (never upscaled). 1440 px, the top of the preview sizes Immich
    # and LibrePhotos detect on, finds ~112 px faces on a 12-MP photo: on 12-MP test photos it
    # found the same >=100 px faces (80 of 82 the plain face_recognition loop found) as 1600 px,
    # 11 % faster (bench/bench_scan.py speed).
    detect_size: int = 1440
    upsample: int = 1  # dlib pyramid upsampling steps on that view
    chip_face: int = 150  # faces are encoded from a view where they are at least this wide
    jitters: int = 1

    def __post_init__(self) -> None:
        if self.detector not in ("hog", "cnn"):
            raise ValueError(f"unknown detector {self.detector!r} (choose hog or cnn)")
        if self.detect_size < 160:
            raise ValueError("detect size must be at least 160 px")
        if not 0 <= self.upsample <= 3:
            raise ValueError("upsample must be 0..3")
        if self.jitters < 1:
            raise ValueError("jitters must be at least 1")

    def key(self, model_id: str = MODEL_ID) -> str:
        """Cache key stored on each photo: model first, so clustering can compare models."""
        return (
            f"{model_id};{self.detector};d{self.detect_size};u{self.upsample};"
            f"c{self.chip_face};j{self.jitters}"
        )

    @classmethod
    def from_key(cls, key: str) -> EncoderParams:
        """The settings a cache key (:meth:`key`) was made with; what it lacks keeps its default."""
        fields = {"d": "detect_size", "u": "upsample", "c": "chip_face", "j": "jitters"}
        given: dict[str, Any] = {}
        for part in key.split(";")[1:]:
            if part in ("hog", "cnn"):
                given["detector"] = part
            elif part[:1] in fields and part[1:].isdigit():
                given[fields[part[:1]]] = int(part[1:])
        return cls(**given)

    def smallest_face(self, long_side: int) -> float:
        """Smallest face width (displayed px) found on a photo with this long side."""
        scale = min(1.0, self.detect_size / long_side)
        return HOG_MIN_BOX / (2**self.upsample) / scale


def model_of(encoder_key: str) -> str:
    return encoder_key.split(";", 1)[0]


Box = tuple[int, int, int, int]  # left, top, right, bottom in the pixels of the array given


class FaceEncoder(Protocol):
    """What the scanner needs from a face model. Implementations load lazily."""

    model_id: str

    def detect(self, pixels: np.ndarray, upsample: int) -> list[Box]: ...

    def encode(self, pixels: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]: ...


class DlibEncoder:
    """dlib's HOG or CNN detector, 5-point shape predictor and ResNet face descriptor."""

    model_id = MODEL_ID

    def __init__(self, detector: str = "hog") -> None:
        self.detector_kind = detector
        self._detector: Any = None
        self._predictor: Any = None
        self._resnet: Any = None  # loaded on first use: the ONNX encoder may never need it
        self._resnet_path = ""

    def _load(self) -> None:
        if self._predictor is not None:
            return
        import dlib

        with warnings.catch_warnings():
            # face_recognition_models still imports the deprecated pkg_resources.
            warnings.simplefilter("ignore", UserWarning)
            import face_recognition_models as models

        if self.detector_kind == "cnn":
            self._detector = dlib.cnn_face_detection_model_v1(
                models.cnn_face_detector_model_location()
            )
        else:
            self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self._resnet_path = models.face_recognition_model_location()

    def detect(self, pixels: np.ndarray, upsample: int) -> list[Box]:
        self._load()
        import numpy as np
        from PIL import Image

        if self.detector_kind == "hog" and pixels.ndim == 3:
            # dlib's HOG takes the strongest gradient over the colour channels; on grey pixels it
            # finds the same faces (measured on 12-MP photos) in two thirds of the time.
            pixels = np.asarray(Image.fromarray(pixels).convert("L"))
        found = self._detector(pixels, upsample)
        rects = [d.rect for d in found] if self.detector_kind == "cnn" else list(found)
        return [(r.left(), r.top(), r.right(), r.bottom()) for r in rects]

    def encode(self, pixels: np.ndarray, boxes: list[Box], jitters: int) -> list[np.ndarray]:
        """Per box: 5-point landmarks, the aligned chip (exactly what dlib's own
        ``compute_face_descriptor(img, shape)`` builds), and the mean of the descriptors of the
        chip and of its mirror image."""
        self._load()
        import dlib
        import numpy as np

        if not boxes:
            return []
        chips = []
        for left, top, right, bottom in boxes:
            shape = self._predictor(pixels, dlib.rectangle(left, top, right, bottom))
            chip = dlib.get_face_chip(pixels, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
            chips += [chip, np.ascontiguousarray(chip[:, ::-1])]
        vectors = self.descriptors(chips, jitters)
        return list(vectors.reshape(len(boxes), 2, -1).mean(axis=1))

    def descriptors(self, chips: list[np.ndarray], jitters: int) -> np.ndarray:
        """dlib's 128-d descriptor of each 150x150 chip, in one call."""
        import numpy as np

        self._load()
        if self._resnet is None:
            import dlib

            self._resnet = dlib.face_recognition_model_v1(self._resnet_path)
        return np.asarray(self._resnet.compute_face_descriptor(chips, jitters), np.float32)
