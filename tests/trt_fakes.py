"""A fake ``tensorrt`` module and CUDA runtime that record what the backend asks of them.

They pin the TensorRT API calls the backend makes (names, arguments, order) without
TensorRT or a GPU; the real calls are type-checked against tensorrt-stubs separately.
A fake engine computes what the ONNX it was built from computes (with ONNX Runtime), so
the kit's device-side validation sees real logits; an ONNX that does not load (a test's
placeholder bytes) gives the first ``classes`` input values instead.

``make_tensorrt("11.x")`` behaves as TensorRT 11 does: no precision builder flags
(``BuilderFlag.FP16``/``INT8``/``BF16`` do not exist), no ``EXPLICIT_BATCH``, no
``platform_has_fast_*``, no ``int8_calibrator``: a build that asks for any of them fails.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np

MEMORY: dict[int, np.ndarray] = {}
REMOVED_IN_11 = ("int8_calibrator",)   # IBuilderConfig attributes TensorRT 11 removed
# what the fake engine's layer profiler reports per run: TensorRT names fused layers "A + B"
FAKE_LAYERS = (("/conv1/Conv + /relu/Relu", 0.25), ("/layer1/layer1.0/conv1/Conv + /layer1/layer1.0/relu/Relu", 0.5),
               ("Reformatting CopyNode for Output Tensor 0", 0.05))


class _Enum:
    def __init__(self, name: str, value: int) -> None:
        self.name, self.value = name, value

    def __int__(self) -> int:
        return self.value

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Enum) and (self.name, self.value) == (other.name, other.value)

    def __hash__(self) -> int:
        return hash((self.name, self.value))


def _enum(cls_name: str, **members: int) -> type:
    return type(cls_name, (), {k: _Enum(k, v) for k, v in members.items()})


class Tensor:
    def __init__(self, name: str, shape: list[int]) -> None:
        self.name, self.shape, self.dtype = name, shape, "float32"


class Layer:
    def __init__(self, name: str) -> None:
        self.name = name


def _onnx_logits(path: str, x: np.ndarray, classes: int) -> np.ndarray:
    """What the engine built from ``path`` computes: the ONNX on ONNX Runtime, else x's first values."""
    try:
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - placeholder bytes, or no onnxruntime
        return x.reshape(len(x), -1)[:, :classes].copy()
    return np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0], dtype=np.float32)


def make_tensorrt(version: str = "10.13.0.35", calls: list[tuple[Any, ...]] | None = None, dla_cores: int = 0,
                  input_shape: tuple[int, ...] = (-1, 3, 8, 8), classes: int = 4, parse_ok: bool = True
                  ) -> types.ModuleType:
    """A module that quacks like ``tensorrt`` ``version``; every call is appended to ``calls``."""
    log = calls if calls is not None else []
    major = int(version.split(".")[0])
    minor = int(version.split(".")[1])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version  # type: ignore[attr-defined]
    net_flags = {"EXPLICIT_BATCH": 0}
    if (major, minor) >= (9, 1):
        net_flags["STRONGLY_TYPED"] = 1
    if major >= 11:
        net_flags.pop("EXPLICIT_BATCH")
    trt.NetworkDefinitionCreationFlag = _enum("NetworkDefinitionCreationFlag", **net_flags)  # type: ignore[attr-defined]
    flags = {"GPU_FALLBACK": 3, "TF32": 6}
    if major < 11:
        flags.update(FP16=0, INT8=1)
    if (9, 0) <= (major, minor) < (11, 0):
        flags["BF16"] = 7
    trt.BuilderFlag = _enum("BuilderFlag", **flags)  # type: ignore[attr-defined]
    trt.MemoryPoolType = _enum("MemoryPoolType", WORKSPACE=0)  # type: ignore[attr-defined]
    trt.DeviceType = _enum("DeviceType", GPU=0, DLA=1)  # type: ignore[attr-defined]
    trt.TensorIOMode = _enum("TensorIOMode", NONE=0, INPUT=1, OUTPUT=2)  # type: ignore[attr-defined]

    class Logger:
        WARNING = _Enum("WARNING", 2)

        def __init__(self, severity: Any = None) -> None:
            log.append(("Logger", severity))

    def Dims(shape: list[int]) -> tuple[int, ...]:
        return tuple(shape)

    class Network:
        LAYERS = ("conv1", "relu", "pool", "flatten", "fc")

        def __init__(self, flags: int) -> None:
            self.flags = flags
            self.num_inputs = 1
            self.num_outputs = 1
            self.num_layers = len(self.LAYERS)
            self.onnx = ""

        def get_layer(self, i: int) -> Layer:
            return Layer(self.LAYERS[i])

        def get_input(self, i: int) -> Tensor:
            return Tensor("input", list(input_shape))

        def get_output(self, i: int) -> Tensor:
            return Tensor("logits", [input_shape[0], classes])

    class Parser:
        def __init__(self, network: Network, logger: Any) -> None:
            self.num_errors = 0 if parse_ok else 1
            self.network = network

        def parse_from_file(self, path: str) -> bool:
            log.append(("parse_from_file", path))
            self.network.onnx = path
            return parse_ok

        def get_error(self, i: int) -> str:
            return "In node 0 (Conv): unsupported"

    class TimingCache:
        def serialize(self) -> bytes:
            return b"TIMING"

    class Profile:
        def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
            log.append(("set_shape", name, lo, opt, hi))

    class Config:
        def __init__(self) -> None:
            self._cache = TimingCache()

        def __setattr__(self, key: str, value: Any) -> None:
            if major >= 11 and key in REMOVED_IN_11:
                raise AttributeError(f"'tensorrt.IBuilderConfig' object has no attribute '{key}'")
            if not key.startswith("_"):
                log.append(("config." + key, value))
            object.__setattr__(self, key, value)

        def set_memory_pool_limit(self, pool: Any, size: int) -> None:
            log.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag: Any) -> None:
            log.append(("set_flag", flag.name))

        def clear_flag(self, flag: Any) -> None:
            log.append(("clear_flag", flag.name))

        def add_optimization_profile(self, profile: Profile) -> int:
            log.append(("add_optimization_profile",))
            return 0

        def create_timing_cache(self, data: bytes) -> TimingCache:
            log.append(("create_timing_cache", bytes(data)))
            return self._cache

        def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
            log.append(("set_timing_cache", ignore_mismatch))
            return True

        def get_timing_cache(self) -> TimingCache:
            return self._cache

        def can_run_on_DLA(self, layer: Layer) -> bool:
            return layer.name != "pool"   # one layer the fake DLA cannot run: it falls back to the GPU

    class Builder:
        num_DLA_cores = dla_cores
        if major < 11:
            platform_has_fast_fp16 = True
            platform_has_fast_int8 = True

        def __init__(self, logger: Any) -> None:
            pass

        def create_network(self, flags: int = 0) -> Network:
            log.append(("create_network", flags))
            return Network(flags)

        def create_builder_config(self) -> Config:
            return Config()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: Config) -> bytes:
            log.append(("build_serialized_network",))
            return b"ENGINE" + bytes([network.flags]) + network.onnx.encode()

    class IProfiler:
        def __init__(self) -> None:
            pass

    class Context:
        def __init__(self, onnx: str) -> None:
            self.onnx = onnx
            self.shapes: dict[str, tuple[int, ...]] = {}
            self.addresses: dict[str, int] = {}
            self.profiler: Any = None

        def set_input_shape(self, name: str, shape: Any) -> bool:
            self.shapes[name] = tuple(int(d) for d in shape)
            return True

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            n = self.shapes["input"][0]
            return (n, *input_shape[1:]) if name == "input" else (n, classes)

        def set_tensor_address(self, name: str, ptr: int) -> bool:
            self.addresses[name] = ptr
            return True

        def execute_async_v3(self, stream_handle: int) -> bool:
            log.append(("execute_async_v3", stream_handle))
            n = self.shapes["input"][0]
            x = MEMORY[self.addresses["input"]].view(np.float32)[: n * int(np.prod(input_shape[1:]))]
            y = _onnx_logits(self.onnx, x.reshape(n, *input_shape[1:]), classes)
            MEMORY[self.addresses["logits"]].view(np.float32)[: y.size] = y.reshape(-1)
            if self.profiler is not None:
                for name, ms in FAKE_LAYERS:
                    self.profiler.report_layer_time(name, ms)
            return True

    class Engine:
        num_io_tensors = 2

        def __init__(self, onnx: str) -> None:
            self.onnx = onnx

        def get_tensor_name(self, i: int) -> str:
            return ["input", "logits"][i]

        def get_tensor_mode(self, name: str) -> Any:
            return trt.TensorIOMode.INPUT if name == "input" else trt.TensorIOMode.OUTPUT  # type: ignore[attr-defined]

        def get_tensor_dtype(self, name: str) -> str:
            return "float32"

        def get_tensor_shape(self, name: str) -> tuple[int, ...]:
            return tuple(input_shape) if name == "input" else (input_shape[0], classes)

        def get_tensor_profile_shape(self, name: str, index: int) -> list[tuple[int, ...]]:
            rest = tuple(input_shape[1:])
            return [(1, *rest), (2, *rest), (4, *rest)]

        def create_execution_context(self) -> Context:
            return Context(self.onnx)

        num_layers = 3

        def create_engine_inspector(self) -> Inspector:
            return Inspector()

    class Inspector:
        def get_layer_information(self, i: int, fmt: Any) -> str:
            import json

            name, _ms = FAKE_LAYERS[i]
            dtype = "Int8 NC/32HW32" if "conv" in name else "Float NCHW"
            return json.dumps({"Name": name, "LayerType": "CaskConvolution" if "conv" in name else "Reformat",
                               "TacticName": "sm80_xmma_fprop_implicit_gemm_interleaved_i8i8" if "conv" in name else "",
                               "Outputs": [{"Format/Datatype": dtype}]})

    class Runtime:
        def __init__(self, logger: Any) -> None:
            pass

        def deserialize_cuda_engine(self, data: bytes) -> Engine | None:
            log.append(("deserialize_cuda_engine", len(data)))
            return Engine(data[7:].decode()) if data.startswith(b"ENGINE") else None

    trt.ProfilingVerbosity = _enum("ProfilingVerbosity", LAYER_NAMES_ONLY=0, NONE=1, DETAILED=2)  # type: ignore[attr-defined]
    trt.LayerInformationFormat = _enum("LayerInformationFormat", ONELINE=0, JSON=1)  # type: ignore[attr-defined]
    trt.IProfiler = IProfiler  # type: ignore[attr-defined]
    trt.Logger = Logger  # type: ignore[attr-defined]
    trt.Dims = Dims  # type: ignore[attr-defined]
    trt.Builder = Builder  # type: ignore[attr-defined]
    trt.OnnxParser = Parser  # type: ignore[attr-defined]
    trt.Runtime = Runtime  # type: ignore[attr-defined]
    trt.nptype = lambda dtype: np.float32  # type: ignore[attr-defined]
    return trt


class FakeCuda:
    """The cuda_runtime() interface over host memory."""

    name = "fake-cuda"

    def __init__(self, cc: tuple[int, int] = (8, 7), gpu: str = "Orin") -> None:
        self.cc, self.gpu = cc, gpu
        self.events = 0

    def device_count(self) -> int:
        return 1

    def properties(self, index: int) -> tuple[str, tuple[int, int], int]:
        return self.gpu, self.cc, 8 << 30

    def set_device(self, index: int) -> None:
        pass

    def malloc(self, nbytes: int) -> int:
        buf = np.zeros(max(int(nbytes), 4), dtype=np.uint8)
        MEMORY[id(buf)] = buf
        return id(buf)

    def ptr(self, buf: int) -> int:
        return buf

    def free(self, buf: int) -> None:
        MEMORY.pop(buf, None)

    def stream(self) -> int:
        return 7

    def stream_handle(self, stream: int) -> int:
        return stream

    def destroy_stream(self, stream: int) -> None:
        pass

    def htod(self, buf: int, host: np.ndarray, stream: int) -> None:
        MEMORY[buf][: host.nbytes] = host.reshape(-1).view(np.uint8)

    def dtoh(self, host: np.ndarray, buf: int, stream: int) -> None:
        host.reshape(-1).view(np.uint8)[:] = MEMORY[buf][: host.nbytes]

    def synchronize(self, stream: int) -> None:
        pass

    def event(self) -> int:
        self.events += 1
        return self.events

    def record(self, event: int, stream: int) -> None:
        pass

    def elapsed_ms(self, start: int, end: int) -> float:
        return 0.5
