"""Which ONNX operators TensorRT's ONNX parser takes, by TensorRT version (host side, plain data).

From onnx-tensorrt's ``docs/operators.md`` (the rows marked ``Y``) at each release branch, and
its ``docs/Changelog.md`` and NVIDIA's TensorRT release notes for what each release added. The
oldest TensorRT a kit recipe names is 8.5 (JetPack 5.1), so the base is 8.5's table (with
``HardSwish``, ``OneHot`` and ``Mod``, which the table marked supported in the days after the
8.5 GA release: 8.5 added ``Mod``); every operator added later carries the first version
whose parser takes it. No
operator has been removed from the table between 8.5 and 10.15 (the newest ``operators.md``
read); TensorRT 11's parser notes add ``Swish`` (11.0) and ``DFT`` (11.2).

The newest opset each parser takes is the one its ``operators.md`` names ("up to Opset 17" in
8.5/8.6, 19 in 9.x, "opset 9 to opset 20" in 10.0, 24 in 10.15) and the 11.5 release notes'
"Added support for ONNX opset 25"; a version between two of those gets the older one's (the
newest documented). The types a Q/DQ pair may quantize to come from the same tables
(``DequantizeLinear``: INT8 in 8.x, FP8 from 9.0, INT4 from 10.0) and the 10.8 release notes
(FP4). ONNX Runtime's integer kernels (``QLinearConv``, ``ConvInteger``, ``DynamicQuantizeLinear``
...) are marked ``N`` in every table.

This is about parsing only: the table's per-operator restrictions (2D/3D pooling, constant
``axes``, ...) are not checked here; TensorRT's own parser is the final word on the device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# TensorRT 8.5 (onnx-tensorrt release/8.5-GA docs/operators.md): opset up to 17.
BASE_OPS = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "AveragePool",
    "BatchNormalization", "Cast", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
    "ConvTranspose", "Cos", "Cosh", "CumSum", "DepthToSpace", "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu",
    "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten", "Floor", "Gather", "GatherElements", "GatherND", "Gemm",
    "GlobalAveragePool", "GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GRU",
    "HardSigmoid", "HardSwish", "Identity", "If", "ImageScaler", "InstanceNormalization", "IsNaN", "LeakyRelu",
    "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LpNormalization", "LpPool", "LRN", "LSTM", "MatMul", "Max",
    "MaxPool", "Mean", "MeanVarianceNormalization", "Min", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero",
    "Not", "OneHot", "Or", "Pad", "ParametricSoftplus", "Pow", "PRelu", "QuantizeLinear", "RandomNormal",
    "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
    "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence", "RNN", "RoiAlign", "Round", "ScaledTanh",
    "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
    "Size", "Slice", "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum",
    "Tan", "Tanh", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where", "Xor",
})
BASE_VERSION = (8, 5)

# Operators added after 8.5, with the first TensorRT whose parser takes them.
ADDED_OPS: dict[str, tuple[int, int]] = {
    "GroupNormalization": (8, 6), "IsInf": (8, 6), "LayerNormalization": (8, 6),
    "CastLike": (9, 1),
    "Hardmax": (9, 2),
    "Gelu": (10, 0), "Mish": (10, 0),
    "DeformConv": (10, 1),
    "BlackmanWindow": (10, 4), "HammingWindow": (10, 4), "HannWindow": (10, 4),
    "STFT": (10, 5),
    "Attention": (10, 14),
    "RMSNormalization": (10, 15), "RotaryEmbedding": (10, 15), "TensorScatter": (10, 15),
    "Swish": (11, 0),
    "DFT": (11, 2),
}


# First TensorRT version -> the newest ONNX opset its parser documents (see the module docstring).
MAX_OPSET: dict[tuple[int, int], int] = {(8, 5): 17, (9, 0): 19, (10, 0): 20, (10, 15): 24, (11, 5): 25}

# ONNX element type a Q/DQ pair quantizes to -> (its TensorRT name, the first TensorRT that parses it).
QUANT_TYPES: dict[int, tuple[str, tuple[int, int]]] = {
    3: ("INT8", BASE_VERSION), 17: ("FP8 (E4M3)", (9, 0)), 22: ("INT4", (10, 0)), 23: ("FP4 (E2M1)", (10, 8)),
}


@dataclass(frozen=True)
class ParserLimit:
    """What one TensorRT (or the oldest of a recipe's range) parses: the lint checks a model against it."""

    label: str                   # "TensorRT 8.5 - 10.11", "TensorRT 10.3"
    version: tuple[int, ...]     # the version whose operator table applies (a range's oldest)
    max_opset: int               # the newest ONNX opset it parses


def since(op: str) -> tuple[int, ...] | None:
    """The first TensorRT whose ONNX parser takes ``op`` (8.5 for what 8.5 already took); None if none does."""
    if op in BASE_OPS:
        return BASE_VERSION
    return ADDED_OPS.get(op)


def parses(op: str, version: Sequence[int] | None = None) -> bool:
    """Whether TensorRT ``version``'s ONNX parser takes ``op`` (any version when None)."""
    first = since(op)
    return first is not None and (version is None or tuple(version) >= first)


def max_opset(version: Sequence[int]) -> int:
    """The newest opset TensorRT ``version``'s ONNX parser documents (8.5's 17 for anything older)."""
    return max((opset for first, opset in MAX_OPSET.items() if tuple(version) >= first), default=MAX_OPSET[(8, 5)])


def integer_kernel(op: str) -> bool:
    """ONNX Runtime's integer operators (QOperator and dynamic quantization): no TensorRT parses them."""
    return op.startswith("QLinear") or op.endswith("Integer") or op in ("QGemm", "DynamicQuantizeLinear",
                                                                        "DynamicQuantizeMatMul", "QAttention")


__all__ = ["ADDED_OPS", "BASE_OPS", "BASE_VERSION", "MAX_OPSET", "QUANT_TYPES", "ParserLimit", "integer_kernel",
           "max_opset", "parses", "since"]
