"""The real `photocluster` CLI with :class:`tests.fakes.FakeEncoder` in place of dlib.

For tests that need a real process (signals, kill -9, worker processes) but not real faces:
``python -m tests.fake_encoder_cli scan LIB --db CAT -j 2`` from the repository root.
``FAKE_ENCODER_DELAY`` (seconds per photo) makes photos slow enough to interrupt mid-scan;
``FAKE_ENCODER_LOG`` gets one line per photo analysed (as for the in-process fake).
``FAKE_ENCODER_NO_PDEATHSIG=1`` leaves workers only the parent watchdog (as on macOS).
"""

from __future__ import annotations

import os
import time

import numpy as np

import photocluster.ingest.encoder
import photocluster.ingest.executors
from photocluster.cli import main
from tests.fakes import FakeEncoder

DELAY = float(os.environ.get("FAKE_ENCODER_DELAY", "0"))


class SlowFakeEncoder(FakeEncoder):
    def detect(self, pixels: np.ndarray, upsample: int) -> list[tuple[int, int, int, int]]:
        time.sleep(DELAY)
        return super().detect(pixels, upsample)


def _fake(detector: str = "hog") -> SlowFakeEncoder:
    return SlowFakeEncoder(log=os.environ.get("FAKE_ENCODER_LOG"))


# make_encoder (the production factory, and the one worker processes call) builds a DlibEncoder.
photocluster.ingest.encoder.DlibEncoder = _fake  # type: ignore[assignment,misc]
if os.environ.get("FAKE_ENCODER_NO_PDEATHSIG"):
    photocluster.ingest.executors.USE_PDEATHSIG = False

if __name__ == "__main__":
    main()
