"""``edgeres kit lint``: the kit's Q/DQ lint on any ONNX file, for one TensorRT or every kit recipe's.

The same check ``edgeres build --target jetson`` runs on the kit's INT8 ONNX before it writes a
kit (``backends/tensorrt_lint``), for a Q/DQ model made elsewhere (ModelOpt, ONNX Runtime's
quantizer, a hand edit). Exit codes: 0 clean, 1 violations (one line each on stdout), 2 when
the file or the version cannot be linted at all (missing, not ONNX, no Q/DQ nodes, bad version).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict

from edgeres.cli.common import emit
from edgeres.errors import ERROR, OK, EdgeresError, UsageError
from edgeres.table import counted


def add_kit_lint(ksub: argparse._SubParsersAction) -> None:
    p = ksub.add_parser("lint", help="check a Q/DQ INT8 ONNX against TensorRT's explicit-quantization rules")
    p.add_argument("onnx", metavar="FILE.onnx", help="the Q/DQ (INT8) ONNX to check")
    p.add_argument("--tensorrt", metavar="VERSION", default=None,
                   help="the device's TensorRT, e.g. 8.5 or 10.3 (default: the oldest version of every kit "
                        "recipe: 8.5, 10.12 and 11.0)")
    p.add_argument("--json", action="store_true", help="print the violations as one JSON document")
    p.set_defaults(handler=_run_kit_lint)


def _run_kit_lint(args: argparse.Namespace) -> int:
    from edgeres.backends.tensorrt_lint import lint_qdq, recipe_limits, version_limits

    limits = version_limits(args.tensorrt) if args.tensorrt is not None else recipe_limits()
    try:
        violations = lint_qdq(args.onnx, limits)
    except UsageError:
        raise
    except EdgeresError as exc:  # nothing could be linted: a usage error, apart from "violations found" (1)
        raise UsageError(str(exc)) from None
    parsers = ", ".join(limit.label for limit in limits)
    verdict = counted(len(violations), "violation") if violations else "no violations"
    summary = f"{args.onnx}: {verdict} of TensorRT's explicit-quantization rules, checked for {parsers}"
    payload = {"file": str(args.onnx), "tensorrt": [asdict(limit) for limit in limits], "ok": not violations,
               "violations": [v.to_dict() for v in violations], "summary": summary}
    if args.json or violations:  # stdout: the document, or one line per violation (nothing when clean)
        emit(args, payload, "\n".join(v.line(str(args.onnx)) for v in violations))
    if not args.json:
        print(summary, file=sys.stderr)
    return ERROR if violations else OK
