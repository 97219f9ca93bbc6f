"""``edgeres validate`` and ``edgeres bench``: accuracy and latency of one artifact."""

from __future__ import annotations

import argparse

from edgeres.cli.common import emit, integer
from edgeres.errors import UsageError

# --- validate ---------------------------------------------------------------------------------

def add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="accuracy of an artifact on labeled images, and agreement with a reference")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...)")
    p.add_argument("--val", required=True, help="image folder (ImageNet layout or flat), .npy/.npz file, or a "
                   "calibration spec name or .toml path")
    p.add_argument("--reference", default=None, help="the FP32 artifact to compare with on the same inputs")
    p.add_argument("--batch-size", type=integer, default=32, help="images per batch (default 32)")
    p.add_argument("--limit", type=integer, default=None, help="use this many images (a seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--threads", type=integer, default=None, help="inference threads (default: backend's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from edgeres.evaluate import validate

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    v = validate(args.artifact, args.val, reference=args.reference, batch_size=args.batch_size, size=args.limit,
                 seed=args.seed, threads=args.threads, progress=not args.json)
    info = v.runner
    text = (f"validate {v.artifact} ({info.get('backend')}, {info.get('precision')}) on "
            f"{v.dataset.get('name') or v.dataset.get('source') or '?'}"
            + (f"\nreference: {v.reference}" if v.reference else "") + "\n" + v.accuracy.format()
            + "".join(f"\nnote: {n}" for n in v.notes))
    emit(args, v.to_dict(), text)
    return 0


# --- bench ------------------------------------------------------------------------------------

def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency and throughput of an artifact (percentiles, like trtexec)")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...)")
    p.add_argument("--batch", default=None, help="comma-separated batch sizes, e.g. 1,8 (default 1)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=integer, default=None, help="timed runs per batch size (default 50)")
    budget.add_argument("--seconds", type=float, default=None, help="time budget per batch size instead of a count")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--threads", type=integer, default=None, help="inference threads (default: backend's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from edgeres.evaluate import bench, format_bench

    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {args.iterations}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    payload = bench(args.artifact, args.batch, iterations=args.iterations, seconds=args.seconds,
                    warmup=args.warmup, threads=args.threads)
    emit(args, {**payload, "results": [r.to_dict() for r in payload["results"]]}, format_bench(payload))
    return 0
