"""``edgeres quantize``: arguments and the handler (registered by ``edgeres.cli``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from edgeres.quantize.calibrate import DEFAULT_METHOD, METHODS
    from edgeres.quantize.qdq import PLACEMENTS

    p = sub.add_parser(
        "quantize", help="INT8 post-training quantization of an ONNX model",
        description="Calibrate an FP32 ONNX on your images and write an explicit symmetric Q/DQ INT8 ONNX "
                    "(TensorRT explicit quantization; ONNX Runtime INT8 kernels with --placement onnxruntime).")
    p.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model (e.g. from edgeres export)")
    p.add_argument("--calib", required=True, metavar="DIR|SPEC",
                   help="calibration images: a folder, .npy/.npz, or a calibration spec name/path (e.g. demo)")
    p.add_argument("--calib-size", type=int, default=512, metavar="N",
                   help="calibration images to use (default 512; fewer if the set is smaller)")
    p.add_argument("--seed", type=int, default=0, help="seed for selecting calibration images (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="calibration batch size (default 16)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"calibration method (default {DEFAULT_METHOD}, TensorRT's default)")
    p.add_argument("--percentile", type=float, default=99.99, help="percentile for --method percentile (99.99)")
    p.add_argument("--keep-fp", default=None, metavar="LAYERS",
                   help="comma-separated layers to keep in floating point, by torch module name or glob "
                        "(conv1,fc,layer4.*); 'none' quantizes every layer. Default: the first conv and the "
                        "last FC")
    p.add_argument("--placement", choices=PLACEMENTS, default="tensorrt",
                   help="Q/DQ form: tensorrt (default; Q/DQ on weighted-layer inputs and residual inputs) or "
                        "onnxruntime (Q/DQ around every op, so ORT runs QLinearConv/QLinearAdd)")
    p.add_argument("--val", default=None, metavar="DIR|SPEC", help="validation set for --sensitivity and "
                   "--accuracy-budget (labeled for top-1, else agreement with FP32)")
    p.add_argument("--val-size", type=int, default=None, metavar="N", help="validation images to use (all)")
    p.add_argument("--sensitivity", action="store_true",
                   help="rank layers by the loss from quantizing each one alone (table + sensitivity.json)")
    p.add_argument("--accuracy-budget", type=float, default=None, metavar="POINTS",
                   help="return layers to FP, most sensitive first, until the top-1 (or agreement) loss is "
                        "within POINTS (e.g. 0.3)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="calibration cache folder (default: $EDGERES_CACHE/calibration)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for evaluation")
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (model.int8.onnx + .json)")
    p.add_argument("--json", action="store_true", help="print the artifact metadata as JSON")
    return p


def parse_keep_fp(text: str | None) -> list[str] | None:
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def _preprocess_of(model: Path) -> Any:
    """The preprocessing the FP32 model was exported with (its sidecar), if recorded."""
    from edgeres.backends.base import Artifact
    from edgeres.data import PreprocessSpec
    from edgeres.fileio import read_json

    sidecar = Artifact.sidecar_of(model)
    if sidecar.is_file():
        try:
            spec = read_json(sidecar).get("preprocess")
        except ValueError:
            spec = None
        if spec:
            return PreprocessSpec.from_dict(spec)
    return None


def run(args: argparse.Namespace) -> int:
    from edgeres.data import open_set
    from edgeres.errors import UsageError
    from edgeres.quantize import quantize_onnx

    if args.calib_size < 1:
        raise UsageError(f"--calib-size must be at least 1, got {args.calib_size}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if (args.sensitivity or args.accuracy_budget is not None) and not args.val:
        raise UsageError("--sensitivity and --accuracy-budget need --val DIR|spec")
    model = Path(args.model)
    preprocess = _preprocess_of(model) if model.is_file() else None
    calib = open_set(args.calib, size=args.calib_size, seed=args.seed, preprocess=preprocess)
    val = open_set(args.val, size=args.val_size, preprocess=preprocess) if args.val else None
    artifact = quantize_onnx(model, calib, args.out, method=args.method, percentile=args.percentile,
                             keep_fp=parse_keep_fp(args.keep_fp), cache_dir=args.cache_dir,
                             batch_size=args.batch_size, placement=args.placement, val=val,
                             sensitivity=args.sensitivity, accuracy_budget=args.accuracy_budget,
                             threads=args.threads)
    if args.json:
        print(json.dumps(artifact.metadata | {"path": str(artifact.path)}, indent=2, default=str))
    else:
        q = artifact.metadata["quantization"]
        print(f"{artifact.path}  int8 ({q['quantized_layers']}/{q['layers']} layers, {q['placement']} placement, "
              f"{q['method']}; FP: {', '.join(q['keep_fp']) or 'none'}; calibration "
              f"{'cache hit' if q['calibration']['cache_hit'] else 'computed'})")
    return 0
