"""A TensorRT engine behind the Runner interface: ``execute_async_v3`` on one CUDA stream,
timed on the host (wall clock of a whole call) or on the device (CUDA events).

Type-checked against ``tensorrt-stubs`` (``make typecheck``).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends import tensorrt_cuda as cuda_api
from edgeres.backends.base import LayerTime, Runner, RunnerInfo
from edgeres.backends.tensorrt_cuda import dims, require_tensorrt, trt_logger
from edgeres.backends.tensorrt_plan import cc_str, check_engine_compat
from edgeres.errors import EdgeresError

if TYPE_CHECKING:
    import tensorrt as trt_t

TIMED = {
    "host": ("host wall clock per call: host-to-device copy + execute_async_v3 + device-to-host copy + stream "
             "synchronize (inputs start on the host, logits end on the host)"),
    "device": "device time of execute_async_v3 alone, from CUDA events on the stream (inputs already on the GPU)",
}


class TensorRTRunner(Runner):
    """A deserialized engine: NCHW float32 in, logits out, on one CUDA stream."""

    timing_modes = tuple(TIMED)

    def __init__(self, artifact: Artifact, device: int = 0) -> None:
        require_tensorrt()
        import tensorrt as trt

        self.cuda = cuda_api.cuda_runtime()
        self.gpu = cuda_api.gpu_info(device)
        self.cuda.set_device(device)
        meta = artifact.metadata
        check_engine_compat(meta, trt.__version__, self.gpu.cc, self.gpu.name, engine=str(artifact.path))
        artifact.verify()
        self.artifact = artifact
        self._logger = trt_logger()
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
        shape = dims(self.engine.get_tensor_shape(self.input_name))
        if shape[0] < 0:
            shape = dims(self.engine.get_tensor_profile_shape(self.input_name, 0)[2])  # [min, opt, max]
        self.max_input_shape = tuple(shape)
        self.max_batch = shape[0]
        self.context.set_input_shape(self.input_name, self.max_input_shape)
        max_out = dims(self.context.get_tensor_shape(self.output_name))
        self.stream = self.cuda.stream()
        self._events: tuple[Any, Any] | None = None
        self._in_buf = self.cuda.malloc(int(np.prod(shape)) * np.dtype(self.input_dtype).itemsize)
        self._out_buf = self.cuda.malloc(int(np.prod(max_out)) * self.output_dtype.itemsize)
        self.context.set_tensor_address(self.input_name, self.cuda.ptr(self._in_buf))
        self.context.set_tensor_address(self.output_name, self.cuda.ptr(self._out_buf))
        self.input_shape = [-1, *shape[1:]]  # any batch: above the profile's max it runs in chunks
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
        out_shape = tuple(dims(self.context.get_tensor_shape(self.output_name)))
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
        out_shape = self._enqueue(batch)
        host = np.empty(out_shape, dtype=self.output_dtype)
        self.cuda.dtoh(host, self._out_buf, self.stream)
        self.cuda.synchronize(self.stream)
        return host

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """Logits for an NCHW float32 batch; batches above the profile's max run in chunks."""
        batch = self.check_input(batch)
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

    def throughput_queue(self, batch_size: int, streams: int = 2) -> tuple[Any, dict[str, Any]]:
        """``streams`` sibling runners of this engine, each with its own execution context, buffers
        and CUDA stream, kept busy by worker threads: ``trtexec --streams`` (for
        ``edgeres.validate.throughput``). The queue's ``close`` frees the siblings."""
        from edgeres.validate.throughput import ThreadQueue

        siblings = [TensorRTRunner(self.artifact, self.gpu.index) for _ in range(streams)]
        queue = ThreadQueue([runner.__call__ for runner in siblings], streams)
        close_queue = queue.close

        def close() -> None:
            close_queue()
            for runner in siblings:
                runner.close()

        queue.close = close  # type: ignore[method-assign]
        return queue, {"mode": f"{streams} execution contexts on {streams} CUDA streams", "streams": streams,
                       "threads": streams}

    def profile(self, batch: int = 1, runs: int = 20) -> list[LayerTime]:
        """TensorRT's per-layer times (an ``IProfiler`` on the context, as ``trtexec --dumpProfile
        --separateProfileRun``), with each layer's type, tactic and output precision from the
        engine inspector where the engine was built with detailed profiling verbosity."""
        import tensorrt as trt

        if not 1 <= batch <= self.max_batch:
            raise EdgeresError(f"batch size {batch} is outside the engine's profile (1..{self.max_batch})")
        times: dict[str, list[float]] = {}

        class _Profiler(trt.IProfiler):  # type: ignore[misc]
            def __init__(self) -> None:
                trt.IProfiler.__init__(self)

            def report_layer_time(self, layer_name: str, ms: float) -> None:
                times.setdefault(layer_name, []).append(float(ms))

        x = np.zeros((batch, *self.max_input_shape[1:]), dtype=self.input_dtype)
        self._run(x)  # warm-up, not profiled
        previous = self.context.profiler
        self.context.profiler = _Profiler()
        try:
            for _ in range(runs):
                self._run(x)
        finally:
            self.context.profiler = previous
        info = layer_information(self.engine)
        return [LayerTime(name=name, op=info.get(name, {}).get("LayerType", ""),
                          kernel=info.get(name, {}).get("TacticName", ""),
                          precision=info.get(name, {}).get("precision", ""), ms=float(np.median(ms)),
                          min_ms=float(np.min(ms)))
                for name, ms in times.items()]

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


def layer_information(engine: Any) -> dict[str, dict[str, str]]:
    """Per layer name: type, tactic and output precision from the engine inspector ({} when the
    engine carries no detailed layer information)."""
    import json

    import tensorrt as trt

    out: dict[str, dict[str, str]] = {}
    try:
        inspector = engine.create_engine_inspector()
        for i in range(engine.num_layers):
            info = json.loads(inspector.get_layer_information(i, trt.LayerInformationFormat.JSON))
            if not isinstance(info, dict) or "Name" not in info:
                continue
            fmt = str(((info.get("Outputs") or [{}])[0]).get("Format/Datatype", "")).lower()
            precision = next((p for key, p in (("int8", "int8"), ("half", "fp16"), ("fp16", "fp16"), ("bf16", "bf16"),
                                               ("float", "fp32"), ("fp32", "fp32")) if key in fmt), "")
            out[str(info["Name"])] = {"LayerType": str(info.get("LayerType", "")),
                                      "TacticName": str(info.get("TacticName", "")), "precision": precision}
    except (AttributeError, TypeError, ValueError, RuntimeError):
        return out
    return out
