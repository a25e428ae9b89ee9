"""Build an ONNX graph of dlib's face recognition ResNet from the weights :mod:`dlib_dat` read.

The graph takes aligned 150x150 RGB chips as uint8 (N, 150, 150, 3), normalises them exactly as
dlib's ``input_rgb_image_sized`` does (``(pixel - mean) / 256`` per channel, in float32) and
returns dlib's 128-d descriptor of each chip (N, 128). Each ``affine`` (dlib's frozen batch norm)
is folded into the convolution before it. Where a downsampling residual adds tensors of
different sizes, dlib's ``add_prev`` pads the smaller one with zeros at the end of each axis
(channels, rows, columns): so does this graph. Needs the ``onnx`` package (only to convert).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from photocluster.ingest.dlib_dat import FaceResNet, Layer

OPSET = 17
IR_VERSION = 8  # what onnxruntime 1.14 and later read
INPUT = "chips"
OUTPUT = "descriptors"


def build_face_resnet(net: FaceResNet) -> bytes:
    """The serialized ONNX model of ``net``."""
    from onnx import TensorProto, helper

    g = _Graph()
    x = _input_nodes(g, net)
    shape = (3, net.size, net.size)  # channels, rows, columns of x
    layers = list(reversed(net.layers))  # input side first
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 0
    while i < len(layers):
        layer = layers[i]
        if layer.kind == "con":
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            affine = nxt if nxt is not None and nxt.kind == "affine" else None
            x, shape = _conv(g, x, shape, layer, affine)
            i += 1 if affine is not None else 0  # the batch norm is folded in
        elif layer.kind == "tag":
            tags[layer.tag] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.tag]
        elif layer.kind == "add_prev":
            x, shape = _add_prev(g, (x, shape), tags[layer.tag])
        else:
            x, shape = _plain_layer(g, x, shape, layer)
        i += 1
    g.nodes[-1].output[0] = OUTPUT
    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", net.size, net.size, 3])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", 128])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name="photocluster",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    return bytes(model.SerializeToString())


class _Graph:
    """The nodes and initializers of the graph being built, each named ``<prefix>_<n>`` with
    one running number (so a rebuild gives the same bytes)."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._counter = iter(range(1_000_000))

    def fresh(self, prefix: str) -> str:
        return f"{prefix}_{next(self._counter)}"

    def const(self, array: np.ndarray, prefix: str) -> str:
        """A constant tensor (an initializer); its name."""
        from onnx import numpy_helper

        name = self.fresh(prefix)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        """A node with one output; the output's name."""
        from onnx import helper

        out = self.fresh(prefix)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _input_nodes(g: _Graph, net: FaceResNet) -> str:
    """Input: uint8 NHWC -> float32 NCHW, (x - mean) / 256 exactly as dlib (the / 256 is
    exact)."""
    from onnx import TensorProto

    x = g.node("Cast", [INPUT], "cast", to=TensorProto.FLOAT)
    x = g.node("Sub", [x, g.const(np.asarray(net.mean_rgb, np.float32), "mean")], "centre")
    x = g.node("Mul", [x, g.const(np.asarray(1 / 256, np.float32), "scale")], "scale")
    return g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])


def _conv(
    g: _Graph, x: str, shape: tuple[int, int, int], layer: Layer, affine: Layer | None
) -> tuple[str, tuple[int, int, int]]:
    """A convolution, with the frozen batch norm after it (``affine``) folded into its weights
    and bias; the output and its shape."""
    p = layer.params
    w, b = p["weight"], p["bias"]
    if affine is not None:
        gamma, beta = affine.params["gamma"], affine.params["beta"]
        w = w * gamma[:, None, None, None]
        b = b * gamma + beta
    k, s = p["kernel"], p["stride"]
    pad_y, pad_x = p["pad"]
    x = g.node(
        "Conv",
        [x, g.const(w.astype(np.float32), "w"), g.const(b.astype(np.float32), "b")],
        "conv",
        kernel_shape=[k, k],
        strides=[s, s],
        pads=[pad_y, pad_x, pad_y, pad_x],
    )
    return x, (
        w.shape[0],
        (shape[1] + 2 * pad_y - k) // s + 1,
        (shape[2] + 2 * pad_x - k) // s + 1,
    )


def _add_prev(
    g: _Graph,
    current: tuple[str, tuple[int, int, int]],
    tagged: tuple[str, tuple[int, int, int]],
) -> tuple[str, tuple[int, int, int]]:
    """dlib's ``add_prev``: the current tensor plus the tagged one, the smaller zero-padded."""
    (x, shape), (other, other_shape) = current, tagged
    out_shape = (
        max(shape[0], other_shape[0]),
        max(shape[1], other_shape[1]),
        max(shape[2], other_shape[2]),
    )
    x = _pad_to(g, x, shape, out_shape)
    other = _pad_to(g, other, other_shape, out_shape)
    return g.node("Add", [x, other], "add"), out_shape


def _plain_layer(
    g: _Graph, x: str, shape: tuple[int, int, int], layer: Layer
) -> tuple[str, tuple[int, int, int]]:
    """A layer that reads only its input: affine, relu, pooling, fc; the output and its
    shape."""
    p = layer.params
    if layer.kind == "affine":  # not after a convolution (none in this network)
        gamma = p["gamma"].reshape(1, -1, 1, 1)
        x = g.node("Mul", [x, g.const(gamma, "gamma")], "affine")
        x = g.node("Add", [x, g.const(p["beta"].reshape(1, -1, 1, 1), "beta")], "affine")
    elif layer.kind == "relu":
        x = g.node("Relu", [x], "relu")
    elif layer.kind in ("max_pool", "avg_pool"):
        k, s = p["kernel"], p["stride"]
        if k == 0:  # avg_pool_everything
            x = g.node("GlobalAveragePool", [x], "gap")
            shape = (shape[0], 1, 1)
        else:
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            x = g.node(op, [x], "pool", kernel_shape=[k, k], strides=[s, s])
            shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
    elif layer.kind == "fc":
        x = g.node("Flatten", [x], "flat", axis=1)
        x = g.node("MatMul", [x, g.const(p["weight"].astype(np.float32), "fc")], "fc")
    else:  # pragma: no cover
        raise AssertionError(layer.kind)
    return x, shape


def _pad_to(g: _Graph, x: str, shape: tuple, target: tuple) -> str:
    """Zeros after the end of each axis up to ``target`` (dlib's ``tt::add`` of unequal sizes)."""
    extra = [t - s for s, t in zip(shape, target, strict=True)]
    if not any(extra):
        return x
    pads = np.asarray([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return g.node("Pad", [x, g.const(pads, "pads")], "pad")
