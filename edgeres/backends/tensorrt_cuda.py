"""Finding TensorRT, CUDA and the GPU: the TensorRT module, a CUDA runtime binding (cuda-python's,
or torch's CUDA tensors where torch with CUDA is installed and cuda-python is not), and GPU facts.

Type-checked against ``tensorrt-stubs`` (``make typecheck``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.backends.tensorrt_plan import cc_str
from edgeres.errors import EdgeresError

if TYPE_CHECKING:
    import tensorrt as trt_t

NOT_INSTALLED = ("TensorRT is not installed / no NVIDIA GPU here: TensorRT engines are built and run on the "
                 "NVIDIA device itself (on Jetson, TensorRT ships with JetPack; on x86 install NVIDIA's tensorrt "
                 "wheel and cuda-python). On a machine without one, build a device kit instead "
                 "(edgeres build --target jetson ...) and run 'edgeres kit build KIT' on the device")


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
        return int(trt.Builder(trt_logger()).num_DLA_cores)
    except Exception:  # noqa: BLE001 - no usable builder means no DLA either
        return 0


def trt_logger() -> trt_t.Logger:
    import tensorrt as trt

    return trt.Logger(trt.Logger.WARNING)


def dims(shape: Any) -> list[int]:
    return [int(d) for d in shape]
