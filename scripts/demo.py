"""The main job, end to end on this machine (`make demo`).

Trains (or reuses) the demo ResNet-18 on real handwritten digits, builds it for the
`intel-cpu` (OpenVINO) and `cpu` (ONNX Runtime) targets, writes a device kit for
`jetson`, and merges the reports into one comparison. Every step is the public CLI, so
the output is exactly what a user sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgeres.cli import main as edgeres
from edgeres.data import ensure_demo_model

TARGETS = ("intel-cpu", "cpu", "jetson")


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo-out", help="where builds and the merged report go")
    parser.add_argument("--depth", type=int, default=18, help="demo model depth (default 18)")
    args = parser.parse_args()
    out = Path(args.out)

    print(f"== demo model: ResNet-{args.depth} trained on scikit-learn's handwritten digits", flush=True)
    model_dir = ensure_demo_model(depth=args.depth)
    print(f"   {model_dir}\n", flush=True)

    for target in TARGETS:
        print(f"== edgeres build --target {target} --depth {args.depth} --weights {model_dir}", flush=True)
        code = edgeres(["build", "--target", target, "--depth", str(args.depth), "--weights", str(model_dir),
                        "--calib", "demo", "--val", "demo-val", "--precision", "all", "--out", str(out / target)])
        if code:
            return code
        print(flush=True)

    print("== edgeres report (all targets side by side)", flush=True)
    return edgeres(["report", *(str(out / t) for t in TARGETS[:2]), "--out", str(out / "report")])


if __name__ == "__main__":
    sys.exit(run())
