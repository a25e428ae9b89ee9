"""Read the weights of dlib's face recognition ResNet from its ``.dat`` file, without dlib.

dlib writes a network with its own ``serialize``: integers as one byte (length, 0x80 when
negative) and that many little-endian bytes; floats as such an integer mantissa and exponent;
strings as a length and the bytes; bools as ``'1'``/``'0'``; tensors (version 2) as their four
dimensions and raw little-endian float32s. The file is not self-describing (a tag or skip layer
writes only a version), so :func:`read_face_resnet` follows the one network it knows:
``anet_type`` of dlib's ``examples/dnn_face_recognition_ex.cpp``, the network
``dlib_face_recognition_resnet_model_v1.dat`` holds. Every version, layer name, shape and
hyper-parameter is checked on the way, and the file must end where the network does: a
truncated or otherwise damaged file is a :class:`DatError`, never a wrong network.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class DatError(ValueError):
    """The file is not the network expected (damaged, truncated or another model)."""


@dataclass
class Layer:
    """One computational layer, outermost (output side) first in :attr:`FaceResNet.layers`."""

    kind: str  # con | affine | relu | max_pool | avg_pool | add_prev | tag | skip | fc
    tag: int = 0  # tag/skip/add_prev: which tag
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaceResNet:
    """The network, from output to input, and the input layer's per-channel mean (R, G, B)."""

    layers: list[Layer]
    mean_rgb: tuple[float, float, float]
    size: int  # the input chip's side (150)


# --------------------------------------------------------------------------- the architecture


def _block(n: int, stride: int) -> list[Layer]:
    # block<N,BN,stride,SUB> = BN<con<N,3,3,1,1,relu<BN<con<N,3,3,stride,stride,SUB>>>>>
    return [
        Layer("affine"),
        Layer("con", params={"filters": n, "kernel": 3, "stride": 1}),
        Layer("relu"),
        Layer("affine"),
        Layer("con", params={"filters": n, "kernel": 3, "stride": stride}),
    ]


def _ares(n: int) -> list[Layer]:
    # ares<N> = relu<add_prev1<block<N,affine,1,tag1<SUB>>>>
    return [Layer("relu"), Layer("add_prev", tag=1), *_block(n, 1), Layer("tag", tag=1)]


def _ares_down(n: int) -> list[Layer]:
    # ares_down<N> = relu<add_prev2<avg_pool<2,2,2,2,skip1<tag2<block<N,affine,2,tag1<SUB>>>>>>>
    return [
        Layer("relu"),
        Layer("add_prev", tag=2),
        Layer("avg_pool", params={"kernel": 2, "stride": 2}),
        Layer("skip", tag=1),
        Layer("tag", tag=2),
        *_block(n, 2),
        Layer("tag", tag=1),
    ]


def face_resnet_layers() -> list[Layer]:
    """``anet_type`` (dnn_face_recognition_ex.cpp) from the loss layer's input down to the
    first convolution (which sits on the input layer)."""
    levels = [
        _ares_down(256),  # alevel0
        _ares(256) + _ares(256) + _ares_down(256),  # alevel1
        _ares(128) + _ares(128) + _ares_down(128),  # alevel2
        _ares(64) + _ares(64) + _ares(64) + _ares_down(64),  # alevel3
        _ares(32) + _ares(32) + _ares(32),  # alevel4
    ]
    layers = [
        Layer("fc", params={"outputs": 128}),
        Layer("avg_pool", params={"kernel": 0, "stride": 1}),  # avg_pool_everything
    ]
    for level in levels:
        layers += level
    layers += [
        Layer("max_pool", params={"kernel": 3, "stride": 2}),
        Layer("relu"),
        Layer("affine"),
        Layer("con", params={"filters": 32, "kernel": 7, "stride": 2}),
    ]
    return layers


# ------------------------------------------------------------------------------- the format


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise DatError(f"file ends early (truncated at byte {len(self.data)})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read_int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8 or head & 0x70:
            raise DatError(f"not a dlib integer at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        mantissa, exponent = self.read_int(), self.read_int()
        specials = {32000: float("inf"), 32001: float("-inf"), 32002: float("nan")}
        if exponent in specials:
            return specials[exponent]
        return float(mantissa) * 2.0**exponent

    def read_string(self) -> str:
        n = self.read_int()
        if not 0 <= n <= 1000:
            raise DatError(f"implausible string length {n} at byte {self.pos}")
        return bytes(self._take(n)).decode("latin-1")

    def read_bool(self) -> bool:
        c = bytes(self._take(1))
        if c not in (b"0", b"1"):
            raise DatError(f"not a dlib bool at byte {self.pos - 1}")
        return c == b"1"

    def expect_int(self, allowed: tuple[int, ...], what: str) -> int:
        at = self.pos
        value = self.read_int()
        if value not in allowed:
            raise DatError(f"unexpected {what} {value} at byte {at} (expected {allowed})")
        return value

    def expect_name(self, allowed: tuple[str, ...]) -> str:
        at = self.pos
        name = self.read_string()
        if name not in allowed:
            raise DatError(f"unexpected layer {name!r} at byte {at} (expected {allowed})")
        return name

    def tensor(self) -> np.ndarray:
        self.expect_int((2,), "tensor version")
        shape = tuple(self.read_int() for _ in range(4))  # num_samples, k, nr, nc
        if any(d < 0 for d in shape) or np.prod(shape, dtype=np.int64) > 50_000_000:
            raise DatError(f"implausible tensor shape {shape}")
        count = int(np.prod(shape, dtype=np.int64))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)

    def alias(self) -> tuple[int, int, int, int]:
        self.expect_int((1,), "alias_tensor version")
        n, k, nr, nc = (self.read_int() for _ in range(4))
        return n, k, nr, nc


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise DatError(message)


def _read_details(r: _Reader, layer: Layer) -> None:
    """A layer's own part of the file, checked against what ``layer`` expects."""
    p = layer.params
    if layer.kind == "con":
        r.expect_name(("con_4",))
        params = r.tensor()
        filters, nr, nc = r.read_int(), r.read_int(), r.read_int()
        stride_y, stride_x, pad_y, pad_x = r.read_int(), r.read_int(), r.read_int(), r.read_int()
        _check(
            (filters, nr, nc, stride_y, stride_x)
            == (p["filters"], p["kernel"], p["kernel"], p["stride"], p["stride"]),
            f"convolution {filters}x{nr}x{nc}/{stride_y} where {p} was expected",
        )
        wshape = r.alias()
        bshape = r.alias()
        for _ in range(4):
            r.read_float()  # learning-rate and weight-decay multipliers
        n_w = int(np.prod(wshape))
        _check(wshape[0] == filters and bshape[1] == filters, "convolution shapes disagree")
        _check(params.size == n_w + filters, "convolution parameter count disagrees")
        flat = params.reshape(-1)
        p["weight"] = flat[:n_w].reshape(wshape)  # OIHW, as ONNX wants it
        p["bias"] = flat[n_w:].copy()
        p["pad"] = (pad_y, pad_x)
        _check(pad_y == (0 if stride_y != 1 else nr // 2), "unexpected convolution padding")
    elif layer.kind == "affine":
        r.expect_name(("affine_",))
        params = r.tensor()
        gshape, bshape = r.alias(), r.alias()
        mode = r.read_int()
        _check(mode == 0, "affine layer not in convolutional mode")
        k = gshape[1]
        _check(gshape == bshape and params.size == 2 * k, "affine shapes disagree")
        flat = params.reshape(-1)
        p["gamma"], p["beta"] = flat[:k].copy(), flat[k:].copy()
    elif layer.kind == "relu":
        r.expect_name(("relu_",))
    elif layer.kind in ("max_pool", "avg_pool"):
        r.expect_name((f"{layer.kind}_2",))
        nr, nc, stride_y, stride_x, pad_y, pad_x = (r.read_int() for _ in range(6))
        _check(
            (nr, nc, stride_y, stride_x) == (p["kernel"], p["kernel"], p["stride"], p["stride"])
            and (pad_y, pad_x) == (0, 0),
            f"{layer.kind} {nr}x{nc}/{stride_y} pad {pad_y} where {p} was expected",
        )
    elif layer.kind == "add_prev":
        r.expect_name(("add_prev_",))
    elif layer.kind == "fc":
        r.expect_name(("fc_2",))
        outputs, inputs = r.read_int(), r.read_int()
        params = r.tensor()
        wshape, _bshape = r.alias(), r.alias()
        bias_mode = r.read_int()
        for _ in range(4):
            r.read_float()
        _check(outputs == p["outputs"], f"fc with {outputs} outputs")
        _check(bias_mode == 1, "fc layer with a bias (the face model has none)")
        _check(wshape[:2] == (inputs, outputs), "fc shapes disagree")
        _check(params.size == inputs * outputs, "fc parameter count disagrees")
        p["weight"] = params.reshape(inputs, outputs).copy()
    else:  # pragma: no cover - the architecture above has no other kinds
        raise AssertionError(layer.kind)


def _read_layer_tail(r: _Reader, version: int) -> None:
    """What add_layer writes after its layer: state flags and scratch tensors (empty)."""
    for _ in range(3 if version >= 2 else 2):
        r.read_bool()
    for _ in range(3 if version >= 2 else 2):
        r.tensor()


def read_face_resnet(data: bytes) -> FaceResNet:
    """Parse the whole file. Raises :class:`DatError` on anything unexpected."""
    r = _Reader(data)
    try:
        layers = face_resnet_layers()
        r.expect_int((1,), "loss layer version")
        r.expect_name(("loss_metric_", "loss_metric_2"))
        r.read_float(), r.read_float()  # margin, distance threshold: training only
        # The nesting: each wrapper writes its version before its subnetwork.
        versions: list[int] = []
        for layer in layers[:-1]:
            if layer.kind in ("tag", "skip"):
                versions.append(r.expect_int((1,), f"{layer.kind} layer version"))
            else:
                versions.append(r.expect_int((1, 2), "layer version"))
        # The first convolution sits on the input layer: another add_layer form.
        first_version = r.expect_int((2, 3), "input layer version")
        r.expect_name(("input_rgb_image_sized",))
        mean = (r.read_float(), r.read_float(), r.read_float())
        nr, nc = r.read_int(), r.read_int()
        _check(nr == nc == 150, f"input chips of {nr}x{nc} (150x150 expected)")
        _read_details(r, layers[-1])
        for _ in range(3):
            r.read_bool()
        for _ in range(3):  # x_grad, cached_output, grad_final
            r.tensor()
        if first_version >= 3:
            r.read_int()  # sample expansion factor
        # Then each wrapper's own part, innermost first.
        for layer, version in zip(reversed(layers[:-1]), reversed(versions), strict=True):
            if layer.kind in ("tag", "skip"):
                continue
            _read_details(r, layer)
            _read_layer_tail(r, version)
    except DatError:
        raise
    except (ValueError, IndexError, OverflowError) as exc:
        raise DatError(f"unreadable at byte {r.pos}: {exc}") from exc
    if r.pos != len(data):
        raise DatError(f"{len(data) - r.pos} unexpected bytes after the network")
    return FaceResNet(layers=layers, mean_rgb=mean, size=nr)
