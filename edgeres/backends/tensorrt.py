"""TensorRT: NVIDIA GPUs and Jetson. The backend, and building engines.

Builds engines from ONNX with the TensorRT Python API (8.5 .. 10.x, and 11 where the
APIs it uses still exist); ``tensorrt_runner`` runs them with ``execute_async_v3`` on a
CUDA stream. What to build is decided without TensorRT in ``tensorrt_plan.plan_engine``;
this module applies a plan to the real API. ``tensorrt_cuda`` finds TensorRT, a CUDA
binding and the GPU.

Every TensorRT call here is type-checked against ``tensorrt-stubs`` (``make typecheck``)
and was checked against NVIDIA's Python API documentation and samples; see the README.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability, Backend, BuildSpec
from edgeres.backends.tensorrt_cuda import (
    GpuInfo,
    _load_tensorrt,
    dims,
    dla_cores,
    gpu_info,
    require_tensorrt,
    trt_logger,
)
from edgeres.backends.tensorrt_plan import (
    DEFAULT_OPTIONS,
    OPTIONS,
    EnginePlan,
    cc_str,
    check_target_precision,
    int8_refusal,
    parse_cc,
    parse_version,
    plan_engine,
    platform_support,
    profile_shapes,
    resolve_options,
    trtexec_command,
)
from edgeres.backends.tensorrt_recipes import dla_fallback_layers
from edgeres.backends.tensorrt_runner import TensorRTRunner
from edgeres.errors import EdgeresError
from edgeres.fileio import now_utc, sha256_file, write_bytes_atomic

if TYPE_CHECKING:
    import tensorrt as trt_t

__all__ = ["BACKEND", "DEFAULT_OPTIONS", "OPTIONS", "GpuInfo", "TensorRTBackend", "TensorRTRunner", "build_engine",
           "dla_cores", "gpu_info", "require_tensorrt"]

TIMING_CACHE = "timing.cache"


# --- build -------------------------------------------------------------------------------------

def _apply_plan(config: trt_t.IBuilderConfig, plan: EnginePlan) -> None:
    """Builder-config settings of an EnginePlan (the network flags are applied at create_network)."""
    import tensorrt as trt

    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer types, tactics, precisions for profiles
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    for name in plan.builder_flags:
        if not hasattr(trt.BuilderFlag, name):
            raise EdgeresError(f"TensorRT {trt.__version__} has no builder flag {name} (TensorRT 11 removed the "
                               "precision flags: every network is strongly typed); build with typed_mode = \"auto\"")
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.cleared_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    if plan.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core


def _network_flags(plan: EnginePlan) -> int:
    import tensorrt as trt

    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    return flags


def _load_timing_cache(config: trt_t.IBuilderConfig, path: Path | None) -> trt_t.ITimingCache:
    data = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(data)
    if not config.set_timing_cache(cache, False):  # a cache from another GPU or version: start afresh
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, False)
    return cache


def build_engine(onnx_path: str | os.PathLike[str], engine_path: str | os.PathLike[str], plan: EnginePlan, *,
                 target: str, gpu: GpuInfo | None = None, onnx_sha256: str | None = None,
                 extra_metadata: dict[str, Any] | None = None) -> Artifact:
    """Parse ``onnx_path``, build the engine ``plan`` describes, write it atomically with its sidecar."""
    require_tensorrt()
    import tensorrt as trt

    gpu = gpu or gpu_info()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt_logger()
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgeresError(f"TensorRT could not parse {onnx_path}: {errors or 'unknown error'}")
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise EdgeresError(f"{onnx_path}: expected one input and one output, found {network.num_inputs} and "
                           f"{network.num_outputs}")
    inp, out = network.get_input(0), network.get_output(0)
    input_shape = dims(inp.shape)
    config = builder.create_builder_config()
    _apply_plan(config, plan)
    shapes = profile_shapes(input_shape, plan.batch)
    if shapes is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, trt.Dims(list(shapes[0])), trt.Dims(list(shapes[1])), trt.Dims(list(shapes[2])))
        if config.add_optimization_profile(profile) < 0:
            raise EdgeresError(f"TensorRT refused the optimization profile {shapes} for input {inp.name}")
    cache_path = engine_path.parent / TIMING_CACHE if plan.timing_cache else None
    if cache_path is not None:
        _load_timing_cache(config, cache_path)
    dla_fallback = dla_fallback_layers(network, config) if plan.dla_core is not None else None
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgeresError(f"TensorRT could not build a {plan.precision} engine from {onnx_path} "
                           "(see the TensorRT messages above)")
    write_bytes_atomic(engine_path, bytes(memoryview(serialized)))
    if cache_path is not None:
        write_bytes_atomic(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
    metadata: dict[str, Any] = {
        "backend": "tensorrt", "backend_version": trt.__version__, "precision": plan.precision, "target": target,
        "input": {"name": inp.name, "shape": input_shape, "dtype": np.dtype(trt.nptype(inp.dtype)).name},
        "output": {"name": out.name, "shape": dims(out.shape), "dtype": np.dtype(trt.nptype(out.dtype)).name},
        "tensorrt_version": trt.__version__, "gpu": gpu.name, "compute_capability": cc_str(gpu.cc),
        "typed_mode": plan.typed_mode, "typed_reason": plan.typed_reason,
        "execution_precision": execution_precision(plan),
        "profile": ({"batch": str(plan.batch), "min": list(shapes[0]), "opt": list(shapes[1]),
                     "max": list(shapes[2])} if shapes else {"batch": "static", "shape": input_shape}),
        "plan": plan.to_dict(),
        "onnx": {"file": onnx_path.name, "sha256": onnx_sha256 or sha256_file(onnx_path)},
        "timing_cache": TIMING_CACHE if cache_path is not None else None,
        "trtexec": trtexec_command(plan, onnx_path.name, engine_path.name, inp.name, shapes,
                                   stronglytyped_flag=parse_version(trt.__version__) < (11, 0)),
        "built_at": now_utc(),
        "host": platform.node(),
    }
    if dla_fallback is not None:
        metadata["dla_gpu_fallback_layers"] = dla_fallback
    metadata.update(extra_metadata or {})
    return Artifact(path=engine_path, metadata=metadata).save()


def execution_precision(plan: EnginePlan) -> str:
    """What the engine computes in: INT8 engines fall back to FP16 (or FP32) where INT8 has no kernel."""
    if plan.precision == "int8":
        return "int8+fp16" if "FP16" in plan.builder_flags else "int8+fp32"
    return plan.precision


# --- run ---------------------------------------------------------------------------------------

# --- the backend -------------------------------------------------------------------------------

def _device_report(version_text: str) -> dict[str, Any]:
    """GPU, compute capability, INT8/FP16/DLA availability (for doctor)."""
    import tensorrt as trt

    details: dict[str, Any] = {}
    try:
        gpu = gpu_info()
    except EdgeresError as exc:
        details["gpu"] = f"none usable ({exc})"
        return details
    details.update(gpu=gpu.name, compute_capability=cc_str(gpu.cc), cuda_binding=gpu.binding)
    version = parse_version(version_text)
    builder_fp16 = builder_int8 = None
    dla = 0
    try:
        builder = trt.Builder(trt_logger())
        dla = int(builder.num_DLA_cores)
        if hasattr(builder, "platform_has_fast_int8") and version < (10, 5):
            builder_fp16, builder_int8 = bool(builder.platform_has_fast_fp16), bool(builder.platform_has_fast_int8)
    except Exception as exc:  # noqa: BLE001 - a broken driver shows up here
        details["builder"] = f"TensorRT builder unavailable: {exc}"
    support = platform_support(version, gpu.cc, builder_fp16, builder_int8)
    details.update(int8=support["fast_int8"], fp16=support["fast_fp16"], dla_cores=dla,
                   capability_source=support["source"])
    refusal = int8_refusal(gpu.cc)
    if refusal:
        details["int8_note"] = refusal
    details["typed_mode"] = "strong" if version >= (10, 12) else "weak"
    return details


class TensorRTBackend(Backend):
    name = "tensorrt"
    options = OPTIONS
    timed_on = "device"
    builds_from_kit = True
    # engines run only on the GPU architecture and TensorRT version they were built with
    requirement_keys = ("tensorrt_version", "compute_capability", "gpu", "typed_mode", "profile", "dla_core")
    python_packages = ("numpy", "pillow", "tensorrt", "cuda-python")

    def require(self) -> None:
        require_tensorrt()
        gpu_info()

    def environment(self) -> dict[str, Any]:
        """TensorRT version, the GPU and its DLA cores, for the report of what was measured here."""
        trt = require_tensorrt()
        return {"tensorrt": str(trt.__version__), "gpu": gpu_info().to_dict(), "dla_cores": dla_cores()}

    def check_target(self, target: Any) -> None:
        from edgeres.backends.tensorrt_target import check_target_options

        check_target_options(target)

    def kit_reason(self, target: Any) -> str | None:
        """TensorRT not usable here, or a GPU of another compute capability than the target's."""
        available = self.available()
        if not available.ok:
            return available.reason
        declared = target.device.get("compute_capability")
        here = available.details.get("compute_capability")
        if declared not in (None, "device") and str(declared) != str(here):
            return (f"this GPU is compute capability {here}, the target {target.name} is {declared}: "
                    "engines must be built on the device")
        return None

    def available(self) -> Availability:
        trt, why = _load_tensorrt()
        if trt is None:
            return Availability(False, why)
        details = _device_report(str(trt.__version__))
        if "compute_capability" not in details:
            return Availability(False, f"TensorRT {trt.__version__} is installed but {details.get('gpu')}",
                                version=trt.__version__, details=details)
        return Availability(True, version=trt.__version__, details=details)

    def unsupported(self, precision: str, target: Any) -> str | None:
        """INT8 on a GPU without fast INT8 (Maxwell, Jetson Nano...), else None."""
        cc = self.available().details.get("compute_capability")
        if precision == "int8" and cc:
            return int8_refusal(parse_cc(cc))
        return None

    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
        """An engine for ``spec.precision`` from ``graph`` (the Q/DQ ONNX for int8, the FP32 ONNX otherwise).

        ``spec.options`` may carry ``fp16_onnx`` (an FP16 copy of the FP32 ONNX, for strongly
        typed FP16) and ``qdq_fp16_onnx`` (the Q/DQ ONNX with FP16 float layers, for strongly
        typed INT8) besides the TensorRT options of ``tensorrt_plan.OPTIONS``. A DLA engine is
        named ``model_<precision>_dla<N>.engine``.
        """
        require_tensorrt()
        import tensorrt as trt

        gpu = gpu_info()
        target = spec.target
        check_target_precision(target.name, target.precisions, target.device, spec.precision)
        if spec.precision == "int8" and int8_refusal(gpu.cc):
            raise EdgeresError(f"int8 on {gpu.name}: {int8_refusal(gpu.cc)}")
        options = resolve_options(target.options, spec.options)
        version = parse_version(trt.__version__)
        builder = trt.Builder(trt_logger())
        graph = Path(graph)
        fp16_onnx = spec.options.get("fp16_onnx")
        plan = plan_engine(spec.precision, version, options, batch=spec.batch,
                           num_dla_cores=int(builder.num_DLA_cores), have_fp16_onnx=True)
        source = graph
        if plan.onnx_role == "fp16":
            if fp16_onnx:
                source = Path(fp16_onnx)
            else:
                try:
                    from edgeres.backends.tensorrt_fp16 import fp16_copy

                    source = fp16_copy(graph, spec.out_dir / f"{graph.stem}_fp16.onnx").path
                except EdgeresError:
                    plan = plan_engine(spec.precision, version, options, batch=spec.batch,
                                       num_dla_cores=int(builder.num_DLA_cores), have_fp16_onnx=False)
        extra: dict[str, Any] = {}
        if plan.precision == "int8" and plan.typed_mode == "strong":  # float layers in FP16, as weak typing ran them
            from edgeres.backends.tensorrt_fp16 import qdq_fp16_copy

            given = spec.options.get("qdq_fp16_onnx")
            source = Path(given) if given else qdq_fp16_copy(graph, spec.out_dir / f"{graph.stem}_fp16.onnx").path
            extra["execution_precision"] = "int8+fp16"
        suffix = "" if plan.dla_core is None else f"_dla{plan.dla_core}"
        engine = spec.out_dir / f"model_{spec.precision}{suffix}.engine"
        return build_engine(source, engine, plan, target=target.name, gpu=gpu, extra_metadata=extra)

    def load(self, artifact: Artifact, **options: Any) -> TensorRTRunner:
        return TensorRTRunner(artifact, device=int(options.get("device", 0)))


BACKEND = TensorRTBackend()

