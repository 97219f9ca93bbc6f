"""OpenVINO: Intel and x86 CPUs.

Build: FP32 ONNX -> ``openvino.convert_model`` -> IR (``model.xml`` + ``model.bin``) for
fp32 / bf16 / fp16, or INT8 through NNCF (``nncf.quantize``, or
``nncf.quantize_with_accuracy_control`` when a validation set and an accuracy budget are
given), or INT8 from an explicitly quantized (Q/DQ) ONNX.

Precision honesty: OpenVINO's CPU plugin picks an inference precision by itself (bf16 on
CPUs that have it, even for an "FP32" IR) and silently ignores a hint the CPU cannot honour.
edgeres therefore sets ``INFERENCE_PRECISION_HINT`` explicitly for every precision, refuses
bf16/fp16 where the device does not report the capability, reads the hint back from the
compiled model, and records the precision each layer actually executes in (the runtime
model's ``runtimePrecision``) in the artifact metadata and in ``runner.info``.

Only ``openvino`` (and ``nncf`` for INT8 calibration) are imported, lazily: the module
imports without torch or OpenVINO installed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability, Backend, BuildSpec, Runner, RunnerInfo
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json, sha256_file
from edgeres.optional import require, version_of

# Options a target file may set in its [options] table (types checked by edgeres.targets).
# BuildSpec.options may override any of them per build.
OPTIONS: dict[str, type] = {
    "device": str,                  # OpenVINO device name: "CPU" (default)
    "performance_hint": str,        # "LATENCY" (default) or "THROUGHPUT"
    "streams": int,                 # NUM_STREAMS; 0 or absent = what the hint chooses
    "threads": int,                 # INFERENCE_NUM_THREADS; 0 or absent = all cores
    "cache_dir": str,               # model cache (CACHE_DIR); default $EDGERES_CACHE/openvino
    "compress_to_fp16": bool,       # store IR weights as fp16 (storage only; default false)
    "preset": str,                  # NNCF preset: "performance" (default, symmetric) or "mixed"
    "fast_bias_correction": bool,   # NNCF fast bias correction (default true)
    "subset_size": int,             # calibration samples NNCF uses (default: the whole calibration set)
    "int8_float_precision": str,    # precision of the non-quantized layers of an INT8 IR: "f32" (default) or "bf16"
    "dynamic_batch": bool,          # compile one dynamic-batch model instead of one static model per batch size
}

PRECISION_HINT = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
# OPTIMIZATION_CAPABILITIES entry a device must report before edgeres asks for that precision
CAPABILITY = {"bf16": "BF16", "fp16": "FP16", "f32": "FP32", "f16": "FP16", "int8": "INT8"}
INT8_PRECISIONS = ("u8", "i8")  # runtimePrecision values; kernels say "I8"
COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "GroupConvolution", "Deconvolution")
META_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")


def _ov() -> Any:
    return require("openvino", "the OpenVINO backend")


def default_cache_dir() -> Path:
    base = os.environ.get("EDGERES_CACHE") or Path.home() / ".cache" / "edgeres"
    return Path(base) / "openvino"


def _hint_name(value: Any) -> str:
    """OpenVINO reports element types as '<Type: 'float32'>' objects: normalise to f32/bf16/f16."""
    text = str(getattr(value, "to_string", lambda: value)()).lower()
    text = text.replace("<type: '", "").replace("'>", "")
    return {"float32": "f32", "bfloat16": "bf16", "float16": "f16"}.get(text, text)


# --- devices and precisions -------------------------------------------------------------------

def check_device(core: Any, device: str) -> None:
    """Refuse a device OpenVINO does not have here, listing the ones it has."""
    available = list(core.available_devices)
    base = device.split(":")[0].split(".")[0].upper()
    if base in META_DEVICES:
        return
    if device in available or base in {d.split(".")[0] for d in available}:
        return
    raise EdgeresError(
        f"OpenVINO has no device '{device}' on this machine; available devices: {', '.join(available) or 'none'}"
        " (set the target option device, e.g. device = \"CPU\")"
    )


def device_capabilities(core: Any, device: str) -> list[str]:
    try:
        return [str(c) for c in core.get_property(device, "OPTIMIZATION_CAPABILITIES")]
    except Exception:  # noqa: BLE001 - meta devices have none of their own
        return []


def check_precision_supported(core: Any, device: str, hint: str, what: str) -> None:
    """Refuse bf16/fp16 on a device that would silently run them in f32."""
    if hint == "f32":
        return
    caps = device_capabilities(core, device)
    need = CAPABILITY[hint]
    if need not in caps:
        name = _device_name(core, device)
        raise EdgeresError(
            f"{what}: device {device} ({name}) does not support {hint} inference "
            f"(its OPTIMIZATION_CAPABILITIES are {', '.join(caps) or 'unknown'}, no {need}); OpenVINO would "
            f"silently run it in f32. Build fp32 or int8 for this device instead"
        )


def _device_name(core: Any, device: str) -> str:
    try:
        return str(core.get_property(device, "FULL_DEVICE_NAME"))
    except Exception:  # noqa: BLE001
        return "unknown device"


def runtime_precisions(compiled: Any) -> dict[str, Any]:
    """What the compiled model really executes: per-layer-type precision counts and the INT8 share.

    Read from the runtime (executable) model, whose ops carry ``layerType``,
    ``runtimePrecision`` and ``primitiveType`` in their rt_info. ``runtimePrecision`` is the
    precision of a layer's inputs (fp16-compressed weights show as f16 although the kernel
    computes in f32); the kernel's own precision is the suffix of ``primitiveType``
    (``brgconv_avx2_f32``, ``jit_avx2_I8``, ...), so both are recorded and the executed
    precision is taken from the kernels.
    """
    counts: Counter[tuple[str, str]] = Counter()
    kernels: Counter[tuple[str, str]] = Counter()
    n_conv = n_conv_int8 = 0
    for op in compiled.get_runtime_model().get_ordered_ops():
        rt = op.get_rt_info()
        if "layerType" not in rt or "runtimePrecision" not in rt:
            continue
        layer, prec = rt["layerType"].astype(str), rt["runtimePrecision"].astype(str)
        primitive = rt["primitiveType"].astype(str) if "primitiveType" in rt else ""
        kernel = primitive.rsplit("_", 1)[-1].lower() if "_" in primitive else prec
        if kernel in ("", "undef", "unknown", "dynamic"):
            kernel = prec
        counts[(layer, prec)] += 1
        kernels[(layer, kernel)] += 1
        if layer == "Convolution":
            n_conv += 1
            n_conv_int8 += prec in INT8_PRECISIONS and kernel in INT8_PRECISIONS
    by_type: dict[str, dict[str, int]] = {}
    for (layer, prec), n in sorted(counts.items()):
        by_type.setdefault(layer, {})[prec] = n
    by_kernel: dict[str, dict[str, int]] = {}
    for (layer, prec), n in sorted(kernels.items()):
        by_kernel.setdefault(layer, {})[prec] = n
    compute: Counter[str] = Counter()
    for layer in COMPUTE_LAYERS:
        compute.update(by_kernel.get(layer, {}))
    return {
        "layers": by_type,
        "kernels": by_kernel,
        "convolutions": n_conv,
        "int8_convolutions": n_conv_int8,
        "int8_conv_fraction": round(n_conv_int8 / n_conv, 4) if n_conv else 0.0,
        "compute_precisions": dict(compute),
        "execution_precision": _summarize(compute),
    }


def _summarize(compute: Counter[str]) -> str:
    """'f32', 'bf16', or a mix such as 'u8 95% / f32 5%' over the compute layers."""
    total = sum(compute.values())
    if not total:
        return "unknown"
    merged: Counter[str] = Counter()
    for prec, n in compute.items():
        merged["int8" if prec in INT8_PRECISIONS else prec] += n
    if len(merged) == 1:
        return next(iter(merged))
    return " / ".join(f"{p} {100 * n / total:.0f}%" for p, n in merged.most_common())


# --- build ------------------------------------------------------------------------------------

def is_qdq_onnx(path: Path) -> bool:
    """True when the ONNX graph is explicitly quantized (has QuantizeLinear nodes)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise EdgeresError(f"cannot read ONNX {path}: {exc}") from None
    return any(n.op_type in ("QuantizeLinear", "DynamicQuantizeLinear") for n in model.graph.node)


def _source_metadata(graph: Path) -> dict[str, Any]:
    sidecar = Artifact.sidecar_of(graph)
    if sidecar.is_file():
        try:
            return dict(read_json(sidecar))
        except ValueError:
            return {}
    return {}


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


class OpenVINOBackend(Backend):
    name = "openvino"
    options = OPTIONS
    # the inference precision is set explicitly at compile time and needs the device capability
    requirement_keys = ("device", "inference_precision_hint", "device_capabilities")
    python_packages = ("numpy", "pillow", "openvino")

    def int8_placement(self, target: Any) -> str | None:
        """NNCF calibrates INT8 here, unless the target asks for the Q/DQ ONNX (TensorRT's placement,
        where residual Adds fuse into the convolutions)."""
        return "tensorrt" if target.options.get("int8_source") == "qdq-onnx" else None

    def available(self) -> Availability:
        version = version_of("openvino")
        if version is None:
            return Availability(False, "openvino is not installed: pip install 'edgeres[openvino]'")
        import openvino as ov

        core = ov.Core()
        caps = device_capabilities(core, "CPU") if "CPU" in core.available_devices else []
        return Availability(True, version=version, details={
            "devices": ",".join(core.available_devices), "cpu_capabilities": ",".join(caps),
            "nncf": version_of("nncf") or "not installed",
        })

    def unsupported(self, precision: str, target: Any) -> str | None:
        """bf16/fp16 on a device without them (OpenVINO would silently run f32), else None."""
        hint = PRECISION_HINT.get(precision, "f32")
        core = _ov().Core()
        try:
            check_precision_supported(core, str(target.options.get("device", "CPU")), hint, precision)
        except EdgeresError as exc:
            return str(exc).split(": ", 1)[-1]
        return None

    # build ------------------------------------------------------------------------------------

    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
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
        hint = self._hint_for(precision, spec.option("int8_float_precision", "f32"))
        check_precision_supported(core, device, hint, f"building {precision} for OpenVINO")

        qdq = is_qdq_onnx(graph)
        if qdq and precision != "int8":
            raise EdgeresError(f"{graph} is an explicitly quantized (Q/DQ) ONNX: build it as int8, or give the FP32 ONNX")
        try:
            model = ov.convert_model(str(graph))
        except Exception as exc:  # noqa: BLE001 - conversion errors are the user's graph
            raise EdgeresError(f"OpenVINO cannot convert {graph}: {str(exc).strip().splitlines()[0]}") from None
        source = _source_metadata(graph)
        meta: dict[str, Any] = {}
        if precision == "int8":
            if qdq:
                meta["int8_source"] = "qdq-onnx"
            else:
                model, meta = self._quantize(model, spec)
                meta["int8_source"] = "nncf"

        spec.out_dir.mkdir(parents=True, exist_ok=True)
        final_xml = spec.out_dir / "model.xml"
        tmpdir = Path(tempfile.mkdtemp(prefix=".model.xml.", suffix=".tmp", dir=spec.out_dir))
        try:
            tmp_xml = tmpdir / "model.xml"
            compress = bool(spec.option("compress_to_fp16", False))
            ov.save_model(model, str(tmp_xml), compress_to_fp16=compress)
            if not tmp_xml.is_file() or not tmp_xml.with_suffix(".bin").is_file():
                raise EdgeresError(f"OpenVINO did not write the IR into {tmpdir}")
            # compile once to read back what the device really executes
            compiled, readback = _compile(core, core.read_model(str(tmp_xml)), device, hint, spec_options(spec), None)
            info = runtime_precisions(compiled)
            del compiled
            if precision == "int8" and info["int8_convolutions"] == 0:
                raise EdgeresError(
                    f"the INT8 IR runs no convolution in INT8 on {device} "
                    f"(executed: {info['layers'].get('Convolution')}); this device cannot run it as INT8"
                )
            metadata = {
                "backend": self.name,
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
            metadata["build_seconds"] = round(time.perf_counter() - started, 3)
            Artifact(path=tmp_xml, metadata=metadata, files=[tmp_xml.with_suffix(".bin")]).save()
            _publish(tmp_xml, final_xml)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return Artifact.load(final_xml)

    @staticmethod
    def _hint_for(precision: str, int8_float: Any) -> str:
        if precision == "int8":
            if int8_float not in ("f32", "bf16", "f16"):
                raise EdgeresError(f"option int8_float_precision must be f32, bf16 or f16, got {int8_float!r}")
            return str(int8_float)
        return PRECISION_HINT[precision]

    def _quantize(self, model: Any, spec: BuildSpec) -> tuple[Any, dict[str, Any]]:
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

            quantized = nncf.quantize_with_accuracy_control(
                model, nncf.Dataset(calib), nncf.Dataset(items), validate,
                max_drop=float(budget) / 100.0, drop_type=nncf.DropType.ABSOLUTE, **common,
            )
            meta["accuracy_control"] = {"budget_points": float(budget), "metric": metric,
                                        "validation": {**_describe(validation), "samples": len(items)}}
        else:
            quantized = nncf.quantize(model, nncf.Dataset(calib), **common)
        meta["quantize_seconds"] = round(time.perf_counter() - t0, 3)
        return quantized, meta

    # load -------------------------------------------------------------------------------------

    def load(self, artifact: Artifact | str | os.PathLike[str], **options: Any) -> OpenVINORunner:
        if not isinstance(artifact, Artifact):
            artifact = Artifact.load(artifact)
        return OpenVINORunner(artifact, **options)


def spec_options(spec: BuildSpec) -> dict[str, Any]:
    return {k: spec.option(k) for k in ("performance_hint", "streams", "threads") if spec.option(k) is not None}


def _compile(core: Any, model: Any, device: str, hint: str, options: dict[str, Any],
             cache_dir: Path | None) -> tuple[Any, str]:
    """Compile with the inference precision set explicitly; return the model and the hint read back."""
    perf = str(options.get("performance_hint") or "LATENCY").upper()
    if perf not in PERFORMANCE_HINTS:
        raise EdgeresError(f"option performance_hint must be one of {', '.join(PERFORMANCE_HINTS)}, got {perf!r}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": perf, "INFERENCE_PRECISION_HINT": hint}
    if options.get("streams"):
        config["NUM_STREAMS"] = int(options["streams"])
    if options.get("threads"):
        config["INFERENCE_NUM_THREADS"] = int(options["threads"])
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
    try:
        compiled = core.compile_model(model, device, config)
    except RuntimeError as exc:
        raise EdgeresError(f"OpenVINO cannot compile the model for {device}: {str(exc).strip().splitlines()[0]}") from None
    readback = _hint_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if readback != hint:
        raise EdgeresError(
            f"asked OpenVINO for {hint} inference on {device}, it reports {readback}: refusing to run a precision "
            "other than the one built"
        )
    return compiled, readback


def config_for(metadata: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The exact OpenVINO compile config the edgeres runner uses for an artifact (for raw comparisons)."""
    opts = {**metadata.get("runtime_options", {}), **{k: v for k, v in overrides.items() if v is not None}}
    config: dict[str, Any] = {"PERFORMANCE_HINT": str(opts.get("performance_hint") or "LATENCY").upper(),
                              "INFERENCE_PRECISION_HINT": metadata["inference_precision_hint"]}
    if opts.get("streams"):
        config["NUM_STREAMS"] = int(opts["streams"])
    if opts.get("threads"):
        config["INFERENCE_NUM_THREADS"] = int(opts["threads"])
    return config


class OpenVINORunner(Runner):
    """A compiled OpenVINO IR: NCHW float32 in, logits out.

    ``__call__`` runs one synchronous infer request (latency); ``run_async`` and
    ``throughput`` use an ``AsyncInferQueue`` (throughput at batch > 1 or streams > 1).
    Unless ``dynamic_batch`` is set, the IR is compiled for a static batch size on first use
    of each size (static shapes run faster on the CPU plugin); compiled models are cached on
    disk in ``cache_dir``.
    """

    def __init__(self, artifact: Artifact, *, device: str | None = None, performance_hint: str | None = None,
                 streams: int | None = None, threads: int | None = None, cache_dir: str | os.PathLike[str] | None = None,
                 dynamic_batch: bool | None = None, batch: int | None = None, verify: bool = True) -> None:
        ov = _ov()
        self.artifact = artifact
        meta = artifact.metadata
        if meta.get("backend") != "openvino":
            raise EdgeresError(f"{artifact.path} is a {meta.get('backend')} artifact, not an OpenVINO IR")
        xml = artifact.path
        bin_path = xml.with_suffix(".bin")
        if not bin_path.is_file():
            raise EdgeresError(f"OpenVINO IR {xml} needs its weights file {bin_path.name} beside it, and it is missing;"
                               " copy it along or rebuild the IR")
        if verify:
            artifact.verify()
            if meta.get("bin_sha256") and sha256_file(bin_path) != meta["bin_sha256"]:
                raise EdgeresError(f"{bin_path} does not match the checksum recorded at build time: rebuild the IR")
        runtime = dict(meta.get("runtime_options", {}))
        for key, value in (("performance_hint", performance_hint), ("streams", streams), ("threads", threads),
                           ("dynamic_batch", dynamic_batch)):
            if value is not None:
                runtime[key] = value
        self.options = runtime
        self.device = device or str(meta.get("device", "CPU"))
        self.core = ov.Core()
        check_device(self.core, self.device)
        self.hint = str(meta["inference_precision_hint"])
        check_precision_supported(self.core, self.device, self.hint, f"running {xml}")
        cache_dir = cache_dir or runtime.get("cache_dir")
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.dynamic = bool(runtime.get("dynamic_batch", False))
        try:
            self._model = self.core.read_model(str(xml), str(bin_path))
        except RuntimeError as exc:
            raise EdgeresError(f"OpenVINO cannot read IR {xml}: {str(exc).strip().splitlines()[0]}") from None
        self._shape = [d.get_length() if d.is_static else -1 for d in self._model.inputs[0].get_partial_shape()]
        self.input_shape = [-1, *self._shape[1:]]  # any batch: the IR is reshaped (or dynamic) per batch size
        self._compiled: dict[int, Any] = {}
        self._requests: dict[int, Any] = {}
        self.compile_log: list[dict[str, Any]] = []
        first = batch or (1 if self.dynamic else int(str(meta.get("batch_profile", "1:1:8")).split(":")[1]))
        compiled = self._get(first)
        prec = runtime_precisions(compiled)
        self.precisions = prec
        self.info = RunnerInfo(
            backend="openvino", backend_version=version_of("openvino"), precision=str(meta.get("precision")),
            timed="host wall clock of one synchronous infer request, inputs already in host memory",
            device=self.device, threads=int(compiled.get_property("INFERENCE_NUM_THREADS")),
            execution_precision=prec["execution_precision"],
            extra={"device_name": _device_name(self.core, self.device), "inference_precision_hint": self.hint,
                   "inference_precision_readback": _hint_name(compiled.get_property("INFERENCE_PRECISION_HINT")),
                   "int8_conv_fraction": prec["int8_conv_fraction"], "layer_precisions": prec["layers"],
                   "kernel_precisions": prec["kernels"],
                   "performance_hint": str(compiled.get_property("PERFORMANCE_HINT")).split(".")[-1],
                   "streams": int(compiled.get_property("NUM_STREAMS")),
                   "optimal_infer_requests": int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")),
                   "cache_dir": str(self.cache_dir),
                   "shapes": "dynamic batch" if self.dynamic else "static per batch size",
                   "compile_seconds": self.compile_log[0]["seconds"],
                   "loaded_from_cache": self.compile_log[0]["cached"]})

    def _get(self, n: int) -> Any:
        key = 0 if self.dynamic else n
        compiled = self._compiled.get(key)
        if compiled is None:
            model = self._model
            if not self.dynamic:
                model = self._model.clone()
                model.reshape([n, *self._shape[1:]])
            t0 = time.perf_counter()
            compiled, _ = _compile(self.core, model, self.device, self.hint, self.options, self.cache_dir)
            seconds = time.perf_counter() - t0
            try:
                cached = bool(compiled.get_property("LOADED_FROM_CACHE"))
            except Exception:  # noqa: BLE001
                cached = None
            self.compile_log.append({"batch": key or "dynamic", "seconds": round(seconds, 4), "cached": cached})
            if len(self._compiled) >= 4:  # keep a few batch sizes compiled
                oldest = next(iter(self._compiled))
                self._compiled.pop(oldest)
                self._requests.pop(oldest, None)
            self._compiled[key] = compiled
            self._requests[key] = compiled.create_infer_request()
        return compiled

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = self.check_input(batch)
        n = batch.shape[0]
        key = 0 if self.dynamic else n
        request = self._requests.get(key)
        if request is None:
            self._get(n)
            request = self._requests[key]
        request.infer({0: batch}, share_inputs=True)
        return np.array(request.get_output_tensor(0).data, copy=True)

    def close(self) -> None:
        self._requests.clear()
        self._compiled.clear()

    def run_async(self, batches: Iterable[np.ndarray], jobs: int | None = None) -> list[np.ndarray]:
        """Infer many batches through an AsyncInferQueue; outputs in input order."""
        ov = _ov()
        batches = [self.check_input(b) for b in batches]
        if not batches:
            return []
        sizes = {b.shape[0] for b in batches}
        if not self.dynamic and len(sizes) > 1:
            # one queue per batch size
            out: dict[int, np.ndarray] = {}
            for size in sizes:
                idx = [i for i, b in enumerate(batches) if b.shape[0] == size]
                for i, r in zip(idx, self.run_async([batches[i] for i in idx], jobs)):
                    out[i] = r
            return [out[i] for i in range(len(batches))]
        compiled = self._get(batches[0].shape[0])
        jobs = jobs or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        results: list[np.ndarray | None] = [None] * len(batches)
        queue = ov.AsyncInferQueue(compiled, jobs)

        def done(request: Any, index: int) -> None:
            results[index] = np.array(request.get_output_tensor(0).data, copy=True)

        queue.set_callback(done)
        for i, b in enumerate(batches):
            queue.start_async({0: b}, i)
        queue.wait_all()
        return [r for r in results if r is not None]

    def throughput(self, batch: np.ndarray, iterations: int = 50, jobs: int | None = None,
                   warmup: int = 2) -> dict[str, Any]:
        """Images per second with an AsyncInferQueue kept full (``jobs`` requests in flight)."""
        ov = _ov()
        batch = self.check_input(batch)
        compiled = self._get(batch.shape[0])
        jobs = jobs or int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(compiled, jobs)
        for _ in range(warmup * jobs):
            queue.start_async({0: batch})
        queue.wait_all()
        t0 = time.perf_counter()
        for _ in range(iterations):
            queue.start_async({0: batch})
        queue.wait_all()
        seconds = time.perf_counter() - t0
        return {"batch": int(batch.shape[0]), "iterations": iterations, "jobs": jobs, "seconds": round(seconds, 4),
                "images_per_second": round(iterations * batch.shape[0] / seconds, 2),
                "streams": int(compiled.get_property("NUM_STREAMS"))}


BACKEND = OpenVINOBackend()
