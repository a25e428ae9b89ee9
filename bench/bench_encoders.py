"""dlib's face descriptor against the ONNX Runtime conversion on every face of a set of photos.

Each photo is detected and aligned once (as `scan` does: detect on a small view, encode on a
detailed one); the chips of its faces and their mirror images then go through both dlib and
ONNX Runtime, one batch each. Prints the largest absolute difference per component (per chip,
and of the stored embedding: the mean of a chip and its mirror) and the encoding time per chip.

    uv run python bench/bench_encoders.py sample_data ../shared/faces
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from photocluster.ingest.analyse import analyse_file
from photocluster.ingest.encoder import DlibEncoder, EncoderParams
from photocluster.ingest.onnx_encoder import OnnxEncoder, ensure_model
from photocluster.ingest.walker import WalkReport, walk_images


class BothEncoders(OnnxEncoder):
    """Returns ONNX's descriptors; runs dlib's on the same chips and keeps the differences."""

    def __init__(self, onnx_path: Path) -> None:
        super().__init__("hog", onnx_path)
        self.chip_diff: list[float] = []
        self.face_diff: list[float] = []
        self.chips = 0
        self.onnx_s = 0.0
        self.dlib_s = 0.0

    def descriptors(self, chips: list[np.ndarray], jitters: int) -> np.ndarray:
        DlibEncoder.descriptors(self, chips[:1], 1)  # dlib's model loaded outside the timing
        started = time.perf_counter()
        ours = super().descriptors(chips, jitters)
        self.onnx_s += time.perf_counter() - started
        started = time.perf_counter()
        theirs = DlibEncoder.descriptors(self, chips, jitters)
        self.dlib_s += time.perf_counter() - started
        assert self.note is None, self.note
        self.chips += len(chips)
        self.chip_diff += list(np.abs(ours - theirs).max(axis=1))
        pairs = np.abs(ours.reshape(-1, 2, 128).mean(1) - theirs.reshape(-1, 2, 128).mean(1))
        self.face_diff += list(pairs.max(axis=1))
        return ours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    args = parser.parse_args()
    info, _note = ensure_model()
    params = EncoderParams()
    for folder in args.folders:
        encoder = BothEncoders(info.onnx_path)
        photos = failed = 0
        for entry in walk_images(Path(folder).resolve(), WalkReport()):
            st = os.stat(entry.path)
            result = analyse_file(entry.path, st.st_size, st.st_mtime_ns, encoder, params)
            photos += 1
            failed += result.status == "failed"
        faces = len(encoder.face_diff)
        print(
            f"{folder}: {photos} photos ({failed} unreadable), {faces} faces, {encoder.chips} "
            f"chips (faces and mirrors)\n"
            f"  max abs difference per component: chip {max(encoder.chip_diff, default=0):.2e}, "
            f"stored embedding {max(encoder.face_diff, default=0):.2e} (tolerance 1e-4)\n"
            f"  encoding per chip, batched per photo, 1 thread: dlib "
            f"{1000 * encoder.dlib_s / max(1, encoder.chips):.1f} ms, ONNX Runtime "
            f"{1000 * encoder.onnx_s / max(1, encoder.chips):.1f} ms "
            f"(x{encoder.dlib_s / max(1e-9, encoder.onnx_s):.1f})",
            flush=True,
        )
        if max(encoder.face_diff, default=0) > 1e-4:
            sys.exit(1)


if __name__ == "__main__":
    main()
