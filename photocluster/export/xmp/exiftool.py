"""exiftool, the one tool that writes MWG regions, sidecars and embedded XMP without losing other
tags: found on PATH and kept running for a whole export (-stay_open)."""

from __future__ import annotations

import contextlib
import queue
import shutil
import subprocess
import threading
from typing import IO, Any

from photocluster.errors import PhotoclusterError
from photocluster.export.xmp.regions import XmpError

INSTALL_EXIFTOOL = (
    "export-xmp writes XMP with exiftool, which is not installed. Install it "
    "(Debian/Ubuntu: sudo apt install libimage-exiftool-perl; macOS: brew install exiftool; "
    "Windows: https://exiftool.org) and run the command again. Nothing was written."
)


def find_exiftool() -> str | None:
    return shutil.which("exiftool")


class ExifTool:
    """One long-running exiftool (``-stay_open``): a command per photo without a Perl start-up."""

    def __init__(self, executable: str) -> None:
        self._proc = subprocess.Popen(
            [executable, "-stay_open", "True", "-@", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._errors: queue.Queue[bytes] = queue.Queue()
        assert self._proc.stderr is not None
        self._drain = threading.Thread(target=self._pump, args=(self._proc.stderr,), daemon=True)
        self._drain.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for line in iter(stream.readline, b""):
            self._errors.put(line)
        self._errors.put(b"")

    def run(self, args: list[str]) -> tuple[str, str]:
        """Run one command; returns (stdout, stderr)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        for arg in args:
            if "\n" in arg or "\r" in arg:
                raise XmpError("file names with line breaks cannot be passed to exiftool")
        payload = "\n".join([*args, "-echo4", "{ready}", "-execute", ""])
        try:
            # A file name that is not UTF-8 goes as its own bytes (exiftool takes names as bytes).
            self._proc.stdin.write(payload.encode("utf-8", "surrogateescape"))
            self._proc.stdin.flush()
        except BrokenPipeError as exc:
            raise PhotoclusterError("exiftool stopped unexpectedly") from exc
        out: list[bytes] = []
        while True:
            line = self._proc.stdout.readline()
            if not line:
                raise PhotoclusterError("exiftool stopped unexpectedly")
            if line.strip() == b"{ready}":
                break
            out.append(line)
        errs: list[bytes] = []
        while True:
            line = self._errors.get(timeout=600)
            if not line or line.strip() == b"{ready}":
                break
            errs.append(line)
        return (
            b"".join(out).decode("utf-8", "replace"),
            b"".join(errs).decode("utf-8", "replace"),
        )

    def close(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self._proc.stdin is not None
                self._proc.stdin.write(b"-stay_open\nFalse\n")
                self._proc.stdin.flush()
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def __enter__(self) -> ExifTool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


READ_TAGS = ["-XMP-mwg-rs:RegionInfo", "-XMP-iptcExt:PersonInImage", "-XMP-dc:Subject"]


def exif_error(stderr: str) -> str | None:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith("Error")]
    return lines[0] if lines else None


def as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]
