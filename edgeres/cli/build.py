"""``edgeres build``: the whole pipeline for one target."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from edgeres import limits
from edgeres.argtypes import checked_by, integer, number
from edgeres.cli.common import batch_profile, emit, keep_fp_list
from edgeres.errors import OVER_BUDGET

# --- build (the whole pipeline for one target) -------------------------------------------------

def _csv(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="model -> ONNX -> INT8 -> engines (or a device kit) -> report -> bundle")
    p.add_argument("--target", required=True, help="target name, alias or TOML file (see: edgeres targets)")
    add_build_flags(p)
    p.add_argument("--fail-over-budget", action="store_true",
                   help="CI gate: exit 3 when a built precision loses more than the accuracy budget")
    p.add_argument("--out", default=None, help="output folder (default: out/resnetDEPTH-TARGET)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_run_build)


def add_build_flags(p: argparse.ArgumentParser) -> None:
    """What to build: the flags ``edgeres build`` and ``edgeres fleet run`` share."""
    from edgeres.quantize.calibrate import DEFAULT_METHOD, METHODS

    p.add_argument("--depth", type=integer(), required=True, help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--weights", default=None,
                   help="checkpoint (.pth, torchvision layout) or a trained-model folder with model.pth + model.json;"
                        " default: random weights (fidelity-only numbers)")
    p.add_argument("--num-classes", type=integer(limits.NUM_CLASSES), default=None,
                   help="classes (default: from the checkpoint, else 1000)")
    p.add_argument("--input-size", type=integer(limits.INPUT_SIZE), default=None,
                   help="square input resolution (default: the model's, else 224)")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions, or 'all' (default: the target's defaults); fp32 is always "
                        "built as the reference")
    p.add_argument("--calib", default=None, help="calibration images: folder, .npy/.npz, or spec name/path")
    p.add_argument("--calib-size", type=integer(limits.COUNT), default=None, help="calibration images to use")
    p.add_argument("--val", default=None, help="validation images (labeled for top-1): folder, .npy/.npz, spec")
    p.add_argument("--val-size", type=integer(limits.COUNT), default=None, help="validation images to use")
    p.add_argument("--batch-profile", type=checked_by(batch_profile), default=None, help="MIN:OPT:MAX batch (default: the target's)")
    p.add_argument("--accuracy-budget", type=number(limits.POINTS), default=None,
                   help="points of top-1 (or of agreement without labels) INT8 may lose; layers fall back to FP "
                        "until it holds (default: the target's budget, used only to recommend a precision)")
    p.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                   help="with --accuracy-budget: fraction of --val held out to judge INT8 on images the fallback "
                        "choice never saw (default 0.5; 0 = off)")
    p.add_argument("--test", default=None, help="with --accuracy-budget: a separate set to judge INT8 on")
    p.add_argument("--method", default=None, choices=METHODS,
                   help=f"calibration method of the Q/DQ INT8 ONNX (default {DEFAULT_METHOD}; cpu and TensorRT "
                        "targets)")
    p.add_argument("--keep-fp", default=None, help="layers to keep in floating point, e.g. conv1,fc; 'none' "
                   "quantizes every layer (default: the first conv and the last FC)")
    p.add_argument("--labels", default=None, help="class names, one per line, in the checkpoint's class order "
                   "(default: the checkpoint folder's model.json, else the class folders of --val)")
    p.add_argument("--bench-seconds", type=number(limits.SECONDS), default=2.0,
                   help="time each latency and throughput figure for at least this long (default 2)")
    p.add_argument("--bench-runs", type=integer(limits.COUNT), default=50,
                   help="...and latency for at least this many runs (default 50; p99 is shown from 100)")
    p.add_argument("--rebench", action="store_true",
                   help="measure every precision again without rebuilding (reused stages otherwise keep their timings)")
    p.add_argument("--targets-dir", default=None, help="extra folder of target TOML files")


def build_request(args: argparse.Namespace, target: str, out: str | None) -> Any:
    """The ``build_request.BuildRequest`` that the flags of ``add_build_flags`` ask for."""
    from pathlib import Path

    from edgeres.build_request import BuildRequest

    return BuildRequest(
        target=target, depth=args.depth, weights=Path(args.weights) if args.weights else None,
        out_dir=Path(out) if out else None,
        num_classes=args.num_classes, input_size=args.input_size, precisions=_csv(args.precision),
        calib=args.calib, calib_size=args.calib_size, val=args.val, val_size=args.val_size,
        batch_profile=args.batch_profile, accuracy_budget=args.accuracy_budget, method=args.method,
        holdout=args.holdout, test=args.test,
        keep_fp=keep_fp_list(args.keep_fp), bench_seconds=args.bench_seconds,
        bench_runs=args.bench_runs, rebench=args.rebench,
        targets_dir=Path(args.targets_dir) if args.targets_dir else None,
        labels=Path(args.labels) if args.labels else None, fail_over_budget=getattr(args, "fail_over_budget", False),
    )


def _run_build(args: argparse.Namespace) -> int:
    from edgeres.pipeline import build
    from edgeres.report import summary_table

    req = build_request(args, args.target, args.out)
    start = time.perf_counter()
    result = build(req)
    wall = time.perf_counter() - start
    lines = [summary_table(result.rows)] if result.rows else []
    if result.recommended:
        lines.append(f"recommended: {result.recommended} on {result.target.name}")
    if result.kit:
        lines.append(f"device kit: {result.kit} (+ .tar.gz); on the device run: edgeres kit build {result.kit.name}")
    lines.append(f"report: {result.report_dir / 'report.md'}")
    if result.bundle:
        lines.append(f"bundle: {result.bundle} (+ .tar.gz)")
    reused = sum(1 for s in result.stages if s["reused"])
    lines.append(f"build took {wall:.1f} s wall clock ({sum(s['seconds'] for s in result.stages):.1f} s in its "
                 f"{len(result.stages)} stages, {reused} reused from an earlier run)")
    emit(args, {**result.to_dict(), "wall_seconds": round(wall, 2)}, "\n".join(lines))
    if req.fail_over_budget and result.over_budget:
        print(f"edgeres build: over budget: {', '.join(result.over_budget)} lost more than {result.budget:g} points "
              "against FP32", file=sys.stderr)
        return OVER_BUDGET
    return 0
