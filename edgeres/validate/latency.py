"""Latency of a runner: warm-up, then timed runs until BOTH a minimum count and a minimum time
are reached (as ``trtexec --iterations --duration`` and ``benchmark_app -niter -t``), like
``trtexec``'s summary. Throughput is its own measurement: ``edgeres.validate.throughput``.

numpy only (no torch). What one number includes is stated in ``timed``: by default the host
wall clock around ``runner(batch)`` with the batch already in host memory (numpy in, numpy
out). A runner that times itself better (CUDA events) exposes ``time_batch(batch) -> ms``
and says so in ``runner.info["timed"]``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.table import format_table

# bench's defaults: >= 100 runs and >= 5 s (trtexec: 10 runs and 3 s; benchmark_app: 60 s). A build
# passes its own, cheaper time (--bench-seconds). p99 is printed only from 100 runs on: below that
# the "99th percentile" is the slowest run.
DEFAULT_MIN_RUNS = 100
DEFAULT_MIN_SECONDS = 5.0
P99_MIN_RUNS = 100
HOST_TIMED = "host wall clock around runner(batch): numpy in, numpy out, input already in host memory"
PEAK_RSS_MEANING = ("peak resident set size of the whole process (VmHWM: Python, libraries, the loaded model "
                    "and its buffers), read after the timed runs")


@dataclass
class LatencyResult:
    """Timing of one batch size. Milliseconds per call; throughput in images per second."""

    batch_size: int
    iterations: int
    warmup: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float | None  # None below P99_MIN_RUNS runs
    min_ms: float
    max_ms: float
    throughput: float  # images/s = batch_size / mean latency
    total_seconds: float
    threads: Any = None
    peak_rss_mb: float | None = None
    rss_mb: float | None = None
    timed: str = HOST_TIMED
    runner: dict[str, Any] = field(default_factory=dict)
    min_runs: int = 0
    min_seconds: float = 0.0
    load: dict[str, Any] = field(default_factory=dict)  # edgeres.validate.load.LoadRecord.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def load_warning(self) -> str | None:
        return self.load.get("warning") if self.load else None


def _status_kb(field_name: str) -> float | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field_name + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (VmHWM; getrusage's ru_maxrss elsewhere)."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def current_rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def summarize_times(times_ms: Sequence[float], batch_size: int) -> dict[str, float]:
    """mean, std, percentiles (linear interpolation), min, max and throughput of call times."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.size == 0:
        raise EdgeresError("no timed runs: give at least one iteration")
    p50, p90, p95, p99 = np.percentile(t, [50, 90, 95, 99])
    mean = float(t.mean())
    return {
        "mean_ms": mean, "std_ms": float(t.std()), "p50_ms": float(p50), "p90_ms": float(p90),
        "p95_ms": float(p95), "p99_ms": float(p99) if t.size >= P99_MIN_RUNS else None, "min_ms": float(t.min()), "max_ms": float(t.max()),
        "throughput": float(batch_size * 1000.0 / mean) if mean > 0 else float("inf"),
    }


def _timer(runner: Any) -> Any:
    timed = getattr(runner, "time_batch", None)
    if callable(timed):
        return timed

    def wall(batch: np.ndarray) -> float:
        start = time.perf_counter()
        runner(batch)
        return (time.perf_counter() - start) * 1000.0
    return wall


def random_batch(rng: np.random.Generator, shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    """A timing input of the type the model takes, so no conversion is timed: pixel values for an
    integer input (a model with its preprocessing inside), normal noise for a float one."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        info = np.iinfo(np.dtype(dtype))
        return rng.integers(max(info.min, 0), min(info.max, 255), size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def measure_latency(runner: Any, input_shape: tuple[int, int, int], batch_sizes: Sequence[int] = (1,),
                    min_runs: int = DEFAULT_MIN_RUNS, min_seconds: float = DEFAULT_MIN_SECONDS, warmup: int = 10,
                    seed: int = 0) -> list[LatencyResult]:
    """Time ``runner`` at each batch size on random NCHW float32 inputs of ``input_shape`` (C, H, W).

    ``warmup`` untimed calls first, then timed calls until at least ``min_runs`` calls AND
    ``min_seconds`` seconds; the load of the machine is sampled before and during each batch size.
    """
    from edgeres.validate.load import measure_under_load

    if min_runs < 1:
        raise EdgeresError(f"the minimum number of timed runs must be at least 1, got {min_runs}")
    if min_seconds < 0:
        raise EdgeresError(f"the minimum time cannot be negative, got {min_seconds} s")
    if warmup < 0:
        raise EdgeresError(f"warm-up runs cannot be negative, got {warmup}")
    if len(input_shape) != 3:
        raise EdgeresError(f"input shape must be (channels, height, width), got {tuple(input_shape)}")
    if not batch_sizes or any(int(b) < 1 for b in batch_sizes):
        raise EdgeresError(f"batch sizes must be positive integers, got {list(batch_sizes)}")
    info = dict(getattr(runner, "info", None) or {})
    timer = _timer(runner)
    rng = np.random.default_rng(seed)
    results = []
    for b in (int(b) for b in batch_sizes):
        batch = random_batch(rng, (b, *input_shape), getattr(runner, "input_dtype", "float32"))
        for _ in range(warmup):
            runner(batch)

        def timed_runs(batch: np.ndarray = batch) -> tuple[list[float], float]:
            times: list[float] = []
            start = time.perf_counter()
            while len(times) < min_runs or time.perf_counter() - start < min_seconds:
                times.append(float(timer(batch)))
            return times, time.perf_counter() - start

        (times, total), load = measure_under_load(timed_runs)
        results.append(LatencyResult(
            batch_size=b, iterations=len(times), warmup=warmup, **summarize_times(times, b),
            total_seconds=total, threads=info.get("threads"), peak_rss_mb=round(peak_rss_mb(), 1),
            rss_mb=None if (rss := current_rss_mb()) is None else round(rss, 1),
            timed=str(info.get("timed", HOST_TIMED)), runner=info, min_runs=min_runs, min_seconds=min_seconds,
            load=load.to_dict(),
        ))
    return results


def format_latency(results: Sequence[LatencyResult]) -> str:
    """One row per batch size, trtexec-style percentiles (a busy row's p50 marked ``!``), then what
    was timed and the load each row was timed under."""
    from edgeres.validate.quiet import load_line

    rows = [(r.batch_size, r.iterations, f"{r.mean_ms:.3f}", f"{r.std_ms:.3f}",
             f"{r.p50_ms:.3f}" + ("!" if r.load.get("busy") else ""), f"{r.p90_ms:.3f}",
             "-" if r.p99_ms is None else f"{r.p99_ms:.3f}", f"{r.min_ms:.3f}", f"{r.max_ms:.3f}", f"{r.throughput:.1f}",
             "-" if r.peak_rss_mb is None else f"{r.peak_rss_mb:.0f}")
            for r in results]
    table = format_table(["batch", "n", "mean ms", "std", "p50", "p90", "p99", "min", "max", "img/s (sync)",
                          "peak MiB"], rows, align="rrrrrrrrrrr")
    if not results:
        return table
    first = results[0]
    notes = [f"timed: {first.timed}", f"threads: {first.threads if first.threads is not None else 'unknown'}",
             f"peak MiB: {PEAK_RSS_MEANING}",
             f"runs: until at least {first.min_runs} runs and {first.min_seconds:g} s; p99 from {P99_MIN_RUNS} runs on",
             "img/s (sync): batch / mean latency of one synchronous request; throughput mode is measured apart"]
    notes += [f"load batch {r.batch_size}: {load_line(r.load)}" for r in results]
    if any(r.load.get("busy") for r in results):
        notes.append("! = the machine was busy while timing")
    notes += [f"WARNING batch {r.batch_size}: {r.load_warning}" for r in results if r.load_warning]
    return table + "\n" + "\n".join(notes)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
