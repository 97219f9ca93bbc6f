"""The ``edgeres`` command. Thin: it parses, calls the Python API, prints.

Each subcommand has an ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` function that does the work and returns a result to print. An
``EdgeresError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from edgeres import __version__
from edgeres.errors import EdgeresError
from edgeres.table import format_table

Handler = Callable[[argparse.Namespace], int]


def _positive_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _add_model_args(p: argparse.ArgumentParser, depth_required: bool = True) -> None:
    p.add_argument("--depth", type=_positive_int, required=depth_required, default=None if depth_required else 50,
                   help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--num-classes", type=_positive_int, default=1000, help="classes of the final layer (default 1000)")
    p.add_argument("--input-size", type=_positive_int, default=224, help="square input resolution (default 224, >= 32)")
    p.add_argument("--in-channels", type=_positive_int, default=3, help="input channels (default 3)")
    p.add_argument("--shortcut", choices=["projection", "zeropad"], default="projection",
                   help="shortcut where shapes change: 1x1 projection (torchvision) or the paper's zero padding")


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print JSON with ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


# --- info -------------------------------------------------------------------------------------

def _add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="architecture table, parameter and MAC counts")
    _add_model_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from edgeres.models import ResNet, check_input_size, summarize

    check_input_size(args.input_size)
    model = ResNet(args.depth, num_classes=args.num_classes, in_channels=args.in_channels, shortcut=args.shortcut)
    s = summarize(model, args.input_size)
    rows = [(r.name, r.blocks, r.stride, r.input_size, r.output_size, r.kernels, r.out_channels, f"{r.macs / 1e9:.3f}")
            for r in s.stages]
    table = format_table(["layer", "blocks", "stride", "input", "output", "kernels", "channels", "GMACs"], rows,
                         align="llrllllr")
    text = (f"ResNet-{s.depth}  ({s.num_classes} classes, {s.in_channels}x{s.input_size}x{s.input_size} input, "
            f"{s.shortcut} shortcuts)\n{table}\n"
            f"parameters: {s.params:,}\nMACs: {s.gmacs:.3f} G per image")
    _emit(args, s.to_dict(), text)
    return 0


# --- doctor -----------------------------------------------------------------------------------

def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="which backends are usable here, and why not")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from edgeres.backends import BACKEND_MODULES, get_backend

    rows, payload = [], {}
    for name in BACKEND_MODULES:
        a = get_backend(name).available()
        payload[name] = {"ok": a.ok, "version": a.version, "reason": a.reason, "details": a.details}
        details = ", ".join(f"{k}={v}" for k, v in a.details.items())
        rows.append((name, "yes" if a.ok else "no", a.version or "-", a.reason or details))
    _emit(args, payload, format_table(["backend", "usable", "version", "notes"], rows))
    return 0


# --- subcommands that later work fills ---------------------------------------------------------

def _not_built(name: str) -> Handler:
    def run(_args: argparse.Namespace) -> int:
        raise EdgeresError(f"'edgeres {name}' is not built yet in edgeres {__version__}")
    return run


PENDING = {
    "build": "model -> ONNX -> INT8 -> engines -> report -> bundle for one target",
    "export": "export a ResNet to ONNX",
    "quantize": "INT8 post-training quantization of an ONNX model",
    "bench": "time an artifact or a bundle",
    "validate": "accuracy of an artifact against labels and the FP32 reference",
    "package": "package an artifact into a bundle",
    "targets": "list the hardware targets",
}


def _add_pending(sub: argparse._SubParsersAction, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(handler=_not_built(name))


# --- entry point ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeres", description="Take a ResNet to edge hardware: ONNX, INT8, "
                                     "TensorRT / OpenVINO / ONNX Runtime engines, and the numbers to prove them.")
    parser.add_argument("--version", action="version", version=f"edgeres {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_info(sub)
    _add_doctor(sub)
    for name, help_text in PENDING.items():
        _add_pending(sub, name, help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except EdgeresError as exc:
        print(f"edgeres {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"edgeres {args.command}: interrupted; no partial artifact was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
