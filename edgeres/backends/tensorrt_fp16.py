"""FP16 ONNX for strongly typed TensorRT, written by onnxconverter-common (host side).

Strongly typed TensorRT (10.12+, every 11.x) runs each layer in the type its ONNX gives
it, so FP16 must be in the ONNX. Two copies are made here, both with FP32 graph input and
output (a runner feeds and reads FP32 as for any other engine):

``fp16_copy``      the FP32 model in FP16: FP16 engines.
``qdq_fp16_copy``  the Q/DQ INT8 model with FP16 for everything outside the Q/DQ pairs:
                   strongly typed INT8 engines whose float layers (first conv, residual
                   adds, pooling, the last FC) run in FP16, as the weakly typed build's
                   FP16 flag made them. ONNX allows FP16 Q/DQ scales from opset 19, so the
                   model is moved to opset 19 first (TensorRT 10.x parses up to 20).

The conversion itself is onnxconverter-common's ``convert_float_to_float16``
(``keep_io_types=True``). What edgeres adds: values FP16 cannot hold stay FP32, never
clipped. A node whose constant weights, or whose output on the sample inputs, reach
beyond +-65504 is kept in FP32 (the converter puts Casts around it), and values too small
for FP16 are left to the converter's smallest-subnormal clamp.

Two things the converter (1.16) gets wrong around kept nodes are put right after it
(``_restore_fp32_boundaries``). It casts every kept node's output to FP16, even when that
output is a graph output, which it then declares FLOAT16 whatever ``keep_io_types`` says:
logits of 1.8e5 became inf. And it casts back to FP32 before each kept reader, folding the
FP16 round trip away only when the value has a single reader. Afterwards a kept node writes
an FP32 graph output itself, feeds kept readers directly, and keeps a Cast to FP16 only for
FP16 readers, which the range check guarantees see values that fit FP16.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.backends.tensorrt_lint import QDQ_OPS, is_qdq
from edgeres.errors import EdgeresError
from edgeres.fileio import write_bytes_atomic
from edgeres.optional import require

FP16_MAX = float(np.finfo(np.float16).max)             # 65504
FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)
FP16_QDQ_OPSET = 19                                   # first opset whose Q/DQ take FP16 scales


@dataclass
class Fp16Result:
    path: Path
    converter: str                      # "onnxconverter-common 1.16.0"
    opset: int
    kept_fp32: list[str] = field(default_factory=list)   # nodes left in FP32, and why

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path.name, "converter": self.converter, "opset": self.opset,
                "kept_fp32": list(self.kept_fp32)}


def _converter() -> tuple[Any, str]:
    f16 = require("onnxconverter_common.float16", "writing the FP16 ONNX for strongly typed TensorRT")
    from importlib.metadata import version

    return f16, f"onnxconverter-common {version('onnxconverter-common')}"


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _constant_overflow(model: Any) -> dict[str, str]:
    """Nodes reading a float initializer or constant with a value beyond FP16's range."""
    from onnx import numpy_helper

    big = {i.name for i in model.graph.initializer
           if i.data_type == 1 and np.abs(numpy_helper.to_array(i)).max(initial=0.0) > FP16_MAX}
    out: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == 1 and \
                        np.abs(numpy_helper.to_array(attr.t)).max(initial=0.0) > FP16_MAX:
                    big.update(node.output)
        for name in node.input:
            if name in big:
                out[node.name] = f"constant {name} exceeds +-{FP16_MAX:.0f}"
    return out


def _activation_overflow(model: Any, sample: np.ndarray | None) -> dict[str, str]:
    """Nodes whose float output on ``sample`` (preprocessed inputs) goes beyond FP16's range."""
    if sample is None or len(sample) == 0:
        return {}
    ort = require("onnxruntime", "checking FP16 ranges on sample inputs")
    import onnx

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    producer = {}
    for node in probe.graph.node:
        for out in node.output:
            producer[out] = node.name
            if out and out not in known and node.op_type not in QDQ_OPS:
                probe.graph.output.add().name = out
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(sample, dtype=np.float32)}
    found: dict[str, str] = {}
    for name, value in zip(names, session.run(names, feed)):
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and arr.size and np.abs(arr).max() > FP16_MAX and name in producer:
            found[producer[name]] = f"output {name} reaches {np.abs(arr).max():.3g} on the sample inputs"
            for node in model.graph.node:  # its readers too: a Cast to FP16 in between would overflow
                if name in node.input:
                    found.setdefault(node.name, f"reads {name}, which reaches {np.abs(arr).max():.3g}")
    return found


def _unshare(model: Any, keep: set[str]) -> None:
    """Give FP32-kept nodes their own copy of an initializer FP16 nodes read too (the converter
    types a shared initializer once, and one of the two readers then has mismatched inputs)."""
    readers: dict[str, set[bool]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, set()).add(node.name in keep)
    shared = {i.name: i for i in model.graph.initializer if readers.get(i.name) == {True, False}}
    for name, init in shared.items():
        copy = model.graph.initializer.add()
        copy.CopyFrom(init)
        copy.name = f"{name}__fp32"
    for node in model.graph.node:
        if node.name in keep:
            node.input[:] = [f"{n}__fp32" if n in shared else n for n in node.input]


def _is_cast(node: Any, to: int) -> bool:
    return node.op_type == "Cast" and any(a.name == "to" and a.i == to for a in node.attribute)


def _rename_uses(graph: Any, old: str, new: str) -> None:
    """Every node input and output named ``old`` is named ``new``; a value_info for ``old`` goes."""
    for node in graph.node:
        node.input[:] = [new if n == old else n for n in node.input]
        node.output[:] = [new if n == old else n for n in node.output]
    for info in [v for v in graph.value_info if v.name == old]:
        graph.value_info.remove(info)


def _restore_fp32_outputs(graph: Any, float_outputs: set[str]) -> None:
    """Graph outputs the converter declared FLOAT16 (kept nodes' outputs) are FP32 again, through a
    Cast at the end that ``_drop_round_trips`` then folds into the kept node."""
    from onnx import TensorProto, helper

    for out in graph.output:
        if out.name in float_outputs and out.type.tensor_type.elem_type == TensorProto.FLOAT16:
            half = f"{out.name}__fp16"
            _rename_uses(graph, out.name, half)
            graph.node.append(helper.make_node("Cast", [half], [out.name], name=f"{out.name}__to_fp32",
                                               to=TensorProto.FLOAT))
            out.type.tensor_type.elem_type = TensorProto.FLOAT


def _drop_round_trips(graph: Any) -> None:
    """FP32 -> Cast(FP16) -> Cast(FP32) becomes the FP32 value itself (never rounded, never inf); a Cast
    to FP16 left without readers goes."""
    from onnx import TensorProto

    types = {v.name: v.type.tensor_type.elem_type for v in (*graph.input, *graph.value_info)}
    producer = {o: n for n in graph.node for o in n.output}
    inputs, outputs = {i.name for i in graph.input}, {o.name for o in graph.output}
    for back in [n for n in graph.node if _is_cast(n, TensorProto.FLOAT)]:
        down = producer.get(back.input[0])
        if down is None or not _is_cast(down, TensorProto.FLOAT16) or types.get(down.input[0]) != TensorProto.FLOAT:
            continue
        src, dst = down.input[0], back.output[0]
        if dst in outputs and (src in inputs or src in outputs):
            continue                                 # an input passed straight to an output: leave it
        graph.node.remove(back)
        if dst in outputs:
            _rename_uses(graph, src, dst)            # the FP32 producer writes the graph output itself
        else:
            _rename_uses(graph, dst, src)            # kept readers read the FP32 value directly
    read = {n for node in graph.node for n in node.input} | outputs
    for cast in [n for n in graph.node if _is_cast(n, TensorProto.FLOAT16) and n.output[0] not in read]:
        graph.node.remove(cast)


def _restore_fp32_boundaries(half: Any, float_outputs: set[str]) -> None:
    _restore_fp32_outputs(half.graph, float_outputs)
    _drop_round_trips(half.graph)


def _name_nodes(model: Any) -> None:
    """Kept nodes are named to the converter (``node_block_list``): a nameless one gets a name."""
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"


def _convert(model: Any, dst: str | os.PathLike[str], sample: np.ndarray | None) -> Fp16Result:
    import onnx

    f16, name = _converter()
    _name_nodes(model)
    float_outputs = {o.name for o in model.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    keep = _constant_overflow(model)
    for node, why in _activation_overflow(model, sample).items():
        keep[node] = f"{keep[node]}; {why}" if node in keep else why
    _unshare(model, set(keep))
    with warnings.catch_warnings():  # the converter warns once per clamped tiny value
        warnings.simplefilter("ignore")
        half = f16.convert_float_to_float16(model, min_positive_val=FP16_TINY, max_finite_val=FP16_MAX,
                                            keep_io_types=True, node_block_list=sorted(keep))
    _restore_fp32_boundaries(half, float_outputs)
    onnx.checker.check_model(half)
    path = write_bytes_atomic(dst, half.SerializeToString())
    return Fp16Result(path, name, _opset(half), [f"{node}: {why}" for node, why in sorted(keep.items())])


def fp16_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str],
              sample: np.ndarray | None = None) -> Fp16Result:
    """FP16 copy of the FP32 ONNX ``src`` (FP32 I/O), written atomically to ``dst``."""
    onnx = require("onnx", "writing the FP16 ONNX")
    model = onnx.load(str(src))
    if is_qdq(model):
        raise EdgeresError(f"{src} is a Q/DQ (INT8) ONNX: its FP16 form is made by qdq_fp16_copy")
    return _convert(model, dst, sample)


def qdq_fp16_copy(src: str | os.PathLike[str], dst: str | os.PathLike[str],
                  sample: np.ndarray | None = None) -> Fp16Result:
    """The Q/DQ ONNX ``src`` at opset >= 19 with FP16 scales and FP16 float layers (FP32 I/O)."""
    onnx = require("onnx", "writing the strongly typed INT8 ONNX")
    from onnx import version_converter

    model = onnx.load(str(src))
    if not is_qdq(model):
        raise EdgeresError(f"{src} has no QuantizeLinear/DequantizeLinear nodes: it is not a Q/DQ INT8 ONNX")
    if _opset(model) < FP16_QDQ_OPSET:
        try:
            model = version_converter.convert_version(model, FP16_QDQ_OPSET)
        except Exception as exc:  # noqa: BLE001 - the converter raises plain RuntimeErrors
            raise EdgeresError(f"cannot move {src} to opset {FP16_QDQ_OPSET} for FP16 Q/DQ scales: {exc}") from None
    return _convert(model, dst, sample)


__all__ = ["FP16_MAX", "FP16_QDQ_OPSET", "Fp16Result", "fp16_copy", "qdq_fp16_copy"]
