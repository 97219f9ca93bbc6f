"""A compiled OpenVINO IR behind the Runner interface: one static-shape compile per batch size
(or one dynamic), cached on disk; synchronous requests for latency, an async queue for throughput.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.backends.base import LayerTime, Runner, RunnerInfo
from edgeres.backends.openvino_device import (
    _compile,
    _device_name,
    _hint_name,
    _ov,
    check_device,
    check_precision_supported,
    default_cache_dir,
    kernel_precision,
    runtime_precisions,
)
from edgeres.errors import EdgeresError
from edgeres.fileio import sha256_file
from edgeres.optional import version_of


def _ov_reason(exc: Exception) -> str:
    """OpenVINO's own reason, without its 'Exception from src/...cpp:NN:' location lines."""
    lines = [ln.strip() for ln in str(exc).splitlines()
             if ln.strip() and not ln.startswith(("Exception from src/", "Check '"))]
    return (lines[0] if lines else type(exc).__name__).split(" Please check")[0].rstrip(". ")

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
        weights = [str(bin_path)] if xml.suffix == ".xml" else []  # OpenVINO also reads an ONNX as it is
        if weights and not bin_path.is_file():
            raise EdgeresError(f"OpenVINO IR {xml} needs its weights file {bin_path.name} beside it, and it is missing;"
                               " copy it along or rebuild the IR")
        if verify:
            artifact.verify()
            if weights and meta.get("bin_sha256") and sha256_file(bin_path) != meta["bin_sha256"]:
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
        self.hint: str | None = meta["inference_precision_hint"]  # None: the device's default (a foreign model)
        check_precision_supported(self.core, self.device, self.hint, f"running {xml}")
        cache_dir = cache_dir or runtime.get("cache_dir")
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.dynamic = bool(runtime.get("dynamic_batch", False))
        try:
            self._model = self.core.read_model(str(xml), *weights)
        except RuntimeError as exc:
            raise EdgeresError(f"{xml} is not an OpenVINO IR that OpenVINO {_ov().__version__.split('-')[0]} can read "
                               f"({_ov_reason(exc)}); rebuild it with edgeres, or copy it again") from None
        self._shape = [d.get_length() if d.is_static else -1 for d in self._model.inputs[0].get_partial_shape()]
        self.input_shape = [-1, *self._shape[1:]]  # any batch: the IR is reshaped (or dynamic) per batch size
        self._compiled: dict[int, Any] = {}
        self._requests: dict[int, Any] = {}
        self._bound: dict[int, tuple[Any, np.ndarray]] = {}  # batch size -> (request, the array it reads)
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
                self._bound.pop(oldest, None)
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
        bound = self._bound.get(key)
        if bound is None or bound[0] is not request or bound[1] is not batch:
            # the request reads the batch in place; set again only for another array (a timing
            # loop or a reused buffer passes the same one: no new tensor per call)
            request.set_input_tensor(_ov().Tensor(batch, shared_memory=True))
            self._bound[key] = (request, batch)
        request.infer()
        return np.array(request.get_output_tensor(0).data, copy=True)

    def profile(self, batch: int = 1, runs: int = 20) -> list[LayerTime]:
        """OpenVINO's per-layer counters (``PERF_COUNT``, what ``benchmark_app -pc`` prints) for a
        ``batch``, compiled as this runner compiles, with counting on; the warm-up run left out,
        each layer's median over ``runs``."""
        model = self._model.clone()
        model.reshape([batch, *self._shape[1:]])
        compiled, _ = _compile(self.core, model, self.device, self.hint, self.options | {"perf_count": True}, None)
        request = compiled.create_infer_request()
        x = np.random.default_rng(0).standard_normal((batch, *self._shape[1:])).astype(np.float32)
        request.infer({0: x})
        times: dict[str, list[float]] = {}
        first: dict[str, Any] = {}
        for _ in range(runs):
            request.infer({0: x})
            for p in request.profiling_info:
                if str(p.status).endswith("EXECUTED"):
                    times.setdefault(p.node_name, []).append(p.real_time.total_seconds() * 1000.0)
                    first.setdefault(p.node_name, p)
        return [LayerTime(name=name, op=str(p.node_type), kernel=str(p.exec_type),
                          precision=kernel_precision(str(p.exec_type)), ms=float(np.median(times[name])),
                          min_ms=float(np.min(times[name])))
                for name, p in first.items()]

    def close(self) -> None:
        self._bound.clear()
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

    def throughput_queue(self, batch_size: int) -> tuple[Any, dict[str, Any]]:
        """An AsyncInferQueue on the IR compiled with the THROUGHPUT hint (same inference precision),
        ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests: ``benchmark_app -hint throughput``'s setup.
        For ``edgeres.validate.throughput``."""
        model = self._model
        if not self.dynamic:
            model = self._model.clone()
            model.reshape([batch_size, *self._shape[1:]])
        options = {**self.options, "performance_hint": "THROUGHPUT", "streams": None}
        compiled, _ = _compile(self.core, model, self.device, self.hint, options, self.cache_dir)
        jobs = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        mode = {"mode": "async, THROUGHPUT hint", "streams": int(compiled.get_property("NUM_STREAMS")),
                "threads": int(compiled.get_property("INFERENCE_NUM_THREADS"))}
        return InputsOnceQueue(_ov().AsyncInferQueue(compiled, jobs)), mode


class InputsOnceQueue:
    """An ``AsyncInferQueue`` whose requests each get the input tensor once (``set_inputs``) and are
    then restarted on it with ``start_async()``: ``benchmark_app``'s inference-only loop, with no
    copy and no Python callback per request. The queue's own methods are bound directly, so the
    driver pays no extra Python call per request."""

    def __init__(self, queue: Any) -> None:
        self.queue = queue
        self.start_async = queue.start_async
        self.get_idle_request_id = queue.get_idle_request_id
        self.is_ready = queue.is_ready
        self.wait_all = queue.wait_all

    def __len__(self) -> int:
        return len(self.queue)

    def set_inputs(self, batch: np.ndarray) -> None:
        self._batch = batch  # the tensors share its memory: keep it alive
        for request in self.queue:
            request.set_input_tensor(_ov().Tensor(batch, shared_memory=True))
