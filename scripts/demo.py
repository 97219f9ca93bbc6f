"""The main job, end to end on this machine (`make demo`).

Trains (or reuses) the demo ResNet-18 and ResNet-50 on real handwritten digits, builds each
for the `intel-cpu` (OpenVINO) and `cpu` (ONNX Runtime) targets, validated on `demo-c` (the
10,770 held-out digits under corruptions), writes a device kit for `jetson` (validated on the
359 clean held-out digits, of which the kit carries a slice), merges the
reports into one comparison, and ends with what INT8 costs each model on each target: the
top-1 drop with its 95% paired interval. Every step is the public CLI, so the output is
exactly what a user sees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgeres.cli import main as edgeres
from edgeres.data import ensure_demo_model
from edgeres.table import format_table

TARGETS = ("intel-cpu", "cpu", "jetson")
HOST_TARGETS = TARGETS[:2]
VAL = "demo-c"
GOAL_POINTS = 0.3  # the upper end of the interval to reach for the default INT8 build of ResNet-50


def int8_rows(out: Path, depths: list[int]) -> list[tuple[str, ...]]:
    """One line per (model, host target, non-FP32 precision): top-1, drop and its 95% interval,
    agreement and both cosines, read from the builds' report.json."""
    lines = []
    for depth in depths:
        for target in HOST_TARGETS:
            report = json.loads((out / f"resnet{depth}" / target / "report.json").read_text(encoding="utf-8"))
            rows = report["rows"]
            fp32 = next(r for r in rows if r["precision"] == "fp32")
            for row in rows:
                if row["precision"] == "fp32":
                    continue
                interval: dict[str, Any] = row.get("loss") or {}  # the drop and its paired 95% interval
                span = f"[{interval['low']:+.2f}, {interval['high']:+.2f}]" if interval else "-"
                lines.append((f"ResNet-{depth}", target, row["precision"], f"{100 * fp32['top1']:.2f}%",
                              f"{100 * row['top1']:.2f}%", f"{100 * row['top1_drop']:+.2f}", span,
                              f"{interval.get('losses', '-')}/{interval.get('gains', '-')}",
                              f"{100 * row['agreement']:.2f}%", f"{row['cosine']:.6f}",
                              f"{row['centred_cosine']:.4f}"))
    return lines


def int8_table(out: Path, depths: list[int], n_images: int) -> str:
    headers = ["model", "target", "precision", "FP32 top-1", "top-1", "drop (pt)", "95% interval (pt)",
               "lost/won", "agreement", "cosine (plain)", "cosine (centred)"]
    text = format_table(headers, int8_rows(out, depths), align="lllrrrrrrrr")
    return (text + f"\n{VAL}: {n_images:,} images. drop = FP32 top-1 minus this precision's, in points; interval: "
            "Tango's score interval on the paired predictions (the same images under both); lost/won: images FP32 "
            "got right and this precision wrong, and the reverse; cosine (centred): logits minus their per-class "
            "mean over the images, then cosine.")


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo-out", help="where builds and the merged report go")
    parser.add_argument("--depths", default="18,50", help="demo model depths, comma-separated (default 18,50)")
    args = parser.parse_args()
    out = Path(args.out)
    depths = [int(d) for d in args.depths.split(",") if d.strip()]

    for depth in depths:
        print(f"== demo model: ResNet-{depth} trained on scikit-learn's handwritten digits", flush=True)
        model_dir = ensure_demo_model(depth=depth)
        print(f"   {model_dir}\n", flush=True)
        for target in TARGETS:
            where = out / f"resnet{depth}" / target
            val = VAL if target in HOST_TARGETS else "demo-val"  # a kit carries a slice of it: the small set will do
            print(f"== edgeres build --target {target} --depth {depth} --weights {model_dir} --val {val}", flush=True)
            code = edgeres(["build", "--target", target, "--depth", str(depth), "--weights", str(model_dir),
                            "--calib", "demo", "--val", val, "--precision", "all", "--out", str(where)])
            if code:
                return code
            print(flush=True)

    print("== edgeres report (every model and target side by side)", flush=True)
    code = edgeres(["report", *(str(out / f"resnet{d}" / t) for d in depths for t in HOST_TARGETS),
                    "--out", str(out / "report")])
    if code:
        return code
    first = json.loads((out / f"resnet{depths[0]}" / HOST_TARGETS[0] / "report.json").read_text(encoding="utf-8"))
    n_images = (first["rows"][0].get("extra") or {}).get("n_images", 0)
    print(f"\n== what INT8 costs on {VAL} (goal: upper end <= {GOAL_POINTS} pt for ResNet-50 INT8)", flush=True)
    print(int8_table(out, depths, n_images), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
