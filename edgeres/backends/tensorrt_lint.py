"""Lint a Q/DQ ONNX against TensorRT's rules for explicit quantization (host side, needs onnx only).

TensorRT builds an INT8 engine from the QuantizeLinear/DequantizeLinear pairs in the ONNX
("Explicit Quantization" in NVIDIA's TensorRT developer guide). A graph that breaks its rules
either fails to parse on the device, or builds an engine that is slower or less accurate
than it should be, and nobody notices until the device. Each rule here gives one line per
violation, naming the node and the fix (``group_violations`` folds the same rule on many
nodes into one line):

- per Q/DQ node (``tensorrt_lint_qdq``): signed and symmetric (zero point 0; no uint8, no
  int32 bias DQ), a type the named TensorRT parses (INT8; FP8, INT4, FP4 in newer ones),
  positive finite constant scales, activations per tensor, weights per tensor or per channel
  on the output-channel axis (Conv: 0; Gemm: 0 with transB=1, else 1).
- no Q/DQ on the network output: the logits leave the graph in float (looked for through
  value-preserving ops such as Cast, Identity, Reshape and Flatten, so the FP16 converter's
  ``DequantizeLinear -> Cast(FLOAT) -> logits`` is caught too).
- a residual Add after an INT8 convolution has its *other* input quantized too, and the
  convolution's output reaches the Add directly (no Q/DQ between them), else TensorRT cannot
  fuse the Add (and the ReLU after it) into the convolution (the developer guide's Q/DQ
  placement recommendations; ModelOpt removes that Q/DQ for the same reason).
- the opset is within what each named TensorRT version's ONNX parser takes, FP16 scales only
  from opset 19, and every operator is one those parsers support (``tensorrt_ops``: onnx-tensorrt's
  operator table, with the version each operator arrived in); ONNX Runtime's integer operators
  (QOperator format, dynamic quantization) are named as such.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres.backends.tensorrt_lint_qdq import Graph, Violation, check_qdq_node, weight_axes
from edgeres.backends.tensorrt_ops import BASE_VERSION, ParserLimit, integer_kernel, max_opset, parses, since
from edgeres.backends.tensorrt_plan import parse_version, version_text
from edgeres.backends.tensorrt_recipes import RECIPES
from edgeres.errors import EdgeresError, UsageError
from edgeres.onnxutil import load_onnx

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
SMALL_EXTERNAL = 1 << 16   # external tensors up to this many elements (scales, zero points) are read

# Ops between a DequantizeLinear and a graph output that leave the INT8-rounded values as they are.
VALUE_PRESERVING = ("Cast", "CastLike", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose")


def _producers(model: Any) -> dict[str, Any]:
    return {o: n for n in model.graph.node for o in n.output}


def _int8_conv(producer: dict[str, Any], tensor: str) -> Any:
    """The Conv/Gemm that writes ``tensor`` with both its input and its weights from a DequantizeLinear."""
    node = producer.get(tensor)
    if node is None or node.op_type not in ("Conv", "Gemm") or len(node.input) < 2:
        return None
    w, x = producer.get(node.input[1]), producer.get(node.input[0])
    if w is None or w.op_type != "DequantizeLinear" or x is None or x.op_type != "DequantizeLinear":
        return None
    return node


def _conv_through_qdq(producer: dict[str, Any], tensor: str) -> Any:
    """The INT8 convolution whose output reaches ``tensor`` through a QuantizeLinear -> DequantizeLinear pair."""
    dq = producer.get(tensor)
    q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" and dq.input else None
    if q is None or q.op_type != "QuantizeLinear" or not q.input:
        return None
    return _int8_conv(producer, q.input[0])


def _residual_adds(model: Any) -> Iterable[Violation]:
    """An Add fed by an INT8 convolution fuses into it when the convolution's output reaches the Add
    directly and the Add's other input is quantized (from a DQ)."""
    producer = _producers(model)
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        name = node.name or node.output[0]
        convs = [_int8_conv(producer, t) for t in node.input]
        if not any(convs):
            split = next((c for c in (_conv_through_qdq(producer, t) for t in node.input) if c is not None), None)
            if split is not None:
                yield Violation(name, "add-split", f"residual Add fed by the INT8 convolution {split.name} through a "
                                f"Q/DQ pair: TensorRT fuses an Add into a convolution only when the convolution's "
                                f"output reaches it directly; drop the Q/DQ between {split.name} and the Add "
                                "(keep the one on the residual input)",
                                "residual Add fed by an INT8 convolution through a Q/DQ pair: TensorRT fuses an Add "
                                "into a convolution only when the convolution's output reaches it directly; drop the "
                                "Q/DQ between the convolution and the Add (keep the one on the residual input)")
            continue
        others = [producer.get(t) for t, c in zip(node.input, convs) if c is None] or \
                 [producer.get(node.input[0]), producer.get(node.input[1])]
        if any(o is not None and o.op_type == "DequantizeLinear" for o in others):
            continue
        conv = next(c for c in convs if c is not None)
        yield Violation(name, "add-not-fused",
                        f"residual Add after the INT8 convolution {conv.name}: its other input is not quantized, so "
                        "TensorRT cannot fuse the Add into the convolution; put Q/DQ on the residual input",
                        "residual Add after an INT8 convolution: its other input is not quantized, so TensorRT "
                        "cannot fuse the Add into the convolution; put Q/DQ on the residual input")


def _output_qdq(model: Any) -> Iterable[Violation]:
    producer = _producers(model)
    for out in model.graph.output:
        node, hops = producer.get(out.name), 0
        while node is not None and node.op_type in VALUE_PRESERVING and node.input and hops < len(producer):
            node, hops = producer.get(node.input[0]), hops + 1
        if node is not None and node.op_type in QDQ_OPS:
            yield Violation(node.name or node.output[0], "output-quantized",
                            f"Q/DQ on the network output {out.name}: the logits would be rounded to INT8; "
                            "leave the output in float")


def _integer_kernels(model: Any) -> Iterable[Violation]:
    found = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                    for n in model.graph.node if integer_kernel(n.op_type))
    if found:
        listed = ", ".join(f"{op} ({count})" for op, count in sorted(found.items()))
        yield Violation("(model)", "integer-ops", f"ONNX Runtime's integer operators {listed}: no TensorRT parses "
                        "them; TensorRT reads INT8 only as QuantizeLinear/DequantizeLinear pairs (ONNX Runtime: "
                        "quantize_static with quant_format=QuantFormat.QDQ, not QOperator or quantize_dynamic)")


def _opset_and_ops(model: Any, opset: int, limits: Sequence[ParserLimit]) -> Iterable[Violation]:
    for limit in limits:
        if opset > limit.max_opset:
            yield Violation("(model)", "opset", f"opset {opset} is above {limit.max_opset}, the newest {limit.label} "
                                                "parses")
    yield from _integer_kernels(model)
    nodes = [n for n in model.graph.node if not integer_kernel(n.op_type)]
    for op in sorted({n.op_type for n in nodes if n.domain in ("", "ai.onnx")}):
        first = since(op)
        if first is None:
            yield Violation("(model)", "op", f"operator {op} is not one TensorRT's ONNX parser supports "
                                             "(onnx-tensorrt's operator table)")
            continue
        for limit in limits:
            if not parses(op, limit.version):
                yield Violation("(model)", "op", f"operator {op} is parsed from TensorRT {version_text(first)} on, "
                                                 f"not by {limit.label}")
    for op in sorted({f"{n.domain}.{n.op_type}" for n in nodes if n.domain not in ("", "ai.onnx")}):
        yield Violation("(model)", "op", f"operator {op} is outside the ONNX domain: TensorRT parses it only with a "
                                         "plugin of that name")


def is_qdq(model: Any) -> bool:
    """Whether ``model`` has QuantizeLinear/DequantizeLinear nodes (an INT8 Q/DQ model)."""
    return any(n.op_type in QDQ_OPS for n in model.graph.node)


def quantization(model: Any) -> str:
    """'qdq' (Q/DQ nodes), 'integer' (ONNX Runtime's integer operators only) or 'none' (a float model)."""
    if is_qdq(model):
        return "qdq"
    return "integer" if any(integer_kernel(n.op_type) for n in model.graph.node) else "none"


def lint_model(model: Any, limits: Sequence[ParserLimit] = ()) -> list[Violation]:
    """Every violation in ``model`` for the TensorRT parsers in ``limits`` (operators and types: any
    TensorRT when there are none). A float model can only break the opset and operator rules."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    graph = Graph(model)
    axes, producer = weight_axes(graph), graph.producer
    found: list[Violation] = []
    for node in model.graph.node:
        if node.op_type not in QDQ_OPS or len(node.input) < 2:
            continue
        src = producer.get(node.input[0])
        if node.op_type == "DequantizeLinear" and src is not None and src.op_type == "QuantizeLinear":
            continue  # the pair is reported once, at its QuantizeLinear
        found += check_qdq_node(graph, node, axes, opset, limits)
    found += _output_qdq(model)
    found += _residual_adds(model)
    found += _opset_and_ops(model, opset, limits)
    return found


@dataclass(frozen=True)
class Group:
    """One rule broken the same way on one node or many: one line of the lint's report."""

    rule: str
    message: str
    nodes: tuple[str, ...]
    first: Violation
    shown: int = 3   # node names a line names before "..."

    def line(self, file: str) -> str:
        if len(self.nodes) == 1:
            return self.first.line(file)
        names = ", ".join(self.nodes[:self.shown]) + (", ..." if len(self.nodes) > self.shown else "")
        return f"{file}: {len(self.nodes)} nodes ({names}): {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "message": self.message, "count": len(self.nodes), "nodes": list(self.nodes)}


def group_violations(violations: Sequence[Violation]) -> list[Group]:
    """The violations folded by rule and kind, in the order each was first found."""
    found: dict[tuple[str, str], list[Violation]] = {}
    for v in violations:
        found.setdefault((v.rule, v.kind or v.message), []).append(v)
    return [Group(rule, kind if len(vs) > 1 else vs[0].message, tuple(v.node for v in vs), vs[0])
            for (rule, kind), vs in found.items()]


def recipe_limits(names: Sequence[str] | None = None) -> list[ParserLimit]:
    """The parsers of the kit's recipes named (every recipe that builds INT8 when None), each as its range's
    oldest version (and that version's documented opset, where it is below the recipe's)."""
    chosen = [r for r in RECIPES if (r.name in names if names is not None else "int8" in r.precisions)]
    return [ParserLimit(r.span, r.first, min(r.max_opset, max_opset(r.first))) for r in chosen]


def version_limits(text: str) -> list[ParserLimit]:
    """The parser of TensorRT ``text`` ('10.3', '8.5.2'): its own operator table and newest documented opset."""
    if not re.fullmatch(r"\d+(\.\d+){0,3}", text.strip()):
        raise UsageError(f"{text!r} is not a TensorRT version: give MAJOR.MINOR[.PATCH], e.g. 10.3")
    version = parse_version(text.strip())
    if version < BASE_VERSION:
        raise UsageError(f"TensorRT {text.strip()} is older than the lint knows: its operator tables start at "
                         f"{version_text(BASE_VERSION)}, and a kit builds INT8 from {version_text(BASE_VERSION)} on")
    return [ParserLimit(f"TensorRT {text.strip()}", version, max_opset(version))]


def _read_small_external(model: Any, path: Path) -> None:
    """Read the small external tensors (scales, zero points) the lint looks at, not the weights."""
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    for init in model.graph.initializer:
        count = 1
        for d in init.dims:
            count *= d
        if uses_external_data(init) and count <= SMALL_EXTERNAL:
            try:
                load_external_data_for_tensor(init, str(path.parent))
            except Exception as exc:  # noqa: BLE001 - missing file, bad offset: onnx raises several types
                raise EdgeresError(f"{path}: cannot read its external data for {init.name} "
                                   f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); keep the "
                                   "data files next to the model") from None


def lint_onnx(path: str | os.PathLike[str], limits: Sequence[ParserLimit] = ()) -> tuple[str, list[Violation]]:
    """Lint the ONNX file ``path``: its ``quantization`` ('qdq', 'integer', 'none') and every violation;
    an ``EdgeresError`` when it is missing or not an ONNX model."""
    model = load_onnx(Path(path), load_external_data=False)
    _read_small_external(model, Path(path))
    return quantization(model), lint_model(model, limits)


def lint_qdq(path: str | os.PathLike[str], limits: Sequence[ParserLimit] = ()) -> list[Violation]:
    """Lint the Q/DQ ONNX file ``path``; an ``EdgeresError`` when it is missing, not an ONNX model, or
    has no Q/DQ nodes (an FP32 model is not an INT8 Q/DQ model: the kit's check that its file is one)."""
    model = load_onnx(Path(path), load_external_data=False)
    if not is_qdq(model):
        raise EdgeresError(f"{path} has no QuantizeLinear/DequantizeLinear nodes: it is not an INT8 Q/DQ model, "
                           "so there is nothing to lint (lint the INT8 ONNX that `edgeres quantize` writes)")
    _read_small_external(model, Path(path))
    return lint_model(model, limits)


__all__ = ["QDQ_OPS", "VALUE_PRESERVING", "Group", "Violation", "group_violations", "is_qdq", "lint_model",
           "lint_onnx", "lint_qdq", "quantization", "recipe_limits", "version_limits"]
