#!/usr/bin/env python3
"""Accuracy-budget fallback order: most sensitive first vs accuracy gained per millisecond.

Quantizes one FP32 ONNX twice with the same calibration, budget and selection/held-out split,
once per ``--order`` (the loop on the TensorRT placement, ORT's exact fake quantization, as
``edgeres quantize`` does by default), writes each layer choice again in the onnxruntime
placement (the INT8 kernels that run on this CPU), then times FP32 and both models interleaved (rotating order, a block of runs each per
round, median over rounds) so a noisy neighbour hits all three alike. Reports each model's
layers back in FP, its held-out loss with its 95% interval, and its latency as a ratio to FP32
measured in the same run. Writes OUT/bench_fallback_order.json and prints a Markdown table.

    python scripts/bench_fallback_order.py --model model.onnx --calib demo:digits-train \\
        --val demo:digits-val --method percentile --percentile 95 --keep-fp none --budget 0.3 --out /tmp/order
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _time_interleaved(paths: dict[str, Path], qdq: dict[str, bool], shape: tuple[int, ...], rounds: int,
                      block: int, threads: int) -> dict[str, float]:
    from edgeres.quantize.sensitivity import ort_runner

    runners = {name: ort_runner(path, threads, qdq=qdq[name]) for name, path in paths.items()}
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    for r in runners.values():
        for _ in range(5):
            r(x)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            for _ in range(block):
                t0 = time.perf_counter()
                runners[name](x)
                samples[name].append((time.perf_counter() - t0) * 1000.0)
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="FP32 ONNX (from edgeres export)")
    p.add_argument("--calib", required=True)
    p.add_argument("--calib-size", type=int, default=128)
    p.add_argument("--val", required=True)
    p.add_argument("--val-size", type=int, default=None)
    p.add_argument("--method", default="percentile")
    p.add_argument("--percentile", type=float, default=95.0)
    p.add_argument("--keep-fp", default="none")
    p.add_argument("--budget", type=float, default=0.3)
    p.add_argument("--holdout", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1,
                   help="ONNX Runtime threads (default 1: on a shared, loaded machine a 2-thread pool waits at "
                        "every parallel op for a descheduled thread, and the model with more ops loses most)")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--block", type=int, default=10)
    p.add_argument("--out", required=True)
    args = p.parse_args()

    from edgeres.cli.common import keep_fp_list
    from edgeres.cli.quantize import _preprocess_of
    from edgeres.data import open_set
    from edgeres.onnxutil import load_onnx, onnx_input_spec
    from edgeres.quantize import quantize_onnx

    out = Path(args.out)
    model = Path(args.model)
    pre = _preprocess_of(model)
    calib = open_set(args.calib, size=args.calib_size, preprocess=pre)
    val = open_set(args.val, size=args.val_size, preprocess=pre)
    results: dict[str, Any] = {}
    for order in ("sensitivity", "gain-per-ms"):
        start = time.perf_counter()
        art = quantize_onnx(model, calib, out / order, method=args.method, percentile=args.percentile,
                            keep_fp=keep_fp_list(args.keep_fp), placement="tensorrt", val=val,
                            accuracy_budget=args.budget, holdout=args.holdout, threads=args.threads, order=order)
        budget, held = art.metadata["accuracy_budget"], art.metadata["heldout"]
        # the same layer choice in the form ONNX Runtime's INT8 kernels run (what is timed here)
        timed = quantize_onnx(model, calib, out / f"{order}-ort", method=args.method, percentile=args.percentile,
                              keep_fp=art.metadata["keep_fp"], placement="onnxruntime", log=None)
        results[order] = {"path": str(timed.path), "fallback": budget["fallback"], "met": budget["met"],
                          "selection_loss": budget["final"]["loss"], "heldout": held, "choices": budget["choices"],
                          "est_fp_cost_ms": sum(c["fp_cost_ms"] or 0.0 for c in budget["choices"]),
                          "seconds": round(time.perf_counter() - start, 1)}
    shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in onnx_input_spec(load_onnx(model))["shape"])
    paths = {"fp32": model, **{o: Path(r["path"]) for o, r in results.items()}}
    load_before = os.getloadavg()
    p50 = _time_interleaved(paths, {"fp32": False, "sensitivity": True, "gain-per-ms": True}, (1, *shape[1:]),
                            args.rounds, args.block, args.threads)
    doc = {"model": str(model), "input_shape": list(shape), "budget": args.budget, "method": args.method,
           "percentile": args.percentile, "threads": args.threads, "batch": 1,
           "timed": f"ONNX Runtime CPU, batch 1, {args.threads} threads, {args.rounds} interleaved rounds x "
                    f"{args.block} runs, median", "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
           "p50_ms": p50, "orders": results}
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_fallback_order.json").write_text(json.dumps(doc, indent=2, default=str))
    print(f"{model.name}, budget {args.budget} pt, {doc['timed']}; load {load_before[0]:.1f} -> "
          f"{doc['loadavg_after'][0]:.1f}")
    print("| order | layers back in FP | selection loss (pt) | held-out loss (pt, 95% interval) | verdict | "
          "p50 ms | / FP32 |")
    print("| --- | ---: | ---: | --- | --- | ---: | ---: |")
    print(f"| FP32 | all | 0 | - | - | {p50['fp32']:.3f} | 1.00 |")
    for order, r in results.items():
        iv = r["heldout"]["interval"]
        print(f"| {order} | {len(r['fallback'])} | {r['selection_loss']:.2f} | {iv['loss']:+.2f} "
              f"({iv['low']:+.2f} to {iv['high']:+.2f}, n={iv['n']}) | {r['heldout']['verdict']} | "
              f"{p50[order]:.3f} | {p50[order] / p50['fp32']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
