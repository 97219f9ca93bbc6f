"""Device build kits: everything a Jetson (or any NVIDIA GPU) needs to build and check its own engines.

TensorRT engines only run on the GPU architecture and TensorRT version that built them, so
a host that cannot build for the device writes a kit instead (``write_kit``), and the
device runs ``edgeres kit build KIT`` (``build_kit``): it builds the engine(s) with its own
TensorRT, validates them on the kit's validation slice against the labels and the FP32
reference logits, benchmarks them, and writes ``kit-report.json``.

Layout of a kit directory (also packed as ``<kit>.tar.gz``)::

    kit.json                     versioned manifest: target, precisions, profile, files + sha256
    README.md                    what to run on the device, and the equivalent trtexec lines
    preprocess.json              the preprocessing the validation slice (and your app) uses
    onnx/model_fp32.onnx         FP32 ONNX: FP16 (weakly typed) and FP32 engines
    onnx/model_fp16.onnx         FP16 copy, FP32 I/O: FP16 engines on strongly typed TensorRT
    onnx/model_int8_qdq.onnx     explicitly quantized (Q/DQ) ONNX: INT8 engines
    validation/inputs.npy        preprocessed inputs (N, C, H, W) float32
    validation/labels.npy        their labels (N,) int64, when known
    validation/reference_logits.npy   FP32 reference logits (N, classes) float32

The device side needs only ``tensorrt``, numpy and a CUDA binding: no torch, no image
decoding (the slice is already preprocessed), no onnx.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import __version__
from edgeres.backends.base import BatchProfile
from edgeres.backends.tensorrt_compat import (
    DEFAULT_OPTIONS,
    MIN_TENSORRT,
    EnginePlan,
    check_target_precision,
    int8_refusal,
    parse_version,
    plan_engine,
    profile_shapes,
    resolve_options,
    trtexec_command,
)
from edgeres.bundle.archive import safe_extract, write_tar_gz
from edgeres.bundle.manifest import check_schema
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, check_replaceable, load_json, now_utc, sha256_file, write_json_atomic
from edgeres.validate import compare, measure_latency
from edgeres.validate.metrics import run_batch

KIT_SCHEMA = "edgeres-kit"
KIT_SCHEMA_VERSION = 1
KIT_JSON = "kit.json"
REPORT_JSON = "kit-report.json"
DEFAULT_SLICE = 256
ONNX_FILES = {"fp32": "onnx/model_fp32.onnx", "fp16": "onnx/model_fp16.onnx", "int8": "onnx/model_int8_qdq.onnx"}
VALIDATION_FILES = {"inputs": "validation/inputs.npy", "labels": "validation/labels.npy",
                    "reference_logits": "validation/reference_logits.npy"}
# Which ONNX each build needs, by the plan's onnx_role.
ROLE_TO_ONNX = {"qdq": "int8", "fp32": "fp32", "fp16": "fp16"}


@dataclass(frozen=True)
class KitResult:
    path: Path          # the kit directory
    tarball: Path | None
    manifest: dict[str, Any]


# --- writing (host side) -----------------------------------------------------------------------

def _as_target(target: Any) -> Any:
    if isinstance(target, str):
        from edgeres.targets import get_target

        return get_target(target)
    return target


def _check_arrays(inputs: np.ndarray, labels: np.ndarray | None, reference: np.ndarray, slice_size: int | None
                  ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    inputs = np.asarray(inputs)
    reference = np.asarray(reference)
    if inputs.ndim != 4:
        raise EdgeresError(f"validation inputs must be (N, C, H, W), got shape {inputs.shape}")
    if reference.ndim != 2 or len(reference) != len(inputs):
        raise EdgeresError(f"reference logits must be (N, classes) with N = {len(inputs)} inputs, "
                           f"got shape {reference.shape}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(inputs),):
            raise EdgeresError(f"labels must be (N,) with N = {len(inputs)}, got shape {labels.shape}")
    if len(inputs) == 0:
        raise EdgeresError("the validation slice is empty: give at least one preprocessed input")
    n = len(inputs) if slice_size is None else min(int(slice_size), len(inputs))
    return (np.ascontiguousarray(inputs[:n], dtype=np.float32),
            None if labels is None else np.ascontiguousarray(labels[:n], dtype=np.int64),
            np.ascontiguousarray(reference[:n], dtype=np.float32))


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def kit_plans(precisions: Sequence[str], options: Mapping[str, Any], batch: BatchProfile, min_tensorrt: str,
              have_fp16_onnx: bool) -> dict[str, dict[str, EnginePlan]]:
    """For the README and kit.json: how each precision builds on older (weak) and newer (strong) TensorRT."""
    plans: dict[str, dict[str, EnginePlan]] = {}
    old = max(parse_version(min_tensorrt), MIN_TENSORRT)
    for p in precisions:
        weak = plan_engine(p, old, {**options, "typed_mode": "weak"}, batch=batch)
        strong = plan_engine(p, (10, 12), {**options, "typed_mode": "strong"}, batch=batch,
                             have_fp16_onnx=have_fp16_onnx)
        plans[p] = {"weak": weak, "strong": strong}
    return plans


def _readme(manifest: dict[str, Any], plans: dict[str, dict[str, EnginePlan]], shapes: Any, name: str) -> str:
    target = manifest["target"]
    lines = [
        f"# edgeres device kit: {manifest['model'].get('name', 'model')} for {target['name']}",
        "",
        (f"Target: {target['name']} ({target.get('description', '')}). "
         f"Precisions: {', '.join(manifest['precisions'])}. Batch profile (min:opt:max): "
         f"{manifest['profiles']['batch']}. Needs TensorRT >= {manifest['min_tensorrt']}."),
        "",
        "TensorRT engines only run on the GPU and TensorRT version that built them, so build them on the device:",
        "",
        "    pip install edgeres            # on the device; needs tensorrt (JetPack), numpy and cuda-python",
        f"    edgeres kit build {name}      # or {name}.tar.gz: builds, validates, benchmarks",
        "",
        (f"It writes the engines and `{REPORT_JSON}` (accuracy vs labels and vs the FP32 reference on the "
         f"{manifest['validation']['n']}-input validation slice, and latency) into `{name}/engines/`."),
        "",
        "## Equivalent trtexec command lines",
        "",
        ("Run from this directory. TensorRT before 10.12 (JetPack 5: 8.5, JetPack 6: 8.6 / 10.3) builds weakly "
         "typed with precision flags; TensorRT 10.12 and newer builds strongly typed, precision taken from the ONNX."),
    ]
    for p, modes in plans.items():
        lines += ["", f"### {p}", ""]
        for mode, label in (("weak", "TensorRT < 10.12"), ("strong", "TensorRT >= 10.12")):
            plan = modes[mode]
            onnx = manifest["onnx"].get(ROLE_TO_ONNX[plan.onnx_role]) or "(missing)"
            cmd = trtexec_command(plan, onnx, f"engines/model_{p}.engine", manifest["input"]["name"], shapes,
                                  timing_cache="engines/timing.cache")
            lines += [f"{label}:", "", f"    {cmd}", ""]
            lines += [f"- {note}" for note in plan.notes]
            if plan.notes:
                lines.append("")
    if parse_version(manifest["min_tensorrt"]) < MIN_TENSORRT:
        lines += [("Older TensorRT (8.2, JetPack 4.6 on Jetson Nano): `edgeres kit build` needs TensorRT 8.5 or "
                   "newer, so build there with the weakly typed trtexec lines above, writing `--workspace=N` (MiB) "
                   "instead of `--memPoolSize=workspace:N` (added in 8.4)."), ""]
    lines += _frames_and_cpp_lines(manifest)
    lines += ["## Files", "", "| file | sha256 |", "| --- | --- |"]
    lines += [f"| `{f}` | `{h[:16]}...` |" for f, h in manifest["files"].items()]
    return "\n".join(lines) + "\n"


def _frames_and_cpp_lines(manifest: dict[str, Any]) -> list[str]:
    """README: engines that take camera frames, and running the engines from C++ (examples/cpp)."""
    onnx = manifest["onnx"].get("int8") or manifest["onnx"]["fp32"]
    frame_onnx = onnx.replace(".onnx", ".frame.onnx")
    size = "x".join(str(d) for d in manifest["input"]["shape"][2:])
    return ["## Camera frames and C++", "",
            "For an engine that takes uint8 HWC frames (cast, colour order, mean/std and layout inside it), write "
            "the frame-input ONNX (input `frame`) and build it with the lines above, `--shapes=frame:1x" + size + "x3`:",
            "", f"    python -m edgeres.export.frame_input {onnx} {frame_onnx} --preprocess preprocess.json --order BGR",
            "", "edgeres's `examples/cpp` runs an engine of a bundle (`edgeres package engines/model_<p>.engine "
            "--target " + manifest["target"]["name"] + " --out bundle`) with TensorRT's C++ runtime (enqueueV3 on a "
            "CUDA stream):", "",
            "    cmake -S examples/cpp -B build/cpp -DEDGERES_WITH_TENSORRT=ON -DEDGERES_WITH_OPENVINO=OFF",
            "    cmake --build build/cpp -j && build/cpp/edgeres_run bundle image.jpg --bench 200", ""]


def write_kit(out: str | os.PathLike[str], *, target: Any, fp32_onnx: str | os.PathLike[str],
              qdq_onnx: str | os.PathLike[str] | None, precisions: Sequence[str], inputs: np.ndarray,
              labels: np.ndarray | None, reference_logits: np.ndarray, preprocess: Any,
              model: Mapping[str, Any] | None = None, batch: BatchProfile | str | None = None,
              fp16_onnx: str | os.PathLike[str] | bool = True, slice_size: int | None = DEFAULT_SLICE,
              options: Mapping[str, Any] | None = None, tarball: bool = True) -> KitResult:
    """Write a device build kit directory ``out`` (and ``out.tar.gz``), atomically.

    ``target``: a Target (or a target name); ``fp32_onnx``: the FP32 ONNX (dynamic batch);
    ``qdq_onnx``: the Q/DQ INT8 ONNX (needed when ``precisions`` has int8); ``inputs``,
    ``labels``, ``reference_logits``: the validation slice (preprocessed NCHW float32, int
    labels or None, FP32 logits), cut to ``slice_size``; ``preprocess``: a PreprocessSpec
    or its dict; ``model``: metadata (name, depth, num_classes, classes, ...); ``batch``: the
    batch profile (default: the target's); ``fp16_onnx``: True to make the FP16 copy here
    (needs onnx), a path to use one, False for none; ``options``: TensorRT option overrides.
    """
    from edgeres.backends.tensorrt_onnx import to_fp16
    from edgeres.onnxutil import is_quantized, onnx_input_spec

    target = _as_target(target)
    out = Path(out)
    if target.backend != "tensorrt":
        raise EdgeresError(f"target {target.name} uses {target.backend}, not TensorRT: it needs no device kit")
    precisions = list(dict.fromkeys(precisions))
    if not precisions:
        raise EdgeresError("a kit needs at least one precision")
    for p in precisions:
        check_target_precision(target.name, target.precisions, target.device, p)
    fp32_onnx = Path(fp32_onnx)
    if not fp32_onnx.is_file():
        raise EdgeresError(f"FP32 ONNX {fp32_onnx} does not exist")
    if "int8" in precisions:
        if qdq_onnx is None or not Path(qdq_onnx).is_file():
            raise EdgeresError("an int8 kit needs the Q/DQ ONNX from edgeres quantize (qdq_onnx)")
        if not is_quantized(qdq_onnx):
            raise EdgeresError(f"{qdq_onnx} has no QuantizeLinear/DequantizeLinear nodes: it is not a Q/DQ INT8 ONNX")
    batch = BatchProfile.parse(batch) if isinstance(batch, str) else (batch or target.batch_profile)
    opts = resolve_options(target.options, options)
    spec = onnx_input_spec(fp32_onnx)
    shapes = profile_shapes(spec["shape"], batch)
    inputs, labels, reference = _check_arrays(inputs, labels, reference_logits, slice_size)
    expected = tuple(int(d) for d in spec["shape"][1:])
    if tuple(inputs.shape[1:]) != expected:
        raise EdgeresError(f"validation inputs have shape {inputs.shape[1:]} per image but the ONNX input "
                           f"{spec['name']} expects {expected}")
    pre = preprocess.to_dict() if hasattr(preprocess, "to_dict") else dict(preprocess)
    target_dict = {k: v for k, v in target.to_dict().items() if k != "source"}
    check_replaceable(out, KIT_JSON, "kit")
    with atomic_path(out) as tmp:
        (tmp / "onnx").mkdir(parents=True)
        (tmp / "validation").mkdir()
        onnx_files: dict[str, str] = {"fp32": ONNX_FILES["fp32"]}
        shutil.copyfile(fp32_onnx, tmp / ONNX_FILES["fp32"])
        if "int8" in precisions and qdq_onnx is not None:
            shutil.copyfile(qdq_onnx, tmp / ONNX_FILES["int8"])
            onnx_files["int8"] = ONNX_FILES["int8"]
        if "fp16" in precisions and fp16_onnx is not False:
            if fp16_onnx is True:
                to_fp16(fp32_onnx, tmp / ONNX_FILES["fp16"])
            else:
                shutil.copyfile(Path(fp16_onnx), tmp / ONNX_FILES["fp16"])
            onnx_files["fp16"] = ONNX_FILES["fp16"]
        (tmp / VALIDATION_FILES["inputs"]).write_bytes(_npy_bytes(inputs))
        (tmp / VALIDATION_FILES["reference_logits"]).write_bytes(_npy_bytes(reference))
        if labels is not None:
            (tmp / VALIDATION_FILES["labels"]).write_bytes(_npy_bytes(labels))
        (tmp / "preprocess.json").write_text(json.dumps(pre, indent=2) + "\n")
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        plans = kit_plans(precisions, opts, batch, str(opts["min_tensorrt"]), "fp16" in onnx_files)
        manifest: dict[str, Any] = {
            "schema": KIT_SCHEMA, "schema_version": KIT_SCHEMA_VERSION, "edgeres_version": __version__,
            "created_at": now_utc(),
            "target": target_dict, "precisions": precisions, "min_tensorrt": str(opts["min_tensorrt"]),
            "options": {k: opts[k] for k in DEFAULT_OPTIONS},
            "input": {"name": spec["name"], "shape": spec["shape"], "dtype": spec["dtype"]},
            "profiles": {"batch": str(batch), "input": spec["name"],
                         **({"min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2])}
                            if shapes else {"static": list(spec["shape"])})},
            "onnx": onnx_files,
            "builds": {p: {mode: {"onnx": onnx_files.get(ROLE_TO_ONNX[plan.onnx_role]), "plan": plan.to_dict()}
                           for mode, plan in modes.items()} for p, modes in plans.items()},
            "validation": {"n": len(inputs), "inputs": VALIDATION_FILES["inputs"],
                           "labels": VALIDATION_FILES["labels"] if labels is not None else None,
                           "reference_logits": VALIDATION_FILES["reference_logits"],
                           "num_classes": int(reference.shape[1])},
            "preprocess": "preprocess.json",
            "model": dict(model or {}),
            "files": files,
        }
        (tmp / "README.md").write_text(_readme(manifest, plans, shapes, out.name))
        (tmp / KIT_JSON).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    tar_path = None
    if tarball:
        tar_path = out.with_name(out.name + ".tar.gz")
        write_tar_gz(out, tar_path)
    return KitResult(out, tar_path, manifest)


# --- reading -----------------------------------------------------------------------------------

def _extract(tar_path: Path, dest: Path) -> Path:
    """Unpack a kit tarball (one top-level folder) into ``dest``, atomically and safely."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".edgeres-kit-", dir=dest) as tmp:
        tops = list(safe_extract(tar_path, tmp).iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise EdgeresError(f"kit {tar_path} should hold one top-level folder, found {sorted(p.name for p in tops)}")
        root = dest / tops[0].name
        if root.exists():
            # Unpacked before (engines may have been built in it since): reuse it if it is the same kit.
            same = (root / KIT_JSON).is_file() and (root / KIT_JSON).read_bytes() == (tops[0] / KIT_JSON).read_bytes()
            if not same:
                raise EdgeresError(f"{root} already exists and is not the kit in {tar_path.name}: remove it, or give "
                                   "the kit folder instead of the tarball")
            return root
        with atomic_path(root) as final:
            os.replace(tops[0], final)
    return root


@dataclass
class Kit:
    root: Path
    manifest: dict[str, Any]

    def file(self, rel: str) -> Path:
        return self.root / rel

    @property
    def precisions(self) -> list[str]:
        return list(self.manifest["precisions"])

    def target(self) -> Any:
        from edgeres.targets import parse_target

        data = {k: v for k, v in self.manifest["target"].items() if k != "source" and v is not None}
        return parse_target(data, self.root / KIT_JSON)

    def batch(self) -> BatchProfile:
        return BatchProfile.parse(self.manifest["profiles"]["batch"])

    def verify(self) -> None:
        """Every file present and unchanged since the kit was written."""
        for rel, digest in self.manifest["files"].items():
            path = self.root / rel
            if not path.is_file():
                raise EdgeresError(f"kit {self.root} is missing {rel}: copy the whole kit (or its .tar.gz)")
            if sha256_file(path) != digest:
                raise EdgeresError(f"kit file {rel} does not match its sha256 in {KIT_JSON}: "
                                   "the kit was modified or damaged in transit; copy it again")

    def validation(self) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        v = self.manifest["validation"]
        inputs = np.load(self.file(v["inputs"]), allow_pickle=False)
        labels = np.load(self.file(v["labels"]), allow_pickle=False) if v.get("labels") else None
        reference = np.load(self.file(v["reference_logits"]), allow_pickle=False)
        return inputs, labels, reference


def load_kit(path: str | os.PathLike[str], extract_to: str | os.PathLike[str] | None = None) -> Kit:
    """A kit from its directory or its ``.tar.gz`` (extracted beside it, or into ``extract_to``)."""
    path = Path(path)
    if path.is_file() and (path.name.endswith((".tar.gz", ".tgz", ".tar"))):
        path = _extract(path, Path(extract_to) if extract_to else path.parent)
    if not path.is_dir():
        raise EdgeresError(f"kit {path} does not exist (give the kit folder or its .tar.gz)")
    manifest_path = path / KIT_JSON
    if not manifest_path.is_file():
        raise EdgeresError(f"{path} is not an edgeres kit: it has no {KIT_JSON}")
    manifest = check_schema(load_json(manifest_path, "kit manifest", "copy the kit again"), schema=KIT_SCHEMA,
                            version=KIT_SCHEMA_VERSION, what="kit manifest", where=str(manifest_path),
                            required=("target", "precisions", "onnx", "validation", "files", "profiles", "input"))
    return Kit(path, manifest)


# --- building on the device --------------------------------------------------------------------

def _execution_precision(plan: EnginePlan) -> str:
    if plan.precision == "int8":
        return "int8+fp16" if "FP16" in plan.builder_flags else "int8+fp32"
    return plan.precision


def build_kit(kit_path: str | os.PathLike[str], *, precisions: Sequence[str] | None = None,
              out: str | os.PathLike[str] | None = None, batch_sizes: Sequence[int] | None = None,
              iterations: int = 100, warmup: int = 10, options: Mapping[str, Any] | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """On the device: build the kit's engines, validate and benchmark them, write ``kit-report.json``.

    Returns the report. ``options`` override the kit's TensorRT options (e.g. dla_core,
    typed_mode); ``out`` defaults to ``KIT/engines``.
    """
    from edgeres.backends import tensorrt as trt_backend

    say = log or (lambda _msg: None)
    trt = trt_backend.require_tensorrt()  # the clear "not installed / no GPU" error first
    gpu = trt_backend.gpu_info()
    kit = load_kit(kit_path)
    kit.verify()
    target = kit.target()
    wanted = list(precisions) if precisions else kit.precisions
    for p in wanted:
        check_target_precision(target.name, target.precisions, target.device, p)
        if p not in kit.precisions:
            raise EdgeresError(f"kit was written for {', '.join(kit.precisions)}, not {p}: rewrite it with "
                               f"--precision {','.join(sorted(set(kit.precisions) | {p}))}")
        if p == "int8" and int8_refusal(gpu.cc):
            raise EdgeresError(f"int8 on {gpu.name}: {int8_refusal(gpu.cc)}")
    version = parse_version(str(trt.__version__))
    if version < parse_version(kit.manifest["min_tensorrt"]):
        raise EdgeresError(f"TensorRT {trt.__version__} is older than the kit's minimum {kit.manifest['min_tensorrt']}")
    opts = resolve_options({**kit.manifest.get("options", {}), **target.options}, options)
    batch = kit.batch()
    out_dir = Path(out) if out else kit.root / "engines"
    out_dir.mkdir(parents=True, exist_ok=True)
    inputs, labels, reference = kit.validation()
    num_dla = trt_backend.dla_cores()
    warnings: list[str] = []
    declared = target.device.get("compute_capability")
    if declared not in (None, "device") and str(declared) != f"{gpu.cc[0]}.{gpu.cc[1]}":
        warnings.append(f"kit targets {target.name} (compute capability {declared}) but this GPU {gpu.name} is "
                        f"{gpu.cc[0]}.{gpu.cc[1]}: the engines are built for this GPU")
    sizes = list(batch_sizes) if batch_sizes else sorted({1, batch.opt, batch.max})
    shape = tuple(int(d) for d in inputs.shape[1:])
    if len(shape) != 3:
        raise EdgeresError(f"the kit's validation inputs are {inputs.shape}, not (N, C, H, W)")
    c, h, w = shape
    device_label = f"{gpu.name} (sm {gpu.cc[0]}.{gpu.cc[1]})"
    rows: list[dict[str, Any]] = []
    for p in wanted:
        plan = plan_engine(p, version, opts, batch=batch, num_dla_cores=num_dla,
                           have_fp16_onnx="fp16" in kit.manifest["onnx"])
        onnx_rel = kit.manifest["onnx"].get(ROLE_TO_ONNX[plan.onnx_role])
        if onnx_rel is None:
            raise EdgeresError(f"kit has no {ROLE_TO_ONNX[plan.onnx_role]} ONNX, which a {p} build needs")
        say(f"building {p} ({plan.typed_mode}ly typed) from {onnx_rel} ...")
        t0 = time.perf_counter()
        artifact = trt_backend.build_engine(
            kit.file(onnx_rel), out_dir / f"model_{p}.engine", plan, target=target.name, gpu=gpu,
            onnx_sha256=kit.manifest["files"][onnx_rel],
            extra_metadata={"kit": {"created_at": kit.manifest.get("created_at"), "model": kit.manifest.get("model")}})
        build_s = time.perf_counter() - t0
        runner = trt_backend.TensorRTRunner(artifact)
        try:
            say(f"validating {p} on {len(inputs)} inputs ...")
            logits = run_batch(runner, inputs)
            accuracy = compare(logits, labels, reference)
            say(f"benchmarking {p} (host wall clock, then device time) ...")
            runner.timing = "host"
            host = measure_latency(runner, (c, h, w), batch_sizes=sizes, iterations=iterations, warmup=warmup)
            runner.timing = "device"
            device = measure_latency(runner, (c, h, w), batch_sizes=sizes, iterations=iterations, warmup=warmup)
            runner.timing = "host"
        finally:
            runner.close()
        rows.append({
            "precision": p, "execution_precision": _execution_precision(plan),
            "accuracy": accuracy.to_dict(), "latency": [r.to_dict() for r in host],
            "size_bytes": artifact.path.stat().st_size, "build_seconds": round(build_s, 2),
            "fidelity_only": labels is None, "device": device_label, "timed": host[0].timed if host else None,
            "notes": list(plan.notes),
            "extra": {"engine": str(artifact.path), "typed_mode": plan.typed_mode, "plan": plan.to_dict(),
                      "device_latency": [r.to_dict() for r in device]},
        })
    env = {"tensorrt": str(trt.__version__), "gpu": gpu.to_dict(), "dla_cores": num_dla,
           "edgeres": __version__}
    timing = {"where": "device", "what": "host wall clock per call, H2D + execute_async_v3 + D2H + sync "
              "(device time of execute_async_v3 alone, from CUDA events, in each row's extra.device_latency)",
              "batch": sizes, "warmup": warmup, "iterations": iterations}
    report = {
        "schema": "edgeres-kit-report", "schema_version": 1, "edgeres_version": __version__,
        "title": f"kit report: {target.name} on {gpu.name}",
        "created": now_utc(),
        "kit": str(kit.root), "target": target.name, "model": kit.manifest.get("model", {}),
        "environment": env, "timing": timing, "notes": warnings,
        "validation": {"n": len(inputs), "labels": labels is not None},
        "rows": rows,
    }
    write_json_atomic(out_dir / REPORT_JSON, report)
    try:
        from edgeres.hostinfo import environment
        from edgeres.report import write_report

        write_report([{"target": target.name, "backend": "tensorrt", **r} for r in rows], out_dir, timing=timing,
                     title=report["title"], model=report["model"], notes=warnings,
                     env={**environment(), **env})
    except ImportError:  # pragma: no cover - report module absent in a trimmed install
        pass
    return report


def needs_kit(target: Any) -> str | None:
    """Why ``target`` cannot be built on this machine (so a kit is written instead), or None if it can."""
    from edgeres.backends import tensorrt as trt_backend

    target = _as_target(target)
    if target.backend != "tensorrt":
        return None
    available = trt_backend.BACKEND.available()
    if not available.ok:
        return available.reason
    declared = target.device.get("compute_capability")
    here = available.details.get("compute_capability")
    if declared not in (None, "device") and str(declared) != str(here):
        return (f"this GPU is compute capability {here}, the target {target.name} is {declared}: "
                "engines must be built on the device")
    return None


__all__ = ["DEFAULT_SLICE", "KIT_JSON", "KIT_SCHEMA", "KIT_SCHEMA_VERSION", "REPORT_JSON", "Kit", "KitResult",
           "build_kit", "load_kit", "needs_kit", "write_kit"]
