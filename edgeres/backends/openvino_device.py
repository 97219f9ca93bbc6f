"""OpenVINO's devices and precisions: which device, which inference precision it honours,
what each layer really executes in, and compiling with the precision set explicitly.

Only ``openvino`` is imported, lazily.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from edgeres.errors import EdgeresError
from edgeres.fileio import cache_dir
from edgeres.optional import require

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
    return cache_dir() / "openvino"


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


def check_precision_supported(core: Any, device: str, hint: str | None, what: str) -> None:
    """Refuse bf16/fp16 on a device that would silently run them in f32 (None: the device's default)."""
    if hint in ("f32", None):
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


def kernel_precision(exec_type: str) -> str:
    """The precision of a CPU kernel from its exec type's suffix (``jit_avx512_I8`` -> int8)."""
    suffix = exec_type.rsplit("_", 1)[-1].lower() if "_" in exec_type else ""
    return {"i8": "int8", "u8": "int8", "fp32": "fp32", "f32": "fp32", "bf16": "bf16", "fp16": "fp16",
            "f16": "fp16"}.get(suffix, suffix)


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


def _compile(core: Any, model: Any, device: str, hint: str | None, options: dict[str, Any],
             cache_dir: Path | None) -> tuple[Any, str]:
    """Compile with the inference precision set explicitly (``hint``; None leaves the device's own
    default, for a model edgeres did not build); return the model and the hint read back."""
    perf = str(options.get("performance_hint") or "LATENCY").upper()
    if perf not in PERFORMANCE_HINTS:
        raise EdgeresError(f"option performance_hint must be one of {', '.join(PERFORMANCE_HINTS)}, got {perf!r}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": perf}
    if hint:
        config["INFERENCE_PRECISION_HINT"] = hint
    if options.get("streams"):
        config["NUM_STREAMS"] = int(options["streams"])
    if options.get("threads"):
        config["INFERENCE_NUM_THREADS"] = int(options["threads"])
    if cache_dir is not None:
        config["CACHE_DIR"] = str(cache_dir)
    if options.get("perf_count"):  # per-layer counters, for profiling only (they cost a little time)
        config["PERF_COUNT"] = True
    try:
        compiled = core.compile_model(model, device, config)
    except RuntimeError as exc:
        raise EdgeresError(f"OpenVINO cannot compile the model for {device}: {str(exc).strip().splitlines()[0]}") from None
    readback = _hint_name(compiled.get_property("INFERENCE_PRECISION_HINT"))
    if hint and readback != hint:
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
