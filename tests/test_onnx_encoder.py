"""dlib's face descriptor through ONNX Runtime: the .dat reader on damaged files, the converted
model's cache (damage, two processes converting at once), the fallback to dlib, and the same
embeddings as dlib's on real photos."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from photocluster.ingest.dlib_dat import DatError, read_face_resnet
from photocluster.ingest.encoder import DlibEncoder, EncoderParams
from photocluster.ingest.onnx_encoder import (
    TOLERANCE,
    ConversionError,
    OnnxEncoder,
    cached_model,
    choose_encoder,
    dlib_model_path,
    ensure_model,
)
from tests.conftest import ROOT, SAMPLE_DATA

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

DAT = dlib_model_path()


@pytest.fixture(scope="module")
def dat_bytes() -> bytes:
    return DAT.read_bytes()


# ---------------------------------------------------------------------------- the .dat reader


def test_reader_reads_the_whole_network(dat_bytes: bytes) -> None:
    net = read_face_resnet(dat_bytes)
    # dlib's input_rgb_image_sized<150>: (pixel - mean) / 256 with these means
    assert net.size == 150
    assert np.allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    convs = [layer for layer in net.layers if layer.kind == "con"]
    assert len(convs) == 29 and convs[-1].params["weight"].shape == (32, 3, 7, 7)
    assert net.layers[0].params["weight"].shape == (256, 128)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[: len(b) // 2], "ends early"),
        (lambda b: b[:-1], "ends early"),
        (lambda b: b + b"\0", "unexpected bytes after"),
        (lambda b: b"", "ends early"),
        (lambda b: b[:4] + b"X" + b[5:], "unexpected layer"),  # "loss_metric_2" renamed
        (lambda b: b[:100] + bytes([0x7F]) + b[101:], "unexpected layer version 127"),
        (lambda b: b[:99] + bytes([0x7F]) + b[100:], "not a dlib integer"),
    ],
)
def test_reader_refuses_a_damaged_file(dat_bytes: bytes, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DatError, match=message):
        read_face_resnet(damage(dat_bytes))


def test_a_damaged_dat_falls_back_to_dlib_with_a_one_line_note(tmp_path: Path) -> None:
    bad = tmp_path / "dlib_face_recognition_resnet_model_v1.dat"
    bad.write_bytes(DAT.read_bytes()[:5_000_000])
    choice = choose_encoder("auto", cache=tmp_path / "cache", dat=bad)
    assert choice.backend == "dlib" and choice.onnx_path is None
    assert choice.note is not None and "\n" not in choice.note
    assert "not the expected dlib model" in choice.note and "ends early" in choice.note
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_onnxruntime_failing_to_load_falls_back_to_dlib(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise ConversionError("onnxruntime cannot be loaded (ImportError: illegal instruction)")

    monkeypatch.setattr("photocluster.ingest.onnx_encoder.make_session", broken)
    choice = choose_encoder("onnx", cache=tmp_path)
    assert choice.backend == "dlib"
    assert choice.note == (
        "using dlib's face descriptor: onnxruntime cannot be loaded (ImportError: illegal "
        "instruction)"
    )
    encoder = OnnxEncoder("hog", tmp_path / "missing.onnx")
    chips = [np.full((150, 150, 3), 100, np.uint8)]
    monkeypatch.setattr(DlibEncoder, "descriptors", lambda self, chips, jitters: np.zeros((1, 3)))
    assert encoder.descriptors(chips, 1).shape == (1, 3)  # dlib's (here a stand-in)
    assert encoder.note is not None and "cannot be loaded" in encoder.note


def test_unknown_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoder"):
        choose_encoder("tensorrt")


# ------------------------------------------------------------------ the converted model's cache


@pytest.mark.dlib
def test_conversion_is_checked_cached_and_a_damaged_copy_is_made_again(tmp_path: Path) -> None:
    info, note = ensure_model(cache=tmp_path)
    assert info.converted and note is None and info.max_abs_diff <= TOLERANCE
    again, note = ensure_model(cache=tmp_path)
    assert not again.converted and again.onnx_path == info.onnx_path and note is None
    # one flipped byte: the checksum says so, and the model is converted again
    blob = bytearray(info.onnx_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    info.onnx_path.write_bytes(bytes(blob))
    with pytest.raises(ConversionError, match="checksum mismatch"):
        cached_model(DAT.read_bytes(), tmp_path)
    fixed, note = ensure_model(cache=tmp_path)
    assert fixed.converted and note is not None and "checksum mismatch" in note
    assert cached_model(DAT.read_bytes(), tmp_path) is not None
    # a runtime that computes other numbers than dlib's (here: dlib's numbers moved by 1e-3)
    record = next(tmp_path.glob("*.json"))
    meta = json.loads(record.read_text())
    meta["check_descriptors"] = (np.asarray(meta["check_descriptors"]) + 1e-3).tolist()
    record.write_text(json.dumps(meta))
    choice = choose_encoder("auto", cache=tmp_path)
    assert choice.backend == "dlib" and choice.note is not None
    assert "differs from dlib by 0.001" in choice.note
    # a record that is not JSON
    record.write_text("{not json")
    with pytest.raises(ConversionError, match="damaged"):
        cached_model(DAT.read_bytes(), tmp_path)


_CONVERT = """
import sys
from pathlib import Path
from photocluster.ingest.onnx_encoder import ensure_model
info, _ = ensure_model(cache=Path(sys.argv[1]))
print(info.onnx_path)
"""


@pytest.mark.dlib
def test_two_processes_converting_at_once_leave_one_whole_model(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONVERT, str(cache)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _o, err in outs]
    paths = {out.strip() for out, _err in outs}
    assert len(paths) == 1  # the same bytes, so the same file
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".onnx"]  # no temp files
    assert cached_model(DAT.read_bytes(), cache) is not None


# ------------------------------------------------------------------- the same numbers as dlib


def _photos() -> list[Path]:
    return sorted(
        p for p in SAMPLE_DATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
    )


@pytest.mark.dlib
def test_onnx_embeddings_equal_dlibs_on_every_sample_face() -> None:
    from photocluster.ingest.analyse import analyse_file

    info, _ = ensure_model()
    params = EncoderParams()
    dlib_encoder, onnx_encoder = DlibEncoder(), OnnxEncoder("hog", info.onnx_path)
    faces = 0
    for photo in _photos():
        st = photo.stat()
        a = analyse_file(str(photo), st.st_size, st.st_mtime_ns, dlib_encoder, params)
        b = analyse_file(str(photo), st.st_size, st.st_mtime_ns, onnx_encoder, params)
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        for x, y in zip(a.faces, b.faces, strict=True):
            assert np.abs(x.embedding - y.embedding).max() <= TOLERANCE
            faces += 1
    assert onnx_encoder.note is None and faces >= 7


@pytest.mark.dlib
def test_scan_uses_onnx_by_default_and_dlib_with_a_note_when_it_cannot(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from photocluster.cli import app

    runner = CliRunner()
    monkeypatch.delenv("PHOTOCLUSTER_ENCODER")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "hopper.jpg").write_bytes(
        (SAMPLE_DATA / "originals" / "grace_hopper.jpg").read_bytes()
    )
    result = runner.invoke(
        app, ["scan", str(folder), "--db", str(tmp_path / "a.db"), "--json", "-j", "1"]
    )
    assert result.exit_code == 0, result.stderr
    onnx_run = json.loads(result.stdout)
    assert onnx_run["descriptor"] == "onnx" and onnx_run["faces_found"] == 1

    def broken(*_a: object, **_k: object) -> None:
        raise ConversionError("onnxruntime cannot load the converted model (Fail: damaged)")

    monkeypatch.setattr("photocluster.ingest.onnx_encoder.make_session", broken)
    monkeypatch.setattr("photocluster.ingest.onnx_encoder.cached_model", lambda *a: None)
    result = runner.invoke(
        app, ["scan", str(folder), "--db", str(tmp_path / "b.db"), "--json", "-j", "1"]
    )
    assert result.exit_code == 0, result.stderr
    dlib_run = json.loads(result.stdout)
    assert dlib_run["descriptor"] == "dlib" and dlib_run["faces_found"] == 1
    notes = [line for line in result.stderr.splitlines() if "descriptor" in line]
    assert notes == [
        "note: using dlib's face descriptor: onnxruntime cannot load the converted model "
        "(Fail: damaged)"
    ]
    for db in ("a.db", "b.db"):  # the same model id either way: the catalogs can be mixed
        import sqlite3

        con = sqlite3.connect(tmp_path / db)
        (key,) = con.execute("SELECT DISTINCT encoder FROM photos").fetchone()
        con.close()
        assert key.startswith("dlib_resnet_v1_flip;")


def test_model_cache_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from photocluster.ingest.onnx_encoder import model_cache_dir

    monkeypatch.delenv("PHOTOCLUSTER_MODEL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    assert model_cache_dir() == Path("/x/cache/photocluster/models")
    monkeypatch.setenv("PHOTOCLUSTER_MODEL_CACHE", "/y")
    assert model_cache_dir() == Path("/y")
    assert os.environ["PHOTOCLUSTER_MODEL_CACHE"] == "/y"
