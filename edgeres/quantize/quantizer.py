"""``quantize_onnx``: an FP32 ONNX and a calibration set in, the Q/DQ INT8 ONNX and its sidecar out.

The FP32 graph is parsed once here and handed to calibration, placement and the
sensitivity / accuracy-budget loop (ONNX Runtime's own calibrator and quantizer still read
the file: their APIs take a path).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeres import checks, limits
from edgeres.artifact import Artifact
from edgeres.data.split import DEFAULT_HOLDOUT, check_holdout
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, check_folder_path, sha256_file, write_json_atomic
from edgeres.onnxutil import load_onnx, onnx_input_spec, source_metadata
from edgeres.quantize.calibrate import DEFAULT_METHOD, Calibration, calibrate
from edgeres.quantize.heldout import judge, selection_and_heldout
from edgeres.quantize.ordering import describe_choices, fp_costs, order_ranking
from edgeres.quantize.qdq import (
    ORT_DISABLED_OPTIMIZERS,
    PLACEMENTS,
    Layer,
    check_not_quantized,
    describe_qdq,
    make_plan,
    resolve_layers,
    weighted_layers,
    write_qdq,
)

INT8_NAME = "model.int8.onnx"


def default_keep_fp(layers: Sequence[Layer]) -> list[Layer]:
    """The documented default: the first convolution and the last fully connected layer stay FP.

    The stem conv sees raw normalized pixels through 3 input channels: INT8 buys almost no
    speed there (TensorRT pads 3 channels up; it is ~3% of ResNet-50's MACs) and the input
    is the tensor least like the zero-centred activations INT8 suits. The classifier makes
    the logits, where every rounding error reaches the output directly, for ~0.05% of the
    MACs. Keeping both is the common practice of PTQ toolkits and papers. Pass an empty
    ``keep_fp`` (``--keep-fp none``) to quantize them too.
    """
    keep = []
    if layers and layers[0].op_type == "Conv":
        keep.append(layers[0])
    if layers and layers[-1].op_type in ("Gemm", "MatMul") and layers[-1] not in keep:
        keep.append(layers[-1])
    return keep


def _resolve_out(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.is_dir() or not out.suffix:
        return out / INT8_NAME
    return out


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def quantize_onnx(fp32_onnx: Path, calib: Any, out: Path, *, method: str = DEFAULT_METHOD,
                  percentile: float = 99.99, keep_fp: Sequence[str] | None = None,
                  cache_dir: Path | None = None, batch_size: int = 16, placement: str = "tensorrt",
                  val: Any = None, sensitivity: bool = False, accuracy_budget: float | None = None,
                  threads: int | None = None, test: Any = None, holdout: float | None = DEFAULT_HOLDOUT,
                  order: str = "sensitivity", log: Callable[[str], None] | None = _stderr) -> Artifact:
    """Quantize ``fp32_onnx`` to INT8 with ranges calibrated on ``calib`` (an edgeres ImageSet).

    ``out`` is the ONNX file to write (a directory gets ``model.int8.onnx``); its sidecar
    JSON records precision "int8", backend "onnx", the method, the layers kept in FP, the
    calibration fingerprint and whether the calibration cache was hit.

    ``keep_fp``: torch module names, glob patterns or ONNX node names of Conv/Gemm layers
    to leave in floating point; None means :func:`default_keep_fp`, [] means none.
    ``val`` (an ImageSet, labeled or not) enables ``sensitivity`` (per-layer ranking) and
    ``accuracy_budget`` (points of top-1, or of agreement without labels): layers return
    to FP, most sensitive first, until the INT8 model is within the budget. With a budget,
    the layers are chosen on a selection part of ``val`` and the result is judged on a
    held-out part (``holdout`` of the images, stratified, seeded; or a separate ``test`` set;
    ``holdout=0`` chooses and judges on the same images): metadata ``heldout``. ``order``:
    which layers go back first, ``sensitivity`` or ``gain-per-ms`` (see ``quantize.ordering``).
    """
    say = log or (lambda _m: None)
    fp32_onnx = Path(fp32_onnx)
    check_folder_path(_resolve_out(out).parent)
    if placement not in PLACEMENTS:
        raise EdgeresError(f"unknown Q/DQ placement {placement!r}: choose from {', '.join(PLACEMENTS)}")
    checks.at_least_one(batch_size=batch_size)
    checks.accuracy_budget(accuracy_budget)
    limits.check("the calibration batch size", batch_size, limits.BATCH)
    limits.check("the percentile", percentile, limits.PERCENTILE)
    checks.analysis_needs_val(sensitivity, accuracy_budget, val is not None)
    check_holdout(holdout)
    order_ranking([], order)  # an unknown order is refused before any work
    model = load_onnx(fp32_onnx)  # parsed once; every step below reads this copy
    check_not_quantized(model, fp32_onnx)
    shape = onnx_input_spec(model)["shape"]
    layers = weighted_layers(model)
    if not layers:
        raise EdgeresError(f"{fp32_onnx} has no Conv or Gemm layer to quantize: is it a ResNet (or another CNN)?")
    unnamed = sum(1 for layer in layers if not layer.node)
    if unnamed:
        raise EdgeresError(f"{fp32_onnx}: {unnamed} of its {len(layers)} Conv/Gemm nodes have no name, and layers are "
                           "chosen by name: export it with edgeres export (or give every node a name)")
    kept = default_keep_fp(layers) if keep_fp is None else resolve_layers(layers, keep_fp)
    quantize = [layer for layer in layers if layer not in kept]
    model_sha = sha256_file(fp32_onnx)

    cal = calibrate(fp32_onnx, calib, method=method, percentile=percentile, batch_size=batch_size,
                    cache_dir=cache_dir, model_sha256=model_sha, model=model, log=say)

    out = _resolve_out(out)
    extra: dict[str, Any] = {}
    fallback: list[str] = []
    with atomic_path(out) as tmp_out:
        if val is not None and (sensitivity or accuracy_budget is not None):
            split = selection_and_heldout(val, test, holdout) if accuracy_budget is not None else (val, None, "")
            extra, fallback = _analyse(fp32_onnx, model, cal, quantize, split[0], placement, sensitivity,
                                       accuracy_budget, tmp_out, out.parent, threads, say, order)
            if accuracy_budget is not None:
                extra["heldout"] = _judge_heldout(fp32_onnx, tmp_out, split, accuracy_budget, extra, threads, say)
        else:
            write_qdq(fp32_onnx, cal.ranges, tmp_out, make_plan(model, [q.node for q in quantize], placement))
        qmodel = load_onnx(tmp_out)
    kept_names = [layer.display for layer in kept] + fallback
    summary = describe_qdq(qmodel)
    metadata = _metadata(source_metadata(fp32_onnx, model), model_sha, shape, cal, method, percentile, placement, kept_names, summary,
                         len(layers))
    metadata.update(extra)
    artifact = Artifact(path=out, metadata=metadata).save()
    say(f"wrote {out} ({len(summary['quantized_layers'])} of {len(layers)} layers INT8, "
        f"{placement} placement, {method} calibration)")
    return artifact


def _metadata(source: dict[str, Any], model_sha: str, shape: list, cal: Calibration, method: str, percentile: float,
              placement: str, kept: list[str], summary: dict, n_layers: int) -> dict[str, Any]:
    from edgeres.optional import version_of

    base = dict(source)
    for key in ("sha256", "files", "precision", "exporter_parity", "parity"):
        base.pop(key, None)
    base.update({
        "backend": "onnx",
        "backend_version": version_of("onnxruntime"),
        "precision": "int8",
        "target": base.get("target"),
        "input": base.get("input") or {"name": "input", "shape": shape, "dtype": "float32"},
        "quantization": {
            "tool": "edgeres.quantize (ONNX Runtime QDQ quantizer, edgeres placement)",
            "format": "QDQ, symmetric int8 (zero point 0), per-channel weights (axis 0), per-tensor activations, "
                      "float bias, no Q/DQ on the output",
            "placement": placement,
            "method": method,
            "percentile": percentile if method == "percentile" else None,
            "keep_fp": kept,
            "quantized_layers": len(summary["quantized_layers"]),
            "layers": n_layers,
            "calibration": cal.to_dict() | {"fingerprint": cal.info.get("fingerprint"),
                                            "set": cal.info.get("calibration_set")},
            "source_onnx_sha256": model_sha,
        },
        "method": method,
        "keep_fp": kept,
        "calibration_fingerprint": cal.info.get("fingerprint"),
        "calibration_cache_hit": cal.cache_hit,
        "onnxruntime": {"disabled_optimizers": list(ORT_DISABLED_OPTIMIZERS) if placement == "onnxruntime" else []},
    })
    return base


def _analyse(fp32_onnx: Path, model: Any, cal: Calibration, quantize: list[Layer], val: Any, placement: str,
             sensitivity: bool, budget: float | None, out_tmp: Path, out_dir: Path, threads: int | None,
             say: Callable[[str], None], order: str = "sensitivity") -> tuple[dict[str, Any], list[str]]:
    from edgeres.quantize.sensitivity import Evaluator, fit_budget, ort_runner, rank_layers
    from edgeres.validate import measure_latency

    evaluate = Evaluator(fp32_onnx, val, threads=threads)
    extra: dict[str, Any] = {}
    ranking = rank_layers(fp32_onnx, model, cal.ranges, quantize, evaluate, placement)
    extra["sensitivity"] = {"metric": evaluate.metric, "validation_set": getattr(val, "name", None),
                            "reference_top1": evaluate.ref_top1, "layers": [r.to_dict() for r in ranking]}
    write_json_atomic(out_dir / "sensitivity.json", extra["sensitivity"])
    if sensitivity:
        say(format_sensitivity(ranking, evaluate.metric))
    fallback: list[str] = []
    all_layers = [q.node for q in quantize]
    if budget is None:
        write_qdq(fp32_onnx, cal.ranges, out_tmp, make_plan(model, all_layers, placement))
        return extra, fallback
    costs = fp_costs(fp32_onnx, model, cal.ranges, quantize, threads)
    say(f"accuracy budget {budget} points of {evaluate.metric}, layers back to FP by {order}:")
    result = fit_budget(fp32_onnx, model, cal.ranges, quantize, order_ranking(ranking, order, costs), evaluate,
                        budget, placement, out_tmp, log=say)
    fallback = result.fallback
    choices = describe_choices(result.steps, fallback, costs, evaluate.metric)
    for choice in choices:
        say(f"  {choice['text']}")
    # What the fallback costs, timed where INT8 kernels run here: ORT's CPU kernels, on the
    # onnxruntime placement of the same two layer choices (the TensorRT form runs on ORT as
    # fake quantization, whose timing says nothing about an INT8 engine).
    shape = _input_chw(fp32_onnx, model)
    kept_nodes = {layer.node for layer in quantize if layer.display in fallback}
    lat: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="edgeres-budget-") as tmp:
        for name, nodes in (("all_int8", all_layers), ("after_fallback", [n for n in all_layers if n not in kept_nodes])):
            path = Path(tmp) / f"{name}.onnx"
            write_qdq(fp32_onnx, cal.ranges, path, make_plan(model, nodes, "onnxruntime"))
            r = measure_latency(ort_runner(path, threads, qdq=True), shape, (1,), min_runs=50, min_seconds=0.5,
                                warmup=5)[0]
            lat[name] = {"p50_ms": round(r.p50_ms, 4), "mean_ms": round(r.mean_ms, 4)}
    lat["cost_ms"] = round(lat["after_fallback"]["p50_ms"] - lat["all_int8"]["p50_ms"], 4)
    lat["measured_on"] = "ONNX Runtime CPU INT8 kernels (onnxruntime placement of the same layers), batch 1"
    extra["accuracy_budget"] = result.to_dict() | {
        "latency": lat, "order": order, "choices": choices,
        "fp_cost_ms": {"per_layer": costs, "measured_on": "ONNX Runtime profiler here, batch 1: FP32 kernel time minus "
                       "INT8 kernel time of each layer (onnxruntime placement)"}}
    assert result.final is not None
    say(f"budget {'met' if result.met else 'NOT met'}: {len(fallback)} layer(s) back in FP "
        f"({', '.join(fallback) or 'none'}); {evaluate.metric} loss {result.final.loss:.2f} points; p50 latency "
        f"{lat['all_int8']['p50_ms']:.3f} -> {lat['after_fallback']['p50_ms']:.3f} ms ({lat['measured_on']})")
    return extra, fallback


def _judge_heldout(fp32_onnx: Path, candidate: Path, split: tuple[Any, Any, str], budget: float,
                   extra: dict[str, Any], threads: int | None, say: Callable[[str], None]) -> dict[str, Any]:
    """The metadata's ``heldout``: the chosen graph measured on images the loop did not see."""
    selection, held, how = split
    selection_loss = extra["accuracy_budget"]["final"]["loss"]
    if held is None:
        say(f"held-out check: {how}; the reported loss is optimistic")
        return {"split": how, "selection_images": len(selection), "heldout_images": 0, "met": None,
                "verdict": "not checked", "explanation": f"no held-out images: {how}"}
    result = judge(fp32_onnx, candidate, held, budget=budget, selection=selection, selection_loss=selection_loss,
                   split=how, threads=threads)
    say(f"held-out check ({how}): {result.explain()}")
    return result.to_dict()


def _input_chw(fp32_onnx: Path, model: Any) -> tuple[int, int, int]:
    shape = onnx_input_spec(model)["shape"]
    if not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise EdgeresError(f"{fp32_onnx} has a dynamic image size {shape}: cannot time it")
    return (int(shape[1]), int(shape[2]), int(shape[3]))


def format_sensitivity(ranking: Sequence[Any], metric: str) -> str:
    from edgeres.table import format_table

    rows = [(i + 1, r.layer, f"{r.loss:.2f}", "-" if r.top1 is None else f"{100 * r.top1:.2f}",
             f"{100 * r.agreement:.2f}", f"{r.cosine:.5f}") for i, r in enumerate(ranking)]
    head = f"per-layer sensitivity (that layer alone in INT8; loss in points of {metric}):"
    return head + "\n" + format_table(["rank", "layer", "loss", "top1 %", "agreement %", "cosine"], rows,
                                      align="rlrrrr")
