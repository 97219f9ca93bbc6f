"""In which order the accuracy-budget loop returns layers to FP.

``sensitivity`` (the default): most sensitive first, from the per-layer ranking alone. It
depends only on the model, the ranges and the validation images, so the same inputs give
the same graph on any machine, however loaded.

``gain-per-ms``: the accuracy a layer recovers per millisecond it costs to keep in FP on this
host (its FP32 kernel time minus its INT8 kernel time, both from ONNX Runtime's profiler on
the onnxruntime placement, where INT8 kernels run here). A cheap layer that recovers as much
as an expensive one goes back first, so the budget is met with less latency given back. The
accuracy of a layer is its sensitivity loss (points); ties (common on small sets, where most
layers alone cost 0 points) are broken by the logits' cosine distance per millisecond. The
timings come from this host at this moment: the order, and so the graph, can differ between
runs on a loaded machine, which is why it is not the default.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeres.errors import EdgeresError
from edgeres.quantize.qdq import Layer, make_plan, write_qdq

ORDERS = ("sensitivity", "gain-per-ms")
MIN_COST_MS = 1e-3  # a layer that costs nothing in FP (or that profiling could not see) ranks as this cheap


def fp_costs(fp32_onnx: Path, model: Any, ranges: dict[str, tuple[float, float]], layers: Sequence[Layer],
             threads: int | None = None, runs: int = 20) -> dict[str, float]:
    """ms each layer costs in FP32 rather than INT8 on ONNX Runtime here, by layer display name."""
    from edgeres.quantize.sensitivity import ort_runner
    from edgeres.validate.layers import attribute, cost_of_fp

    with tempfile.TemporaryDirectory(prefix="edgeres-cost-") as tmp:
        int8 = Path(tmp) / "all_int8.onnx"
        write_qdq(fp32_onnx, ranges, int8, make_plan(model, [q.node for q in layers], "onnxruntime"))
        fp_times = attribute(ort_runner(fp32_onnx, threads).profile(1, runs))
        q_times = attribute(ort_runner(int8, threads, qdq=True).profile(1, runs))
    return cost_of_fp(fp_times, q_times, [q.display for q in layers])


def order_ranking(ranking: Sequence[Any], order: str, costs: dict[str, float] | None = None) -> list[Any]:
    """The ranking (``LayerSensitivity`` rows, most sensitive first) in the order the loop should use."""
    if order not in ORDERS:
        raise EdgeresError(f"unknown fallback order {order!r}: choose from {', '.join(ORDERS)}")
    if order == "sensitivity":
        return list(ranking)
    costs = costs or {}

    def key(r: Any) -> tuple[float, float]:
        ms = max(costs.get(r.layer, 0.0), MIN_COST_MS)
        return (-r.loss / ms, -(1.0 - r.cosine) / ms)

    return sorted(ranking, key=key)


def describe_choices(steps: Sequence[dict[str, Any]], fallback: Sequence[str], costs: dict[str, float] | None,
                     metric: str) -> list[dict[str, Any]]:
    """One line per layer the loop returned to FP: the points it recovered (on the selection
    images) and the ms it costs (profiled), e.g. "keeping layer3.5.conv2 in FP: +0.40 ms, +0.30 pt"."""
    out = []
    for i, layer in enumerate(fallback):
        gained = float(steps[i]["loss"]) - float(steps[i + 1]["loss"])
        ms = None if costs is None else costs.get(layer)
        cost = "" if ms is None else f"{ms:+.3f} ms, "
        out.append({"layer": layer, "gained_points": gained, "fp_cost_ms": ms,
                    "text": f"keeping {layer} in FP: {cost}{gained:+.2f} pt of {metric}"})
    return out
