"""The TensorRT runner's CUDA memory paths on a real NVIDIA GPU, without TensorRT.

Marked ``cuda``: they skip where there is no NVIDIA GPU or no Python CUDA binding. Each
binding the runner can use (cuda-python's runtime, torch's CUDA) allocates device memory,
copies a batch there and back on a stream, and times with events; then the runner itself
runs on the fake TensorRT with that real memory (the fake engine copies input to output on
the device through the binding).
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import numpy as np
import pytest

from edgeres.backends import tensorrt as trt_backend
from edgeres.backends import tensorrt_cuda as trt_cuda


def _bindings():
    found = []
    for factory in (trt_cuda._CudaRuntime, trt_cuda._TorchCuda):
        with contextlib.suppress(Exception):  # binding absent, or no CUDA in it
            found.append(factory())
    return found


@pytest.mark.cuda
def test_each_cuda_binding_round_trips_a_batch_through_device_memory():
    bindings = _bindings()
    assert bindings, "a cuda-marked test runs only where a binding exists"
    for cuda in bindings:
        assert cuda.device_count() >= 1
        name, cc, mem = cuda.properties(0)
        assert cc[0] >= 5 and mem > 0, name
        x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
        buf = cuda.malloc(x.nbytes)
        stream = cuda.stream()
        start, end = cuda.event(), cuda.event()
        cuda.record(start, stream)
        cuda.htod(buf, x, stream)
        back = np.empty_like(x)
        cuda.dtoh(back, buf, stream)
        cuda.record(end, stream)
        cuda.synchronize(stream)
        np.testing.assert_array_equal(back, x)
        assert cuda.elapsed_ms(start, end) >= 0.0 and cuda.ptr(buf) != 0
        cuda.free(buf)
        cuda.destroy_stream(stream)


@pytest.mark.cuda
def test_runner_moves_batches_through_real_device_memory(monkeypatch, tmp_path):
    """TensorRTRunner on the fake TensorRT, with the real binding's memory and stream."""
    from trt_fakes import make_tensorrt

    cuda = _bindings()[0]
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("10.13.0.35", input_shape=(-1, 4)))
    monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: cuda)
    trt = importlib.import_module("tensorrt")
    engine_cls = trt.Runtime(None).deserialize_cuda_engine(b"ENGINE\x00").__class__
    ctx_cls = engine_cls("").create_execution_context().__class__

    def execute_on_device(self, stream_handle):  # the "engine": copy input to output, on the device
        n = self.shapes["input"][0]
        host = np.empty((n, 4), np.float32)
        cuda.dtoh(host, self._in, runner.stream)
        cuda.htod(self._out, host, runner.stream)
        return True

    monkeypatch.setattr(ctx_cls, "execute_async_v3", execute_on_device)
    engine = tmp_path / "e.engine"
    engine.write_bytes(b"ENGINE\x00")
    gpu = trt_cuda.gpu_info()
    from edgeres.artifact import Artifact
    from edgeres.fileio import sha256_file

    art = Artifact(path=engine, metadata={"tensorrt_version": "10.13.0.35", "compute_capability":
                                          f"{gpu.cc[0]}.{gpu.cc[1]}", "gpu": gpu.name, "sha256": sha256_file(engine),
                                          "precision": "fp32"}).save()
    runner = trt_backend.TensorRTRunner(Artifact.load(art.path))
    runner.context._in, runner.context._out = runner._in_buf, runner._out_buf
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(runner(x), x)
    runner.timing = "device"
    assert runner.time_batch(x) >= 0.0
    runner.close()
