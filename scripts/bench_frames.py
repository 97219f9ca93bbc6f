#!/usr/bin/env python3
"""Camera frame to top-k: preprocessing on the host vs inside the engine, per bundle, in one run.

For each bundle and real image (scikit-image's photographs and the demo digits), the host resizes
and center-crops once (uint8 HWC, as a camera pipeline delivers it), then three things are timed,
interleaved round by round so a noisy neighbour hits them alike (batch 1):

  engine only     float32 NCHW already preprocessed -> logits          (what `edgeres bench` reports)
  e2e, host       uint8 frame -> PreprocessSpec.normalize -> engine -> softmax, top-k
  e2e, fused      uint8 frame -> engine with the frame input (edgeres.bundle.frames) -> softmax, top-k

and the fused path is checked against the host path on every image (top-1 agreement, max |logit
difference|), for RGB and BGR frames. Writes OUT/bench_frames.json and prints a table; the load
average is recorded before and after (a busy machine inflates every figure).

    python scripts/bench_frames.py demo-out/intel-cpu/bundle demo-out/cpu/bundle --out bench-out
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeres.bundle import load_bundle
from edgeres.bundle.frames import load_frame_runner
from edgeres.hostinfo import cpu_name
from edgeres.table import format_table
from edgeres.validate.frames import TIMED, agreement, time_paths


def real_images(n_digits: int) -> list[Path]:
    from edgeres.data import demo_digits_dir
    from edgeres.data.demo import demo_photos_dir

    digits = sorted(demo_digits_dir("val").glob("*/*.png"))
    step = max(1, len(digits) // max(1, n_digits))
    photos = sorted(p for p in demo_photos_dir().iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return photos + digits[::step][:n_digits]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+", help="bundle folders or .tar.gz (OpenVINO and ONNX Runtime)")
    p.add_argument("--out", default="bench-out", help="folder for bench_frames.json (default bench-out)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--per-round", type=int, default=25)
    p.add_argument("--digits", type=int, default=30, help="demo digits checked besides the photographs")
    p.add_argument("--threads", type=int, default=None, help="inference threads (default: the bundle's)")
    args = p.parse_args()

    from PIL import Image

    images = real_images(args.digits)
    load_before = os.getloadavg()
    results = []
    for path in args.bundles:
        with load_bundle(path) as bundle:
            runner = bundle.load_runner(**({"threads": args.threads} if args.threads else {}))
            spec = bundle.preprocess
            frames = np.stack([spec.crop_frame(Image.open(im)) for im in images])
            print(f"{path}: checking {len(frames)} images, then timing", file=sys.stderr)
            fused = {order: load_frame_runner(bundle, order, threads=args.threads) for order in ("RGB", "BGR")}
            results.append({
                "bundle": str(path), "target": bundle.target, "backend": bundle.backend, "precision": bundle.precision,
                "agreement": {o: agreement(runner, f, frames, spec, o) for o, f in fused.items()},
                "latency_ms": time_paths(runner, fused["RGB"], frames[0], spec, rounds=args.rounds,
                                         per_round=args.per_round)})
    doc = {"cpu": cpu_name(), "cpus_visible": len(os.sched_getaffinity(0)), "threads": args.threads or "bundle's own",
           "batch": 1, "runs_per_case": args.rounds * args.per_round, "load_before": load_before,
           "load_after": os.getloadavg(),
           "timed": TIMED,
           "results": results}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_frames.json").write_text(json.dumps(doc, indent=2) + "\n")

    rows = []
    for r in results:
        lat, agr = r["latency_ms"], r["agreement"]
        engine = lat["engine only"]["p50_ms"]
        rows.append((r["target"], r["backend"], r["precision"],
                     f"{agr['RGB']['top1_agreement']:.0%} / {agr['BGR']['top1_agreement']:.0%}",
                     f"{max(agr['RGB']['max_abs_logit_diff'], agr['BGR']['max_abs_logit_diff']):.2g}",
                     f"{engine:.3f}", f"{lat['e2e host']['p50_ms']:.3f}", f"{lat['e2e fused']['p50_ms']:.3f}",
                     f"{lat['e2e fused']['p50_ms'] / engine:.2f}x", f"{lat['e2e host']['p50_ms'] / engine:.2f}x"))
    print(format_table(["target", "backend", "precision", "top-1 agree RGB/BGR", "max |dlogit|", "engine p50 ms",
                        "e2e host p50", "e2e fused p50", "fused/engine", "host/engine"], rows,
                       align="lllrrrrrrr"))
    print(f"batch 1, {doc['runs_per_case']} runs per case, threads: {doc['threads']}; {doc['timed']}\n"
          f"cpu: {doc['cpu']}, load average before {load_before[0]:.2f}, after {doc['load_after'][0]:.2f}\n"
          f"written to {out / 'bench_frames.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
