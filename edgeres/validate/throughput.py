"""Throughput, measured apart from latency and in the runtime's own best throughput mode.

A runner that has an asynchronous mode offers ``throughput_queue(batch_size)``, returning a queue
and a description of the mode (streams, requests, threads). The queue is driven as
``benchmark_app``'s inference-only loop drives OpenVINO's ``AsyncInferQueue``: the input is set
once on every request (``set_inputs``), then ``get_idle_request_id()`` waits for an idle request
and ``start_async()`` restarts it on the same input; no completion callback, no copy per request,
so the Python driver takes next to no CPU from the inference threads. OpenVINO's runner compiles
with the THROUGHPUT hint and ``OPTIMAL_NUMBER_OF_INFER_REQUESTS`` requests, as
``benchmark_app -hint throughput`` does.

A runner with several ways to spend the cores offers ``throughput_modes(batch_sizes)`` instead
(ONNX Runtime: each batch size x one session with every thread, or one single-thread session
running one request per core at once): each mode is probed briefly, and the best is measured in full, with what was tried.
A runner with neither is timed synchronously at the largest batch it is given.

``ThreadQueue`` gives plain callables the same queue interface with N worker threads (runtimes
that release the GIL: ONNX Runtime, TensorRT contexts; and tests).
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
from edgeres.table import counted
from edgeres.validate.latency import random_batch
from edgeres.validate.load import measure_under_load

DEFAULT_MIN_SECONDS = 5.0
PROBE_SHARE = 0.2  # each candidate mode is probed for this share of the full measurement's time
ASYNC_TIMED = ("wall clock from the first submission to the last completion, every request kept busy, "
               "the input set once per request")
SYNC_TIMED = "wall clock of back-to-back synchronous calls (one request in flight)"


@dataclass
class ThroughputResult:
    """Images per second in one mode; ``all_busy_share``: share of submissions after which every
    request was in flight at once (the queue kept full)."""

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
    requests_busy_max: int  # every request (seen all in flight at once), else 1
    timed: str
    all_busy_share: float = 0.0
    load: dict[str, Any] = field(default_factory=dict)
    tried: list[dict[str, Any]] = field(default_factory=list)  # the probed modes, when there was a choice

    def label(self) -> str:
        streams = "" if self.streams is None else f", {counted(self.streams, 'stream')}"
        return (f"{self.images_per_second:.1f} img/s ({self.mode}, batch {self.batch}{streams}, "
                f"{counted(self.requests, 'request')}, {counted(self.threads, 'thread')}, n={self.runs})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ThreadQueue:
    """``AsyncInferQueue``'s interface over plain callables: ``jobs`` requests, each a worker thread.

    ``run`` is one callable shared by every request, or a list of ``jobs`` callables, one per
    request (TensorRT: one execution context and CUDA stream each, as ``trtexec --streams``);
    ONNX Runtime shares one single-thread session between its requests, as its sessions take
    concurrent runs.
    """

    def __init__(self, run: Callable[[np.ndarray], Any] | list[Callable[[np.ndarray], Any]], jobs: int) -> None:
        self._runs = run if isinstance(run, list) else [run] * jobs
        if len(self._runs) != jobs:
            raise EdgeresError(f"a queue of {jobs} requests needs {jobs} runners, got {len(self._runs)}")
        self._pool = ThreadPoolExecutor(max_workers=jobs)
        self._free = list(range(jobs))
        self._changed = threading.Condition()
        self._pending: list[Any] = []
        self._inputs: np.ndarray | None = None
        self.jobs = jobs

    def __len__(self) -> int:
        return self.jobs

    def set_inputs(self, batch: np.ndarray) -> None:
        """The batch every later ``start_async()`` runs on."""
        self._inputs = batch

    def is_ready(self) -> bool:
        with self._changed:
            return bool(self._free)

    def get_idle_request_id(self) -> int:
        """Wait until a request is idle and return its id (the one ``start_async`` takes next)."""
        with self._changed:
            self._changed.wait_for(lambda: self._free)
            return self._free[-1]

    def start_async(self, inputs: dict[int, np.ndarray] | None = None, userdata: Any = None) -> None:
        """Run the next idle request (waiting for one, as ``AsyncInferQueue`` does) on ``inputs[0]``,
        or on the batch given to ``set_inputs``."""
        batch = self._inputs if inputs is None else inputs[0]
        with self._changed:
            self._changed.wait_for(lambda: self._free)
            request = self._free.pop()

        def work() -> None:
            try:
                self._runs[request](batch)
            finally:
                with self._changed:
                    self._free.append(request)
                    self._changed.notify_all()

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
    """Keep every request of ``queue`` busy until ``min_runs`` batches and ``min_seconds`` are done,
    and a whole number of rounds of requests, as ``benchmark_app``'s inference-only loop does.

    Which requests ran is read from the idle request ids; after each submission the queue is
    asked whether any request is still idle (``is_ready``): when none is, all were in flight.
    """
    jobs = len(queue)
    queue.set_inputs(batch)
    for _ in range(warmup * jobs):
        queue.start_async()
    queue.wait_all()
    used: set[int] = set()
    submitted = full = 0
    start = time.perf_counter()
    while submitted < max(min_runs, jobs) or time.perf_counter() - start < min_seconds or submitted % jobs:
        used.add(queue.get_idle_request_id())
        queue.start_async()
        submitted += 1
        full += not queue.is_ready()
    queue.wait_all()
    seconds = time.perf_counter() - start
    return {"runs": submitted, "seconds": seconds, "busy_max": jobs if full else 1, "used": len(used),
            "all_busy_share": round(full / submitted, 3)}


Mode = tuple[int, Callable[[], tuple[Any, dict[str, Any]]]]  # (batch size, make the queue and its description)


def _modes(runner: Any, batch_sizes: tuple[int, ...]) -> tuple[list[Mode], str]:
    """The ways ``runner`` can be kept busy (see the module docstring), and what its figure times."""
    if callable(getattr(runner, "throughput_queue", None)):
        size = min(batch_sizes)  # benchmark_app -hint throughput: batch 1, several requests
        return [(size, lambda: runner.throughput_queue(size))], ASYNC_TIMED
    if callable(getattr(runner, "throughput_modes", None)):
        return list(runner.throughput_modes(batch_sizes)), ASYNC_TIMED
    threads = dict(getattr(runner, "info", None) or {}).get("threads")
    sync = {"mode": "sync", "streams": None, "threads": threads}
    return [(max(batch_sizes), lambda: (ThreadQueue(runner, 1), sync))], SYNC_TIMED


def _run_mode(mode: Mode, input_shape: tuple[int, int, int], min_runs: int, min_seconds: float,
              rng: np.random.Generator, dtype: str) -> tuple[dict[str, Any], Any, dict[str, Any], int]:
    size, make_queue = mode
    batch = random_batch(rng, (size, *input_shape), dtype)
    queue, described = make_queue()
    try:
        run, load = measure_under_load(lambda: drive_queue(queue, batch, min_runs, min_seconds))
    finally:
        getattr(queue, "close", lambda: None)()
    return run, load, described, len(queue)


def measure_throughput(runner: Any, input_shape: tuple[int, int, int], batch_sizes: tuple[int, ...] = (1,),
                       min_runs: int = 10, min_seconds: float = DEFAULT_MIN_SECONDS,
                       seed: int = 0) -> ThroughputResult:
    """Throughput of ``runner`` in its best mode (see the module docstring). Where the runner
    offers several, each is probed for ``PROBE_SHARE`` of ``min_seconds`` and the best one is
    then measured in full; the probes are kept in ``tried``."""
    if min_runs < 1 or min_seconds < 0:
        raise EdgeresError(f"throughput needs at least 1 run and a non-negative time, got {min_runs}, {min_seconds}")
    rng = np.random.default_rng(seed)
    dtype = getattr(runner, "input_dtype", "float32")
    modes, timed = _modes(runner, tuple(batch_sizes))
    tried: list[dict[str, Any]] = []
    best = modes[0]
    if len(modes) > 1:
        rates = []
        for mode in modes:
            run, load, described, requests = _run_mode(mode, input_shape, 1, min_seconds * PROBE_SHARE, rng, dtype)
            rates.append(run["runs"] * mode[0] / run["seconds"])
            tried.append({**described, "batch": mode[0], "requests": requests, "images_per_second": rates[-1],
                          "runs": run["runs"], "seconds": round(run["seconds"], 3), "busy": load.busy})
        best = modes[int(np.argmax(rates))]
    run, load, described, requests = _run_mode(best, input_shape, min_runs, min_seconds, rng, dtype)
    size = best[0]
    return ThroughputResult(
        images_per_second=run["runs"] * size / run["seconds"], batch=size, mode=str(described["mode"]),
        requests=requests, streams=described.get("streams"), threads=described.get("threads"), runs=run["runs"],
        seconds=round(run["seconds"], 3), min_runs=min_runs, min_seconds=min_seconds, requests_used=run["used"],
        requests_busy_max=run["busy_max"], timed=timed, all_busy_share=run["all_busy_share"],
        load=load.to_dict(), tried=tried)
