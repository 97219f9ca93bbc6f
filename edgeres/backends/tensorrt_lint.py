"""Lint a Q/DQ ONNX against TensorRT's rules for explicit quantization (host side, needs onnx only).

TensorRT builds an INT8 engine from the QuantizeLinear/DequantizeLinear pairs in the ONNX
("Explicit Quantization" in NVIDIA's TensorRT developer guide). A graph that breaks its rules
either fails to parse on the device, or builds an engine that is slower or less accurate
than it should be, and nobody notices until the device. Each rule here gives one line per
violation, naming the node and the fix:

- INT8 only, symmetric: zero points are int8 and 0 (TensorRT has no asymmetric INT8).
- scales are positive and finite; activations are quantized per tensor (scalar scale);
  weights per tensor or per channel on the output-channel axis (Conv: 0; Gemm: 0 with
  transB=1, else 1).
- no Q/DQ on the network output: the logits leave the graph in float (looked for through
  value-preserving ops such as Cast, Identity, Reshape and Flatten, so the FP16 converter's
  ``DequantizeLinear -> Cast(FLOAT) -> logits`` is caught too).
- a residual Add after an INT8 convolution has its *other* input quantized too, else
  TensorRT cannot fuse the Add (and the ReLU after it) into the convolution.
- the opset is within what each named TensorRT version's ONNX parser takes, FP16 scales only
  from opset 19, and every operator is one those parsers support (``tensorrt_ops``: onnx-tensorrt's
  operator table, with the version each operator arrived in).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.backends.tensorrt_ops import ParserLimit, parses, since
from edgeres.backends.tensorrt_plan import parse_version, version_text
from edgeres.backends.tensorrt_recipes import RECIPES, recipe_for
from edgeres.errors import EdgeresError, UsageError
from edgeres.onnxutil import load_onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
WEIGHTED = ("Conv", "Gemm", "MatMul", "ConvTranspose")
FP16_SCALES_FROM_OPSET = 19
PER_CHANNEL_FROM_OPSET = 13
INT8, UINT8, FLOAT, FLOAT16 = 3, 2, 1, 10   # onnx.TensorProto data types

# Ops between a DequantizeLinear and a graph output that leave the INT8-rounded values as they are.
VALUE_PRESERVING = ("Cast", "CastLike", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")


@dataclass(frozen=True)
class Violation:
    node: str
    rule: str        # short id: "asymmetric", "output-quantized", "add-not-fused", ...
    message: str

    def line(self, file: str) -> str:
        return f"{file}: {self.node}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "rule": self.rule, "message": self.message}


def _array(model: Any, name: str) -> np.ndarray | None:
    from onnx import numpy_helper

    for init in model.graph.initializer:
        if init.name == name:
            return np.asarray(numpy_helper.to_array(init))
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return np.asarray(numpy_helper.to_array(node.attribute[0].t))
    return None


def _dtype(model: Any, name: str) -> int | None:
    for init in model.graph.initializer:
        if init.name == name:
            return int(init.data_type)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return int(node.attribute[0].t.data_type)
    return None


def _attr(node: Any, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _check_qdq_node(model: Any, node: Any, weight_axis: dict[str, int], opset: int) -> Iterable[Violation]:
    name = node.name or node.output[0]
    scale = _array(model, node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        yield Violation(name, "scale", "the scale is not a constant: TensorRT needs constant Q/DQ scales")
        return
    if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
        yield Violation(name, "scale", "a scale is zero, negative or not finite")
    if _dtype(model, node.input[1]) == FLOAT16 and opset < FP16_SCALES_FROM_OPSET:
        yield Violation(name, "fp16-scale", f"FP16 scales need opset >= {FP16_SCALES_FROM_OPSET}, the model is {opset}")
    zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
    zp_type = _dtype(model, zp_name) if zp_name else INT8
    zp = _array(model, zp_name) if zp_name else np.zeros(1, np.int8)
    if zp_type != INT8:
        kind = "uint8 (asymmetric)" if zp_type == UINT8 else f"type {zp_type}"
        yield Violation(name, "asymmetric", f"zero point is {kind}: TensorRT's INT8 is signed and symmetric; "
                                            "quantize with int8 and zero point 0")
    elif zp is not None and np.any(zp != 0):
        yield Violation(name, "asymmetric", f"zero point is {int(np.abs(zp).max())}, not 0: TensorRT supports only "
                                            "symmetric INT8 (zero point 0)")
    if scale.size > 1:
        axis = _attr(node, "axis", 1)
        data = node.input[0]
        if data in weight_axis:
            if axis != weight_axis[data]:
                yield Violation(name, "weight-axis", f"per-channel weight scales on axis {axis}: TensorRT wants them "
                                                     f"on the output-channel axis {weight_axis[data]}")
        else:
            yield Violation(name, "per-channel-activation", "per-channel scales on an activation: TensorRT quantizes "
                                                            "activations per tensor (one scale)")
        if opset < PER_CHANNEL_FROM_OPSET:
            yield Violation(name, "opset", f"per-channel Q/DQ needs opset >= {PER_CHANNEL_FROM_OPSET}")


def _weight_axes(model: Any) -> dict[str, int]:
    """Quantized weight tensor (the input of its DQ) -> its output-channel axis."""
    producer = {o: n for n in model.graph.node for o in n.output}
    axes: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type not in WEIGHTED or len(node.input) < 2:
            continue
        dq = producer.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        src = dq.input[0]
        q = producer.get(src)
        if q is not None and q.op_type == "QuantizeLinear":  # Q -> DQ on float weights
            src = q.input[0]
        axis = 0
        if node.op_type == "Gemm" and not _attr(node, "transB", 0):
            axis = 1
        if node.op_type in ("MatMul",):
            axis = 1
        if node.op_type == "ConvTranspose":
            axis = 1
        axes[dq.input[0]] = axes[src] = axis
    return axes


def _residual_adds(model: Any) -> Iterable[Violation]:
    """An Add fed by an INT8 convolution must have its other input quantized (from a DQ) to fuse."""
    producer = {o: n for n in model.graph.node for o in n.output}

    def int8_conv(tensor: str) -> Any:
        node = producer.get(tensor)
        if node is None or node.op_type not in ("Conv", "Gemm") or len(node.input) < 2:
            return None
        w = producer.get(node.input[1])
        x = producer.get(node.input[0])
        if w is None or w.op_type != "DequantizeLinear" or x is None or x.op_type != "DequantizeLinear":
            return None
        return node

    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        convs = [int8_conv(t) for t in node.input]
        if not any(convs):
            continue
        others = [producer.get(t) for t, c in zip(node.input, convs) if c is None] or \
                 [producer.get(node.input[0]), producer.get(node.input[1])]
        if any(o is not None and o.op_type == "DequantizeLinear" for o in others):
            continue
        conv = next(c for c in convs if c is not None)
        yield Violation(node.name or node.output[0], "add-not-fused",
                        f"residual Add after the INT8 convolution {conv.name}: its other input is not quantized, so "
                        "TensorRT cannot fuse the Add into the convolution; put Q/DQ on the residual input")


def _output_qdq(model: Any) -> Iterable[Violation]:
    producer = {o: n for n in model.graph.node for o in n.output}
    for out in model.graph.output:
        node, hops = producer.get(out.name), 0
        while node is not None and node.op_type in VALUE_PRESERVING and node.input and hops < len(producer):
            node, hops = producer.get(node.input[0]), hops + 1
        if node is not None and node.op_type in QDQ_OPS:
            yield Violation(node.name or node.output[0], "output-quantized",
                            f"Q/DQ on the network output {out.name}: the logits would be rounded to INT8; "
                            "leave the output in float")


def _opset_and_ops(model: Any, opset: int, limits: Sequence[ParserLimit]) -> Iterable[Violation]:
    for limit in limits:
        if opset > limit.max_opset:
            yield Violation("(model)", "opset", f"opset {opset} is above {limit.max_opset}, the newest {limit.label} "
                                                "parses")
    ops = sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")})
    for op in ops:
        first = since(op)
        if first is None:
            yield Violation("(model)", "op", f"operator {op} is not one TensorRT's ONNX parser supports "
                                             "(onnx-tensorrt's operator table)")
            continue
        for limit in limits:
            if not parses(op, limit.version):
                yield Violation("(model)", "op", f"operator {op} is parsed from TensorRT {version_text(first)} on, "
                                                 f"not by {limit.label}")
    for op in sorted({f"{n.domain}.{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")}):
        yield Violation("(model)", "op", f"operator {op} is outside the ONNX domain: TensorRT parses it only with a "
                                         "plugin of that name")


def is_qdq(model: Any) -> bool:
    """Whether ``model`` has QuantizeLinear/DequantizeLinear nodes (an INT8 Q/DQ model)."""
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def lint_model(model: Any, limits: Sequence[ParserLimit] = ()) -> list[Violation]:
    """Every violation in the Q/DQ ``model`` for the TensorRT parsers in ``limits`` (operators: any
    TensorRT when there are none)."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    axes = _weight_axes(model)
    producer = {o: n for n in model.graph.node for o in n.output}
    found: list[Violation] = []
    for node in model.graph.node:
        src = producer.get(node.input[0]) if node.input else None
        if node.op_type == "DequantizeLinear" and src is not None and src.op_type == "QuantizeLinear":
            continue  # the pair is reported once, at its QuantizeLinear
        if node.op_type in QDQ_OPS:
            found += _check_qdq_node(model, node, axes, opset)
    found += _output_qdq(model)
    found += _residual_adds(model)
    found += _opset_and_ops(model, opset, limits)
    return found


def recipe_limits(names: Sequence[str] | None = None) -> list[ParserLimit]:
    """The parsers of the kit's recipes named (every recipe that builds INT8 when None), each as its range's
    oldest version."""
    chosen = [r for r in RECIPES if (r.name in names if names is not None else "int8" in r.precisions)]
    return [ParserLimit(r.span, r.first, r.max_opset) for r in chosen]


def version_limits(text: str) -> list[ParserLimit]:
    """The parser of TensorRT ``text`` ('10.3', '8.5.2'): its own operator table, and the opset limit of
    the kit recipe that covers it."""
    if not re.fullmatch(r"\d+(\.\d+){0,3}", text.strip()):
        raise UsageError(f"{text!r} is not a TensorRT version: give MAJOR.MINOR[.PATCH], e.g. 10.3")
    version = parse_version(text.strip())
    try:
        recipe = recipe_for(version)
    except EdgeresError as exc:
        raise UsageError(str(exc)) from None
    return [ParserLimit(f"TensorRT {text.strip()}", version, recipe.max_opset)]


def lint_qdq(path: str | os.PathLike[str], limits: Sequence[ParserLimit] = ()) -> list[Violation]:
    """Lint the Q/DQ ONNX file ``path``; an ``EdgeresError`` when it is missing, not an ONNX model, or
    has no Q/DQ nodes (an FP32 model is not an INT8 Q/DQ model: nothing to lint)."""
    model = load_onnx(Path(path), load_external_data=False)
    if not is_qdq(model):
        raise EdgeresError(f"{path} has no QuantizeLinear/DequantizeLinear nodes: it is not an INT8 Q/DQ model, "
                           "so there is nothing to lint (lint the INT8 ONNX that `edgeres quantize` writes)")
    return lint_model(model, limits)


__all__ = ["QDQ_OPS", "VALUE_PRESERVING", "Violation", "is_qdq", "lint_model", "lint_qdq", "recipe_limits",
           "version_limits"]
