"""TensorRT: NVIDIA GPUs and Jetson.

Builds engines from ONNX with the TensorRT Python API (8.5 .. 10.x, and 11 where the
APIs it uses still exist) and runs them with ``execute_async_v3`` on a CUDA stream.
What to build is decided without TensorRT in ``tensorrt_plan.plan_engine``; this
module applies a plan to the real API. Device memory, streams and events come from
cuda-python's runtime bindings (``cuda.bindings.runtime``, or the older ``cuda.cudart``),
or from torch's CUDA tensors where torch with CUDA is installed and cuda-python is not.

Every TensorRT call here is type-checked against ``tensorrt-stubs`` (``make typecheck``)
and was checked against NVIDIA's Python API documentation and samples; see the README.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import Availability, Backend, BuildSpec, Runner, RunnerInfo
from edgeres.backends.tensorrt_plan import (
    DEFAULT_OPTIONS,
    OPTIONS,
    EnginePlan,
    cc_str,
    check_engine_compat,
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
from edgeres.errors import EdgeresError
from edgeres.fileio import sha256_file, write_bytes_atomic

if TYPE_CHECKING:
    import tensorrt as trt_t

__all__ = ["BACKEND", "DEFAULT_OPTIONS", "OPTIONS", "GpuInfo", "TensorRTBackend", "TensorRTRunner",
           "build_engine", "dla_cores", "gpu_info", "require_tensorrt"]

NOT_INSTALLED = ("TensorRT is not installed / no NVIDIA GPU here: TensorRT engines are built and run on the "
                 "NVIDIA device itself (on Jetson, TensorRT ships with JetPack; on x86 install NVIDIA's tensorrt "
                 "wheel and cuda-python). On a machine without one, build a device kit instead "
                 "(edgeres build --target jetson ...) and run 'edgeres kit build KIT' on the device")
TIMING_CACHE = "timing.cache"
TIMED = {
    "host": ("host wall clock per call: host-to-device copy + execute_async_v3 + device-to-host copy + stream "
             "synchronize (inputs start on the host, logits end on the host)"),
    "device": "device time of execute_async_v3 alone, from CUDA events on the stream (inputs already on the GPU)",
}


# --- finding TensorRT, CUDA and the GPU --------------------------------------------------------

def _load_tensorrt() -> tuple[ModuleType | None, str]:
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return None, "TensorRT is not installed (it ships with JetPack on Jetson; on x86 install NVIDIA's tensorrt wheel)"
    except Exception as exc:  # noqa: BLE001 - bindings without their libraries raise other errors
        return None, f"TensorRT does not load here: {exc}"
    if not hasattr(trt, "Builder"):  # e.g. only the type stubs are installed: a namespace package
        return None, "TensorRT is not installed (only its type stubs are)"
    return trt, ""


def require_tensorrt() -> ModuleType:
    """The ``tensorrt`` module, or the clear 'not installed / no GPU' error."""
    trt, why = _load_tensorrt()
    if trt is None:
        raise EdgeresError(f"{NOT_INSTALLED}. ({why})")
    return trt


class _CudaRuntime:
    """cuda-python's runtime API: every call returns (cudaError_t, *results)."""

    name = "cuda-python"

    def __init__(self) -> None:
        try:
            self.rt: Any = importlib.import_module("cuda.bindings.runtime")
        except ImportError:
            self.rt = importlib.import_module("cuda.cudart")  # cuda-python < 12.6 layout; ImportError propagates

    def _check(self, result: Any, what: str) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            text = text.decode() if isinstance(text, bytes) else str(text)
            raise EdgeresError(f"CUDA {what} failed: {text} ({getattr(err, 'name', err)}); "
                               "is there an NVIDIA GPU with a working driver?")
        return rest[0] if len(rest) == 1 else (tuple(rest) if rest else None)

    def device_count(self) -> int:
        return int(self._check(self.rt.cudaGetDeviceCount(), "cudaGetDeviceCount"))

    def properties(self, index: int) -> tuple[str, tuple[int, int], int]:
        prop = self._check(self.rt.cudaGetDeviceProperties(index), "cudaGetDeviceProperties")
        name = prop.name.split(b"\0")[0].decode() if isinstance(prop.name, bytes) else str(prop.name)
        return name, (int(prop.major), int(prop.minor)), int(prop.totalGlobalMem)

    def set_device(self, index: int) -> None:
        self._check(self.rt.cudaSetDevice(index), "cudaSetDevice")

    def malloc(self, nbytes: int) -> Any:
        return self._check(self.rt.cudaMalloc(max(int(nbytes), 1)), "cudaMalloc")

    def ptr(self, buf: Any) -> int:
        return int(buf)

    def free(self, buf: Any) -> None:
        self.rt.cudaFree(buf)

    def stream(self) -> Any:
        return self._check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    def stream_handle(self, stream: Any) -> int:
        return int(stream)

    def destroy_stream(self, stream: Any) -> None:
        self.rt.cudaStreamDestroy(stream)

    def htod(self, buf: Any, host: np.ndarray, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self.rt.cudaMemcpyAsync(int(buf), host.ctypes.data, host.nbytes, kind, stream), "cudaMemcpyAsync")

    def dtoh(self, host: np.ndarray, buf: Any, stream: Any) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self.rt.cudaMemcpyAsync(host.ctypes.data, int(buf), host.nbytes, kind, stream), "cudaMemcpyAsync")

    def synchronize(self, stream: Any) -> None:
        self._check(self.rt.cudaStreamSynchronize(stream), "cudaStreamSynchronize")

    def event(self) -> Any:
        return self._check(self.rt.cudaEventCreate(), "cudaEventCreate")

    def record(self, event: Any, stream: Any) -> None:
        self._check(self.rt.cudaEventRecord(event, stream), "cudaEventRecord")

    def elapsed_ms(self, start: Any, end: Any) -> float:
        self._check(self.rt.cudaEventSynchronize(end), "cudaEventSynchronize")
        return float(self._check(self.rt.cudaEventElapsedTime(start, end), "cudaEventElapsedTime"))


class _TorchCuda:
    """torch's CUDA tensors, streams and events, where torch with CUDA is present and cuda-python is not."""

    name = "torch"

    def __init__(self) -> None:
        self.torch: Any = importlib.import_module("torch")
        if not self.torch.cuda.is_available():
            raise ImportError("torch has no CUDA here")

    def device_count(self) -> int:
        return int(self.torch.cuda.device_count())

    def properties(self, index: int) -> tuple[str, tuple[int, int], int]:
        p = self.torch.cuda.get_device_properties(index)
        return str(p.name), (int(p.major), int(p.minor)), int(p.total_memory)

    def set_device(self, index: int) -> None:
        self.torch.cuda.set_device(index)

    def malloc(self, nbytes: int) -> Any:
        return self.torch.empty(max(int(nbytes), 1), dtype=self.torch.uint8, device="cuda")

    def ptr(self, buf: Any) -> int:
        return int(buf.data_ptr())

    def free(self, buf: Any) -> None:
        del buf

    def stream(self) -> Any:
        return self.torch.cuda.Stream()

    def stream_handle(self, stream: Any) -> int:
        return int(stream.cuda_stream)

    def destroy_stream(self, stream: Any) -> None:
        del stream

    def htod(self, buf: Any, host: np.ndarray, stream: Any) -> None:
        src = self.torch.from_numpy(host.reshape(-1).view(np.uint8))
        with self.torch.cuda.stream(stream):
            buf[: host.nbytes].copy_(src, non_blocking=False)

    def dtoh(self, host: np.ndarray, buf: Any, stream: Any) -> None:
        with self.torch.cuda.stream(stream):
            data = buf[: host.nbytes].cpu().numpy()
        host.reshape(-1).view(np.uint8)[:] = data

    def synchronize(self, stream: Any) -> None:
        stream.synchronize()

    def event(self) -> Any:
        return self.torch.cuda.Event(enable_timing=True)

    def record(self, event: Any, stream: Any) -> None:
        event.record(stream)

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.elapsed_time(end))


def cuda_runtime() -> _CudaRuntime | _TorchCuda:
    """cuda-python's runtime bindings, else torch's CUDA; a clear error when neither is usable."""
    try:
        return _CudaRuntime()
    except ImportError:
        pass
    try:
        return _TorchCuda()
    except ImportError:
        pass
    raise EdgeresError("no CUDA runtime binding for Python: install cuda-python (pip install 'cuda-python>=12', "
                       "matching the CUDA of your TensorRT/JetPack) or a CUDA build of torch")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    cc: tuple[int, int]
    total_memory: int
    binding: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "compute_capability": cc_str(self.cc),
                "total_memory_mib": self.total_memory >> 20, "cuda_binding": self.binding}


def gpu_info(index: int = 0) -> GpuInfo:
    """The GPU TensorRT will use: name and compute capability read from the device."""
    cuda = cuda_runtime()
    count = cuda.device_count()
    if count <= index:
        raise EdgeresError(f"no NVIDIA GPU here (CUDA reports {count} device(s)); {NOT_INSTALLED}")
    name, cc, mem = cuda.properties(index)
    return GpuInfo(index, name, cc, mem, cuda.name)


def dla_cores() -> int:
    """DLA cores TensorRT can use here (Jetson AGX Orin / Orin NX / Xavier: 1-2; elsewhere 0)."""
    require_tensorrt()
    import tensorrt as trt

    try:
        return int(trt.Builder(_logger()).num_DLA_cores)
    except Exception:  # noqa: BLE001 - no usable builder means no DLA either
        return 0


# --- build -------------------------------------------------------------------------------------

def _logger() -> trt_t.Logger:
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def _dims(shape: Any) -> list[int]:
    return [int(d) for d in shape]


def _apply_plan(config: trt_t.IBuilderConfig, plan: EnginePlan) -> None:
    """Builder-config settings of an EnginePlan (the network flags are applied at create_network)."""
    import tensorrt as trt

    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    if plan.optimization_level is not None:
        config.builder_optimization_level = plan.optimization_level
    for name in plan.builder_flags:
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
    logger = _logger()
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
    input_shape = _dims(inp.shape)
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
        "output": {"name": out.name, "shape": _dims(out.shape), "dtype": np.dtype(trt.nptype(out.dtype)).name},
        "tensorrt_version": trt.__version__, "gpu": gpu.name, "compute_capability": cc_str(gpu.cc),
        "typed_mode": plan.typed_mode, "typed_reason": plan.typed_reason,
        "execution_precision": execution_precision(plan),
        "profile": ({"batch": str(plan.batch), "min": list(shapes[0]), "opt": list(shapes[1]),
                     "max": list(shapes[2])} if shapes else {"batch": "static", "shape": input_shape}),
        "plan": plan.to_dict(),
        "onnx": {"file": onnx_path.name, "sha256": onnx_sha256 or sha256_file(onnx_path)},
        "timing_cache": TIMING_CACHE if cache_path is not None else None,
        "trtexec": trtexec_command(plan, onnx_path.name, engine_path.name, inp.name, shapes),
        "built_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
    }
    metadata.update(extra_metadata or {})
    return Artifact(path=engine_path, metadata=metadata).save()


def execution_precision(plan: EnginePlan) -> str:
    """What the engine computes in: INT8 engines fall back to FP16 (or FP32) where INT8 has no kernel."""
    if plan.precision == "int8":
        return "int8+fp16" if "FP16" in plan.builder_flags else "int8+fp32"
    return plan.precision


# --- run ---------------------------------------------------------------------------------------

class TensorRTRunner(Runner):
    """A deserialized engine: NCHW float32 in, logits out, on one CUDA stream."""

    timing_modes = tuple(TIMED)

    def __init__(self, artifact: Artifact, device: int = 0) -> None:
        require_tensorrt()
        import tensorrt as trt

        self.cuda = cuda_runtime()
        self.gpu = gpu_info(device)
        self.cuda.set_device(device)
        meta = artifact.metadata
        check_engine_compat(meta, trt.__version__, self.gpu.cc, self.gpu.name, engine=str(artifact.path))
        artifact.verify()
        self.artifact = artifact
        self._logger = _logger()
        self.runtime = trt.Runtime(self._logger)
        if meta.get("plan", {}).get("dla_core") is not None:
            self.runtime.DLA_core = int(meta["plan"]["dla_core"])
        engine: trt_t.ICudaEngine | None = self.runtime.deserialize_cuda_engine(artifact.path.read_bytes())
        if engine is None:
            raise EdgeresError(f"TensorRT could not deserialize {artifact.path}: rebuild it on this device")
        self.engine: trt_t.ICudaEngine = engine
        self.context: trt_t.IExecutionContext = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgeresError(f"{artifact.path}: expected one input and one output tensor, found {names}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        shape = _dims(self.engine.get_tensor_shape(self.input_name))
        if shape[0] < 0:
            shape = _dims(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])  # [min, opt, max]
        self.max_input_shape = tuple(shape)
        self.max_batch = shape[0]
        self.context.set_input_shape(self.input_name, self.max_input_shape)
        max_out = _dims(self.context.get_tensor_shape(self.output_name))
        self.stream = self.cuda.stream()
        self._events: tuple[Any, Any] | None = None
        self._in_buf = self.cuda.malloc(int(np.prod(shape)) * self.input_dtype.itemsize)
        self._out_buf = self.cuda.malloc(int(np.prod(max_out)) * self.output_dtype.itemsize)
        self.context.set_tensor_address(self.input_name, self.cuda.ptr(self._in_buf))
        self.context.set_tensor_address(self.output_name, self.cuda.ptr(self._out_buf))
        self.input_shape = list(shape)
        self.info = RunnerInfo(
            backend="tensorrt", backend_version=trt.__version__, precision=str(meta.get("precision")),
            timed=TIMED["host"], device=f"{self.gpu.name} (sm {cc_str(self.gpu.cc)})", max_batch=self.max_batch,
            execution_precision=meta.get("execution_precision"),
            extra={"typed_mode": meta.get("typed_mode"), "dla_core": meta.get("plan", {}).get("dla_core"),
                   "cuda_binding": self.cuda.name})
        self.timing = "host"

    @property
    def timing(self) -> str:
        """What ``time_batch`` (used by edgeres.validate.measure_latency) measures: "host" or "device"."""
        return self._timing

    @timing.setter
    def timing(self, value: str) -> None:
        if value not in TIMED:
            raise EdgeresError(f"timing must be one of {', '.join(TIMED)}, got {value!r}")
        self._timing = value
        self.info.timed = TIMED[value]

    def time_batch(self, batch: np.ndarray) -> float:
        """Milliseconds for one batch: host wall clock of a whole call, or device time (CUDA events)."""
        if self._timing == "host":
            start = time.perf_counter()
            self(batch)
            return (time.perf_counter() - start) * 1000.0
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if len(batch) > self.max_batch:
            raise EdgeresError(f"device timing takes batches up to the profile max {self.max_batch}, got {len(batch)}")
        self._enqueue_copy(batch)
        if self._events is None:
            self._events = (self.cuda.event(), self.cuda.event())
        start_ev, end_ev = self._events
        self.cuda.record(start_ev, self.stream)
        self._execute(batch.shape)
        self.cuda.record(end_ev, self.stream)
        return self.cuda.elapsed_ms(start_ev, end_ev)

    def _enqueue_copy(self, batch: np.ndarray) -> tuple[int, ...]:
        """Set the input shape and queue the host-to-device copy; the output shape for this batch."""
        self.context.set_input_shape(self.input_name, batch.shape)
        out_shape = tuple(_dims(self.context.get_tensor_shape(self.output_name)))
        self.cuda.htod(self._in_buf, batch, self.stream)
        return out_shape

    def _execute(self, shape: tuple[int, ...]) -> None:
        if not self.context.execute_async_v3(self.cuda.stream_handle(self.stream)):
            raise EdgeresError(f"TensorRT execution failed for a batch of shape {shape}")

    def _enqueue(self, batch: np.ndarray) -> tuple[int, ...]:
        out_shape = self._enqueue_copy(batch)
        self._execute(batch.shape)
        return out_shape

    def _run(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if tuple(batch.shape[1:]) != self.max_input_shape[1:]:
            raise EdgeresError(f"input of shape {batch.shape} does not match the engine's input "
                               f"{self.max_input_shape[1:]} (batch first)")
        out_shape = self._enqueue(batch)
        host = np.empty(out_shape, dtype=self.output_dtype)
        self.cuda.dtoh(host, self._out_buf, self.stream)
        self.cuda.synchronize(self.stream)
        return host

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits for an NCHW float32 batch; batches above the profile's max run in chunks."""
        batch = np.asarray(batch)
        if batch.ndim != len(self.max_input_shape):
            raise EdgeresError(f"expected a batch of shape (N, {', '.join(map(str, self.max_input_shape[1:]))}), "
                               f"got {batch.shape}")
        chunks = [self._run(batch[i:i + self.max_batch]) for i in range(0, len(batch), self.max_batch)]
        return np.concatenate(chunks).astype(np.float32, copy=False)

    def device_latency_ms(self, batch_size: int = 1, iterations: int = 100, warmup: int = 10) -> list[float]:
        """Device time of execute_async_v3 alone, per iteration, from CUDA events (inputs already on the GPU)."""
        if not 1 <= batch_size <= self.max_batch:
            raise EdgeresError(f"batch size {batch_size} is outside the engine's profile (1..{self.max_batch})")
        batch = np.zeros((batch_size, *self.max_input_shape[1:]), dtype=self.input_dtype)
        self._enqueue(batch)
        handle = self.cuda.stream_handle(self.stream)
        for _ in range(warmup):
            self.context.execute_async_v3(handle)
        self.cuda.synchronize(self.stream)
        start, end = self.cuda.event(), self.cuda.event()
        times = []
        for _ in range(iterations):
            self.cuda.record(start, self.stream)
            self.context.execute_async_v3(handle)
            self.cuda.record(end, self.stream)
            times.append(self.cuda.elapsed_ms(start, end))
        return times

    def close(self) -> None:
        for buf in (getattr(self, "_in_buf", None), getattr(self, "_out_buf", None)):
            if buf is not None:
                self.cuda.free(buf)
        self._in_buf = self._out_buf = None
        if getattr(self, "stream", None) is not None:
            self.cuda.destroy_stream(self.stream)
            self.stream = None

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()


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
        builder = trt.Builder(_logger())
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
        typed FP16) besides the TensorRT options of ``tensorrt_plan.OPTIONS``.
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
        builder = trt.Builder(_logger())
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
                    from edgeres.backends.tensorrt_onnx import to_fp16

                    source = to_fp16(graph, spec.out_dir / f"{graph.stem}_fp16.onnx")
                except EdgeresError:
                    plan = plan_engine(spec.precision, version, options, batch=spec.batch,
                                       num_dla_cores=int(builder.num_DLA_cores), have_fp16_onnx=False)
        engine = spec.out_dir / f"model_{spec.precision}.engine"
        return build_engine(source, engine, plan, target=target.name, gpu=gpu)

    def load(self, artifact: Artifact, **options: Any) -> TensorRTRunner:
        return TensorRTRunner(artifact, device=int(options.get("device", 0)))


BACKEND = TensorRTBackend()

