"""Throughput, measured apart from latency and in the runtime's own best throughput mode.

A runner that has an asynchronous mode offers ``throughput_queue(batch_size)``, returning a queue
with OpenVINO's ``AsyncInferQueue`` interface (``start_async(inputs, userdata)``, which waits for
an idle request; ``set_callback``; ``wait_all``; ``len``) and a description of the mode
(streams, requests, threads, hint). OpenVINO's runner compiles with the THROUGHPUT hint and
``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests, as ``benchmark_app -hint throughput`` does. A
runner without one is timed synchronously at the largest batch it is given (ONNX Runtime: one
session using every core at its largest batch), and the figure says so.

``ThreadQueue`` gives any callable runner the same queue interface with N worker threads (for
runtimes that release the GIL, and for tests).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.validate.load import measure_under_load

DEFAULT_MIN_SECONDS = 5.0
ASYNC_TIMED = "wall clock from the first to the last completed request, every request kept busy"
SYNC_TIMED = "wall clock of back-to-back synchronous calls (one request in flight)"


@dataclass
class ThroughputResult:
    """Images per second in one mode; ``requests_busy_max`` shows every request was in flight at once."""

    images_per_second: float
    batch: int
    mode: str
    requests: int
    streams: int | None
    threads: Any
    runs: int  # batches completed in the timed window
    seconds: float
    min_runs: int
    min_seconds: float
    requests_used: int
    requests_busy_max: int
    timed: str
    load: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        streams = "" if self.streams is None else f", {self.streams} streams"
        return (f"{self.images_per_second:.1f} img/s ({self.mode}, batch {self.batch}{streams}, "
                f"{self.requests} requests, {self.threads} threads, n={self.runs})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ThreadQueue:
    """``AsyncInferQueue``'s interface over plain callables: ``jobs`` requests, each a worker thread.

    ``run`` is one callable shared by every request, or a list of ``jobs`` callables, one per
    request (TensorRT: one execution context and CUDA stream each, as ``trtexec --streams``).
    """

    def __init__(self, run: Callable[[np.ndarray], Any] | list[Callable[[np.ndarray], Any]], jobs: int) -> None:
        self._runs = run if isinstance(run, list) else [run] * jobs
        if len(self._runs) != jobs:
            raise EdgeresError(f"a queue of {jobs} requests needs {jobs} runners, got {len(self._runs)}")
        self._pool = ThreadPoolExecutor(max_workers=jobs)
        self._idle = threading.Semaphore(jobs)
        self._free = list(range(jobs))
        self._lock = threading.Lock()
        self._pending: list[Any] = []
        self._callback: Callable[[Any, Any], None] = lambda request, userdata: None
        self.jobs = jobs

    def __len__(self) -> int:
        return self.jobs

    def set_callback(self, callback: Callable[[Any, Any], None]) -> None:
        self._callback = callback

    def start_async(self, inputs: dict[int, np.ndarray], userdata: Any = None) -> None:
        self._idle.acquire()  # blocks until a request is idle, as AsyncInferQueue does
        with self._lock:
            request = self._free.pop()

        def work() -> None:
            try:
                self._runs[request](inputs[0])
                self._callback(request, userdata)
            finally:
                with self._lock:
                    self._free.append(request)
                self._idle.release()

        self._pending.append(self._pool.submit(work))

    def wait_all(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        self.wait_all()
        self._pool.shutdown()


def drive_queue(queue: Any, batch: np.ndarray, min_runs: int, min_seconds: float,
                warmup: int = 1) -> dict[str, Any]:
    """Keep every request of ``queue`` busy until ``min_runs`` batches and ``min_seconds`` are done.

    Each request is submitted as soon as one is idle; which requests ran (by the queue's idle
    request id, where it tells it, as OpenVINO's does) and how many were in flight at once is
    counted in the completion callback.
    """
    jobs = len(queue)
    idle_id = getattr(queue, "get_idle_request_id", None)
    state = {"busy": 0, "busy_max": 0, "done": 0}
    used: set[int] = set()
    lock = threading.Lock()

    def completed(request: Any, slot: Any) -> None:
        with lock:
            state["done"] += 1
            state["busy"] -= 1
            used.add(slot if slot is not None else request)

    queue.set_callback(completed)
    for _ in range(warmup * jobs):
        with lock:
            state["busy"] += 1
        queue.start_async({0: batch}, None)
    queue.wait_all()
    with lock:
        state.update(busy=0, busy_max=0, done=0)
        used.clear()
    submitted = 0
    start = time.perf_counter()
    while submitted < max(min_runs, jobs) or time.perf_counter() - start < min_seconds:
        with lock:  # counted before the request starts, so a fast completion cannot go negative
            state["busy"] += 1
            state["busy_max"] = max(state["busy_max"], min(state["busy"], jobs))
        queue.start_async({0: batch}, idle_id() if idle_id else None)
        submitted += 1
    queue.wait_all()
    seconds = time.perf_counter() - start
    return {"runs": state["done"], "seconds": seconds, "busy_max": state["busy_max"], "used": len(used)}


def measure_throughput(runner: Any, input_shape: tuple[int, int, int], batch_sizes: tuple[int, ...] = (1,),
                       min_runs: int = 10, min_seconds: float = DEFAULT_MIN_SECONDS,
                       seed: int = 0) -> ThroughputResult:
    """Throughput of ``runner`` in its best mode (see the module docstring)."""
    if min_runs < 1 or min_seconds < 0:
        raise EdgeresError(f"throughput needs at least 1 run and a non-negative time, got {min_runs}, {min_seconds}")
    rng = np.random.default_rng(seed)
    info = dict(getattr(runner, "info", None) or {})
    make_queue = getattr(runner, "throughput_queue", None)
    if callable(make_queue):
        size = min(batch_sizes)  # benchmark_app -hint throughput: batch 1, several requests
        batch = rng.standard_normal((size, *input_shape)).astype(np.float32)
        queue, mode = make_queue(size)
        try:
            run, load = measure_under_load(lambda: drive_queue(queue, batch, min_runs, min_seconds))
        finally:
            getattr(queue, "close", lambda: None)()
        requests, timed = len(queue), ASYNC_TIMED
    else:
        size = max(batch_sizes)
        batch = rng.standard_normal((size, *input_shape)).astype(np.float32)
        mode = {"mode": "sync", "streams": None, "threads": info.get("threads")}
        queue = ThreadQueue(runner, 1)
        try:
            run, load = measure_under_load(lambda: drive_queue(queue, batch, min_runs, min_seconds))
        finally:
            queue.close()
        requests, timed = 1, SYNC_TIMED
    return ThroughputResult(
        images_per_second=run["runs"] * size / run["seconds"], batch=size, mode=str(mode["mode"]),
        requests=requests, streams=mode.get("streams"), threads=mode.get("threads"), runs=run["runs"],
        seconds=round(run["seconds"], 3), min_runs=min_runs, min_seconds=min_seconds, requests_used=run["used"],
        requests_busy_max=run["busy_max"], timed=timed, load=load.to_dict())
