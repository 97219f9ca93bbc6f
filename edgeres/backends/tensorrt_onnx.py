"""ONNX preparation for TensorRT (host side: needs ``onnx`` and numpy, not TensorRT).

Strongly typed TensorRT (10.12+, and every 11.x) takes each tensor's precision from the
ONNX: an engine whose layers should run in FP16 must be built from an ONNX whose
weights and activations are FP16. ``to_fp16`` writes that copy of an FP32 model: float
initializers and constants become FP16, the graph input and output stay FP32 with a
Cast after the input and before the output, so a runner feeds and reads FP32 as usual.

Q/DQ (INT8) graphs are left alone: before opset 19 QuantizeLinear/DequantizeLinear
scales must be FP32, and the quantizer writes opset 17; strongly typed INT8 engines
therefore run the layers outside Q/DQ pairs in FP32 (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.fileio import write_bytes_atomic
from edgeres.onnxutil import is_quantized

FP16_MAX = float(np.finfo(np.float16).max)


def _onnx() -> Any:
    from edgeres.optional import require

    return require("onnx", "preparing an ONNX for TensorRT")


def _to_half(arr: np.ndarray) -> np.ndarray:
    return np.clip(arr, -FP16_MAX, FP16_MAX).astype(np.float16)


def to_fp16(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Write an FP16 copy of the FP32 ONNX ``src`` to ``dst`` (atomically), FP32 input and output kept."""
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    if is_quantized(model):
        raise EdgeresError(f"{src} is a Q/DQ (INT8) ONNX: an FP16 copy is made from the FP32 ONNX only")
    graph = model.graph
    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    for init in graph.initializer:
        if init.data_type == FLOAT:
            init.CopyFrom(numpy_helper.from_array(_to_half(numpy_helper.to_array(init)), init.name))
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == FLOAT:
                attr.t.CopyFrom(numpy_helper.from_array(_to_half(numpy_helper.to_array(attr.t)), attr.t.name))
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT:
                attr.i = HALF
    for vi in graph.value_info:
        if vi.type.tensor_type.elem_type == FLOAT:
            vi.type.tensor_type.elem_type = HALF
    new_nodes = []
    inits = {i.name for i in graph.initializer}
    for inp in graph.input:
        if inp.name in inits or inp.type.tensor_type.elem_type != FLOAT:
            continue
        half = f"{inp.name}__fp16"
        for node in graph.node:
            node.input[:] = [half if name == inp.name else name for name in node.input]
        new_nodes.append(helper.make_node("Cast", [inp.name], [half], to=HALF, name=f"{inp.name}__to_fp16"))
    tail = []
    for out in graph.output:
        if out.type.tensor_type.elem_type != FLOAT:
            continue
        half = f"{out.name}__fp16"
        for node in graph.node:
            node.output[:] = [half if name == out.name else name for name in node.output]
            node.input[:] = [half if name == out.name else name for name in node.input]
        tail.append(helper.make_node("Cast", [half], [out.name], to=FLOAT, name=f"{out.name}__to_fp32"))
    nodes = [*new_nodes, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return write_bytes_atomic(dst, model.SerializeToString())
