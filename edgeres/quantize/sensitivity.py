"""Per-layer sensitivity and the accuracy-budget fallback loop.

Both reuse one set of calibrated ranges: a candidate graph is only a different choice of
quantized layers written with :func:`edgeres.quantize.qdq.write_qdq` (well under a second
for a ResNet), then evaluated on ONNX Runtime against the FP32 reference.

The loss of a candidate is measured in points (percent): top-1 drop against labels when
the validation set has them, else the drop in agreement with the FP32 model's top-1.
Ties (common on small sets) are broken by the logits' cosine similarity to FP32.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import checks
from edgeres.quantize.qdq import ORT_DISABLED_OPTIMIZERS, Layer, make_plan, write_qdq


def ort_runner(path: str | Path, threads: int | None = None, qdq: bool = False) -> Any:
    """An ONNX Runtime runner for the quantizer's own loops; ``qdq`` graphs skip the CSE pass."""
    from edgeres.backends.onnxruntime import ORTRunner

    disabled = ORT_DISABLED_OPTIMIZERS if qdq else ()
    return ORTRunner(path, precision="int8" if qdq else "fp32", disabled_optimizers=disabled, threads=threads or 0)


@dataclass
class Evaluation:
    """One candidate against FP32: the loss in points and the numbers it comes from."""

    loss: float                 # points of top-1 (labels) or of agreement (no labels)
    metric: str                 # "top1" or "agreement"
    top1: float | None
    agreement: float
    cosine: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Evaluator:
    """Holds the validation set and the FP32 reference; scores candidate graphs."""

    def __init__(self, fp32_onnx: Path, val: Any, batch_size: int = 64, threads: int | None = None) -> None:
        from edgeres.validate import collect_logits

        self.val = val
        self.batch_size = batch_size
        self.threads = threads
        self.ref_logits, self.labels = collect_logits(ort_runner(fp32_onnx, threads), val, batch_size)
        self.metric = "top1" if self.labels is not None else "agreement"
        self.ref_top1 = (float(np.mean(self.ref_logits.argmax(1) == self.labels))
                         if self.labels is not None else None)

    def __call__(self, onnx_path: Path) -> Evaluation:
        from edgeres.validate import collect_logits, compare

        logits, _ = collect_logits(ort_runner(onnx_path, self.threads, qdq=True), self.val, self.batch_size)
        acc = compare(logits, self.labels, self.ref_logits)
        agreement = float(acc.agreement or 0.0)
        if self.labels is not None:
            loss = 100.0 * (float(self.ref_top1) - float(acc.top1))
        else:
            loss = 100.0 * (1.0 - agreement)
        return Evaluation(loss=round(loss, 4), metric=self.metric, top1=acc.top1, agreement=agreement,
                          cosine=float(acc.cosine or 0.0))


@dataclass
class LayerSensitivity:
    layer: str          # user-facing name (module path)
    node: str           # ONNX node name
    loss: float         # points lost with this layer alone in INT8
    top1: float | None
    agreement: float
    cosine: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rank_layers(fp32_onnx: Path, model: Any, ranges: dict[str, tuple[float, float]], layers: Sequence[Layer],
                evaluate: Evaluator, placement: str, progress: Callable[[str], None] | None = None
                ) -> list[LayerSensitivity]:
    """Quantize each layer alone and measure the loss; most sensitive first (``model``: ``fp32_onnx`` parsed)."""
    from edgeres.progress import Progress

    results = []
    with tempfile.TemporaryDirectory(prefix="edgeres-sens-") as tmp, \
            Progress(len(layers), "sensitivity (one layer at a time)") as bar:
        for i, layer in enumerate(layers):
            path = Path(tmp) / f"{i}.onnx"
            write_qdq(fp32_onnx, ranges, path, make_plan(model, [layer.node], placement))
            ev = evaluate(path)
            results.append(LayerSensitivity(layer.display, layer.node, ev.loss, ev.top1, ev.agreement, ev.cosine))
            bar.update()
    results.sort(key=lambda r: (-r.loss, r.cosine))
    return results


@dataclass
class BudgetResult:
    budget: float
    metric: str
    met: bool
    fallback: list[str]                 # layers returned to FP by the loop, in order
    steps: list[dict[str, Any]] = field(default_factory=list)
    final: Evaluation | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["final"] = self.final.to_dict() if self.final else None
        return d


def fit_budget(fp32_onnx: Path, model: Any, ranges: dict[str, tuple[float, float]], quantize: Sequence[Layer],
               ranking: Sequence[LayerSensitivity], evaluate: Evaluator, budget: float, placement: str,
               out: Path, log: Callable[[str], None] = lambda _m: None) -> BudgetResult:
    """Return layers to FP, most sensitive first, until the loss is within ``budget`` points.

    Writes the final graph to ``out``. Terminates: each step removes one layer, and with
    no layer quantized the graph is the FP32 model (loss 0).
    """
    checks.accuracy_budget(budget)
    active = [layer.node for layer in quantize]
    order = [r.node for r in ranking if r.node in set(active)]
    display = {layer.node: layer.display for layer in quantize}
    result = BudgetResult(budget=budget, metric=evaluate.metric, met=False, fallback=[])
    while True:
        if active:
            write_qdq(fp32_onnx, ranges, out, make_plan(model, active, placement))
        else:  # every layer back in FP: the FP32 graph itself (the onnxruntime placement would still
            shutil.copyfile(fp32_onnx, out)  # quantize Add/pool ops around no INT8 layer)
        ev = evaluate(out)
        result.steps.append({"fallback": list(result.fallback), "quantized_layers": len(active), **ev.to_dict()})
        log(f"  {len(active)} layers INT8, {len(result.fallback)} back in FP: {ev.metric} loss {ev.loss:.2f} points")
        if ev.loss <= budget + 1e-9 or not order:
            result.met = ev.loss <= budget + 1e-9
            result.final = ev
            return result
        node = order.pop(0)
        active.remove(node)
        result.fallback.append(display[node])
