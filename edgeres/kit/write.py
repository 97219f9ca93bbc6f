"""Writing a device kit on the host: the ONNX files, the validation slice with its FP32
reference logits, ``kit.json`` and a README with the equivalent trtexec lines.

The kit describes TensorRT builds (``edgeres.backends.tensorrt_plan``, one recipe per TensorRT
generation in ``tensorrt_recipes``), which needs no TensorRT. Every ONNX it ships is proven here
first (``tensorrt_proof``: ONNX Runtime against the FP32 reference, and the Q/DQ lint).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeres import __version__
from edgeres.artifact import BatchProfile
from edgeres.backends.tensorrt_plan import DEFAULT_OPTIONS, check_target_precision, profile_shapes, resolve_options
from edgeres.backends.tensorrt_render import check_rendered, render_recipes, target_recipes
from edgeres.bundle.archive import write_tar_gz
from edgeres.errors import EdgeresError
from edgeres.fileio import atomic_path, check_replaceable, now_utc, sha256_file
from edgeres.kit.layout import (
    DEFAULT_SLICE,
    KIT_JSON,
    KIT_SCHEMA,
    KIT_SCHEMA_VERSION,
    VALIDATION_FILES,
)
from edgeres.kit.readme import kit_readme


@dataclass(frozen=True)
class KitResult:
    path: Path          # the kit directory
    tarball: Path | None
    manifest: dict[str, Any]


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


def _check_sources(target: Any, precisions: list[str], fp32_onnx: Path, qdq_onnx: Path | None) -> None:
    """Refuse a kit its device could not build: wrong backend, unknown precision, missing ONNX."""
    from edgeres.backends import get_backend
    from edgeres.onnxutil import is_quantized

    if not get_backend(target.backend).builds_from_kit:
        raise EdgeresError(f"target {target.name} uses {target.backend}, not TensorRT: it needs no device kit")
    if not precisions:
        raise EdgeresError("a kit needs at least one precision")
    for p in precisions:
        check_target_precision(target.name, target.precisions, target.device, p)
    if not fp32_onnx.is_file():
        raise EdgeresError(f"FP32 ONNX {fp32_onnx} does not exist")
    if "int8" in precisions:
        if qdq_onnx is None or not qdq_onnx.is_file():
            raise EdgeresError("an int8 kit needs the Q/DQ ONNX from edgeres quantize (qdq_onnx)")
        if not is_quantized(qdq_onnx):
            raise EdgeresError(f"{qdq_onnx} has no QuantizeLinear/DequantizeLinear nodes: it is not a Q/DQ INT8 ONNX")


def _write_files(tmp: Path, precisions: list[str], fp32_onnx: Path, qdq_onnx: Path | None,
                 fp16_onnx: str | os.PathLike[str] | bool, slice_arrays: dict[str, np.ndarray | None],
                 preprocess: dict[str, Any], recipes: Sequence[Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The ONNX files (each proven on the slice), the validation slice and preprocess.json into ``tmp``;
    the ONNX files by key, and the proof."""
    from edgeres.backends.tensorrt_proof import prove_kit_files, write_kit_onnx

    (tmp / "onnx").mkdir(parents=True)
    (tmp / "validation").mkdir()
    inputs, reference = slice_arrays["inputs"], slice_arrays["reference_logits"]
    if inputs is None or reference is None:
        raise EdgeresError("a kit needs its validation inputs and FP32 reference logits")
    written = write_kit_onnx(tmp, fp32_onnx, qdq_onnx, fp16_onnx, precisions, inputs[:32], recipes)
    proof = prove_kit_files(tmp, written["files"], inputs, slice_arrays["labels"], reference)
    proof["conversions"] = written["conversions"]
    for key, arr in slice_arrays.items():
        if arr is not None:
            (tmp / VALIDATION_FILES[key]).write_bytes(_npy_bytes(arr))
    (tmp / "preprocess.json").write_text(json.dumps(preprocess, indent=2) + "\n")
    return written["files"], proof


def _manifest(target: Any, precisions: list[str], opts: dict[str, Any], spec: dict[str, Any], batch: BatchProfile,
              onnx_files: dict[str, str], extra: dict[str, Any], slice_arrays: dict[str, Any],
              model: Mapping[str, Any] | None, files: dict[str, str]) -> dict[str, Any]:
    shapes = profile_shapes(spec["shape"], batch)
    inputs, labels, reference = (slice_arrays[k] for k in ("inputs", "labels", "reference_logits"))
    return {
        "schema": KIT_SCHEMA, "schema_version": KIT_SCHEMA_VERSION, "edgeres_version": __version__,
        "created_at": now_utc(),
        "target": {k: v for k, v in target.to_dict().items() if k != "source"}, "precisions": precisions,
        "min_tensorrt": str(opts["min_tensorrt"]), "options": {k: opts[k] for k in DEFAULT_OPTIONS},
        "input": {"name": spec["name"], "shape": spec["shape"], "dtype": spec["dtype"]},
        "profiles": {"batch": str(batch), "input": spec["name"],
                     **({"min": list(shapes[0]), "opt": list(shapes[1]), "max": list(shapes[2])}
                        if shapes else {"static": list(spec["shape"])})},
        "onnx": onnx_files,
        **extra,   # recipes (per TensorRT version: each engine's ONNX and trtexec lines) and proof
        "validation": {"n": len(inputs), "inputs": VALIDATION_FILES["inputs"],
                       "labels": VALIDATION_FILES["labels"] if labels is not None else None,
                       "reference_logits": VALIDATION_FILES["reference_logits"],
                       "num_classes": int(reference.shape[1])},
        "preprocess": "preprocess.json",
        "model": dict(model or {}),
        "files": files,
    }


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
    from edgeres.onnxutil import onnx_input_spec

    target = _as_target(target)
    out = Path(out)
    precisions = list(dict.fromkeys(precisions))
    fp32_onnx = Path(fp32_onnx)
    qdq = Path(qdq_onnx) if qdq_onnx is not None else None
    _check_sources(target, precisions, fp32_onnx, qdq)
    batch = BatchProfile.parse(batch) if isinstance(batch, str) else (batch or target.batch_profile)
    opts = resolve_options(target.options, options)
    newest = target.device.get("tensorrt_max")
    spec = onnx_input_spec(fp32_onnx)
    inputs, labels, reference = _check_arrays(inputs, labels, reference_logits, slice_size)
    expected = tuple(int(d) for d in spec["shape"][1:])
    if tuple(inputs.shape[1:]) != expected:
        raise EdgeresError(f"validation inputs have shape {inputs.shape[1:]} per image but the ONNX input "
                           f"{spec['name']} expects {expected}")
    arrays = {"inputs": inputs, "labels": labels, "reference_logits": reference}
    pre = preprocess.to_dict() if hasattr(preprocess, "to_dict") else dict(preprocess)
    check_replaceable(out, KIT_JSON, "kit")
    with atomic_path(out) as tmp:
        onnx_files, proof = _write_files(tmp, precisions, fp32_onnx, qdq, fp16_onnx, arrays, pre,
                                         target_recipes(str(opts["min_tensorrt"]), newest))
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        recipes = render_recipes(precisions, opts, batch, spec["shape"], spec["name"], list(onnx_files),
                                 target.device.get("dla_cores"), newest)
        check_rendered(recipes)
        if not any(r["engines"] for r in recipes):
            raise EdgeresError(f"no TensorRT {target.name}'s device can have builds this kit: "
                               + "; ".join(n for r in recipes for n in r["notes"]))
        manifest = _manifest(target, precisions, opts, spec, batch, onnx_files, {"recipes": recipes, "proof": proof},
                             arrays, model, files)
        (tmp / "README.md").write_text(kit_readme(manifest, out.name))
        (tmp / KIT_JSON).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    tar_path = None
    if tarball:
        tar_path = out.with_name(out.name + ".tar.gz")
        write_tar_gz(out, tar_path)
    return KitResult(out, tar_path, manifest)
