"""The ``edgeres`` command. Thin: it parses, calls the Python API, prints.

One module per command group: ``model`` (info, doctor, export, targets), ``quantize``,
``measure`` (validate, bench), ``profile``, ``artifacts`` (package, report), ``kit``, ``build``, ``fleet``;
``common`` holds what they share. Each subcommand has an ``add_<name>`` function that declares its
arguments and a ``_run_<name>`` function that does the work and returns a result to print. An
``EdgeresError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgeres import __version__
from edgeres.cli import artifacts, build, fleet, kit, measure, model, profile, quantize
from edgeres.errors import EdgeresError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeres", description="Take a ResNet to edge hardware: ONNX, INT8, "
                                     "TensorRT / OpenVINO / ONNX Runtime engines, and the numbers to prove them.")
    parser.add_argument("--version", action="version", version=f"edgeres {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    model.add_info(sub)
    model.add_doctor(sub)
    quantize.add_quantize(sub)
    model.add_export(sub)
    measure.add_validate(sub)
    measure.add_bench(sub)
    profile.add_profile(sub)
    model.add_targets(sub)
    artifacts.add_package(sub)
    artifacts.add_report(sub)
    kit.add_kit(sub)
    build.add_build(sub)
    fleet.add_fleet(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except EdgeresError as exc:
        print(f"edgeres {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except OSError as exc:  # the filesystem said no: a path that is a file, no permission, disk full
        where = f": {exc.filename}" if exc.filename else ""
        print(f"edgeres {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"edgeres {args.command}: interrupted; no partial artifact was kept", file=sys.stderr)
        return 130
