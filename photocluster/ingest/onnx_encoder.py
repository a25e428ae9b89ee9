"""dlib's face descriptor through ONNX Runtime: the converted model and the encoder that uses it.

The ResNet in ``dlib_face_recognition_resnet_model_v1.dat`` is converted once
(:mod:`dlib_dat` reads it, :mod:`onnx_build` builds the graph), checked against dlib itself on
fixed chips (every component within :data:`TOLERANCE`), and cached in the user cache
(``$XDG_CACHE_HOME/photocluster/models``) under the .dat's SHA-256: a ``.onnx`` file and a
``.json`` naming it with its SHA-256 and the check's result, each written to a temporary file
and renamed, so two processes converting at once leave one whole model. The numbers are dlib's
(within 1e-4), so the model id stored with each face does not change.

Anything wrong (``onnx``/``onnxruntime`` missing or failing to load, an unreadable .dat, a cached
model whose checksum does not match and cannot be rebuilt, a check that fails) leaves the dlib
descriptor in use and says why in one line (:attr:`OnnxEncoder.note`,
:attr:`EncoderChoice.note`); nothing here raises for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photocluster.ingest.encoder import CHIP_SIZE, DlibEncoder

CONVERTER_VERSION = 1  # bump when the graph built from the same .dat changes
TOLERANCE = 1e-4  # max abs difference per component from dlib's own descriptor
ENV_MODEL_CACHE = "PHOTOCLUSTER_MODEL_CACHE"
# Execution providers to try before the CPU, e.g. "CUDAExecutionProvider" with onnxruntime-gpu
# installed in place of onnxruntime. Whatever runs is checked against dlib's numbers first.
ENV_PROVIDERS = "PHOTOCLUSTER_ONNX_PROVIDERS"
BACKENDS = ("auto", "onnx", "dlib")


class ConversionError(Exception):
    """The ONNX model cannot be made or used; the message is the one-line reason."""


def model_cache_dir() -> Path:
    """``$PHOTOCLUSTER_MODEL_CACHE``, else ``$XDG_CACHE_HOME/photocluster/models``, else
    ``~/.cache/photocluster/models``."""
    if os.environ.get(ENV_MODEL_CACHE):
        return Path(os.environ[ENV_MODEL_CACHE]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "photocluster" / "models"


def dlib_model_path() -> Path:
    """The .dat that face_recognition_models ships, found without importing it (its import
    loads pkg_resources: ~0.3 s before a scan starts)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "models" / "dlib_face_recognition_resnet_model_v1.dat"
        if path.is_file():
            return path
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pkg_resources deprecation
        import face_recognition_models as models

    return Path(models.face_recognition_model_location())


def check_chips() -> np.ndarray:
    """Fixed 150x150 chips the converted model is checked on: smooth shapes (as a face gives the
    first layers) and fine noise (every weight matters). Deterministic."""
    rng = np.random.default_rng(21)
    yy, xx = np.mgrid[0:CHIP_SIZE, 0:CHIP_SIZE].astype(np.float32) / CHIP_SIZE
    smooth = np.stack(
        [
            128 + 90 * np.sin(6 * xx + 2 * yy),
            128 + 80 * np.cos(5 * yy - 3 * xx),
            110 + 70 * np.sin(4 * (xx - 0.5) ** 2 + 9 * (yy - 0.4) ** 2),
        ],
        axis=-1,
    )
    noise = rng.integers(0, 256, size=(CHIP_SIZE, CHIP_SIZE, 3))
    mixed = 0.7 * smooth + 0.3 * noise
    return np.clip(np.stack([smooth, noise, mixed]), 0, 255).astype(np.uint8)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    """Temporary file in the same folder, fsync, rename: readers see all of it or nothing."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a model is not
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def make_session(model: bytes | str, threads: int = 1) -> Any:
    """An onnxruntime session on the CPU (``threads`` intra-op threads: scan runs one worker per
    core, so one each), after any providers ``$PHOTOCLUSTER_ONNX_PROVIDERS`` names (comma
    separated) that this onnxruntime has."""
    try:
        import onnxruntime as ort
    except Exception as exc:  # ImportError, or a wheel that cannot load on this CPU
        raise ConversionError(f"onnxruntime cannot be loaded ({_short(exc)})") from exc
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    wanted = [p.strip() for p in os.environ.get(ENV_PROVIDERS, "").split(",") if p.strip()]
    have = set(ort.get_available_providers())
    providers = [p for p in wanted if p in have and p != "CPUExecutionProvider"]
    try:
        return ort.InferenceSession(model, options, providers=[*providers, "CPUExecutionProvider"])
    except Exception as exc:
        raise ConversionError(
            f"onnxruntime cannot load the converted model ({_short(exc)})"
        ) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


def _dlib_descriptors(dat: Path, chips: np.ndarray) -> np.ndarray:
    import dlib

    net = dlib.face_recognition_model_v1(str(dat))
    return np.asarray(net.compute_face_descriptor(list(chips), 1), dtype=np.float32)


@dataclass
class ModelInfo:
    onnx_path: Path
    max_abs_diff: float  # on the check chips, at conversion
    converted: bool  # made by this call
    expected: np.ndarray  # dlib's descriptors of check_chips(), to check any later session


def check_session(session: Any, expected: np.ndarray) -> float:
    """Run the check chips; raise :class:`ConversionError` unless every component is within
    :data:`TOLERANCE` of dlib's. Returns the largest difference."""
    try:
        ours = np.asarray(session.run(None, {"chips": check_chips()})[0], dtype=np.float32)
    except Exception as exc:
        raise ConversionError(f"onnxruntime failed to run the face model ({_short(exc)})") from exc
    diff = float(np.abs(ours - expected).max()) if ours.shape == expected.shape else float("inf")
    if not diff <= TOLERANCE:  # also catches NaN
        raise ConversionError(
            f"the converted model differs from dlib by {diff:.2g} (more than {TOLERANCE:g})"
        )
    return diff


def convert(dat: Path, cache: Path, dat_bytes: bytes | None = None) -> ModelInfo:
    """Read the .dat, build the ONNX graph, check it against dlib, store it. Raises
    :class:`ConversionError` with a one-line reason."""
    # the .dat reader and the onnx package are needed once per machine, when converting
    from photocluster.ingest.dlib_dat import DatError, read_face_resnet

    try:
        data = dat_bytes if dat_bytes is not None else dat.read_bytes()
    except OSError as exc:
        raise ConversionError(f"cannot read {dat} ({exc.strerror or exc})") from exc
    try:
        net = read_face_resnet(data)
    except DatError as exc:
        raise ConversionError(f"{dat.name} is not the expected dlib model ({exc})") from exc
    try:  # the onnx package may be missing: the caller then falls back to dlib
        from photocluster.ingest.onnx_build import build_face_resnet

        blob = build_face_resnet(net)
    except ImportError as exc:
        raise ConversionError(f"the onnx package is missing ({_short(exc)})") from exc
    theirs = _dlib_descriptors(dat, check_chips())
    diff = check_session(make_session(blob), theirs)
    digest = _sha256(blob)
    stem = _stem(_sha256(data))
    onnx_path = cache / f"{stem}-{digest[:16]}.onnx"
    meta = {
        "source": dat.name,
        "source_sha256": _sha256(data),
        "converter": CONVERTER_VERSION,
        "onnx_file": onnx_path.name,
        "onnx_sha256": digest,
        "max_abs_diff": diff,
        "check_descriptors": theirs.tolist(),  # dlib's, on check_chips()
    }
    try:
        cache.mkdir(parents=True, exist_ok=True)
        _write_atomically(onnx_path, blob)
        _write_atomically(cache / f"{stem}.json", json.dumps(meta, indent=1).encode())
    except OSError as exc:
        raise ConversionError(f"cannot write the converted model to {cache} ({exc})") from exc
    return ModelInfo(onnx_path, diff, converted=True, expected=theirs)


def _stem(dat_sha: str) -> str:
    return f"dlib_resnet_v1-{dat_sha[:16]}-c{CONVERTER_VERSION}"


def cached_model(dat_bytes: bytes, cache: Path) -> ModelInfo | None:
    """The converted model of this .dat if it is there and whole; None if there is none.
    Raises :class:`ConversionError` for one that is damaged (its checksum does not match)."""
    meta_path = cache / f"{_stem(_sha256(dat_bytes))}.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ConversionError(f"converted model record {meta_path} is damaged ({exc})") from exc
    try:
        onnx_path = cache / str(meta["onnx_file"])
        digest = _sha256(onnx_path.read_bytes())
        ok = digest == meta["onnx_sha256"] and float(meta["max_abs_diff"]) <= TOLERANCE
        expected = np.asarray(meta["check_descriptors"], dtype=np.float32).reshape(-1, 128)
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ConversionError(f"converted model in {cache} is missing or damaged ({exc})") from exc
    if not ok:
        raise ConversionError(f"converted model {onnx_path} is damaged (checksum mismatch)")
    return ModelInfo(onnx_path, float(meta["max_abs_diff"]), converted=False, expected=expected)


def ensure_model(
    dat: Path | None = None, cache: Path | None = None
) -> tuple[ModelInfo, str | None]:
    """The checked ONNX model, converting it when there is none (or the one there is damaged:
    the returned note says so). Raises :class:`ConversionError` when it cannot be had."""
    dat = dat or dlib_model_path()
    cache = cache or model_cache_dir()
    try:
        data = dat.read_bytes()
    except OSError as exc:
        raise ConversionError(f"cannot read {dat} ({exc.strerror or exc})") from exc
    note = None
    try:
        found = cached_model(data, cache)
    except ConversionError as exc:
        note = f"{exc}; converted again"
        found = None
    if found is not None:
        return found, None
    return convert(dat, cache, data), note


@dataclass
class EncoderChoice:
    """Which descriptor code a scan runs, decided once before its workers start."""

    backend: str  # onnx | dlib
    onnx_path: Path | None = None
    note: str | None = None  # one line for the user (a fallback to dlib, a reconversion)
    converted: bool = False


def choose_encoder(
    backend: str = "auto", cache: Path | None = None, dat: Path | None = None
) -> EncoderChoice:
    """``dlib``: dlib's descriptor. ``auto``/``onnx``: the converted model (made and checked now
    if needed; loaded once here and run on the check chips against dlib's stored numbers, so a
    runtime that cannot load or computes differently on this machine is found before any
    photo), else dlib with a note."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder {backend!r} (choose {', '.join(BACKENDS)})")
    if backend == "dlib":
        return EncoderChoice("dlib")
    try:
        info, note = ensure_model(dat, cache)
        if not info.converted:  # a fresh conversion has just run this check
            check_session(make_session(str(info.onnx_path)), info.expected)
    except ConversionError as exc:
        return EncoderChoice("dlib", note=f"using dlib's face descriptor: {exc}")
    return EncoderChoice("onnx", info.onnx_path, note=note, converted=info.converted)


class OnnxEncoder(DlibEncoder):
    """dlib's detector, landmarks and chips; the descriptors of a photo's chips and their
    mirror images from ONNX Runtime in one batch. Falls back to dlib's descriptor (with
    :attr:`note` saying why) when the model cannot be had, and for jitters > 1 (dlib's random
    jitter is dlib's own)."""

    def __init__(self, detector: str = "hog", onnx_path: Path | None = None) -> None:
        super().__init__(detector)
        self.onnx_path = onnx_path
        self.note: str | None = None
        self._session: Any = None
        self._tried = False

    def _onnx(self) -> Any:
        if not self._tried:
            self._tried = True
            try:
                path = self.onnx_path or ensure_model()[0].onnx_path
                self._session = make_session(str(path))
            except ConversionError as exc:
                self.note = f"using dlib's face descriptor: {exc}"
        return self._session

    def descriptors(self, chips: list[np.ndarray], jitters: int) -> np.ndarray:
        session = self._onnx() if jitters == 1 else None
        if session is None:
            return super().descriptors(chips, jitters)
        return np.asarray(session.run(None, {"chips": np.stack(chips)})[0], dtype=np.float32)
