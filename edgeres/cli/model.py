"""``edgeres info``, ``doctor``, ``export`` and ``targets``: the model, the backends, the targets."""

from __future__ import annotations

import argparse
import sys

from edgeres import limits
from edgeres.argtypes import checked_by, integer
from edgeres.cli.common import add_model_args, emit, export_batch
from edgeres.errors import UsageError
from edgeres.table import format_table

# --- info -------------------------------------------------------------------------------------

def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="architecture table, parameter and MAC counts")
    add_model_args(p)
    p.add_argument("--gradients", action="store_true",
                   help="instead: the gradient norm reaching each stage's input, with and without shortcuts")
    p.add_argument("--weights", default=None, help="with --gradients: a checkpoint to measure (default: random init)")
    p.add_argument("--plot", default=None, help="with --gradients: write the plot (PNG) here")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from edgeres.models import ResNet, check_input_size, summarize

    check_input_size(args.input_size)
    if args.gradients:
        return _run_gradients(args)
    if args.weights or args.plot:  # the table is the architecture's: a checkpoint would be silently ignored
        flag = "--weights" if args.weights else "--plot"
        raise UsageError(f"{flag} goes with --gradients; the architecture table takes --depth, --num-classes "
                         "and --input-size")
    model = ResNet(args.depth, num_classes=args.num_classes, in_channels=args.in_channels, shortcut=args.shortcut)
    s = summarize(model, args.input_size)
    rows = [(r.name, r.blocks, r.stride, r.input_size, r.output_size, r.kernels, r.out_channels, f"{r.macs / 1e9:.3f}")
            for r in s.stages]
    table = format_table(["layer", "blocks", "stride", "input", "output", "kernels", "channels", "GMACs"], rows,
                         align="llrllllr")
    text = (f"ResNet-{s.depth}  ({s.num_classes} classes, {s.in_channels}x{s.input_size}x{s.input_size} input, "
            f"{s.shortcut} shortcuts)\n{table}\n"
            f"parameters: {s.params:,}\nMACs: {s.gmacs:.3f} G per image")
    emit(args, s.to_dict(), text)
    return 0


def _run_gradients(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from edgeres.models import ResNet, load_checkpoint
    from edgeres.models.gradients import format_gradient_table, gradient_flow, plot_gradient_flow, rows_to_dicts

    torch.manual_seed(0)
    model = ResNet(args.depth, num_classes=args.num_classes, in_channels=args.in_channels, shortcut=args.shortcut)
    if args.weights:
        load_checkpoint(model, args.weights)
    size = min(args.input_size, 64)  # the ratio does not depend on resolution; 64 px keeps depth 152 quick
    rows = gradient_flow(model, input_size=size, trained=bool(args.weights))
    if args.plot:
        plot_gradient_flow({args.depth: rows}, Path(args.plot))
    what = f"checkpoint {args.weights} (eval mode)" if args.weights else "random init, seed 0 (batch statistics)"
    text = (f"ResNet-{args.depth} gradient flow: {what}, batch 8 of seeded noise at {size}x{size}, cross-entropy\n"
            f"||g||: mean per-image norm of dLoss/dInput at that point; ratio: / the same at the fc input\n"
            f"plain: the same weights with every shortcut switched off\n{format_gradient_table(rows)}")
    emit(args, {"depth": args.depth, "input_size": size, "batch": 8, "weights": args.weights,
                "rows": rows_to_dicts(rows)}, text)
    return 0


# --- doctor -----------------------------------------------------------------------------------

def add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="which backends are usable here, and why not")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from edgeres.backends import backend_names, get_backend
    from edgeres.hostinfo import describe_cpu
    from edgeres.validate.figures import cpu_lines

    rows, payload = [], {}
    for name in backend_names():
        a = get_backend(name).available()
        payload[name] = {"ok": a.ok, "version": a.version, "reason": a.reason, "details": a.details}
        details = ", ".join(f"{k}={v}" for k, v in a.details.items())
        rows.append((name, "yes" if a.ok else "no", a.version or "-", a.reason or details))
    cpu = describe_cpu()
    text = format_table(["backend", "usable", "version", "notes"], rows)
    text += f"\n\nCPU: {cpu['cpu']}, {cpu['logical_cpus']} logical CPUs usable\n"
    text += "\n".join(f"  {line}" for line in cpu_lines({"cpu_features": cpu}))
    emit(args, {"backends": payload, "cpu": cpu}, text)
    return 0


# --- export -----------------------------------------------------------------------------------

def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a ResNet to ONNX (BatchNorm folded, dynamic batch, checked)",
                       description="Export a ResNet to ONNX: BatchNorm folded into the convolutions, checked with "
                       "onnx.checker and against PyTorch with ONNX Runtime, metadata in the file and in a sidecar JSON.")
    add_model_args(p)
    # None = not given: taken from the checkpoint's model.json when there is one, else 1000 classes at 224 px
    p.set_defaults(num_classes=None, input_size=None)
    p.add_argument("--weights", default=None, help="checkpoint (.pth, torchvision layout; default: random weights)")
    p.add_argument("--batch", type=checked_by(export_batch), default="dynamic",
                   help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--opset", type=integer(limits.OPSET), default=17,
                   help="ONNX opset (default 17; the dynamo exporter needs 18+)")
    p.add_argument("--exporter", choices=["torchscript", "dynamo"], default="torchscript",
                   help="PyTorch exporter (default torchscript: see the README)")
    p.add_argument("--out", required=True, help="output folder (receives model.onnx and model.onnx.json) or .onnx path")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(handler=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from edgeres.export.exporter import export_resnet

    if not args.weights:
        print(f"edgeres export: warning: no --weights: ResNet-{args.depth} gets random weights "
              "(fine for latency, meaningless for accuracy)", file=sys.stderr)
    a = export_resnet(args.depth, args.out, weights=args.weights, num_classes=args.num_classes,
                      input_size=args.input_size, in_channels=args.in_channels, shortcut=args.shortcut,
                      batch=args.batch, opset=args.opset, exporter=args.exporter)
    m = a.metadata
    inp, out = m["input"], m["output"]
    ops = ", ".join(f"{k} {v}" for k, v in m["graph"]["ops"].items())
    parity = m["parity"]
    if "skipped" in parity:
        check = f"ONNX Runtime parity skipped: {parity['skipped']}"
    else:
        check = (f"ONNX Runtime vs PyTorch on {parity['inputs']} random inputs: max abs diff "
                 f"{parity['max_abs_diff']:.2g}, cosine {parity['cosine']:.6f}")
    text = (f"wrote {a.path} ({a.path.stat().st_size / 1e6:.1f} MB) and {a.sidecar.name}\n"
            f"ResNet-{m['depth']}, {m['num_classes']} classes: {inp['name']} {inp['shape']} {inp['dtype']} -> "
            f"{out['name']} {out['shape']}; opset {m['opset']}, {m['exporter']} exporter\n"
            f"graph: {m['graph']['nodes']} nodes ({ops}); BatchNorm folded\n"
            f"checks: onnx.checker (full) passed; {check}\n"
            f"export took {m['export_seconds']:.1f} s")
    emit(args, {"path": str(a.path), **m}, text)
    return 0


# --- targets ----------------------------------------------------------------------------------

def add_targets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("targets", help="list the hardware targets, and whether each is usable here",
                       description="'edgeres targets' lists every target; 'edgeres targets show NAME' prints one.")
    p.add_argument("words", nargs="*", metavar="show NAME", help="print one target (name or alias); "
                   "'edgeres targets NAME' does the same")
    p.add_argument("--targets-dir", default=None, help="folder with your own target TOML files "
                   "(also $EDGERES_TARGETS_DIR); they override built-ins of the same name")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_targets)


def _run_targets(args: argparse.Namespace) -> int:
    from edgeres.backends import get_backend
    from edgeres.targets import all_targets, describe, get_target, show_text, targets_table

    words = [w for w in args.words if w != "list"] if args.words[:1] == ["list"] else list(args.words)
    if words[:1] == ["show"]:
        words = words[1:]
        if not words:
            raise UsageError("name the target to show: edgeres targets show NAME")
    if len(words) > 1:
        raise UsageError(f"unexpected arguments {words[1:]}: edgeres targets [show NAME]")
    if words:
        target = get_target(words[0], args.targets_dir)
        a = target.availability()
        emit(args, describe(target, a), show_text(target, a))
        return 0
    targets = list(all_targets(args.targets_dir).values())
    availability = {b: get_backend(b).available() for b in {t.backend for t in targets}}
    emit(args, {"targets": [describe(t, availability[t.backend]) for t in targets]}, targets_table(targets, availability))
    return 0
