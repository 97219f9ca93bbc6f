"""The ``edgeres`` command. Thin: it parses, calls the Python API, prints.

Each subcommand has an ``_add_<name>`` function that declares its arguments and a
``_run_<name>`` function that does the work and returns a result to print. An
``EdgeresError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from edgeres import __version__
from edgeres.errors import EdgeresError, UsageError
from edgeres.table import format_table


def _integer(text: str) -> int:
    """An integer; its range is checked where the value is used, with a message that says why."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _add_model_args(p: argparse.ArgumentParser, depth_required: bool = True) -> None:
    p.add_argument("--depth", type=_integer, required=depth_required, default=None if depth_required else 50,
                   help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--num-classes", type=_integer, default=1000, help="classes of the final layer (default 1000)")
    p.add_argument("--input-size", type=_integer, default=224, help="square input resolution (default 224, >= 32)")
    p.add_argument("--in-channels", type=_integer, default=3, help="input channels (default 3)")
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
    _emit(args, {"depth": args.depth, "input_size": size, "batch": 8, "weights": args.weights,
                 "rows": rows_to_dicts(rows)}, text)
    return 0


# --- doctor -----------------------------------------------------------------------------------

def _add_doctor(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="which backends are usable here, and why not")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from edgeres.backends import backend_names, get_backend

    rows, payload = [], {}
    for name in backend_names():
        a = get_backend(name).available()
        payload[name] = {"ok": a.ok, "version": a.version, "reason": a.reason, "details": a.details}
        details = ", ".join(f"{k}={v}" for k, v in a.details.items())
        rows.append((name, "yes" if a.ok else "no", a.version or "-", a.reason or details))
    _emit(args, payload, format_table(["backend", "usable", "version", "notes"], rows))
    return 0


# --- export -----------------------------------------------------------------------------------

def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a ResNet to ONNX (BatchNorm folded, dynamic batch, checked)",
                       description="Export a ResNet to ONNX: BatchNorm folded into the convolutions, checked with "
                       "onnx.checker and against PyTorch with ONNX Runtime, metadata in the file and in a sidecar JSON.")
    _add_model_args(p)
    # None = not given: taken from the checkpoint's model.json when there is one, else 1000 classes at 224 px
    p.set_defaults(num_classes=None, input_size=None)
    p.add_argument("--weights", default=None, help="checkpoint (.pth, torchvision layout; default: random weights)")
    p.add_argument("--batch", default="dynamic", help="'dynamic' (default) or a fixed batch size")
    p.add_argument("--opset", type=_integer, default=17, help="ONNX opset (default 17; the dynamo exporter needs 18+)")
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
    _emit(args, {"path": str(a.path), **m}, text)
    return 0


# --- validate ---------------------------------------------------------------------------------

def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="accuracy of an artifact on labeled images, and agreement with a reference")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...)")
    p.add_argument("--val", required=True, help="image folder (ImageNet layout or flat), .npy/.npz file, or a "
                   "calibration spec name or .toml path")
    p.add_argument("--reference", default=None, help="the FP32 artifact to compare with on the same inputs")
    p.add_argument("--batch-size", type=_integer, default=32, help="images per batch (default 32)")
    p.add_argument("--limit", type=_integer, default=None, help="use this many images (a seeded sample)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default 0)")
    p.add_argument("--threads", type=_integer, default=None, help="inference threads (default: backend's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from edgeres.evaluate import validate

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    v = validate(args.artifact, args.val, reference=args.reference, batch_size=args.batch_size, size=args.limit,
                 seed=args.seed, threads=args.threads, progress=not args.json)
    info = v.runner
    text = (f"validate {v.artifact} ({info.get('backend')}, {info.get('precision')}) on "
            f"{v.dataset.get('name') or v.dataset.get('source') or '?'}"
            + (f"\nreference: {v.reference}" if v.reference else "") + "\n" + v.accuracy.format()
            + "".join(f"\nnote: {n}" for n in v.notes))
    _emit(args, v.to_dict(), text)
    return 0


# --- bench ------------------------------------------------------------------------------------

def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="latency and throughput of an artifact (percentiles, like trtexec)")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, ...)")
    p.add_argument("--batch", default=None, help="comma-separated batch sizes, e.g. 1,8 (default 1)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--iterations", type=_integer, default=None, help="timed runs per batch size (default 50)")
    budget.add_argument("--seconds", type=float, default=None, help="time budget per batch size instead of a count")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs first (default 10)")
    p.add_argument("--threads", type=_integer, default=None, help="inference threads (default: backend's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from edgeres.evaluate import bench, format_bench

    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {args.iterations}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    payload = bench(args.artifact, args.batch, iterations=args.iterations, seconds=args.seconds,
                    warmup=args.warmup, threads=args.threads)
    _emit(args, {**payload, "results": [r.to_dict() for r in payload["results"]]}, format_bench(payload))
    return 0


# --- targets ----------------------------------------------------------------------------------

def _add_targets(sub: argparse._SubParsersAction) -> None:
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
    from edgeres.errors import UsageError
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
        _emit(args, describe(target, a), show_text(target, a))
        return 0
    targets = list(all_targets(args.targets_dir).values())
    availability = {b: get_backend(b).available() for b in {t.backend for t in targets}}
    _emit(args, [describe(t, availability[t.backend]) for t in targets], targets_table(targets, availability))
    return 0


# --- package ----------------------------------------------------------------------------------

def _add_package(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="package an artifact into a bundle (folder + .tar.gz) for a target")
    p.add_argument("artifact", help="artifact file with its metadata beside it (model.onnx, model.xml, model.engine)")
    p.add_argument("--target", default=None, help="target name or alias (default: the one it was built for)")
    p.add_argument("--out", required=True, help="bundle folder to write (DIR and DIR.tar.gz)")
    p.add_argument("--labels", default=None, help="text file with one class label per line "
                   "(default: the class names recorded in the artifact, if any)")
    p.add_argument("--targets-dir", default=None, help="folder with your own target TOML files")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(handler=_run_package)


def _run_package(args: argparse.Namespace) -> int:
    from edgeres.bundle import load_bundle, package_artifact, tarball_of

    out = package_artifact(args.artifact, args.out, target=args.target, labels_file=args.labels,
                           targets_dir=args.targets_dir)
    with load_bundle(out, require_backend=False) as bundle:
        m = bundle.manifest
    size = sum(e["bytes"] for e in m["files"].values())
    text = (f"bundle for {m['target']['name']} ({m['backend']['name']} {m['backend']['version'] or ''}, "
            f"{m['precision']}): {out}  ({size / 1e6:.1f} MB, {len(m['files']) + 1} files)\n"
            f"tarball: {tarball_of(out)}\n"
            f"run it:  python -m edgeres.run {tarball_of(out)} IMAGE.jpg")
    _emit(args, {"bundle": str(out), "tarball": str(tarball_of(out)), "manifest": m}, text)
    return 0


# --- report -----------------------------------------------------------------------------------

def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="merge reports of several builds (and device kits) into one comparison")
    p.add_argument("reports", nargs="+", metavar="DIR",
                   help="build output folders (report.json) or kit folders (kit-report.json), or the JSON files")
    p.add_argument("--out", default=None, help="write the merged report.json, report.md and accuracy_latency.png here")
    p.add_argument("--title", default=None, help="title of the merged report")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from edgeres.validate.report import PLOT_PNG, REPORT_MD, merge_reports, write_report

    report = merge_reports(args.reports, title=args.title)
    text = f"{report.title}\n{report.summary()}"
    if args.out:
        write_report(report, args.out)
        written = [REPORT_MD, "report.json"] + ([PLOT_PNG] if not any(PLOT_PNG in n for n in report.notes) else [])
        text += f"\nwritten to {args.out}: {', '.join(written)}"
    for note in report.notes:
        text += f"\nnote: {note}"
    _emit(args, report.to_dict(), text)
    return 0


# --- quantize -----------------------------------------------------------------------------------

def _add_quantize(sub: argparse._SubParsersAction) -> None:
    from edgeres.quantize.calibrate import DEFAULT_METHOD, METHODS
    from edgeres.quantize.qdq import PLACEMENTS

    p = sub.add_parser(
        "quantize", help="INT8 post-training quantization of an ONNX model",
        description="Calibrate an FP32 ONNX on your images and write an explicit symmetric Q/DQ INT8 ONNX "
                    "(TensorRT explicit quantization; ONNX Runtime INT8 kernels with --placement onnxruntime).")
    p.add_argument("model", metavar="MODEL.onnx", help="FP32 ONNX model (e.g. from edgeres export)")
    p.add_argument("--calib", required=True, metavar="DIR|SPEC",
                   help="calibration images: a folder, .npy/.npz, or a calibration spec name/path (e.g. demo)")
    p.add_argument("--calib-size", type=int, default=512, metavar="N",
                   help="calibration images to use (default 512; fewer if the set is smaller)")
    p.add_argument("--seed", type=int, default=0, help="seed for selecting calibration images (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="calibration batch size (default 16)")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD,
                   help=f"calibration method (default {DEFAULT_METHOD}, TensorRT's default)")
    p.add_argument("--percentile", type=float, default=99.99, help="percentile for --method percentile (99.99)")
    p.add_argument("--keep-fp", default=None, metavar="LAYERS",
                   help="comma-separated layers to keep in floating point, by torch module name or glob "
                        "(conv1,fc,layer4.*); 'none' quantizes every layer. Default: the first conv and the "
                        "last FC")
    p.add_argument("--placement", choices=PLACEMENTS, default="tensorrt",
                   help="Q/DQ form: tensorrt (default; Q/DQ on weighted-layer inputs and residual inputs) or "
                        "onnxruntime (Q/DQ around every op, so ORT runs QLinearConv/QLinearAdd)")
    p.add_argument("--val", default=None, metavar="DIR|SPEC", help="validation set for --sensitivity and "
                   "--accuracy-budget (labeled for top-1, else agreement with FP32)")
    p.add_argument("--val-size", type=int, default=None, metavar="N", help="validation images to use (all)")
    p.add_argument("--sensitivity", action="store_true",
                   help="rank layers by the loss from quantizing each one alone (table + sensitivity.json)")
    p.add_argument("--accuracy-budget", type=float, default=None, metavar="POINTS",
                   help="return layers to FP, most sensitive first, until the top-1 (or agreement) loss is "
                        "within POINTS (e.g. 0.3)")
    p.add_argument("--cache-dir", default=None,
                   help="calibration cache folder (default: $EDGERES_CACHE/calibration)")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads for evaluation")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (model.int8.onnx + .json)")
    p.add_argument("--json", action="store_true", help="print the artifact metadata as JSON")
    p.set_defaults(handler=_run_quantize)



def _keep_fp(text: str | None) -> list[str] | None:
    """--keep-fp: None = the default layers, 'none' = quantize every layer, else the names given."""
    if text is None:
        return None
    if text.strip().lower() in ("none", ""):
        return []
    return [t.strip() for t in text.split(",") if t.strip()]


def _preprocess_of(model: Any) -> Any:
    """The preprocessing the FP32 model was exported with (its sidecar), if recorded."""
    from edgeres.artifact import Artifact
    from edgeres.data import PreprocessSpec
    from edgeres.fileio import load_json

    sidecar = Artifact.sidecar_of(model)
    spec = load_json(sidecar, "metadata").get("preprocess") if sidecar.is_file() else None
    return PreprocessSpec.from_dict(spec) if spec else None


def _run_quantize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeres.data import open_set
    from edgeres.quantize import quantize_onnx

    if args.calib_size < 1:
        raise UsageError(f"--calib-size must be at least 1, got {args.calib_size}")
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {args.batch_size}")
    if (args.sensitivity or args.accuracy_budget is not None) and not args.val:
        raise UsageError("--sensitivity and --accuracy-budget need --val DIR|spec")
    model = Path(args.model)
    preprocess = _preprocess_of(model) if model.is_file() else None
    calib = open_set(args.calib, size=args.calib_size, seed=args.seed, preprocess=preprocess)
    val = open_set(args.val, size=args.val_size, preprocess=preprocess) if args.val else None
    artifact = quantize_onnx(model, calib, args.out, method=args.method, percentile=args.percentile,
                             keep_fp=_keep_fp(args.keep_fp), cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                             batch_size=args.batch_size, placement=args.placement, val=val,
                             sensitivity=args.sensitivity, accuracy_budget=args.accuracy_budget,
                             threads=args.threads)
    q = artifact.metadata["quantization"]
    _emit(args, artifact.metadata | {"path": str(artifact.path)},
          f"{artifact.path}  int8 ({q['quantized_layers']}/{q['layers']} layers, {q['placement']} placement, "
          f"{q['method']}; FP: {', '.join(q['keep_fp']) or 'none'}; calibration "
          f"{'cache hit' if q['calibration']['cache_hit'] else 'computed'})")
    return 0


# --- kit (device build kits for TensorRT targets) ---------------------------------------------

def _add_kit(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("kit", help="device build kits: build, validate and benchmark TensorRT engines on the device")
    ksub = p.add_subparsers(dest="kit_command", metavar="KIT_COMMAND")
    ksub.required = True
    b = ksub.add_parser("build", help="on the NVIDIA device: build the kit's engines, validate, benchmark, report")
    b.add_argument("kit", help="the kit folder or its .tar.gz")
    b.add_argument("--precision", default=None,
                   help="comma-separated subset of the kit's precisions (default: all of them)")
    b.add_argument("--out", default=None, help="where engines and kit-report.json go (default: KIT/engines)")
    b.add_argument("--batch-sizes", default=None, help="batch sizes to time, e.g. 1,8 (default: 1, opt and max)")
    b.add_argument("--iterations", type=_integer, default=100, help="timed runs per batch size (default 100)")
    b.add_argument("--warmup", type=_integer, default=10, help="untimed runs first (default 10)")
    b.add_argument("--dla-core", type=int, default=None, help="DLA core for fp16/int8 engines; -1 = GPU only")
    b.add_argument("--typed-mode", choices=["auto", "strong", "weak"], default=None,
                   help="strongly or weakly typed build (default: auto, by the TensorRT version)")
    b.add_argument("--json", action="store_true", help="print the report as JSON")
    b.set_defaults(handler=_run_kit_build)
    s = ksub.add_parser("show", help="what a kit holds, with its checksums verified")
    s.add_argument("kit", help="the kit folder or its .tar.gz")
    s.add_argument("--json", action="store_true", help="print kit.json")
    s.set_defaults(handler=_run_kit_show)


def _run_kit_build(args: argparse.Namespace) -> int:
    from edgeres.kit import build_kit
    from edgeres.validate.report import summary_table

    options: dict[str, Any] = {}
    if args.dla_core is not None:
        options["dla_core"] = args.dla_core
    if args.typed_mode is not None:
        options["typed_mode"] = args.typed_mode
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()] if args.precision else None
    sizes = None
    if args.batch_sizes:
        try:
            sizes = [int(v) for v in args.batch_sizes.split(",") if v.strip()]
        except ValueError:
            raise UsageError(f"--batch-sizes must be integers like 1,8, got {args.batch_sizes!r}") from None
    log = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    report = build_kit(args.kit, precisions=precisions, out=args.out, batch_sizes=sizes, iterations=args.iterations,
                       warmup=args.warmup, options=options, log=log)
    table = summary_table(report["rows"])
    where = args.out or f"{report['kit']}/engines"
    text = "\n".join([table, *report["notes"], f"report: {where}/kit-report.json"])
    _emit(args, report, text)
    return 0


def _run_kit_show(args: argparse.Namespace) -> int:
    from edgeres.kit import load_kit

    kit = load_kit(args.kit)
    kit.verify()
    m = kit.manifest
    rows = [(p, m["builds"][p]["weak"]["onnx"] or "-", m["builds"][p]["strong"]["onnx"] or "-") for p in m["precisions"]]
    text = (f"kit {kit.root}: {m['model'].get('name', 'model')} for {m['target']['name']}, "
            f"batch profile {m['profiles']['batch']}, TensorRT >= {m['min_tensorrt']}, "
            f"validation slice {m['validation']['n']} inputs, {len(m['files'])} files verified\n"
            + format_table(["precision", "ONNX (TensorRT < 10.12)", "ONNX (TensorRT >= 10.12)"], rows))
    _emit(args, m, text)
    return 0


# --- build (the whole pipeline for one target) -------------------------------------------------

def _csv(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="model -> ONNX -> INT8 -> engines (or a device kit) -> report -> bundle")
    p.add_argument("--target", required=True, help="target name, alias or TOML file (see: edgeres targets)")
    p.add_argument("--depth", type=_integer, required=True, help="ResNet depth: 18, 34, 50, 101 or 152")
    p.add_argument("--weights", default=None,
                   help="checkpoint (.pth, torchvision layout) or a trained-model folder with model.pth + model.json;"
                        " default: random weights (fidelity-only numbers)")
    p.add_argument("--num-classes", type=_integer, default=None,
                   help="classes (default: from the checkpoint, else 1000)")
    p.add_argument("--input-size", type=_integer, default=None,
                   help="square input resolution (default: the model's, else 224)")
    p.add_argument("--precision", default=None,
                   help="comma-separated precisions, or 'all' (default: the target's defaults); fp32 is always "
                        "built as the reference")
    p.add_argument("--calib", default=None, help="calibration images: folder, .npy/.npz, or spec name/path")
    p.add_argument("--calib-size", type=_integer, default=None, help="calibration images to use")
    p.add_argument("--val", default=None, help="validation images (labeled for top-1): folder, .npy/.npz, spec")
    p.add_argument("--val-size", type=_integer, default=None, help="validation images to use")
    p.add_argument("--batch-profile", default=None, help="MIN:OPT:MAX batch (default: the target's)")
    p.add_argument("--accuracy-budget", type=float, default=None,
                   help="points of top-1 (or of agreement without labels) INT8 may lose; layers fall back to FP "
                        "until it holds (default: the target's budget, used only to recommend a precision)")
    p.add_argument("--method", default=None, choices=["entropy", "minmax", "percentile", "mse"],
                   help="calibration method of the Q/DQ INT8 ONNX (default entropy; cpu and TensorRT targets)")
    p.add_argument("--keep-fp", default=None, help="layers to keep in floating point, e.g. conv1,fc; 'none' "
                   "quantizes every layer (default: the first conv and the last FC)")
    p.add_argument("--bench-seconds", type=float, default=2.0, help="time budget per latency measurement")
    p.add_argument("--targets-dir", default=None, help="extra folder of target TOML files")
    p.add_argument("--out", default=None, help="output folder (default: out/resnetDEPTH-TARGET)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=_run_build)


def _run_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgeres.pipeline import BuildRequest, build
    from edgeres.validate.report import summary_table

    req = BuildRequest(
        target=args.target, depth=args.depth, weights=Path(args.weights) if args.weights else None,
        out_dir=Path(args.out) if args.out else None,
        num_classes=args.num_classes, input_size=args.input_size, precisions=_csv(args.precision),
        calib=args.calib, calib_size=args.calib_size, val=args.val, val_size=args.val_size,
        batch_profile=args.batch_profile, accuracy_budget=args.accuracy_budget, method=args.method,
        keep_fp=_keep_fp(args.keep_fp), bench_seconds=args.bench_seconds,
        targets_dir=Path(args.targets_dir) if args.targets_dir else None,
    )
    result = build(req)
    lines = [summary_table(result.rows)] if result.rows else []
    if result.recommended:
        lines.append(f"recommended: {result.recommended} on {result.target.name}")
    if result.kit:
        lines.append(f"device kit: {result.kit} (+ .tar.gz); on the device run: edgeres kit build {result.kit.name}")
    lines.append(f"report: {result.report_dir / 'report.md'}")
    if result.bundle:
        lines.append(f"bundle: {result.bundle} (+ .tar.gz)")
    _emit(args, result.to_dict(), "\n".join(lines))
    return 0


# --- entry point ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgeres", description="Take a ResNet to edge hardware: ONNX, INT8, "
                                     "TensorRT / OpenVINO / ONNX Runtime engines, and the numbers to prove them.")
    parser.add_argument("--version", action="version", version=f"edgeres {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_info(sub)
    _add_doctor(sub)
    _add_quantize(sub)
    _add_export(sub)
    _add_validate(sub)
    _add_bench(sub)
    _add_targets(sub)
    _add_package(sub)
    _add_report(sub)
    _add_kit(sub)
    _add_build(sub)
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


if __name__ == "__main__":
    sys.exit(main())
