"""``edgeres validate`` and ``edgeres bench``: accuracy and latency of one artifact."""

from __future__ import annotations

import argparse
import sys

from edgeres import limits
from edgeres.argtypes import checked_by, integer, number
from edgeres.cli.common import emit
from edgeres.errors import BUSY, OVER_BUDGET, UsageError
from edgeres.limits import parse_batches
from edgeres.validate.latency import DEFAULT_MIN_RUNS, DEFAULT_MIN_SECONDS

# --- validate ---------------------------------------------------------------------------------

def add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="accuracy of an artifact on labeled images, and agreement with a reference")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...)")
    p.add_argument("--val", required=True, help="image folder (ImageNet layout or flat), .npy/.npz file, or a "
                   "calibration spec name or .toml path")
    p.add_argument("--reference", default=None, help="the FP32 artifact to compare with on the same inputs")
    p.add_argument("--batch", type=integer(limits.BATCH), default=32, help="images per inference batch (default 32)")
    p.add_argument("--batch-size", type=integer(limits.BATCH), dest="batch", help=argparse.SUPPRESS)  # the old spelling
    p.add_argument("--limit", type=integer(limits.COUNT), default=None, help="use this many images (a seeded sample)")
    p.add_argument("--seed", type=integer(limits.SEED), default=0, help="seed of the sample (default 0)")
    p.add_argument("--threads", type=integer(limits.THREADS), default=None,
                   help="inference threads (default: backend's)")
    p.add_argument("--max-drop", type=number(limits.POINTS), default=None, metavar="POINTS",
                   help="CI gate: exit 3 when the artifact loses more than this many points against --reference "
                        "(top-1 drop with labels, else loss of top-1 agreement)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from edgeres.evaluate import validate

    if args.max_drop is not None and args.reference is None:
        raise UsageError("--max-drop needs --reference (the FP32 artifact the drop is measured against)")
    v = validate(args.artifact, args.val, reference=args.reference, batch_size=args.batch, size=args.limit,
                 seed=args.seed, threads=args.threads, progress=not args.json)
    info = v.runner
    text = (f"validate {v.artifact} ({info.get('backend')}, {info.get('precision')}) on "
            f"{v.dataset.get('name') or v.dataset.get('source') or '?'}"
            + (f"\nreference: {v.reference}" if v.reference else "") + "\n" + v.accuracy.format()
            + (f"\n{v.loss.what}: {v.loss.span() if args.max_drop is None else v.loss.explain(args.max_drop)}"
               if v.loss else "")
            + "".join(f"\nnote: {n}" for n in v.notes))
    over = v.loss is not None and args.max_drop is not None and v.loss.loss > args.max_drop + 1e-9
    emit(args, {**v.to_dict(), "max_drop": args.max_drop, "over_budget": over}, text)
    if over and v.loss is not None:
        print(f"edgeres validate: over budget: {v.loss.what} {v.loss.loss:+.2f} pt > --max-drop {args.max_drop:g}",
              file=sys.stderr)
        return OVER_BUDGET
    return 0


# --- bench ------------------------------------------------------------------------------------

def add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency and throughput of an artifact (percentiles, like trtexec)")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...), a "
                                    "bundle, or a model edgeres did not write: an OpenVINO IR (.xml + .bin) or ONNX")
    p.add_argument("--backend", choices=("openvino", "onnxruntime"), default=None,
                   help="runtime for a model edgeres did not write (default: openvino for .xml, onnxruntime for "
                        ".onnx); edgeres artifacts run on the backend they were built for")
    p.add_argument("--batch", type=checked_by(parse_batches), default=None,
                   help="comma-separated batch sizes, e.g. 1,8 (default 1)")
    p.add_argument("--min-runs", "--iterations", dest="min_runs", type=integer(limits.COUNT), default=DEFAULT_MIN_RUNS,
                   help=f"time at least this many runs per batch size (default {DEFAULT_MIN_RUNS})...")
    p.add_argument("--min-seconds", "--seconds", dest="min_seconds", type=number(limits.WAIT_SECONDS), default=DEFAULT_MIN_SECONDS,
                   help=f"...and for at least this many seconds (default {DEFAULT_MIN_SECONDS:g}); both must be reached")
    p.add_argument("--no-throughput", dest="throughput", action="store_false",
                   help="skip the throughput measurement (the backend's async/throughput mode)")
    p.add_argument("--wait-quiet", type=number(limits.WAIT_SECONDS), default=0.0, metavar="SECONDS",
                   help="first wait up to SECONDS for other processes to leave the CPU alone")
    p.add_argument("--retries", type=integer(limits.RETRIES), default=0,
                   help="measure again up to N times while the machine is busy; the quietest is kept")
    p.add_argument("--fail-busy", action="store_true",
                   help=f"CI gate: exit {BUSY} when the figure kept was still timed on a busy machine "
                        "(the result is printed first)")
    p.add_argument("--warmup", type=integer(limits.WARMUP), default=10, help="untimed runs first (default 10)")
    p.add_argument("--threads", type=integer(limits.THREADS), default=None,
                   help="inference threads (default: backend's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from edgeres.evaluate import bench, format_bench

    payload = bench(args.artifact, args.batch, min_runs=args.min_runs, min_seconds=args.min_seconds,
                    warmup=args.warmup, threads=args.threads, throughput=args.throughput,
                    wait_quiet=args.wait_quiet, retries=args.retries, backend=args.backend)
    tput = payload["throughput"]
    emit(args, {**payload, "results": [r.to_dict() for r in payload["results"]],
                "throughput": tput.to_dict() if tput else None}, format_bench(payload))
    if args.fail_busy and payload["busy"]:
        print(f"edgeres bench: busy machine: the figure kept (attempt {payload['kept_attempt']} of "
              f"{payload['attempts']}) was timed while other processes used the CPU (--fail-busy)", file=sys.stderr)
        return BUSY
    return 0
