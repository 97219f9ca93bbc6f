"""Per-layer time on the target, grouped the way ``edgeres info`` shows the network.

The runtime reports its own layers (``Runner.profile``): fused kernels named after a node of
the ONNX graph (``/layer3/layer3.1/conv2/Conv_token_165``, ``/layer1/layer1.0/Add``). Their
path is the torch module path, so each is attributed to a module (``layer3.1.conv2``) and a
stage (``conv1`` = the stem, ``layer1``..``layer4``, ``fc`` = pooling and the classifier);
kernels the runtime adds itself (layout reorders, transposes) go to ``other``.

``cost_of_fp`` joins two profiles of the same network (FP32 and INT8) into what keeping each
layer in floating point costs on this target, and ``join_sensitivity`` puts that beside the
accuracy each layer costs to quantize (``sensitivity.json``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from edgeres.backends.base import LayerTime

STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4", "fc", "other")
_STEM = ("conv1", "bn1", "relu", "maxpool")
_HEAD = ("avgpool", "fc", "Flatten", "flatten")


def module_of(name: str) -> str:
    """The torch module path in a runtime layer name: ``/layer2/layer2.0/downsample/downsample.0/Conv``
    -> ``layer2.0.downsample.0``; '' when the name carries none."""
    name = name.split(" + ", 1)[0]  # TensorRT names a fused kernel "A + B + C"
    segments = [s for s in name.split("/")[1:-1] if s] if name.startswith("/") else []
    if not segments and name.startswith("/"):  # a top-level op: /Flatten, /fc/Gemm had one segment
        head = name[1:].split("_", 1)[0].split("/", 1)[0]
        return head if head in _HEAD else ""
    module, previous = "", ""
    for seg in segments:
        if seg[:1].isupper():  # an op below the module (OpenVINO: /conv1/Conv/WithoutBiases)
            break
        if previous and seg.startswith(previous + "."):
            module += seg[len(previous):]
        else:
            module = f"{module}.{seg}" if module else seg
        previous = seg
    return module


def stage_of(module: str) -> str:
    first = module.split(".", 1)[0]
    if re.fullmatch(r"layer\d+", first):
        return first
    if first in _STEM:
        return "conv1"
    if first in _HEAD:
        return "fc"
    return "other"


CONV_OPS = ("Conv", "FusedConv", "NhwcFusedConv", "QLinearConv", "NhwcQLinearConv", "ConvInteger", "Convolution",
            "GroupConvolution")

WEIGHTED_OPS = (*CONV_OPS, "Gemm", "MatMul", "QGemm", "FullyConnected")


def _fused_conv(module: str, op: str) -> str:
    """A convolution the runtime fused with the ReLU after it is named after that ReLU
    (``layer1.0.relu_1``): in a ResNet block the k-th ReLU follows ``conv{k}`` (the stem's
    ``relu`` follows ``conv1``), so the kernel goes back to its convolution."""
    head, _, last = module.rpartition(".")
    match = re.fullmatch(r"relu(?:_(\d+))?", last)
    if op not in CONV_OPS or not match:
        return module
    conv = f"conv{int(match.group(1) or 0) + 1}"
    return f"{head}.{conv}" if head else conv


@dataclass
class ProfiledLayer:
    module: str         # torch module path ('' for kernels the runtime added)
    stage: str
    name: str           # the runtime's layer name
    op: str
    kernel: str
    precision: str
    ms: float
    min_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attribute(layers: Sequence[LayerTime]) -> list[ProfiledLayer]:
    """Each runtime layer with its module and stage."""
    out = []
    for t in layers:
        module = _fused_conv(module_of(t.name), t.op)
        out.append(ProfiledLayer(module=module, stage=stage_of(module), name=t.name, op=t.op, kernel=t.kernel,
                                 precision=t.precision, ms=t.ms, min_ms=t.min_ms))
    return out


def by_stage(layers: Sequence[ProfiledLayer]) -> list[dict[str, Any]]:
    """Time per stage (ms, share of the total) and the share of it spent in INT8 kernels."""
    total = sum(t.ms for t in layers) or 1.0
    rows = []
    for stage in STAGES:
        mine = [t for t in layers if t.stage == stage]
        if not mine:
            continue
        ms = sum(t.ms for t in mine)
        int8 = sum(t.ms for t in mine if t.precision == "int8")
        fastest = sum(t.min_ms if t.min_ms is not None else t.ms for t in mine)
        rows.append({"stage": stage, "ms": ms, "min_ms": fastest, "share": ms / total,
                     "int8_share": int8 / ms if ms else 0.0, "layers": len(mine)})
    return rows


def by_module(layers: Sequence[ProfiledLayer]) -> dict[str, float]:
    """Time per torch module (a conv's kernel plus the Q/DQ kernels named after it)."""
    out: dict[str, float] = {}
    for t in layers:
        if t.module:
            out[t.module] = out.get(t.module, 0.0) + t.ms
    return out


def cost_of_fp(fp32: Sequence[ProfiledLayer], int8: Sequence[ProfiledLayer], modules: Sequence[str]
               ) -> dict[str, float]:
    """ms each module costs in FP32 rather than INT8 (FP32 time minus INT8 time, both profiled here).

    The module's own kernels only: a layer returned to FP also changes the Q/DQ at its
    neighbours' edges, which this estimate leaves out (the budget loop times the final model).
    """
    fp, q = by_module(fp32), by_module(int8)
    return {m: fp.get(m, 0.0) - q.get(m, 0.0) for m in modules}


@dataclass
class LayerTradeoff:
    """One layer: the accuracy it costs to quantize and the time it costs to keep in FP."""

    layer: str
    loss: float         # points lost with this layer alone in INT8 (sensitivity)
    fp_cost_ms: float   # FP32 minus INT8 time of its kernels on this target

    @property
    def gain_per_ms(self) -> float:
        """Points recovered per millisecond spent by keeping it in FP (a free layer ranks first)."""
        return self.loss / max(self.fp_cost_ms, 1e-3)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"gain_per_ms": self.gain_per_ms}


def join_sensitivity(sensitivity: Sequence[dict[str, Any]], cost: dict[str, float]) -> list[LayerTradeoff]:
    """Sensitivity rows (``layer``, ``loss``) beside the FP cost of the same layers."""
    return [LayerTradeoff(layer=r["layer"], loss=float(r["loss"]), fp_cost_ms=float(cost.get(r["layer"], 0.0)))
            for r in sensitivity]


def profile_runner(runner: Any, *, batch: int = 1, runs: int = 20) -> dict[str, Any]:
    """Profile a loaded runner: the document ``edgeres profile`` prints (and a kit report row keeps)."""
    from edgeres.checks import at_least_one

    at_least_one(batch=batch, runs=runs)
    layers = attribute(runner.profile(batch, runs))
    info = dict(runner.info)
    return {
        "backend": info.get("backend"), "execution_precision": info.get("execution_precision"),
        "device": info.get("device_name") or info.get("device"), "threads": info.get("threads"), "batch": batch, "runs": runs,
        "timed": "per-layer time as the runtime's own profiler reports it (ONNX Runtime: enable_profiling; "
                 "OpenVINO: PERF_COUNT; TensorRT: IProfiler), median of the timed runs after one warm-up; the sum "
                 "of layers is not the end-to-end latency (scheduling and copies are outside any layer)",
        "total_ms": sum(t.ms for t in layers), "stages": by_stage(layers), "layers": [t.to_dict() for t in layers],
    }


def profile_artifact(path: Any, *, batch: int = 1, runs: int = 20, threads: int | None = None) -> dict[str, Any]:
    """Profile an artifact on this host through its backend."""
    from edgeres.validate.runner import as_artifact, load_runner

    artifact = as_artifact(path)
    with load_runner(artifact, threads=threads) as runner:
        doc = profile_runner(runner, batch=batch, runs=runs)
    return {"artifact": str(artifact.path), "precision": artifact.precision, **doc}
