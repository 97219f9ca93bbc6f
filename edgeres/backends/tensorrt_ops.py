"""Which ONNX operators TensorRT's ONNX parser takes, by TensorRT version (host side, plain data).

From onnx-tensorrt's ``docs/operators.md`` (the rows marked ``Y``) at each release branch, and
its ``docs/Changelog.md`` and NVIDIA's TensorRT release notes for what each release added. The
oldest TensorRT a kit recipe names is 8.5 (JetPack 5.1), so the base is 8.5's table (with
``HardSwish``, ``OneHot`` and ``Mod``, which the table marked supported in the days after the
8.5 GA release: 8.5 added ``Mod``); every operator added later carries the first version
whose parser takes it. No
operator has been removed from the table between 8.5 and 10.15 (the newest ``operators.md``
read); TensorRT 11's parser notes add ``Swish`` (11.0) and ``DFT`` (11.2).

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


__all__ = ["ADDED_OPS", "BASE_OPS", "BASE_VERSION", "ParserLimit", "parses", "since"]
