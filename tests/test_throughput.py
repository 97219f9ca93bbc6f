"""Throughput mode: every request of the async queue is kept in flight at once (no timing asserted)."""

from __future__ import annotations

import threading

import numpy as np

from edgeres.validate.throughput import ThreadQueue, drive_queue, measure_throughput


class BarrierRunner:
    """Each call waits until ``jobs`` calls are in flight together: a serial driver breaks the barrier."""

    def __init__(self, jobs: int) -> None:
        self.barrier = threading.Barrier(jobs, timeout=20)
        self.calls = 0
        self.info = {"threads": 1}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.barrier.wait()
        self.calls += 1
        return batch[:, :1, 0, 0]


class QueueRunner(BarrierRunner):
    """A runner with an async mode, as OpenVINO's: ``throughput_queue`` gives an AsyncInferQueue-like queue."""

    def throughput_queue(self, batch_size: int):
        return ThreadQueue(self, 3), {"mode": "async (fake)", "streams": 3, "threads": 1}


def test_async_driver_keeps_every_request_busy():
    runner = BarrierRunner(jobs=4)
    queue = ThreadQueue(runner, 4)
    run = drive_queue(queue, np.zeros((1, 3, 4, 4), np.float32), min_runs=12, min_seconds=0.0)
    queue.close()
    assert run["runs"] >= 12 and run["runs"] % 4 == 0  # the barrier only ever releases 4 at a time
    assert run["used"] == 4 and run["busy_max"] == 4
    assert not runner.barrier.broken


def test_runner_with_async_mode_is_measured_in_it_and_labelled():
    result = measure_throughput(QueueRunner(jobs=3), (3, 4, 4), (1, 8), min_runs=6, min_seconds=0.0)
    assert (result.mode, result.batch, result.requests, result.streams) == ("async (fake)", 1, 3, 3)
    assert result.requests_used == 3 and result.requests_busy_max == 3 and result.runs >= 6
    assert "batch 1, 3 streams, 3 requests, 1 threads" in result.label()
    assert set(result.load) >= {"before", "during", "busy"}


def test_runner_without_async_mode_is_timed_synchronously_at_its_largest_batch():
    runner = BarrierRunner(jobs=1)
    result = measure_throughput(runner, (3, 4, 4), (1, 8), min_runs=5, min_seconds=0.0)
    assert (result.mode, result.batch, result.requests, result.requests_busy_max) == ("sync", 8, 1, 1)
    assert result.runs >= 5 and runner.calls == result.runs + 1  # + one warm-up
