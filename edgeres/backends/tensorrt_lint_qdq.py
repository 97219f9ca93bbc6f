"""The Q/DQ lint's per-node rules: what one QuantizeLinear/DequantizeLinear may hold for TensorRT.

Sources: onnx-tensorrt's ``operators.md`` (``QuantizeLinear``/``DequantizeLinear``: "zero point
must be 0"; DequantizeLinear takes INT8, FP8, INT4, FP4; "UINT8 is only supported as network
input or output tensor types") and its Q/DQ importer (per-axis scales are for weights, one per
output channel; "Activations-quantization does not support per-axis quantization"; blocked
scales have the data's rank with one blocked axis), and NVIDIA's "Working with Quantized Types"
(symmetric quantization; INT4 is weight-only). Version limits are in ``tensorrt_ops``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgeres.backends.tensorrt_ops import QUANT_TYPES, ParserLimit
from edgeres.backends.tensorrt_plan import version_text

WEIGHTED = ("Conv", "Gemm", "MatMul", "ConvTranspose")
FP16_SCALES_FROM_OPSET = 19
PER_CHANNEL_FROM_OPSET = 13
BLOCKED_FROM = (10, 0)   # blocked (per-block) scales: parsed with INT4 from TensorRT 10.0
FLOAT, UINT8, INT8, INT32, FLOAT16, INT4 = 1, 2, 3, 6, 10, 22   # onnx.TensorProto data types
TYPE_NAMES = {2: "uint8", 4: "uint16", 5: "int16", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
              21: "uint4", 24: "float8e8m0"}
KNOWN_TYPES = ", ".join(name for name, _ in QUANT_TYPES.values())


@dataclass(frozen=True)
class Violation:
    node: str
    rule: str        # short id: "asymmetric", "output-quantized", "add-not-fused", ...
    message: str     # for this node
    kind: str = ""   # the same without this node's details, for grouping ("" = message)

    def line(self, file: str) -> str:
        return f"{file}: {self.node}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"node": self.node, "rule": self.rule, "message": self.message}


class Graph:
    """A model's initializers, producers and value infos, indexed once: the rules look up many names."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {o: n for n in model.graph.node for o in n.output}
        self.infos = {i.name: i for i in [*model.graph.value_info, *model.graph.input]}

    def constant(self, name: str, hops: int = 0) -> Any:
        """The tensor (a TensorProto) of the initializer or Constant node named ``name``, looked for
        through Identity nodes as TensorRT's importer does; None when it is computed."""
        from onnx import TensorProto, helper

        if name in self.inits:
            return self.inits[name]
        node = self.producer.get(name)
        if node is not None and node.op_type == "Identity" and node.input and hops < 16:
            return self.constant(node.input[0], hops + 1)
        if node is None or node.op_type != "Constant" or not node.attribute:
            return None
        a = node.attribute[0]
        plain = {"value_float": (TensorProto.FLOAT, [], [a.f]), "value_floats": (TensorProto.FLOAT, [len(a.floats)],
                                                                                 a.floats),
                 "value_int": (TensorProto.INT64, [], [a.i]), "value_ints": (TensorProto.INT64, [len(a.ints)], a.ints)}
        if a.name in plain:
            return helper.make_tensor(name, *plain[a.name])
        return a.t if a.HasField("t") else None

    def array(self, name: str) -> np.ndarray | None:
        from onnx import numpy_helper

        tensor = self.constant(name)
        if tensor is None:
            return None
        try:
            return np.asarray(numpy_helper.to_array(tensor))
        except Exception:  # noqa: BLE001 - external data not loaded, or a type this onnx cannot read
            return None

    def dtype(self, name: str) -> int | None:
        tensor = self.constant(name)
        return int(tensor.data_type) if tensor is not None else None

    def rank(self, name: str) -> int | None:
        tensor = self.constant(name)
        if tensor is not None:
            return len(tensor.dims)
        info = self.infos.get(name)
        if info is not None and info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            return len(info.type.tensor_type.shape.dim)
        return None


def attr(node: Any, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def quant_type(graph: Graph, node: Any) -> int:
    """The type a Q/DQ node quantizes to: its zero point's, else a DQ's input's, else ``output_dtype``,
    else INT8 (TensorRT reads a QuantizeLinear without a zero point as INT8)."""
    zero_point = graph.dtype(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    data = graph.dtype(node.input[0]) if node.op_type == "DequantizeLinear" else None
    return zero_point or data or attr(node, "output_dtype", 0) or INT8


def weight_axes(graph: Graph) -> dict[str, int]:
    """Quantized weight tensor (the input of its DQ, and of the Q before it) -> its output-channel axis."""
    producer = graph.producer
    axes: dict[str, int] = {}
    for node in graph.model.graph.node:
        if node.op_type not in WEIGHTED or len(node.input) < 2:
            continue
        dq = producer.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or not dq.input:
            continue
        src = dq.input[0]
        q = producer.get(src)
        if q is not None and q.op_type == "QuantizeLinear" and q.input:  # Q -> DQ on float weights
            src = q.input[0]
        transposed = node.op_type == "Gemm" and attr(node, "transB", 0)
        axis = 1 if node.op_type in ("MatMul", "ConvTranspose") or (node.op_type == "Gemm" and not transposed) else 0
        axes[dq.input[0]] = axes[src] = axis
    return axes


def _type_rules(name: str, qtype: int, weight: bool,
                limits: Sequence[ParserLimit]) -> Iterable[Violation]:
    if qtype == UINT8:
        yield Violation(name, "uint8", "quantizes to uint8: TensorRT quantizes to signed INT8 only (UINT8 is a "
                                       "network input/output type there); quantize to int8 with zero point 0")
    elif qtype not in QUANT_TYPES:
        what = TYPE_NAMES.get(qtype, f"ONNX type {qtype}")
        yield Violation(name, "quant-type", f"quantizes to {what}: TensorRT quantizes to {KNOWN_TYPES} only",
                        f"quantizes to a type TensorRT has no Q/DQ for: it quantizes to {KNOWN_TYPES} only")
    else:
        label, first = QUANT_TYPES[qtype]
        for limit in limits:
            if tuple(limit.version) < first:
                yield Violation(name, "quant-type", f"{label} Q/DQ is parsed from TensorRT {version_text(first)} on, "
                                                    f"not by {limit.label}")
    if qtype == INT4 and not weight:
        yield Violation(name, "int4-activation", "INT4 on an activation: TensorRT's INT4 is weight-only; "
                                                 "quantize activations to INT8 (or FP8)")


def _zero_point_rule(graph: Graph, node: Any, name: str, qtype: int) -> Iterable[Violation]:
    zp = graph.array(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if qtype == UINT8 or zp is None:
        return
    values = zp.astype(np.float64)
    if np.any(values != 0):
        label = QUANT_TYPES.get(qtype, ("quantization",))[0]
        yield Violation(name, "asymmetric", f"zero point is {values.flat[np.argmax(values != 0)]:g}, not 0: TensorRT "
                                            f"supports only symmetric {label} (zero point 0)",
                        "zero point is not 0: TensorRT supports only symmetric quantization (zero point 0)")


def _scale_rules(graph: Graph, node: Any, name: str, scale: np.ndarray, weight_axis: int | None, opset: int,
                 limits: Sequence[ParserLimit]) -> Iterable[Violation]:
    if scale.ndim > 1:  # blocked scales (opset 21 block_size)
        if weight_axis is None:
            yield Violation(name, "per-channel-activation", "blocked scales on an activation: TensorRT quantizes "
                                                            "activations per tensor (one scale)")
        for limit in limits:
            if tuple(limit.version) < BLOCKED_FROM:
                yield Violation(name, "blocked", f"blocked quantization is parsed from TensorRT "
                                                 f"{version_text(BLOCKED_FROM)} on, not by {limit.label}")
        return
    if weight_axis is None:
        yield Violation(name, "per-channel-activation", "per-channel scales on an activation: TensorRT quantizes "
                                                        "activations per tensor (one scale)")
    else:
        axis, data_rank = attr(node, "axis", 1), graph.rank(node.input[0])
        if axis < 0 and data_rank is not None:
            axis += data_rank
        if axis != weight_axis:
            yield Violation(name, "weight-axis", f"per-channel weight scales on axis {axis}: TensorRT wants them on "
                                                 f"the output-channel axis {weight_axis}",
                            "per-channel weight scales off the output-channel axis (TensorRT wants one scale per "
                            "output channel)")
    if opset < PER_CHANNEL_FROM_OPSET:
        yield Violation(name, "opset", f"per-channel Q/DQ needs opset >= {PER_CHANNEL_FROM_OPSET}")


def check_qdq_node(graph: Graph, node: Any, weights: dict[str, int], opset: int,
                   limits: Sequence[ParserLimit] = ()) -> Iterable[Violation]:
    """Every rule one Q/DQ node breaks (a Q -> DQ pair is checked once, at its Q)."""
    name = node.name or node.output[0]
    qtype = quant_type(graph, node)
    if node.op_type == "DequantizeLinear" and qtype == INT32:
        yield Violation(name, "int32-bias", "dequantizes an int32 tensor (a quantized bias): TensorRT's "
                                            f"DequantizeLinear takes {KNOWN_TYPES} only; keep the bias in float "
                                            "(ONNX Runtime: extra_options={'QuantizeBias': False})")
        return
    yield from _type_rules(name, qtype, node.input[0] in weights, limits)
    scale = graph.array(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        yield Violation(name, "scale", "the scale is not a constant: TensorRT needs constant Q/DQ scales")
        return
    if not np.all(np.isfinite(scale.astype(np.float64))) or np.any(scale.astype(np.float64) <= 0):
        yield Violation(name, "scale", "a scale is zero, negative or not finite")
    if graph.dtype(node.input[1]) == FLOAT16 and opset < FP16_SCALES_FROM_OPSET:
        yield Violation(name, "fp16-scale", f"FP16 scales need opset >= {FP16_SCALES_FROM_OPSET}, the model is {opset}")
    yield from _zero_point_rule(graph, node, name, qtype)
    if scale.size > 1:
        yield from _scale_rules(graph, node, name, scale, weights.get(node.input[0]), opset, limits)


__all__ = ["Graph", "Violation", "attr", "check_qdq_node", "quant_type", "weight_axes"]
