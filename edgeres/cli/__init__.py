"""The ``edgeres`` command. Thin: it parses, calls the Python API, prints.

One module per command group: ``model`` (info, doctor, export, targets), ``quantize``,
``measure`` (validate, bench), ``profile``, ``artifacts`` (package, report), ``kit``, ``build``, ``fleet``;
``common`` holds what they share. Each subcommand has an ``add_<name>`` function that declares its
arguments and a ``_run_<name>`` function that does the work and returns a result to print. An
``EdgeresError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from edgeres import __version__
from edgeres.argtypes import Parser, refuse_unrecognized
from edgeres.cli import artifacts, build, fleet, kit, measure, model, profile, quantize
from edgeres.cli.common import emit, json_stdout
from edgeres.guard import run_guarded


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="edgeres", description="Take a ResNet to edge hardware: ONNX, INT8, "
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
    try:
        args, extra = parser.parse_known_args(argv)
        words = [args.command, getattr(args, "kit_command", None), getattr(args, "fleet_command", None)]
        if extra:
            refuse_unrecognized(parser, extra, words)
    except SystemExit as exc:  # --help, --version, or a value the command line rules out (exit code 2)
        return int(exc.code or 0)
    as_json = getattr(args, "json", False)

    def error_document(code: int, message: str) -> None:  # a program reading stdout still gets one document
        if as_json:
            emit(args, {"error": message.removeprefix("error: "), "exit_code": code}, "")

    with json_stdout(as_json):
        return run_guarded(" ".join(["edgeres", *filter(None, words)]), lambda: args.handler(args), on_error=error_document)
