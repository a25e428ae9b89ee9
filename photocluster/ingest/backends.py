"""Which code computes the face descriptors: dlib itself, or dlib's network through ONNX
Runtime (ingest.onnx_encoder), behind the one factory worker processes call. Above both
encoder modules, so neither imports the other back."""

from __future__ import annotations

from pathlib import Path

from photocluster.ingest import encoder
from photocluster.ingest.encoder import EncoderParams, FaceEncoder


def make_encoder(
    params: EncoderParams, backend: str = "dlib", onnx_path: str | None = None
) -> FaceEncoder:
    """The production encoder factory (picklable by reference for worker processes, also as a
    ``functools.partial``). ``backend``: ``dlib``, or ``auto``/``onnx`` for dlib's descriptor
    through ONNX Runtime (onnx_encoder.OnnxEncoder, with dlib as its fallback; `scan` decides
    with onnx_encoder.choose_encoder). The model id is the same."""
    if backend == "dlib":
        return encoder.DlibEncoder(params.detector)
    # ONNX Runtime and the model conversion load only for this backend
    from photocluster.ingest.onnx_encoder import OnnxEncoder

    return OnnxEncoder(params.detector, Path(onnx_path) if onnx_path else None)
