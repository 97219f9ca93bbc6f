"""What ``edgeres build`` was asked for, resolved: the request, the model it names (depth,
classes, input size, preprocessing, weights) and the precisions this machine builds.

Refuses early what would otherwise fail after minutes of work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeres import checks, limits
from edgeres.backends import get_backend
from edgeres.data import PreprocessSpec
from edgeres.errors import EdgeresError, UsageError
from edgeres.fileio import sha256_file
from edgeres.targets import Target

FP32 = "fp32"


@dataclass
class BuildRequest:
    """Everything ``edgeres build`` was asked for; None means "the target's or the model's default"."""

    target: str
    depth: int
    out_dir: Path | None = None  # default: out/resnetDEPTH-TARGET
    weights: Path | None = None
    num_classes: int | None = None
    input_size: int | None = None
    precisions: list[str] | None = None
    calib: str | None = None
    calib_size: int | None = None
    val: str | None = None
    val_size: int | None = None
    batch_profile: str | None = None
    accuracy_budget: float | None = None
    holdout: float | None = None      # fraction of val held out to judge the budget (None: the default)
    test: str | None = None           # or a separate set to judge it on
    method: str | None = None
    keep_fp: list[str] | None = None
    bench_seconds: float = 2.0  # a build times each figure for at least this long...
    bench_runs: int = 50        # ...and at least this many runs (bench: 100 runs and 5 s; p99 needs 100)
    rebench: bool = False       # re-measure every precision even when its artifact is reused
    targets_dir: Path | None = None
    labels: Path | None = None  # class names, one per line (else model.json, else the --val class folders)
    fail_over_budget: bool = False  # the CLI exits OVER_BUDGET when a precision loses more than the budget


@dataclass
class ModelSource:
    """The model to build and where it came from (weights, classes, preprocessing)."""

    depth: int
    num_classes: int
    input_size: int
    preprocess: PreprocessSpec
    weights: Path | None
    weights_sha256: str | None
    classes: list[str] | None
    classes_from: str | None = None  # where the names came from (edgeres.classes)

    @property
    def random(self) -> bool:
        return self.weights is None

    def key(self) -> dict[str, Any]:
        return {"depth": self.depth, "num_classes": self.num_classes, "input_size": self.input_size,
                "weights_sha256": self.weights_sha256, "preprocess": self.preprocess.to_dict(), "classes": self.classes}

    def describe(self) -> dict[str, Any]:
        return {**self.key(), "weights": str(self.weights) if self.weights else "random (seed 0)",
                "classes": self.classes, "classes_from": self.classes_from}


def resolve_model(req: BuildRequest) -> ModelSource:
    """Depth, classes, input size and preprocessing from the flags and the weights' model.json."""
    from edgeres.models import check_depth, check_input_size, check_num_classes

    check_depth(req.depth)
    info: dict[str, Any] = {}
    weights = req.weights
    if weights is not None:
        weights = Path(weights)
        if weights.is_dir():  # a trained-model folder: model.pth + model.json (scripts/train_demo.py)
            weights = weights / "model.pth"
        if not weights.is_file():
            raise EdgeresError(f"weights {req.weights} do not exist")
        sidecar = weights.with_name("model.json")
        if sidecar.is_file():
            from edgeres.data.train import read_model_info

            info = read_model_info(weights.parent)
            if info.get("depth") not in (None, req.depth):
                raise UsageError(f"{weights} is a ResNet-{info['depth']}, but --depth {req.depth} was given")
    num_classes = _first(req.num_classes, info.get("num_classes"), _classes_in_checkpoint(weights), 1000)
    input_size = _first(req.input_size, info.get("input_size"), 224)
    check_num_classes(num_classes)
    check_input_size(input_size)
    if "preprocess" in info and (req.input_size is None or req.input_size == info.get("input_size")):
        preprocess = PreprocessSpec.from_dict(info["preprocess"])
    else:
        preprocess = PreprocessSpec() if input_size == 224 else PreprocessSpec.for_size(input_size)
    return ModelSource(depth=req.depth, num_classes=int(num_classes), input_size=int(input_size),
                       preprocess=preprocess, weights=weights,
                       weights_sha256=sha256_file(weights) if weights else None, classes=info.get("classes"))


def _first(*values: Any) -> Any:
    """The first value that was given (0 counts as given: it is an error, not a default)."""
    return next(v for v in values if v is not None)


def _classes_in_checkpoint(weights: Path | None) -> int | None:
    if weights is None:
        return None
    from edgeres.models import read_state_dict

    fc = read_state_dict(weights).get("fc.weight")
    return int(fc.shape[0]) if fc is not None else None


def resolve_precisions(target: Target, asked: list[str] | None) -> tuple[list[str], list[str]]:
    """The precisions to build, and notes on those skipped.

    Named precisions are built or fail with the backend's reason; the target's defaults
    and ``all`` skip what this machine cannot run (bf16 on a CPU without it...), saying why.
    """
    named = bool(asked) and asked != ["all"]
    if not asked:
        chosen = list(target.default_precisions)
    elif asked == ["all"]:
        chosen = list(target.precisions)
    else:
        chosen = list(dict.fromkeys(asked))
        for p in chosen:
            if p not in target.precisions:
                reason = target.device.get(f"{p}_refused")   # the target's own why (Maxwell has no fast INT8)
                raise UsageError(f"target {target.name} offers {', '.join(target.precisions)}; precision '{p}' is "
                                 f"not one of them" + (f": {reason}" if reason else ""))
    if FP32 not in chosen and FP32 in target.precisions:
        chosen.insert(0, FP32)  # the reference every other precision is compared with
    skipped: list[str] = []
    backend = get_backend(target.backend)
    if not named and backend.available().ok:
        for p in list(chosen):
            reason = backend.unsupported(p, target)
            if reason:
                chosen.remove(p)
                skipped.append(f"{p} skipped on this machine: {reason}")
    return chosen, skipped


def build_model(source: ModelSource) -> Any:
    import torch

    from edgeres.models import ResNet, load_checkpoint

    torch.manual_seed(0)
    model = ResNet(source.depth, num_classes=source.num_classes)
    if source.weights is not None:
        load_checkpoint(model, source.weights)
    return model.eval()


def check_request(req: BuildRequest, target: Target) -> None:
    """Refuse what would otherwise fail (or be ignored) after minutes of work."""
    limits.check("--bench-seconds", req.bench_seconds, limits.SECONDS)
    limits.check("--bench-runs", req.bench_runs, limits.COUNT)
    checks.accuracy_budget(req.accuracy_budget)
    checks.heldout(req.holdout, bool(req.test), req.accuracy_budget)
    checks.at_least_one(calib_size=req.calib_size, val_size=req.val_size)
    if req.val_size is not None and req.val is None:
        raise UsageError("--val-size needs --val (the validation images to draw from)")
    if not get_backend(target.backend).int8_placement(target) and (req.method is not None or req.keep_fp is not None):
        raise UsageError(f"--method and --keep-fp shape the Q/DQ INT8 ONNX; target {target.name} calibrates INT8 "
                         f"with {target.backend}'s own quantizer. Use --accuracy-budget to trade accuracy, "
                         f"or set int8_source = \"qdq-onnx\" in the target's [options] to build from the Q/DQ ONNX")


def default_out_dir(target: str, depth: int) -> Path:
    return Path(os.environ.get("EDGERES_OUT", "out")) / f"resnet{depth}-{target}"


def name_classes(source: ModelSource, req: BuildRequest, val: Any) -> tuple[ModelSource, str | None]:
    """``source`` with its class names from --labels, model.json or the --val class folders
    (``edgeres.classes``), and a warning when none of them names the classes."""
    from dataclasses import replace

    from edgeres.classes import resolve_class_names

    folders = getattr(val, "classes", None) if req.val is not None and val.has_labels else None
    where = str(source.weights.parent / "model.json") if source.weights else "model.json"
    names = resolve_class_names(source.num_classes, labels_file=req.labels, model_json=source.classes,
                                model_json_where=where, val_classes=folders)
    _check_val_folders(folders, names.names, source.num_classes, req.val)
    warning = None if names.names is not None else (
        "no class names (--labels FILE, the checkpoint folder's model.json, or class folders in --val): "
        "the bundle will print class indices")
    if folders and names.names is None and len(folders) < source.num_classes:
        warning = (f"--val {req.val} has {len(folders)} class folders for a {source.num_classes}-class model and no "
                   "class names to match them by: the i-th folder (sorted) is taken as class i, so top-1 is only "
                   "right if they are the model's first classes; give --labels FILE. " + str(warning))
    return replace(source, classes=names.names, classes_from=names.origin), warning


def _check_val_folders(folders: list[str] | None, names: list[str] | None, num_classes: int, val: Any) -> None:
    """Class folders of --val that cannot be this model's classes, refused before any work (else the
    build exports and runs the FP32 reference first, then fails on a label out of range)."""
    from edgeres.measure import label_map

    if not folders:
        return
    try:
        label_map(folders, names)
    except EdgeresError as exc:
        raise EdgeresError(f"--val {val}: {exc}") from None
    if names is None and len(folders) > num_classes:
        raise EdgeresError(f"--val {val} has {len(folders)} class folders but the model has {num_classes} classes: "
                           "is this the right validation set for this model?")


def shared_images(calib: Any, val: Any) -> list[str]:
    """A warning when --val holds images the calibration set also holds: INT8 is then judged on
    images it was calibrated on, and its loss reads smaller than it will be on new images."""
    if val is None or val is calib:
        return []
    calib_paths = {p.resolve() for p in getattr(calib, "paths", [])}
    n = sum(p.resolve() in calib_paths for p in getattr(val, "paths", []))
    if not n:
        return []
    return [(f"{n} of the {len(val)} validation images are also calibration images: INT8 is judged on images it was "
             "calibrated on, so its loss reads smaller than on new images; pass a --val set that does not overlap --calib")]
