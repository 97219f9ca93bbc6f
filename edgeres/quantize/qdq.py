"""Building the explicit Q/DQ graph: which layers, which tensors, which form.

Calibration (``calibrate.py``) only measures tensor ranges; this module turns an FP32
ONNX plus those ranges into a QuantizeLinear/DequantizeLinear graph. ONNX Runtime's QDQ
quantizer writes the nodes (scales, per-channel weights); edgeres decides *where* they go.

Two placements, both with symmetric INT8 weights per channel on axis 0 (one scale per output
channel), per-tensor activations, float bias, nothing on the network output:

``tensorrt`` (default): symmetric INT8 activations (zero point 0) and NVIDIA's placement rules
    for explicit quantization, as ModelOpt applies them: Q/DQ on the inputs of Conv and Gemm
    only (weighted layers), not on their outputs; and on the *residual* (shortcut) input of
    each residual Add, so TensorRT fuses the Add (and the ReLU after it) into the preceding
    convolution. The Add's other input, the convolution branch, stays unquantized, as fusion
    requires.
``onnxruntime``: asymmetric UINT8 activations, each ReLU's range from 0 so the quantizer folds
    the ReLU into the quantized output before it, and Q/DQ around every operator ONNX Runtime
    has INT8 kernels for (Conv, Add, pooling, Gemm...), so that its CPU optimizer fuses each
    ``DQ -> op -> Q`` group into QLinearConv, QLinearAdd, QGemm: ResNet-50 runs as 52
    QLinearConv + 16 QLinearAdd with no float op between them. Loaded with
    :data:`ORT_DISABLED_OPTIMIZERS` disabled (the earlier signed form needed it).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.onnxutil import quantized_ops
from edgeres.optional import require

PLACEMENTS = ("tensorrt", "onnxruntime")

# Weighted layers: the ones a user keeps in FP or not, the unit of sensitivity analysis.
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")

# ONNX Runtime's CSE pass merged the dedicated Q/DQ pairs of the earlier signed (s8) onnxruntime
# placement, and a Q feeding several consumers kept s8 activations, which ORT's x86 kernels do
# not take (9 of 20 ResNet-18 convolutions fused with CSE on, 20 of 20 off). The u8 form has one
# Q per tensor and does not depend on it; it stays off so graphs written before still fuse.
ORT_DISABLED_OPTIMIZERS = ("CommonSubexpressionElimination",)


@dataclass(frozen=True)
class Layer:
    """A weighted node and the name a user knows it by (the torch module path)."""

    node: str        # ONNX node name, e.g. "/layer1/layer1.0/conv1/Conv"
    module: str      # torch module path, e.g. "layer1.0.conv1" ("" when unknown)
    op_type: str

    @property
    def display(self) -> str:
        return self.module or self.node


# --- reading the FP32 graph --------------------------------------------------------------------

def check_not_quantized(model, path: str | Path) -> None:
    """Refuse a graph that already carries quantization: quantizing twice compounds the error."""
    found = quantized_ops(model)
    if found:
        raise EdgeresError(f"{path} is already quantized (it contains {', '.join(found)}); "
                           "give edgeres quantize the FP32 ONNX it came from")


def check_input_shape(model_shape: Sequence[int | str], sample_shape: Sequence[int], source: str) -> None:
    """Calibration images must have the shape the model takes in every static dimension."""
    expected = list(model_shape[1:])
    if len(expected) != len(sample_shape) or any(
            isinstance(e, int) and e > 0 and e != s for e, s in zip(expected, sample_shape)):
        want = "x".join(str(e) for e in expected)
        got = "x".join(str(s) for s in sample_shape)
        raise EdgeresError(f"calibration images from {source} are {got} but the model takes {want}: "
                           "preprocess the calibration set to the model's input size (e.g. --input-size, "
                           "or a calibration spec with the matching crop)")


def module_path(node) -> str:
    """The torch module path a node came from, or '' when the exporter left no trace of it.

    TorchScript exporter: scopes in the node name, '/layer1/layer1.0/conv1/Conv' ->
    'layer1.0.conv1' (a scope is the child's qualified name within its parent, e.g.
    'layer1.0' inside 'layer1', 'downsample.0' inside 'layer1.0.downsample').
    Dynamo exporter: the 'pkg.torch.onnx.name_scopes' metadata ("['', 'layer1', ...]").
    """
    props = {prop.key: prop.value for prop in node.metadata_props}
    scopes = [s for s in re.findall(r"'([^']*)'", props.get("pkg.torch.onnx.name_scopes", "")) if s]
    if len(scopes) >= 2:
        path = _join_scopes(scopes[:-1])  # the last scope is the aten op
        if "BatchNorm" in props.get("pkg.torch.onnx.class_hierarchy", ""):
            # the exporter folded BN into the conv before it and kept the BN's name: in the
            # torchvision layout that conv is bnK -> convK, downsample.1 -> downsample.0
            path = re.sub(r"(^|\.)bn(\d+)$", r"\1conv\2", path)
            path = re.sub(r"downsample\.1$", "downsample.0", path)
        return path
    name = node.name or ""
    if name.startswith("/"):
        parts = [p for p in name.split("/") if p]
        if len(parts) >= 2:
            return _join_scopes(parts[:-1])
    return ""


def _join_scopes(scopes: Sequence[str]) -> str:
    path = ""
    for scope in scopes:
        head = scope.rpartition(".")[0]
        if path and scope.startswith(path + "."):  # already fully qualified
            path = scope
        elif head and (path == head or path.endswith("." + head)):  # 'layer1.0' inside 'layer1'
            path = path[: len(path) - len(head)] + scope
        else:
            path = f"{path}.{scope}" if path else scope
    return path


def weighted_layers(model) -> list[Layer]:
    """Conv / Gemm / MatMul-with-constant-weight nodes, in graph order."""
    initializers = {i.name for i in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if node.op_type not in WEIGHTED_OPS:
            continue
        if node.op_type == "MatMul" and not any(i in initializers for i in node.input):
            continue
        layers.append(Layer(node=node.name, module=module_path(node), op_type=node.op_type))
    return layers


def resolve_layers(layers: Sequence[Layer], patterns: Sequence[str]) -> list[Layer]:
    """Layers matching names or glob patterns: 'conv1', 'fc', 'layer4.*', 'layer1' (a whole
    stage), or ONNX node names such as '/layer1/layer1.0/conv1/Conv'. A pattern that matches
    nothing is an error listing what exists."""
    chosen: dict[str, Layer] = {}
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern:
            continue
        hits = [layer for layer in layers if _matches(layer, pattern)]
        if not hits:
            names = ", ".join(layer.display for layer in layers[:8])
            more = f", ... ({len(layers)} in all)" if len(layers) > 8 else ""
            raise EdgeresError(f"--keep-fp {pattern!r} matches no Conv/Gemm layer of this model; "
                               f"layers are named like: {names}{more}")
        for layer in hits:
            chosen[layer.node] = layer
    return [layer for layer in layers if layer.node in chosen]


def _matches(layer: Layer, pattern: str) -> bool:
    for name in (layer.module, layer.node):
        if not name:
            continue
        if name == pattern or fnmatch.fnmatchcase(name, pattern) or name.startswith(pattern + "."):
            return True
    return False


# --- placement -------------------------------------------------------------------------------

def residual_adds(model) -> dict[str, tuple[str, str]]:
    """Residual Adds: {add node: (fusing weighted node, residual input tensor)}.

    An Add with two computed inputs of which at least one comes straight from a weighted
    layer. The fusing layer is the weighted producer on the longer path from the graph
    input (in a downsampling block both inputs are convolutions: the block's second conv
    is deeper than the 1x1 projection); the other input is the residual one, which gets
    Q/DQ so that TensorRT can fuse the Add into the fusing layer.
    """
    initializers = {i.name for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    depth: dict[str, int] = {}
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        d = 1 + max((depth.get(producer[i].name, 0) for i in node.input if i in producer), default=0)
        depth[node.name] = d
    found = {}
    for node in model.graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        if any(i in initializers or i not in producer for i in node.input):
            continue
        a, b = (producer[i] for i in node.input)
        weighted = [p for p in (a, b) if p.op_type in WEIGHTED_OPS]
        if not weighted:
            continue
        fusing = max(weighted, key=lambda p: depth[p.name])
        residual = node.input[1] if fusing is a else node.input[0]
        found[node.name] = (fusing.name, residual)
    return found


@dataclass
class Plan:
    """What gets quantized: weighted layers, residual Adds (tensorrt) and the option set."""

    placement: str
    layers: list[str]            # weighted nodes to quantize
    adds: dict[str, str]         # residual Add node -> residual input tensor (tensorrt)
    exclude: list[str]           # nodes kept in FP (onnxruntime placement)
    output_ops: list[str]        # op types that write a network output (nothing is quantized there)
    relu_outputs: list[str] = field(default_factory=list)  # ranges start at 0 (onnxruntime placement)


def make_plan(model, quantize: Sequence[str], placement: str) -> Plan:
    if placement not in PLACEMENTS:
        raise EdgeresError(f"unknown Q/DQ placement {placement!r}: choose from {', '.join(PLACEMENTS)}")
    quantize = list(quantize)
    chosen = set(quantize)
    adds = {}
    if placement == "tensorrt":
        # A residual Q/DQ only pays when the Add fuses into an INT8 layer.
        adds = {add: res for add, (fusing, res) in residual_adds(model).items() if fusing in chosen}
    exclude = [layer.node for layer in weighted_layers(model) if layer.node not in chosen]
    outputs = {o.name for o in model.graph.output}
    output_ops = sorted({n.op_type for n in model.graph.node if set(n.output) & outputs})
    relus = sorted(o for n in model.graph.node if n.op_type == "Relu" for o in n.output)
    return Plan(placement=placement, layers=quantize, adds=adds, exclude=exclude, output_ops=output_ops,
                relu_outputs=relus)


# --- writing the Q/DQ graph ------------------------------------------------------------------

def write_qdq(fp32_onnx: Path, ranges: dict[str, tuple[float, float]], out: Path, plan: Plan) -> None:
    """Write the Q/DQ model for ``plan`` using precomputed activation ``ranges``.

    ONNX Runtime's quantizer reads ``fp32_onnx`` itself; everything edgeres needs to know
    about the graph is already in the ``plan``."""
    onnx = require("onnx", "INT8 quantization")
    oq = require("onnxruntime.quantization", "INT8 quantization")
    from onnxruntime.quantization.calibrate import TensorsData, save_tensors_data
    extra = {
        "ActivationSymmetric": True,
        "WeightSymmetric": True,
        "QuantizeBias": False,           # float bias: TensorRT folds it itself; ORT quantizes it when fusing
        "QDQOpTypePerChannelSupportToAxis": {"Conv": 0, "Gemm": 0},
        "ForceQuantizeNoInputCheck": True,
    }
    if plan.placement == "tensorrt":
        op_types = ["Conv", "Gemm", "MatMul", "Add"]
        nodes = plan.layers + list(plan.adds)
        extra["OpTypesToExcludeOutputQuantization"] = op_types
        extra["DedicatedQDQPair"] = False
        exclude: list[str] = []
    else:
        op_types = None  # every operator ORT has a QDQ rule for
        nodes = None
        extra["OpTypesToExcludeOutputQuantization"] = plan.output_ops  # nothing on the network output
        # ORT's x86 INT8 kernels take u8 activations (VPDPBUSD is u8 x s8): with asymmetric u8
        # activations and each ReLU's range starting at 0, the quantizer folds every ReLU into the
        # quantized output of the op before it, so ORT fuses Conv+ReLU into one QLinearConv instead
        # of running DQ -> ReLU -> Q in float, and needs no s8->u8 conversions. One Q per tensor: a
        # residual Add read by two nodes still fuses into QLinearAdd.
        extra["ActivationSymmetric"] = False
        extra["DedicatedQDQPair"] = False
        exclude = plan.exclude
    if plan.placement == "tensorrt" and not nodes:
        shutil.copyfile(fp32_onnx, out)  # nothing to quantize: the FP32 graph as it is
        return
    activation_type = oq.QuantType.QInt8 if plan.placement == "tensorrt" else oq.QuantType.QUInt8
    from_zero = set(plan.relu_outputs) if plan.placement == "onnxruntime" else set()
    data = {name: (np.float32(0.0 if name in from_zero else lo), np.float32(hi)) for name, (lo, hi) in ranges.items()}
    tensors = TensorsData(oq.CalibrationMethod.MinMax, data)
    with tempfile.TemporaryDirectory(prefix="edgeres-qdq-") as tmp, _quiet():
        cache = Path(tmp) / "ranges.json"
        save_tensors_data(tensors, cache)
        oq.quantize_static(
            str(fp32_onnx), str(out), None,
            quant_format=oq.QuantFormat.QDQ, per_channel=True, reduce_range=False,
            activation_type=activation_type, weight_type=oq.QuantType.QInt8,
            op_types_to_quantize=op_types, nodes_to_quantize=nodes, nodes_to_exclude=exclude,
            calibrate_method=oq.CalibrationMethod.MinMax, calibration_cache_path=cache,
            extra_options=extra,
        )
    qmodel = onnx.load(str(out))
    if plan.placement == "tensorrt":
        _keep_only_residual_inputs(qmodel, plan.adds)
    _strip_output_qdq(qmodel)
    _drop_unused(qmodel)
    onnx.save(qmodel, str(out))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT's quantizer prints and logs advice ("consider pre-processing") to stdout/root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(None):  # type: ignore[type-var]
            yield
    finally:
        root.setLevel(level)


def _dq_source(model, tensor: str) -> str | None:
    """If ``tensor`` is DQ(Q(x)), return x."""
    producer = {out: node for node in model.graph.node for out in node.output}
    dq = producer.get(tensor)
    if dq is None or dq.op_type != "DequantizeLinear":
        return None
    q = producer.get(dq.input[0])
    if q is None or q.op_type != "QuantizeLinear":
        return None
    return q.input[0]


def _keep_only_residual_inputs(model, adds: dict[str, str]) -> None:
    """ORT quantizes both Add inputs; TensorRT wants only the residual one (the other is the
    convolution branch the Add fuses into)."""
    for node in model.graph.node:
        if node.name not in adds:
            continue
        for k, tensor in enumerate(node.input):
            src = _dq_source(model, tensor)
            if src is not None and src != adds[node.name]:
                node.input[k] = src


def _strip_output_qdq(model) -> None:
    """No Q/DQ on the network output: the logits leave the graph in float, unrounded."""
    producer = {out: node for node in model.graph.node for out in node.output}
    for output in model.graph.output:
        src = _dq_source(model, output.name)
        if src is None:
            continue
        dq = producer[output.name]
        dq.op_type = "Identity"  # keep the output name; _drop_unused removes the orphaned Q
        del dq.input[1:]
        dq.input[0] = src
        del dq.attribute[:]


def _drop_unused(model) -> None:
    """Remove nodes whose outputs nobody reads, and initializers nobody uses."""
    graph_outputs = {o.name for o in model.graph.output}
    changed = True
    while changed:
        used = {i for n in model.graph.node for i in n.input} | graph_outputs
        keep = [n for n in model.graph.node if any(o in used for o in n.output)]
        changed = len(keep) != len(model.graph.node)
        if changed:
            del model.graph.node[:]
            model.graph.node.extend(keep)
    used = {i for n in model.graph.node for i in n.input}
    inits = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


# --- inspecting a Q/DQ graph (tests, metadata) -----------------------------------------------

def describe_qdq(model) -> dict:
    """Counts that pin the form: Q/DQ nodes, quantized weighted layers, per-channel weights."""
    init = {i.name: i for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    quantized = []
    for node in model.graph.node:
        if node.op_type in WEIGHTED_OPS and len(node.input) > 1:
            w = producer.get(node.input[1])
            if w is not None and w.op_type == "DequantizeLinear":
                quantized.append(node.name)
    return {
        "quantize_linear": sum(n.op_type == "QuantizeLinear" for n in model.graph.node),
        "dequantize_linear": sum(n.op_type == "DequantizeLinear" for n in model.graph.node),
        "quantized_layers": quantized,
        "weights_int8": sum(1 for i in init.values() if i.data_type == 3),  # TensorProto.INT8
    }
