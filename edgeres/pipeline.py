"""``edgeres build``: model -> ONNX -> INT8 -> backend artifacts (or a device kit) ->
validation of every precision against the FP32 reference -> report -> bundle.

This is the only module that knows the order of the steps; each step is a function of
another module. Every stage is keyed by a hash of its inputs (``edgeres.stages``), so a
re-run reuses what is finished and an interrupted build continues where it stopped.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import __version__
from edgeres.artifact import Artifact, BatchProfile
from edgeres.backends import AccuracyControl, BuildSpec, backend_for, get_backend
from edgeres.build_request import (
    BuildRequest,
    ModelSource,
    build_model,
    check_request,
    default_out_dir,
    name_classes,
    resolve_model,
    resolve_precisions,
    shared_images,
)
from edgeres.data import open_set
from edgeres.fileio import sha256_file
from edgeres.quantize.calibrate import DEFAULT_METHOD
from edgeres.stages import StageLog, Stages, build_outputs, exclusive
from edgeres.targets import Target, get_target
from edgeres.validate.recommend import recommend, row_loss
from edgeres.validate.stats import size_warnings

DEFAULT_CALIBRATION = "demo:photos"  # shipped photographs: real images for any ImageNet-shaped model
SLICE_SIZE = 256  # validation inputs a device kit (and a fleet device) is checked on


@dataclass
class BuildResult:
    out_dir: Path
    target: Target
    rows: list[dict[str, Any]]
    stages: list[dict[str, Any]]
    report_dir: Path
    bundle: Path | None = None
    kit: Path | None = None
    recommended: str | None = None
    warnings: list[str] = field(default_factory=list)
    budget: float | None = None
    over_budget: list[str] = field(default_factory=list)  # precisions that lost more than the budget

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "target": self.target.name, "backend": self.target.backend,
                "recommended": self.recommended, "accuracy_budget": self.budget, "over_budget": self.over_budget,
                "rows": self.rows, "stages": self.stages,
                "report": str(self.report_dir / "report.json"), "bundle": str(self.bundle) if self.bundle else None,
                "kit": str(self.kit) if self.kit else None, "warnings": self.warnings}


# --- the build --------------------------------------------------------------------------------

def build(req: BuildRequest, log: StageLog | None = None) -> BuildResult:
    """Run the whole build into ``req.out_dir``; see the module docstring."""
    target = get_target(req.target, req.targets_dir)
    check_request(req, target)
    precisions, skipped = resolve_precisions(target, req.precisions)
    profile = BatchProfile.parse(req.batch_profile) if req.batch_profile else target.batch_profile
    budget = req.accuracy_budget if req.accuracy_budget is not None else target.accuracy_budget
    source = resolve_model(req)
    log = log or StageLog()
    out = Path(req.out_dir) if req.out_dir else default_out_dir(target.name, req.depth)
    warnings: list[str] = []

    def warn(text: str) -> None:
        warnings.append(text)
        sys.stderr.write(f"warning: {text}\n")

    for note in skipped:
        warn(note)
    if source.random:
        warn("no --weights: using random weights (seed 0); accuracy numbers are fidelity-only")
    calib_source = req.calib or DEFAULT_CALIBRATION
    if req.calib is None:
        warn(f"no --calib: calibrating on the demo set '{calib_source}'")
    calib = open_set(calib_source, size=req.calib_size, preprocess=source.preprocess)
    val = open_set(req.val, size=req.val_size, preprocess=source.preprocess) if req.val else calib
    if req.val is None:
        warn("no --val: validating on the calibration images (agreement with FP32 only)")
    fidelity_only = source.random or not val.has_labels
    source, unnamed = name_classes(source, req, val)
    for text in ([unnamed] if unnamed else []) + shared_images(calib, val if "int8" in precisions else None) + \
            size_warnings(len(calib) if "int8" in precisions else None, len(val), budget):
        warn(text)
    selection, heldout = _split(req, val, source, "int8" in precisions)

    backend = get_backend(target.backend)
    kit_reason = backend.kit_reason(target)
    quantizes = "int8" in precisions and bool(backend.int8_placement(target))
    # export, reference, [quantize], then a kit, or build + measure + per-layer profile per precision,
    # [the held-out check of INT8] and the bundle
    log.planned = 2 + quantizes + (1 if kit_reason else 3 * len(precisions) + 1 + (heldout is not None))
    with exclusive(out, build_outputs(target.name)) as swept:
        if swept:
            log.note(f"removed {len(swept)} temporary folder(s) left by an interrupted build in {out}")
        stages = Stages(out, log)
        fp32_onnx = _export(stages, out, source)
        reference = _reference(stages, out, fp32_onnx, val, source.classes)
        qdq_onnx, qdq_seconds = None, 0.0
        if quantizes:
            quantized = _quantize(stages, out, target, fp32_onnx, calib, selection, heldout, req, budget)
            qdq_onnx, qdq_seconds = Path(quantized["path"]), quantized["seconds"]

        rows: list[dict[str, Any]] = []
        artifacts: dict[str, Path] = {}
        kit_dir = None
        if kit_reason:
            log.note(f"{target.name}: {kit_reason}; writing a device build kit instead of engines")
            kit_dir = _kit(stages, out, target, precisions, fp32_onnx, qdq_onnx, val, reference, source, profile)
        else:
            for precision in precisions:
                graph = qdq_onnx if (precision == "int8" and qdq_onnx) else fp32_onnx
                row, artifacts[precision] = _precision(stages, out, target, precision, graph, fp32_onnx,
                                                       (calib, val, selection, heldout), reference, source,
                                                       profile, req, fidelity_only)
                seconds = row.pop("build_seconds") + (qdq_seconds if graph == qdq_onnx else 0.0)
                rows.append({**row, "build_seconds": round(seconds, 2)})
        recommended = recommend(rows, budget, labeled=not fidelity_only)
        rows = [{**r, "recommended": r["precision"] == recommended,
                 "n_calib": len(calib) if r["precision"] == "int8" else None} for r in rows]
        report_dir = _report(out, target, source, rows, recommended, budget, warnings, kit_dir, kit_reason)
        bundle = None
        if recommended and recommended in artifacts:
            bundle = _bundle(stages, out, target, artifacts[recommended], source, rows, recommended)
    over = [r["precision"] for r in rows if row_loss(r, labeled=not fidelity_only) > budget + 1e-9]
    return BuildResult(out_dir=out, target=target, rows=rows, stages=log.entries, report_dir=report_dir,
                       bundle=bundle, kit=kit_dir, recommended=recommended, warnings=warnings, budget=budget,
                       over_budget=over)


def _precision(stages: Stages, out: Path, target: Target, precision: str, graph: Path, fp32_onnx: Path,
               sets: tuple[Any, Any, Any, Any], reference: dict[str, np.ndarray | None], source: ModelSource,
               profile: BatchProfile, req: BuildRequest, fidelity_only: bool) -> tuple[dict[str, Any], Path]:
    """One precision on a host that builds: the artifact, its measured row (with the held-out check
    of INT8 and the per-layer profile) and the seconds its build took (``build_seconds``)."""
    calib, val, selection, heldout = sets
    in_backend_int8 = precision == "int8" and graph == fp32_onnx
    control = (AccuracyControl(selection, req.accuracy_budget)
               if in_backend_int8 and req.accuracy_budget is not None else None)
    built = _backend_build(stages, out, target, precision, graph, calib, profile, control)
    artifact = Path(built["path"])
    row = _validate(stages, target, precision, artifact, val, reference, source, profile, req, fidelity_only)
    if heldout and precision == "int8":
        row["heldout"] = _heldout(stages, target, fp32_onnx, artifact, selection, heldout, req.accuracy_budget)
        row["notes"] = [*(row.get("notes") or []), f"held-out check: {row['heldout']['explanation']}"]
    row["profile"] = _layer_profile(stages, target, precision, artifact)
    return {**row, "build_seconds": built["build_seconds"]}, artifact


def _target_key(target: Target) -> dict[str, Any]:
    """Everything about a target that changes what is built or measured (not where its file lies)."""
    return target.to_dict() | {"source": None}


def _export(stages: Stages, out: Path, source: ModelSource) -> Path:
    path = out / "onnx" / "model.onnx"

    def run() -> dict[str, Any]:
        from edgeres.export import export_onnx

        export_onnx(build_model(source), path, input_size=source.input_size, preprocess=source.preprocess,
                    checkpoint=source.weights, classes=source.classes)
        return {"path": str(path), "sha256": sha256_file(path)}

    return Path(stages.run("export onnx", {"model": source.key(), "edgeres": __version__}, run,
                           outputs=lambda r: [Path(r["path"])])["path"])


def _reference(stages: Stages, out: Path, fp32_onnx: Path, val: Any,
               classes: list[str] | None) -> dict[str, np.ndarray | None]:
    """FP32 logits of the validation set on ONNX Runtime: what every precision is compared with."""
    path = out / ".cache" / "reference.npz"

    def run() -> dict[str, Any]:
        from edgeres.fileio import atomic_path
        from edgeres.measure import label_map
        from edgeres.validate import collect_logits

        with backend.load(artifact) as runner:
            logits, labels = collect_logits(runner, val, progress="FP32 reference")
        remap = label_map(getattr(val, "classes", None), classes)
        if remap is not None and labels is not None:  # the set's class folders are ordered unlike the model's
            labels = remap[labels]
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, logits=logits, **({"labels": labels} if labels is not None else {}))
        return {"path": str(path)}

    artifact = Artifact.load(fp32_onnx)
    backend = backend_for(artifact)
    key = {"onnx": sha256_file(fp32_onnx), "val": val.fingerprint(), "classes": classes}
    result = stages.run(f"FP32 reference ({backend.name})", key, run, outputs=lambda r: [Path(r["path"])])
    with np.load(result["path"]) as data:
        return {"logits": data["logits"], "labels": data.get("labels", None)}


def _quantize(stages: Stages, out: Path, target: Target, fp32_onnx: Path, calib: Any, val: Any,
              heldout: tuple[Any, str] | None, req: BuildRequest, budget: float) -> dict[str, Any]:
    """The Q/DQ INT8 ONNX: {"path", "seconds"} (calibration and graph rewriting)."""
    placement = get_backend(target.backend).int8_placement(target)
    path = out / "onnx" / f"model.int8.{placement}.onnx"
    use_budget = req.accuracy_budget is not None
    method = req.method or DEFAULT_METHOD

    def run() -> dict[str, Any]:
        from edgeres.quantize import quantize_onnx

        start = time.perf_counter()
        quantize_onnx(fp32_onnx, calib, path, method=method, keep_fp=req.keep_fp, placement=placement,
                      val=val if use_budget else None, accuracy_budget=budget if use_budget else None,
                      test=heldout[0] if heldout else None, holdout=0)
        return {"path": str(path), "seconds": round(time.perf_counter() - start, 2)}

    key = {"onnx": sha256_file(fp32_onnx), "calib": calib.fingerprint(), "method": method, "placement": placement,
           "keep_fp": req.keep_fp, "budget": budget if use_budget else None,
           "val": val.fingerprint() if use_budget else None,
           "heldout": heldout[0].fingerprint() if use_budget and heldout else None}
    return stages.run("INT8 Q/DQ (calibrate)", key, run, outputs=lambda r: [Path(r["path"])])


def _backend_build(stages: Stages, out: Path, target: Target, precision: str, graph: Path, calib: Any,
                   profile: BatchProfile, control: AccuracyControl | None) -> dict[str, Any]:
    """The backend's artifact for one precision: {"path", "build_seconds"}.

    ``control`` (validation set, accuracy budget) goes to an INT8 build that calibrates in the
    backend itself (``Backend.int8_placement`` is None), for its accuracy-controlled quantization.
    """
    where = out / target.name / precision

    def run() -> dict[str, Any]:
        spec = BuildSpec(target=target, precision=precision, out_dir=where, batch=profile, calibration=calib,
                         accuracy_control=control)
        start = time.perf_counter()
        artifact = get_backend(target.backend).build(graph, spec)
        return {"path": str(artifact.path), "build_seconds": round(time.perf_counter() - start, 2)}

    key = {"graph": sha256_file(graph), "target": _target_key(target), "precision": precision,
           "profile": str(profile), "calib": calib.fingerprint() if precision == "int8" else None,
           "accuracy_control": {"val": control.validation.fingerprint(), "budget": control.budget} if control else None}
    return stages.run(f"build {target.backend} {precision}", key, run, outputs=lambda r: [Path(r["path"])])


def _validate(stages: Stages, target: Target, precision: str, artifact_path: Path, val: Any,
              reference: dict[str, np.ndarray | None], source: ModelSource, profile: BatchProfile,
              req: BuildRequest, fidelity_only: bool) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        from edgeres.measure import measure
        from edgeres.validate.frames import first_batch, measure_frames

        artifact = Artifact.load(artifact_path)
        with get_backend(target.backend).load(artifact) as runner:
            measured = measure(runner, val, artifact=artifact, target=target.name,
                               input_shape=(3, source.input_size, source.input_size),
                               batch_sizes=(1,), throughput_batches=sorted({1, profile.max}),
                               min_runs=req.bench_runs, min_seconds=req.bench_seconds,
                               labels=reference["labels"], reference=reference["logits"],  # the model's numbering
                               fidelity_only=fidelity_only, progress=f"validate {precision}")
            frames = measure_frames(artifact, runner, source.preprocess, first_batch(val, 32),
                                    seconds=req.bench_seconds)
        return {**measured.row(artifact=str(artifact.path), frames=frames),
                "e2e_host_p50_ms": frames.get("e2e_host_p50_ms"), "e2e_fused_p50_ms": frames.get("e2e_fused_p50_ms")}

    key = {"artifact": sha256_file(artifact_path), "target": _target_key(target), "val": val.fingerprint(),
           "seconds": req.bench_seconds, "runs": req.bench_runs, "profile": str(profile), "model": source.key(),
           "fidelity_only": fidelity_only, "row": 2}  # 2: rows carry the loss's 95% interval and n_val
    return stages.run(f"validate + bench {precision}", key, run, force=req.rebench)


def _split(req: BuildRequest, val: Any, source: ModelSource, int8: bool) -> tuple[Any, tuple[Any, str] | None]:
    """(selection set, (held-out set, how) or None): the budget chooses on one, is judged on the other."""
    from edgeres.data.split import DEFAULT_HOLDOUT
    from edgeres.quantize.heldout import selection_and_heldout

    if req.accuracy_budget is None or not int8:
        return val, None
    test = open_set(req.test, preprocess=source.preprocess) if req.test else None
    holdout = DEFAULT_HOLDOUT if req.holdout is None else req.holdout
    selection, held, how = selection_and_heldout(val, test, holdout)
    return selection, ((held, how) if held is not None else None)


def _heldout(stages: Stages, target: Target, fp32_onnx: Path, artifact_path: Path, selection: Any,
             heldout: tuple[Any, str], budget: float) -> dict[str, Any]:
    """The INT8 artifact against FP32 on the held-out images, as the target runs it (report row ``heldout``)."""
    held, how = heldout

    def run() -> dict[str, Any]:
        from edgeres.quantize.heldout import judge_runners

        artifact = Artifact.load(artifact_path)
        reference = Artifact.load(fp32_onnx)
        loss = (artifact.metadata.get("accuracy_budget") or {}).get("final", {}).get("loss")
        with backend_for(reference).load(reference) as ref, get_backend(target.backend).load(artifact) as cand:
            return judge_runners(ref, cand, held, budget=budget, selection_images=len(selection),
                                 selection_loss=loss, split=how).to_dict()

    key = {"artifact": sha256_file(artifact_path), "onnx": sha256_file(fp32_onnx), "target": _target_key(target),
           "selection": selection.fingerprint(), "heldout": held.fingerprint(), "budget": budget}
    result = stages.run("held-out check int8", key, run)
    sys.stderr.write(f"held-out check int8: {result['explanation']}\n")
    return result


def _layer_profile(stages: Stages, target: Target, precision: str, artifact_path: Path) -> dict[str, Any] | None:
    """Per-layer time of one artifact by its runtime's profiler, by stage (report row ``profile``);
    None when the backend's runner cannot profile."""
    def run() -> dict[str, Any]:
        from edgeres.errors import EdgeresError
        from edgeres.validate.layers import profile_runner

        with get_backend(target.backend).load(Artifact.load(artifact_path)) as runner:
            try:
                return {"profile": profile_runner(runner, batch=1, runs=20)}
            except EdgeresError as exc:
                return {"profile": None, "why": str(exc)}

    key = {"artifact": sha256_file(artifact_path), "target": _target_key(target)}
    return stages.run(f"per-layer profile {precision}", key, run)["profile"]  # type: ignore[no-any-return]


def _kit(stages: Stages, out: Path, target: Target, precisions: list[str], fp32_onnx: Path, qdq_onnx: Path | None,
         val: Any, reference: dict[str, np.ndarray | None], source: ModelSource, profile: BatchProfile) -> Path:
    where = out / f"kit-{target.name}"

    def run() -> dict[str, Any]:
        from edgeres.kit import write_kit

        inputs = val.head(SLICE_SIZE)
        n = len(inputs)
        labels = reference["labels"]
        write_kit(where, target=target, fp32_onnx=fp32_onnx, qdq_onnx=qdq_onnx, precisions=precisions,
                  inputs=inputs, labels=None if labels is None else labels[:n],
                  reference_logits=reference["logits"][:n], preprocess=source.preprocess,
                  model=source.describe(), batch=profile, slice_size=SLICE_SIZE)
        return {"path": str(where)}

    key = {"fp32": sha256_file(fp32_onnx), "qdq": sha256_file(qdq_onnx) if qdq_onnx else None,
           "target": _target_key(target), "precisions": precisions, "val": val.fingerprint(), "model": source.key(),
           "profile": str(profile)}
    return Path(stages.run(f"device kit {target.name}", key, run, outputs=lambda r: [Path(r["path"])])["path"])


def _report(out: Path, target: Target, source: ModelSource, rows: list[dict[str, Any]], recommended: str | None,
            budget: float, warnings: list[str], kit_dir: Path | None, kit_reason: str | None) -> Path:
    from edgeres.report import write_report

    notes = list(warnings)
    if recommended:
        notes.append(f"recommended precision on {target.name}: {recommended} (fastest p50 at batch 1 within the "
                     f"accuracy budget of {budget} points)")
    elif rows:
        notes.append(f"no precision met the accuracy budget of {budget} points on {target.name}")
    if kit_dir is not None:
        notes.append(f"{target.name}: {kit_reason}. Engines are built on the device: copy {kit_dir.name}.tar.gz "
                     f"there, run `edgeres kit build {kit_dir.name}`, copy its `engines/` folder back into {kit_dir}, "
                     f"and merge: `edgeres report {out} {kit_dir} --out {out / 'merged'}`")
    timing: dict[str, Any] = {"where": "nothing was timed on this host: the device kit measures its rows"}
    if rows:
        first = rows[0]["extra"]["latency"][0]
        timing = {"where": get_backend(target.backend).timed_on, "what": first.get("timed"),
                  "batch": 1, "threads": first.get("threads"), "warmup": first.get("warmup"),
                  "runs": f"until at least {first.get('min_runs')} runs and {first.get('min_seconds')} s (n per row)"}
    write_report(rows, out, timing=timing, title=f"edgeres build: ResNet-{source.depth} on {target.name}",
                 model=source.describe(), notes=notes)
    return out


def _bundle(stages: Stages, out: Path, target: Target, artifact_path: Path, source: ModelSource,
            rows: list[dict[str, Any]], precision: str) -> Path:
    where = out / "bundle"
    row = next(r for r in rows if r["precision"] == precision)
    metrics = {k: row.get(k) for k in ("top1", "top1_drop", "agreement", "cosine", "p50_ms", "p99_ms", "throughput")}

    def run() -> dict[str, Any]:
        from edgeres.bundle.package import make_bundle

        make_bundle(Artifact.load(artifact_path), where, target=target, model_info=source.describe(),
                    preprocess=source.preprocess, labels=source.classes, metrics=metrics)
        return {"path": str(where)}

    key = {"artifact": sha256_file(artifact_path), "target": _target_key(target), "metrics": metrics,
           "model": source.key()}
    return Path(stages.run(f"bundle ({precision})", key, run, outputs=lambda r: [Path(r["path"])])["path"])
