"""``edgeres quantize``: the FP32 ONNX to a Q/DQ INT8 ONNX."""

from __future__ import annotations

import argparse
from typing import Any

from edgeres import checks, limits
from edgeres.argtypes import integer, number
from edgeres.cli.common import emit, keep_fp_list

# --- quantize -----------------------------------------------------------------------------------

def add_quantize(sub: argparse._SubParsersAction) -> None:
    from edgeres.quantize.calibrate import DEFAULT_METHOD, METHODS
    from edgeres.quantize.qdq import PLACEMENTS

    p = sub.add_parser(
        "quantize", help="INT8 post-training quantization of an ONNX model",
        description="Calibrate an FP32 ONNX on your images and write an explicit symmetric Q/DQ INT8 ONNX "
                    "(TensorRT explicit quantization; ONNX Runtime INT8 kernels with --placement onnxruntime).")
    p.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model (e.g. from edgeres export)")
    p.add_argument("--calib", required=True, metavar="DIR|SPEC",
                   help="calibration images: a folder, .npy/.npz, or a calibration spec name/path (e.g. demo)")
    p.add_argument("--calib-size", type=integer(limits.COUNT), default=512, metavar="N",
                   help="calibration images to use (default 512; fewer if the set is smaller)")
    p.add_argument("--seed", type=integer(limits.SEED), default=0,
                   help="seed for selecting calibration images (default 0)")
    p.add_argument("--batch", type=integer(limits.BATCH), default=16, help="images per calibration batch (default 16)")
    p.add_argument("--batch-size", type=integer(limits.BATCH), dest="batch", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"calibration method (default {DEFAULT_METHOD}, TensorRT's default)")
    p.add_argument("--percentile", type=number(limits.PERCENTILE), default=99.99,
                   help="percentile for --method percentile (99.99)")
    p.add_argument("--keep-fp", default=None, metavar="LAYERS",
                   help="comma-separated layers to keep in floating point, by torch module name or glob "
                        "(conv1,fc,layer4.*); 'none' quantizes every layer. Default: the first conv and the "
                        "last FC")
    p.add_argument("--placement", choices=PLACEMENTS, default="tensorrt",
                   help="Q/DQ form: tensorrt (default; Q/DQ on weighted-layer inputs and residual inputs) or "
                        "onnxruntime (Q/DQ around every op, so ORT runs QLinearConv/QLinearAdd)")
    p.add_argument("--val", default=None, metavar="DIR|SPEC", help="validation set for --sensitivity and "
                   "--accuracy-budget (labeled for top-1, else agreement with FP32)")
    p.add_argument("--val-size", type=integer(limits.COUNT), default=None, metavar="N",
                   help="validation images to use (all)")
    p.add_argument("--sensitivity", action="store_true",
                   help="rank layers by the loss from quantizing each one alone (table + sensitivity.json)")
    p.add_argument("--accuracy-budget", type=number(limits.POINTS), default=None, metavar="POINTS",
                   help="return layers to FP, most sensitive first, until the top-1 (or agreement) loss is "
                        "within POINTS (e.g. 0.3)")
    p.add_argument("--order", choices=("sensitivity", "gain-per-ms"), default="sensitivity",
                   help="with --accuracy-budget: layers go back to FP most sensitive first (default; reproducible) or "
                        "by accuracy gained per ms of FP time profiled on this host (gain-per-ms)")
    p.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                   help="with --accuracy-budget: the fraction of --val held out to judge the result on images "
                        "the fallback choice never saw (default 0.5, stratified by label, seeded; 0 = off)")
    p.add_argument("--test", default=None, metavar="DIR|SPEC",
                   help="with --accuracy-budget: a separate set to judge the result on (instead of --holdout)")
    p.add_argument("--cache-dir", default=None,
                   help="calibration cache folder (default: $EDGERES_CACHE/calibration)")
    p.add_argument("--threads", type=integer(limits.THREADS), default=None, help="ONNX Runtime threads for evaluation")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model.int8.onnx + .json)")
    p.add_argument("--json", action="store_true", help="print the artifact metadata as JSON")
    p.set_defaults(handler=_run_quantize)


def _preprocess_of(model: Any) -> Any:
    """The preprocessing the FP32 model was exported with (its sidecar), if recorded."""
    from edgeres.data import PreprocessSpec
    from edgeres.onnxutil import source_metadata

    spec = source_metadata(model).get("preprocess")
    return PreprocessSpec.from_dict(spec) if spec else None


def _run_quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeres.data import open_set
    from edgeres.data.split import DEFAULT_HOLDOUT
    from edgeres.quantize import quantize_onnx

    checks.at_least_one(calib_size=args.calib_size, batch=args.batch, val_size=args.val_size)
    checks.accuracy_budget(args.accuracy_budget)
    checks.analysis_needs_val(args.sensitivity, args.accuracy_budget, bool(args.val))
    checks.heldout(args.holdout, bool(args.test), args.accuracy_budget)
    model = Path(args.model)
    preprocess = _preprocess_of(model) if model.is_file() else None
    calib = open_set(args.calib, size=args.calib_size, seed=args.seed, preprocess=preprocess)
    val = open_set(args.val, size=args.val_size, preprocess=preprocess) if args.val else None
    test = open_set(args.test, preprocess=preprocess) if args.test else None
    holdout = DEFAULT_HOLDOUT if args.holdout is None else args.holdout
    artifact = quantize_onnx(model, calib, args.out, method=args.method, percentile=args.percentile,
                             keep_fp=keep_fp_list(args.keep_fp), cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                             batch_size=args.batch, placement=args.placement, val=val,
                             sensitivity=args.sensitivity, accuracy_budget=args.accuracy_budget,
                             threads=args.threads, test=test, holdout=holdout, order=args.order)
    q = artifact.metadata["quantization"]
    emit(args, artifact.metadata | {"path": str(artifact.path)},
          f"{artifact.path}  int8 ({q['quantized_layers']}/{q['layers']} layers, {q['placement']} placement, "
          f"{q['method']}; FP: {', '.join(q['keep_fp']) or 'none'}; calibration "
          f"{'cache hit' if q['calibration']['cache_hit'] else 'computed'})")
    return 0
