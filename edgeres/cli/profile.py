"""``edgeres profile``: per-layer time of an artifact on this target, grouped by stage, and
(with ``--compare`` and ``--sensitivity``) what each layer costs in accuracy and in time."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgeres import limits
from edgeres.argtypes import integer
from edgeres.cli.common import emit
from edgeres.errors import EdgeresError


def add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profile", help="per-layer time on the target, with executed precision and kernel, by stage",
        description="Run an artifact under its runtime's own profiler (ONNX Runtime profiling, OpenVINO PERF_COUNT) "
                    "and print the time of each stage (conv1, layer1..layer4, fc) and, with --layers, of each layer.")
    p.add_argument("artifact", help="artifact with its sidecar (model.onnx, model.int8.onnx, model.xml)")
    p.add_argument("--batch", type=integer(limits.BATCH), default=1, help="batch size (default 1)")
    p.add_argument("--runs", type=integer(limits.COUNT), default=20, help="timed runs after one warm-up (default 20)")
    p.add_argument("--threads", type=integer(limits.THREADS), default=None, help="inference threads (default: the backend's)")
    p.add_argument("--layers", action="store_true", help="also print every layer (module, op, kernel, precision)")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a bar plot of the stages")
    p.add_argument("--compare", default=None, metavar="FP32_ARTIFACT",
                   help="the FP32 artifact of the same network: adds what each layer costs to keep in FP here")
    p.add_argument("--sensitivity", default=None, metavar="JSON",
                   help="sensitivity.json from `edgeres quantize --sensitivity`: adds what each layer costs in "
                        "accuracy to quantize (needs --compare)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_profile)


def _read_sensitivity(path: str) -> list[dict[str, Any]]:
    try:
        layers = json.loads(Path(path).read_text())["layers"]
        return [{"layer": str(r["layer"]), "loss": float(r["loss"])} for r in layers]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgeresError(f"{path} is not a sensitivity.json from `edgeres quantize --sensitivity` "
                           f"({type(exc).__name__})") from None


def _run_profile(args: argparse.Namespace) -> int:
    from edgeres.report.profile import format_profile, tradeoff_table, write_profile_plot
    from edgeres.validate.layers import WEIGHTED_OPS, ProfiledLayer, cost_of_fp, join_sensitivity, profile_artifact

    if args.sensitivity and not args.compare:
        raise EdgeresError("--sensitivity needs --compare FP32_ARTIFACT (the FP cost of a layer is FP32 minus INT8 "
                           "time)")
    sensitivity = _read_sensitivity(args.sensitivity) if args.sensitivity else None
    doc = profile_artifact(args.artifact, batch=args.batch, runs=args.runs, threads=args.threads)
    text = format_profile(doc, layers=args.layers)
    if args.compare:
        fp32 = profile_artifact(args.compare, batch=args.batch, runs=args.runs, threads=args.threads)
        mine = [ProfiledLayer(**t) for t in doc["layers"]]
        theirs = [ProfiledLayer(**t) for t in fp32["layers"]]
        modules = ([r["layer"] for r in sensitivity] if sensitivity else
                   list(dict.fromkeys(t.module for t in theirs if t.op in WEIGHTED_OPS and t.module)))
        cost = cost_of_fp(theirs, mine, modules)
        rows = join_sensitivity(sensitivity or [{"layer": m, "loss": 0.0} for m in modules], cost)
        doc["compare"] = {"fp32": fp32["artifact"], "fp32_total_ms": fp32["total_ms"],
                          "layers": [r.to_dict() for r in rows]}
        text += (f"\n\nkeeping each layer in FP on this target ({fp32['artifact']} per-layer sum "
                 f"{fp32['total_ms']:.3f} ms):\n" + tradeoff_table(rows, with_loss=sensitivity is not None))
    if args.plot:
        why = write_profile_plot(doc, Path(args.plot))
        doc["plot"] = None if why else args.plot
        if why:
            print(f"no plot: {why}", file=sys.stderr)
    emit(args, doc, text)
    return 0
