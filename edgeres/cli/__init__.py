"""The ``edgeres`` command. Thin: it parses, calls the Python API, prints.

One module per command group: ``model`` (info, doctor, export, targets), ``quantize``,
``measure`` (validate, bench), ``artifacts`` (package, report), ``kit``, ``build``, ``fleet``; ``common``
holds what they share. Each subcommand has an ``add_<name>`` function that declares its
arguments and a ``_run_<name>`` function that does the work and returns a result to print. An
``EdgeresError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from edgeres import __version__
from edgeres.cli import artifacts, build, fleet, kit, measure, model, quantize
from edgeres.cli.common import emit, json_stdout
from edgeres.errors import ERROR, INTERRUPTED, EdgeresError


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
    with json_stdout(getattr(args, "json", False)):
        code, message = _run(args)
        if message is not None:
            print(f"edgeres {args.command}: {message}", file=sys.stderr)
            if getattr(args, "json", False):  # a program reading stdout still gets one document
                emit(args, {"error": message.removeprefix("error: "), "exit_code": code}, "")
    return code


def _run(args: argparse.Namespace) -> tuple[int, str | None]:
    """The exit code (see ``edgeres.errors``) and the error line to print, if any."""
    try:
        return int(args.handler(args)), None
    except EdgeresError as exc:
        return exc.exit_code, f"error: {exc}"
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0, None
    except OSError as exc:  # the filesystem said no: a path that is a file, no permission, disk full
        where = f": {exc.filename}" if exc.filename else ""
        return ERROR, f"error: {exc.strerror or exc}{where}"
    except KeyboardInterrupt:
        return INTERRUPTED, "interrupted; no partial artifact was kept"
