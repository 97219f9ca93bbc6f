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
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgeres.bundle import load_bundle
from edgeres.bundle.frames import load_frame_runner
from edgeres.bundle.runtime import softmax
from edgeres.hostinfo import cpu_name
from edgeres.table import format_table
from edgeres.validate.latency import summarize_times


def real_images(n_digits: int) -> list[Path]:
    from edgeres.data import demo_digits_dir
    from edgeres.data.demo import demo_photos_dir

    digits = sorted(demo_digits_dir("val").glob("*/*.png"))
    step = max(1, len(digits) // max(1, n_digits))
    photos = sorted(p for p in demo_photos_dir().iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    return photos + digits[::step][:n_digits]


def top_k(logits: np.ndarray, k: int = 5) -> np.ndarray:
    return np.argsort(-softmax(logits), axis=-1, kind="stable")[:, :k]


def agreement(bundle: Any, runner: Any, frames: list[np.ndarray], threads: int | None) -> dict[str, Any]:
    spec = bundle.preprocess
    out: dict[str, Any] = {}
    for order in ("RGB", "BGR"):
        fused = load_frame_runner(bundle, order, threads=threads)
        same, diff = 0, 0.0
        for f in frames:
            host = runner(spec.normalize(f)[None])
            mine = fused((f if order == "RGB" else f[..., ::-1])[None].copy())
            same += int(host.argmax() == mine.argmax())
            diff = max(diff, float(np.abs(host - mine).max()))
        out[order] = {"images": len(frames), "top1_agreement": same / len(frames), "max_abs_logit_diff": diff}
    return out


def timings(bundle: Any, runner: Any, frame: np.ndarray, rounds: int, per_round: int,
            threads: int | None) -> dict[str, dict[str, float]]:
    spec = bundle.preprocess
    fused = load_frame_runner(bundle, "RGB", threads=threads)
    x = spec.normalize(frame)[None]
    f = frame[None].copy()
    cases = {
        "engine only": lambda: runner(x),
        "e2e, host": lambda: top_k(runner(spec.normalize(f))),
        "e2e, fused": lambda: top_k(fused(f)),
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        for _ in range(10):
            fn()
    names = list(cases)
    for r in range(rounds):
        for name in names[r % 3:] + names[:r % 3]:  # rotate the order every round
            for _ in range(per_round):
                t0 = time.perf_counter()
                cases[name]()
                times[name].append((time.perf_counter() - t0) * 1000.0)
    return {name: summarize_times(t, 1) for name, t in times.items()}


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
            frames = [bundle.preprocess.crop_frame(Image.open(im)) for im in images]
            print(f"{path}: checking {len(frames)} images, then timing", file=sys.stderr)
            results.append({"bundle": str(path), "target": bundle.target, "backend": bundle.backend,
                            "precision": bundle.precision, "agreement": agreement(bundle, runner, frames, args.threads),
                            "latency_ms": timings(bundle, runner, frames[0], args.rounds, args.per_round, args.threads)})
    doc = {"cpu": cpu_name(), "cpus_visible": len(os.sched_getaffinity(0)), "threads": args.threads or "bundle's own",
           "batch": 1, "runs_per_case": args.rounds * args.per_round, "load_before": load_before,
           "load_after": os.getloadavg(),
           "timed": "host wall clock per call, after 10 warm-up calls; decode, resize and crop are not timed",
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
                     f"{engine:.3f}", f"{lat['e2e, host']['p50_ms']:.3f}", f"{lat['e2e, fused']['p50_ms']:.3f}",
                     f"{lat['e2e, fused']['p50_ms'] / engine:.2f}x", f"{lat['e2e, host']['p50_ms'] / engine:.2f}x"))
    print(format_table(["target", "backend", "precision", "top-1 agree RGB/BGR", "max |dlogit|", "engine p50 ms",
                        "e2e host p50", "e2e fused p50", "fused/engine", "host/engine"], rows,
                       align="lllrrrrrrr"))
    print(f"batch 1, {doc['runs_per_case']} runs per case, threads: {doc['threads']}; {doc['timed']}\n"
          f"cpu: {doc['cpu']}, load average before {load_before[0]:.2f}, after {doc['load_after'][0]:.2f}\n"
          f"written to {out / 'bench_frames.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
