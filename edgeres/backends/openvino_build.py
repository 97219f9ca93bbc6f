"""Building an OpenVINO IR: ONNX -> ``openvino.convert_model`` -> IR (``model.xml`` + ``model.bin``),
INT8 through NNCF or from a Q/DQ ONNX, compiled once to record what each layer executes in.

Only ``openvino``, ``nncf`` and ``onnx`` are imported, lazily.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import BuildSpec
from edgeres.backends.openvino_device import (
    PRECISION_HINT,
    _compile,
    _device_name,
    _ov,
    check_device,
    check_precision_supported,
    default_cache_dir,
    device_capabilities,
    runtime_precisions,
)
from edgeres.errors import EdgeresError
from edgeres.fileio import sha256_file, temp_dir_beside
from edgeres.onnxutil import is_quantized, source_metadata
from edgeres.optional import require, version_of
from edgeres.progress import others_on_stderr


def _port_spec(port: Any, recorded: Any) -> dict[str, Any]:
    """The input or output spec the source ONNX recorded, else read from the OpenVINO port."""
    if isinstance(recorded, dict):
        return dict(recorded)
    shape = [d.get_length() if d.is_static else "N" for d in port.get_partial_shape()]
    return {"name": port.get_any_name(), "shape": shape, "dtype": "float32"}


def _image_hw(model: Any) -> tuple[int, int] | None:
    shape = model.inputs[0].get_partial_shape()
    if len(shape) == 4 and shape[2].is_static and shape[3].is_static:
        return shape[2].get_length(), shape[3].get_length()
    return None


def _samples(data: Any, hw: tuple[int, int] | None, what: str, batch_size: int = 32,
             with_labels: bool = False) -> Iterator[Any]:
    """Single samples (1,C,H,W) from an ImageSet, an (N,C,H,W) array or an iterable of batches."""
    if isinstance(data, np.ndarray):
        source: Iterable[Any] = [(data, None)]
    elif hasattr(data, "batches"):
        source = data.batches(batch_size)
    else:
        source = data
    for item in source:
        x, y = (item if isinstance(item, tuple) else (item, None))
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4:
            raise EdgeresError(f"{what}: expected NCHW image batches, got an array of shape {x.shape}")
        if hw is not None and tuple(x.shape[2:]) != hw:
            raise EdgeresError(
                f"{what}: images are {x.shape[2]}x{x.shape[3]} but the model takes {hw[0]}x{hw[1]}; "
                "use the same preprocessing (crop size) as the model"
            )
        for i in range(x.shape[0]):
            sample = np.ascontiguousarray(x[i:i + 1])
            if with_labels:
                yield sample, (None if y is None else int(np.asarray(y)[i]))
            else:
                yield sample


def _describe(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"name": getattr(data, "name", type(data).__name__)}
    if hasattr(data, "fingerprint"):
        out["fingerprint"] = data.fingerprint()
    try:
        out["size"] = len(data)
    except TypeError:
        pass
    return out


def _publish(tmp_xml: Path, final_xml: Path) -> None:
    """Move a finished IR (xml, bin, sidecar) from a temporary folder into place.

    The sidecar is the commit marker (Artifact.load refuses an IR without it): the old
    sidecar goes first, the new bin before the new xml, and the new sidecar last, so an
    interrupted publish never leaves an xml beside a wrong or missing bin that loads.
    """
    final_bin, tmp_bin = final_xml.with_suffix(".bin"), tmp_xml.with_suffix(".bin")
    final_side, tmp_side = Artifact.sidecar_of(final_xml), Artifact.sidecar_of(tmp_xml)
    for old in (final_side, final_xml):
        old.unlink(missing_ok=True)
    os.replace(tmp_bin, final_bin)
    os.replace(tmp_xml, final_xml)
    os.replace(tmp_side, final_side)


def spec_options(spec: BuildSpec) -> dict[str, Any]:
    return {k: spec.option(k) for k in ("performance_hint", "streams", "threads") if spec.option(k) is not None}


def hint_for(precision: str, int8_float: Any) -> str:
    if precision == "int8":
        if int8_float not in ("f32", "bf16", "f16"):
            raise EdgeresError(f"option int8_float_precision must be f32, bf16 or f16, got {int8_float!r}")
        return str(int8_float)
    return PRECISION_HINT[precision]


def quantize_nncf(model: Any, spec: BuildSpec) -> tuple[Any, dict[str, Any]]:
    nncf = require("nncf", "INT8 quantization for OpenVINO")
    if spec.calibration is None:
        raise EdgeresError("an INT8 OpenVINO build needs a calibration set (--calib DIR|spec), or a Q/DQ ONNX")
    hw = _image_hw(model)
    calib = list(_samples(spec.calibration, hw, "calibration set"))
    if not calib:
        raise EdgeresError("the calibration set is empty")
    preset_name = str(spec.option("preset", "performance")).lower()
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset_name not in presets:
        raise EdgeresError(f"option preset must be one of {', '.join(presets)}, got {preset_name!r}")
    fast_bc = bool(spec.option("fast_bias_correction", True))
    subset = int(spec.option("subset_size", 0) or len(calib))
    subset = min(subset, len(calib))
    common = {"preset": presets[preset_name], "target_device": nncf.TargetDevice.CPU, "subset_size": subset,
                  "fast_bias_correction": fast_bc}
    meta: dict[str, Any] = {
        "calibration": {**_describe(spec.calibration), "samples": subset},
        "nncf": {"preset": preset_name, "fast_bias_correction": fast_bc, "subset_size": subset},
    }
    control = spec.accuracy_control
    nncf.set_log_level(40)  # errors only: edgeres reports what it did
    t0 = time.perf_counter()
    if control is not None:
        validation, budget = control.validation, control.budget
        items = list(_samples(validation, hw, "validation set", with_labels=True))
        if not items:
            raise EdgeresError("the validation set for accuracy control is empty")
        metric = "top1"
        if any(y is None for _, y in items):  # no labels: agreement with the FP32 model
            metric = "agreement"
            fp32 = _ov().Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            items = [(x, int(np.argmax(fp32(x)[0]))) for x, _ in items]

        def validate(compiled: Any, data: Iterable[Any]) -> tuple[float, list[float]]:
            hits = [float(int(np.argmax(compiled(x)[0])) == y) for x, y in data]
            return (float(np.mean(hits)) if hits else 0.0), hits

        with others_on_stderr():
            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(calib), nncf.Dataset(items), validate,
                max_drop=float(budget) / 100.0, drop_type=nncf.DropType.ABSOLUTE, **common,
            )
        meta["accuracy_control"] = {"budget_points": float(budget), "metric": metric,
                                    "validation": {**_describe(validation), "samples": len(items)}}
    else:
        with others_on_stderr():
            quantized = nncf.quantize(model, nncf.Dataset(calib), **common)
    meta["quantize_seconds"] = round(time.perf_counter() - t0, 3)
    return quantized, meta


def _ir_metadata(spec: BuildSpec, graph: Path, qdq: bool, tmp_xml: Path, model: Any, core: Any, device: str,
                 hints: tuple[str, str], info: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The IR's sidecar: what was built from what, and what the device really executes."""
    precision, (hint, readback) = spec.precision, hints
    compress = bool(spec.option("compress_to_fp16", False))
    source = source_metadata(graph)
    metadata = {
        "backend": "openvino",
        "backend_version": version_of("openvino"),
        "nncf_version": version_of("nncf") if meta.get("int8_source") == "nncf" else None,
        "precision": precision,
        "target": spec.target.name,
        "device": device,
        "device_name": _device_name(core, device),
        "device_capabilities": device_capabilities(core, device),
        "inference_precision_hint": hint,
        "inference_precision_readback": readback,
        "execution_precision": info["execution_precision"],
        "int8_conv_fraction": info["int8_conv_fraction"],
        "layer_precisions": info["layers"],
        "kernel_precisions": info["kernels"],
        "compress_to_fp16": compress,
        "input": _port_spec(model.inputs[0], source.get("input")),
        "output": _port_spec(model.outputs[0], source.get("output")),
        "batch_profile": str(spec.batch),
        "xml_sha256": sha256_file(tmp_xml),
        "bin_sha256": sha256_file(tmp_xml.with_suffix(".bin")),
        "source": {"path": str(graph), "sha256": sha256_file(graph), "qdq": qdq},
        "runtime_options": {k: spec.option(k) for k in ("performance_hint", "streams", "threads", "cache_dir",
                                                        "dynamic_batch") if spec.option(k) is not None},
        **meta,
    }
    for key in ("depth", "num_classes", "input_size", "preprocess", "classes", "checkpoint_sha256"):
        if key in source:
            metadata[key] = source[key]
    return metadata


_CONVERTED: dict[str, Any] = {}  # sha256 of the ONNX -> its converted model (the last one only)


def _convert(ov: Any, graph: Path) -> Any:
    """``ov.convert_model`` once per ONNX and process: a build converts the same FP32 ONNX for fp32,
    bf16 and int8. Each caller gets its own clone."""
    key = sha256_file(graph)
    if key not in _CONVERTED:
        try:
            model = ov.convert_model(str(graph))
        except Exception as exc:  # noqa: BLE001 - conversion errors are the user's graph
            raise EdgeresError(f"OpenVINO cannot convert {graph}: {str(exc).strip().splitlines()[0]}") from None
        _CONVERTED.clear()
        _CONVERTED[key] = model
    return _CONVERTED[key].clone()


def build_ir(graph: Path, spec: BuildSpec) -> Artifact:
    """ONNX (fp32, or Q/DQ for int8) -> OpenVINO IR ``spec.out_dir/model.xml`` (+ .bin, + .json).

    INT8 from an FP32 ONNX calibrates with NNCF on ``spec.calibration`` (an ImageSet, an
    (N,C,H,W) array, or an iterable of batches). With ``spec.accuracy_control`` (a set: labels
    used when it has them, else agreement with the FP32 model; a budget in points of top-1),
    ``nncf.quantize_with_accuracy_control`` keeps the drop within the budget.
    """
    ov = _ov()
    graph = Path(graph)
    if not graph.is_file():
        raise EdgeresError(f"ONNX graph {graph} does not exist")
    started = time.perf_counter()
    core = ov.Core()
    device = str(spec.option("device", "CPU"))
    check_device(core, device)
    precision = spec.precision
    hint = hint_for(precision, spec.option("int8_float_precision", "f32"))
    check_precision_supported(core, device, hint, f"building {precision} for OpenVINO")

    qdq = is_quantized(graph)
    if qdq and precision != "int8":
        raise EdgeresError(f"{graph} is an explicitly quantized (Q/DQ) ONNX: build it as int8, or give the FP32 ONNX")
    model = _convert(ov, graph)
    meta: dict[str, Any] = {}
    if precision == "int8":
        if qdq:
            meta["int8_source"] = "qdq-onnx"
        else:
            model, meta = quantize_nncf(model, spec)
            meta["int8_source"] = "nncf"

    spec.out_dir.mkdir(parents=True, exist_ok=True)
    final_xml = spec.out_dir / "model.xml"
    with temp_dir_beside(final_xml) as tmpdir:
        tmp_xml = tmpdir / "model.xml"
        compress = bool(spec.option("compress_to_fp16", False))
        ov.save_model(model, str(tmp_xml), compress_to_fp16=compress)
        if not tmp_xml.is_file() or not tmp_xml.with_suffix(".bin").is_file():
            raise EdgeresError(f"OpenVINO did not write the IR into {tmpdir}")
        # compile once to read back what the device really executes, at batch 1 into the compile
        # cache: the runner's batch-1 compile (the latency measurement) then loads from it
        check = core.read_model(str(tmp_xml))
        dims = list(check.inputs[0].get_partial_shape())
        if dims and not dims[0].is_static and all(d.is_static for d in dims[1:]):
            check.reshape([1, *[d.get_length() for d in dims[1:]]])
        cache = Path(str(spec.option("cache_dir"))).expanduser() if spec.option("cache_dir") else default_cache_dir()
        compiled, readback = _compile(core, check, device, hint, spec_options(spec), cache)
        info = runtime_precisions(compiled)
        del compiled
        if precision == "int8" and info["int8_convolutions"] == 0:
            raise EdgeresError(
                f"the INT8 IR runs no convolution in INT8 on {device} "
                f"(executed: {info['layers'].get('Convolution')}); this device cannot run it as INT8"
            )
        metadata = _ir_metadata(spec, graph, qdq, tmp_xml, model, core, device, (hint, readback), info, meta)
        metadata["build_seconds"] = round(time.perf_counter() - started, 3)
        Artifact(path=tmp_xml, metadata=metadata, files=[tmp_xml.with_suffix(".bin")]).save()
        _publish(tmp_xml, final_xml)
    return Artifact.load(final_xml)
