"""What every ``edgeres`` subcommand shares: integer arguments, the model arguments, printing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

SCHEMA_VERSION = 1  # of every --json document; raised when a field changes meaning or type

_json_stdout: TextIO | None = None  # the real stdout while a --json command runs (see json_stdout)

from edgeres import limits
from edgeres.argtypes import integer
from edgeres.errors import UsageError
from edgeres.limits import parse_batches
from edgeres.progress import others_on_stderr


def export_batch(text: str) -> None:
    """--batch of export: 'dynamic' or one batch size."""
    if text == "dynamic":
        return
    try:
        sizes = parse_batches(text)
    except UsageError:
        sizes = []
    if len(sizes) != 1:
        raise UsageError(f"batch must be 'dynamic' or one batch size from 1 to {limits.BATCH.hi:,}, got {text!r}")


def batch_profile(text: str) -> None:
    """--batch-profile: MIN:OPT:MAX."""
    from edgeres.artifact import BatchProfile

    BatchProfile.parse(text)


def add_model_args(p: argparse.ArgumentParser, depth_required: bool = True) -> None:
    p.add_argument("--depth", type=integer(), required=depth_required, default=None if depth_required else 50,
                   help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--num-classes", type=integer(limits.NUM_CLASSES), default=1000,
                   help="classes of the final layer (default 1000)")
    p.add_argument("--input-size", type=integer(limits.INPUT_SIZE), default=224,
                   help="square input resolution (default 224, >= 32)")
    p.add_argument("--in-channels", type=integer(limits.IN_CHANNELS), default=3, help="input channels (default 3)")
    p.add_argument("--shortcut", choices=["projection", "zeropad"], default="projection",
                   help="shortcut where shapes change: 1x1 projection (torchvision) or the paper's zero padding")


def schema_name(args: argparse.Namespace) -> str:
    """``edgeres.build``, ``edgeres.kit.show``...: what a --json document is, by the command that wrote it."""
    words = [args.command] + ([args.kit_command] if getattr(args, "kit_command", None) else [])
    return ".".join(["edgeres", *words])


def document(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    """The --json document: ``schema`` and ``schema_version`` first, then the payload (a payload
    that is a stored document with its own schema, as report.json and kit.json, keeps it)."""
    if "schema" in payload:
        return payload
    return {"schema": schema_name(args), "schema_version": SCHEMA_VERSION, **payload}


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print the --json document on the real stdout with ``--json``, else the human-readable text."""
    if getattr(args, "json", False):
        print(json.dumps(document(args, payload), indent=2, default=str), file=_json_stdout or sys.stdout, flush=True)
    else:
        print(text)


@contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """With --json, route everything but the document to stderr for the whole command
    (``others_on_stderr``: NNCF and OpenVINO write to file descriptor 1 itself), and keep a
    duplicate of the original stdout, where ``emit`` writes the one document."""
    global _json_stdout
    if not enabled:
        yield
        return
    sys.stdout.flush()
    try:
        saved_fd: int | None = os.dup(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # a captured stream (pytest's capsys): Python level only
        saved_fd = None
    _json_stdout = os.fdopen(saved_fd, "w", closefd=False) if saved_fd is not None else sys.stdout
    try:
        with others_on_stderr():
            yield
    finally:
        _json_stdout.flush()
        if saved_fd is not None:
            os.close(saved_fd)
        _json_stdout = None


def keep_fp_list(text: str | None) -> list[str] | None:
    """--keep-fp: None = the default layers, 'none' = quantize every layer, else the names given."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]
