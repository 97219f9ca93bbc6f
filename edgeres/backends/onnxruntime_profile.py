"""Per-layer time on ONNX Runtime, from its own profiler (``SessionOptions.enable_profiling``).

ORT writes a Chrome-trace JSON: one ``Node`` event per executed kernel per run, named after
the node in the *optimized* graph (``/layer1/layer1.0/conv1/Conv_token_113`` for a fused
QLinearConv), with the operator ORT ran (``args.op_name``) and its execution provider. The
first run is a warm-up (allocations, prepacking) and is left out; each kernel's time is its
median over the timed runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.backends.base import LayerTime

KERNEL_SUFFIX = "_kernel_time"
# operators that compute in INT8 on ORT's CPU provider (everything else here runs in float)
INT8_OPS = ("QLinearConv", "ConvInteger", "NhwcQLinearConv", "QLinearAdd", "QLinearMatMul", "MatMulInteger",
            "QGemm", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearMul", "QLinearConcat")


def profile_session(make_session: Callable[[Any], Any], input_name: str, shape: tuple[int, ...],
                    runs: int) -> list[LayerTime]:
    """Run a fresh profiling session (``make_session(session_options_update)``) ``runs`` + 1 times."""
    import json

    with tempfile.TemporaryDirectory(prefix="edgeres-ortprof-") as tmp:
        session = make_session(str(Path(tmp) / "profile"))
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        for _ in range(runs + 1):
            session.run(None, {input_name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    return layer_times(events, runs)


def layer_times(events: list[dict[str, Any]], runs: int) -> list[LayerTime]:
    """Median time per run of each kernel (robust to a run the OS preempted), in execution order,
    the warm-up run left out."""
    order: dict[str, tuple[str, str]] = {}
    durations: dict[str, list[float]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith(KERNEL_SUFFIX):
            continue
        name = name[: -len(KERNEL_SUFFIX)]
        args = e.get("args") or {}
        order.setdefault(name, (str(args.get("op_name", "")), str(args.get("provider", ""))))
        durations.setdefault(name, []).append(float(e.get("dur", 0)) / 1000.0)  # us -> ms
    out = []
    for name, (op, provider) in order.items():
        timed = durations[name][-runs:] if len(durations[name]) > runs else durations[name][1:] or durations[name]
        precision = "int8" if op in INT8_OPS else ("" if op in ("QuantizeLinear", "DequantizeLinear") else "fp32")
        out.append(LayerTime(name=name, op=op, kernel=f"{op} ({provider.replace('ExecutionProvider', '')})",
                             precision=precision, ms=float(np.median(timed)), min_ms=float(np.min(timed))))
    return out
