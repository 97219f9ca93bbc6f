"""``edgeres kit lint``: the kit's Q/DQ lint on any ONNX file, for one TensorRT or every kit recipe's.

The same check ``edgeres build --target jetson`` runs on the kit's INT8 ONNX before it writes a
kit (``backends/tensorrt_lint``), for a Q/DQ model made elsewhere (ModelOpt, ONNX Runtime's
quantizer, NNCF, a hand edit). Exit codes: 0 clean, 1 violations (one line per rule broken, on
stdout: the same rule on many nodes is one line with the count and the first node names), 2 when
the file or the version cannot be linted at all (missing, not ONNX, bad version). A float model
(no Q/DQ nodes) has only its opset and operators checked.
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


NOTES = {"qdq": "", "integer": "no Q/DQ nodes but integer operators: ",
         "none": "no Q/DQ nodes (a float model: only its opset and operators are checked): "}


def _run_kit_lint(args: argparse.Namespace) -> int:
    from edgeres.backends.tensorrt_lint import group_violations, lint_onnx, recipe_limits, version_limits

    limits = version_limits(args.tensorrt) if args.tensorrt is not None else recipe_limits()
    try:
        kind, violations = lint_onnx(args.onnx, limits)
    except UsageError:
        raise
    except EdgeresError as exc:  # nothing could be linted: a usage error, apart from "violations found" (1)
        raise UsageError(str(exc)) from None
    groups = group_violations(violations)
    parsers = ", ".join(limit.label for limit in limits)
    verdict = counted(len(violations), "violation") if violations else "no violations"
    if len(groups) < len(violations):
        verdict += f" ({counted(len(groups), 'line')})"
    summary = f"{args.onnx}: {NOTES[kind]}{verdict} of TensorRT's explicit-quantization rules, checked for {parsers}"
    payload = {"file": str(args.onnx), "tensorrt": [asdict(limit) for limit in limits], "quantization": kind,
               "ok": not violations, "violations": [v.to_dict() for v in violations],
               "groups": [g.to_dict() for g in groups], "summary": summary}
    if args.json or violations:  # stdout: the document, or one line per group (nothing when clean)
        emit(args, payload, "\n".join(g.line(str(args.onnx)) for g in groups))
    if not args.json:
        print(summary, file=sys.stderr)
    return ERROR if violations else OK
