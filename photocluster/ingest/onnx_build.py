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

from photocluster.ingest.dlib_dat import FaceResNet

OPSET = 17
IR_VERSION = 8  # what onnxruntime 1.14 and later read
INPUT = "chips"
OUTPUT = "descriptors"


def build_face_resnet(net: FaceResNet) -> bytes:
    """The serialized ONNX model of ``net``."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []
    counter = iter(range(1_000_000))

    def fresh(prefix: str) -> str:
        return f"{prefix}_{next(counter)}"

    def const(array: np.ndarray, prefix: str) -> str:
        name = fresh(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = fresh(prefix)
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    # Input: uint8 NHWC -> float32 NCHW, (x - mean) / 256 exactly as dlib (the / 256 is exact).
    x = node("Cast", [INPUT], "cast", to=TensorProto.FLOAT)
    x = node("Sub", [x, const(np.asarray(net.mean_rgb, np.float32), "mean")], "centre")
    x = node("Mul", [x, const(np.asarray(1 / 256, np.float32), "scale")], "scale")
    x = node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    shape = (3, net.size, net.size)  # channels, rows, columns of x

    layers = list(reversed(net.layers))  # input side first
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 0
    while i < len(layers):
        layer = layers[i]
        p = layer.params
        if layer.kind == "con":
            w, b = p["weight"], p["bias"]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is not None and nxt.kind == "affine":  # fold the frozen batch norm
                g, beta = nxt.params["gamma"], nxt.params["beta"]
                w = w * g[:, None, None, None]
                b = b * g + beta
                i += 1
            k, s = p["kernel"], p["stride"]
            pad_y, pad_x = p["pad"]
            x = node(
                "Conv",
                [x, const(w.astype(np.float32), "w"), const(b.astype(np.float32), "b")],
                "conv",
                kernel_shape=[k, k],
                strides=[s, s],
                pads=[pad_y, pad_x, pad_y, pad_x],
            )
            shape = (
                w.shape[0],
                (shape[1] + 2 * pad_y - k) // s + 1,
                (shape[2] + 2 * pad_x - k) // s + 1,
            )
        elif layer.kind == "affine":  # not after a convolution (none in this network)
            g = p["gamma"].reshape(1, -1, 1, 1)
            x = node("Mul", [x, const(g, "gamma")], "affine")
            x = node("Add", [x, const(p["beta"].reshape(1, -1, 1, 1), "beta")], "affine")
        elif layer.kind == "relu":
            x = node("Relu", [x], "relu")
        elif layer.kind in ("max_pool", "avg_pool"):
            k, s = p["kernel"], p["stride"]
            if k == 0:  # avg_pool_everything
                x = node("GlobalAveragePool", [x], "gap")
                shape = (shape[0], 1, 1)
            else:
                op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
                x = node(op, [x], "pool", kernel_shape=[k, k], strides=[s, s])
                shape = (shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1)
        elif layer.kind == "tag":
            tags[layer.tag] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.tag]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.tag]
            out_shape = (
                max(shape[0], other_shape[0]),
                max(shape[1], other_shape[1]),
                max(shape[2], other_shape[2]),
            )
            x = _pad_to(x, shape, out_shape, node, const)
            other = _pad_to(other, other_shape, out_shape, node, const)
            x = node("Add", [x, other], "add")
            shape = out_shape
        elif layer.kind == "fc":
            x = node("Flatten", [x], "flat", axis=1)
            x = node("MatMul", [x, const(p["weight"].astype(np.float32), "fc")], "fc")
        else:  # pragma: no cover
            raise AssertionError(layer.kind)
        i += 1
    nodes[-1].output[0] = OUTPUT
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", net.size, net.size, 3])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", 128])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        producer_name="photocluster",
        opset_imports=[helper.make_opsetid("", OPSET)],
    )
    model.ir_version = IR_VERSION
    return bytes(model.SerializeToString())


def _pad_to(x: str, shape: tuple, target: tuple, node: Any, const: Any) -> str:
    """Zeros after the end of each axis up to ``target`` (dlib's ``tt::add`` of unequal sizes)."""
    extra = [t - s for s, t in zip(shape, target, strict=True)]
    if not any(extra):
        return x
    pads = np.asarray([0, 0, 0, 0, 0, *extra], dtype=np.int64)
    return str(node("Pad", [x, const(pads, "pads")], "pad"))
