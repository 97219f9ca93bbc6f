"""Throughput mode: every request of the async queue is kept in flight at once, the input set once,
the best of a runner's modes measured (no timing asserted)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

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
    assert "batch 1, 3 streams, 3 requests, 1 thread," in result.label()
    assert set(result.load) >= {"before", "during", "busy"}


def test_runner_without_async_mode_is_timed_synchronously_at_its_largest_batch():
    runner = BarrierRunner(jobs=1)
    result = measure_throughput(runner, (3, 4, 4), (1, 8), min_runs=5, min_seconds=0.0)
    assert (result.mode, result.batch, result.requests, result.requests_busy_max) == ("sync", 8, 1, 1)
    assert result.runs >= 5 and runner.calls == result.runs + 1  # + one warm-up


class InputCountingQueue(ThreadQueue):
    """A ThreadQueue that counts how often the driver hands it an input."""

    def __init__(self, runner, jobs: int) -> None:
        super().__init__(runner, jobs)
        self.inputs_set = 0
        self.inputs_per_start = 0

    def set_inputs(self, batch):
        self.inputs_set += 1
        super().set_inputs(batch)

    def start_async(self, inputs=None, userdata=None):
        self.inputs_per_start += inputs is not None
        super().start_async(inputs, userdata)


def test_async_driver_sets_the_input_once_and_restarts_requests_on_it():
    """benchmark_app's inference-only loop: no input handed over per request, no callback."""
    runner = BarrierRunner(jobs=2)
    queue = InputCountingQueue(runner, 2)
    run = drive_queue(queue, np.zeros((1, 3, 4, 4), np.float32), min_runs=9, min_seconds=0.0)
    queue.close()
    assert queue.inputs_set == 1 and queue.inputs_per_start == 0
    assert run["runs"] == 10  # a whole number of rounds of 2 requests, as benchmark_app
    assert run["all_busy_share"] > 0


class ModesRunner:
    """A runner offering two ways to spend its cores: one request at a time, or two at once."""

    def __init__(self) -> None:
        self.info = {"threads": 2}
        self.made: list[str] = []

    def __call__(self, batch):
        return batch[:, :1, 0, 0]

    def throughput_modes(self, batch_sizes):
        def one():
            self.made.append("one")
            return ThreadQueue(self, 1), {"mode": "one", "streams": 1, "threads": 2}

        def two():
            self.made.append("two")
            return ThreadQueue(BarrierRunner(2), 2), {"mode": "two", "streams": 2, "threads": 1}

        return [(size, make) for size in sorted(set(batch_sizes)) for make in (one, two)]


def test_a_runner_with_several_modes_has_each_probed_and_the_best_measured_in_full():
    runner = ModesRunner()
    result = measure_throughput(runner, (3, 4, 4), (1, 4), min_runs=4, min_seconds=0.0)
    assert [(t["mode"], t["batch"]) for t in result.tried] == [("one", 1), ("two", 1), ("one", 4), ("two", 4)]
    best = max(result.tried, key=lambda t: t["images_per_second"])
    assert (result.mode, result.batch) == (best["mode"], best["batch"])
    assert len(runner.made) == 5 and result.runs >= 4  # 4 probes + the full measurement


def test_onnxruntime_throughput_tries_batches_and_thread_splits(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    graph = helper.make_graph([helper.make_node("ReduceMean", ["x"], ["y"], axes=[2, 3], keepdims=0)],
                              "tiny", [x], [y])
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    from edgeres.backends.onnxruntime import ORTRunner

    runner = ORTRunner(path, threads=2)
    result = measure_throughput(runner, (3, 4, 4), (1, 8), min_runs=4, min_seconds=0.0)
    runner.close()
    assert {(t["batch"], t["threads"], t["requests"]) for t in result.tried} == {(1, 2, 1), (1, 1, 2), (8, 2, 1),
                                                                               (8, 1, 2)}
    assert (result.batch, result.threads, result.requests) in {(t["batch"], t["threads"], t["requests"])
                                                              for t in result.tried}
    assert result.requests_used == result.requests
