"""``edgeres kit``: device build kits for TensorRT targets."""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any

from edgeres import limits
from edgeres.argtypes import checked_by, integer, number
from edgeres.cli.common import emit
from edgeres.cli.kit_lint import add_kit_lint
from edgeres.limits import parse_batches
from edgeres.table import format_table

# --- kit (device build kits for TensorRT targets) ---------------------------------------------

def add_kit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kit", help="device build kits: build, validate and benchmark TensorRT engines on the device")
    ksub = p.add_subparsers(dest="kit_command", metavar="KIT_COMMAND")
    ksub.required = True
    b = ksub.add_parser("build", help="on the NVIDIA device: build the kit's engines, validate, benchmark, report")
    b.add_argument("kit", help="the kit folder or its .tar.gz")
    b.add_argument("--precision", default=None,
                   help="comma-separated subset of the kit's precisions (default: all of them)")
    b.add_argument("--out", default=None, help="where engines and kit-report.json go (default: KIT/engines)")
    b.add_argument("--batch", type=checked_by(parse_batches), default=None,
                   help="batch sizes to time, e.g. 1,8 (default: 1, opt and max)")
    b.add_argument("--batch-sizes", type=checked_by(parse_batches), dest="batch",
                   help=argparse.SUPPRESS)  # the old spelling, as bench's --batch
    b.add_argument("--iterations", "--min-runs", dest="iterations", type=integer(limits.COUNT), default=100,
                   help="time at least this many runs per batch size (default 100)...")
    b.add_argument("--min-seconds", type=number(limits.WAIT_SECONDS), default=3.0,
                   help="...and at least this long (default 3, as trtexec)")
    b.add_argument("--warmup", type=integer(limits.WARMUP), default=10, help="untimed runs first (default 10)")
    b.add_argument("--dla-core", type=integer(), default=None,
                   help="N: fp16/int8 engines on DLA core N only, GPU left free; -1: GPU (the default)")
    b.add_argument("--no-dla-rows", action="store_true",
                   help="skip the extra fp16/int8 @ dla0 rows built beside the GPU engines where there is a DLA")
    b.add_argument("--typed-mode", choices=["auto", "strong", "weak"], default=None,
                   help="strongly or weakly typed build (default: auto, by the TensorRT version)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(handler=_run_kit_build)
    s = ksub.add_parser("show", help="what a kit holds, with its checksums verified")
    s.add_argument("kit", help="the kit folder or its .tar.gz")
    s.add_argument("--json", action="store_true", help="print kit.json")
    s.set_defaults(handler=_run_kit_show)
    add_kit_lint(ksub)


def _run_kit_build(args: argparse.Namespace) -> int:
    from edgeres.kit import build_kit
    from edgeres.report import summary_table

    options: dict[str, Any] = {}
    if args.dla_core is not None:
        options["dla_core"] = args.dla_core
    if args.no_dla_rows:
        options["dla_variants"] = False
    if args.typed_mode is not None:
        options["typed_mode"] = args.typed_mode
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()] if args.precision else None
    sizes = parse_batches(args.batch) if args.batch else None
    log = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    report = build_kit(args.kit, precisions=precisions, out=args.out, batch_sizes=sizes, iterations=args.iterations,
                       min_seconds=args.min_seconds, warmup=args.warmup, options=options, log=log)
    table = summary_table(report["rows"])
    where = args.out or f"{report['kit']}/engines"
    text = "\n".join([table, *report["notes"], f"report: {where}/kit-report.json"])
    emit(args, report, text)
    return 0


def _run_kit_show(args: argparse.Namespace) -> int:
    from edgeres.backends.tensorrt_proof import proof_summary
    from edgeres.backends.tensorrt_render import engine_table
    from edgeres.kit import load_kit

    with tempfile.TemporaryDirectory(prefix="edgeres-kit-show-") as tmp:  # a tarball is read, not unpacked beside it
        kit = load_kit(args.kit, extract_to=tmp)
        kit.verify()
    m = kit.manifest
    headers, rows = engine_table(m.get("recipes", []))
    text = (f"kit {args.kit}: {m['model'].get('name', 'model')} for {m['target']['name']}, "
            f"batch profile {m['profiles']['batch']}, TensorRT >= {m['min_tensorrt']}, "
            f"validation slice {m['validation']['n']} inputs, {len(m['files'])} files verified\n"
            + format_table(headers, rows) + "\n" + proof_summary(m.get("proof", {})))
    emit(args, m, text)
    return 0
