"""Calibration: activation ranges from a calibration set, computed once and cached.

Ranges are measured for every float activation of the FP32 graph in one pass, so the
placements, the per-layer sensitivity runs and the accuracy-budget loop all reuse them;
nothing re-calibrates per layer. Collection runs in ONNX Runtime (its calibrators), one
batch at a time so progress shows and memory stays flat.

Methods (all symmetric, as TensorRT requires):

- ``entropy``: the threshold minimising the KL divergence between the clipped 2048-bin
  histogram of absolute values and its 128-level quantization: TensorRT's default
  calibrator (``IInt8EntropyCalibrator2``) and edgeres' default. Computed by edgeres on
  ORT's histogram (ORT's own entropy search is a Python loop, ~20x slower, and works on
  signed values with an integer-truncated reference).
- ``minmax``: the largest absolute value seen (TensorRT's "max"); outliers stretch the range.
- ``percentile``: the given percentile of absolute values (default 99.99).
- ``mse``: the clipping threshold minimising expected squared quantization error, from the
  same absolute-value histogram as percentile (ORT has no MSE calibrator; edgeres computes
  it from ORT's histogram).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.fileio import cache_dir, read_json, sha256_file, sha256_json, write_json_atomic
from edgeres.onnxutil import load_onnx, onnx_input_spec
from edgeres.optional import require

METHODS = ("entropy", "minmax", "percentile", "mse")
DEFAULT_METHOD = "entropy"
HISTOGRAM_BINS = 2048
QUANTIZED_BINS = 128
CACHE_FORMAT = 3  # bump when the ranges a given key produces would change


@dataclass
class Calibration:
    """Activation ranges of one model on one calibration set with one method."""

    ranges: dict[str, tuple[float, float]]
    key: str
    method: str
    options: dict[str, Any]
    images: int
    seconds: float
    cache_hit: bool
    cache_file: Path | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "method": self.method, "options": self.options, "images": self.images,
                "seconds": round(self.seconds, 3), "cache_hit": self.cache_hit,
                "cache_file": str(self.cache_file) if self.cache_file else None, "tensors": len(self.ranges)}


def method_options(method: str, percentile: float, batch_size: int) -> dict[str, Any]:
    """The options that change the ranges a method computes: part of the cache key."""
    if method not in METHODS:
        raise EdgeresError(f"unknown calibration method {method!r}: choose from {', '.join(METHODS)}")
    options: dict[str, Any] = {"batch_size": int(batch_size)}
    if method == "percentile":
        if not 0.0 < percentile <= 100.0:
            raise EdgeresError(f"--percentile must be in (0, 100], got {percentile}")
        options["percentile"] = float(percentile)
    if method in ("entropy", "percentile", "mse"):
        options["bins"] = HISTOGRAM_BINS
    if method == "entropy":
        options["quantized_bins"] = QUANTIZED_BINS
    return options


def default_cache_dir() -> Path:
    return cache_dir() / "calibration"


def calibrate(fp32_onnx: Path, calib: Any, *, method: str = DEFAULT_METHOD, percentile: float = 99.99,
              batch_size: int = 16, cache_dir: Path | None = None, model_sha256: str | None = None,
              model: Any = None, log: Any = None) -> Calibration:
    """Ranges for every float activation of ``fp32_onnx`` on ``calib`` (an edgeres ImageSet).

    A result is cached under ``cache_dir`` keyed by sha256 of (model file, calibration-set
    fingerprint, method, options); a later call with the same key reads it and skips
    calibration (``cache_hit``). ``model``: the parsed ``fp32_onnx`` when the caller already has it.
    """
    options = method_options(method, percentile, batch_size)
    images = len(calib)
    if images == 0:
        raise EdgeresError(f"the calibration set ({getattr(calib, 'name', 'unnamed')}) is empty: give a folder "
                           "or spec with at least one image (a few hundred is typical)")
    fingerprint = calib.fingerprint()
    key = sha256_json({"format": CACHE_FORMAT, "model": model_sha256 or sha256_file(fp32_onnx),
                       "calibration": fingerprint, "method": method, "options": options})
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache_file = directory / f"{key}.json"
    say = log or (lambda _msg: None)
    if cache_file.is_file():
        try:
            stored = read_json(cache_file)
            ranges = {k: (float(v[0]), float(v[1])) for k, v in stored["ranges"].items()}
        except (ValueError, KeyError, TypeError, IndexError):
            say(f"calibration cache {cache_file} is unreadable; calibrating again")
        else:
            say(f"calibration cache hit: {cache_file.name[:16]}... ({method}, {stored.get('images')} images); "
                "skipping calibration")
            return Calibration(ranges, key, method, options, int(stored.get("images", images)), 0.0, True,
                               cache_file, stored.get("info", {}))
    start = time.perf_counter()
    ranges = _collect(Path(fp32_onnx), load_onnx(fp32_onnx) if model is None else model, calib, method, options,
                      percentile)
    seconds = time.perf_counter() - start
    say(f"calibrated {len(ranges)} tensors on {images} images with {method} in {seconds:.1f}s")
    info = {"calibration_set": getattr(calib, "name", None), "fingerprint": fingerprint}
    write_json_atomic(cache_file, {"key": key, "method": method, "options": options, "images": images,
                                   "seconds": seconds, "info": info,
                                   "ranges": {k: [lo, hi] for k, (lo, hi) in ranges.items()}})
    return Calibration(ranges, key, method, options, images, seconds, False, cache_file, info)


class _OneBatch:
    """A CalibrationDataReader over a single batch (ORT's calibrators pull until None)."""

    def __init__(self, name: str, batch: np.ndarray) -> None:
        self.items = [{name: batch}]

    def get_next(self) -> dict | None:
        return self.items.pop() if self.items else None

    def __len__(self) -> int:
        return len(self.items)


def _collect(fp32_onnx: Path, model: Any, calib: Any, method: str, options: dict[str, Any],
             percentile: float) -> dict[str, tuple[float, float]]:
    from edgeres.quantize.qdq import _quiet, check_input_shape

    oq = require("onnxruntime.quantization", "INT8 calibration")
    from onnxruntime.quantization.calibrate import create_calibrator

    spec = onnx_input_spec(model)
    name, shape = spec["name"], spec["shape"]
    batch_size = options["batch_size"]
    if isinstance(shape[0], int) and shape[0] > 0:
        batch_size = shape[0]  # a static-batch model takes exactly that many images per run
    ort_method, extra = {
        "minmax": (oq.CalibrationMethod.MinMax, {"symmetric": True}),
        "entropy": (oq.CalibrationMethod.Percentile, {"symmetric": True, "num_bins": HISTOGRAM_BINS,
                                                      "percentile": 100.0}),
        "percentile": (oq.CalibrationMethod.Percentile, {"symmetric": True, "num_bins": HISTOGRAM_BINS,
                                                         "percentile": percentile}),
        "mse": (oq.CalibrationMethod.Percentile, {"symmetric": True, "num_bins": HISTOGRAM_BINS,
                                                  "percentile": 100.0}),
    }[method]
    source = getattr(calib, "name", "the calibration set")
    with tempfile.TemporaryDirectory(prefix="edgeres-calib-") as tmp, _quiet():
        calibrator = create_calibrator(fp32_onnx, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                       calibrate_method=ort_method, extra_options=extra)
        seen = 0
        for x, _labels in calib.batches(batch_size, progress=f"calibrating ({method})"):
            x = np.ascontiguousarray(x, dtype=np.float32)
            check_input_shape(shape, x.shape[1:], source)
            if x.shape[0] != batch_size and isinstance(shape[0], int) and shape[0] > 0:
                continue  # a short last batch cannot run through a static-batch model
            calibrator.collect_data(_OneBatch(name, x))
            seen += x.shape[0]
        if not seen:
            raise EdgeresError(f"no calibration batch could run: {source} has {len(calib)} images but the model "
                               f"takes batches of exactly {batch_size}")
        histograms = getattr(calibrator, "collector", None)
        histograms = histograms.histogram_dict if histograms is not None else {}
        if method in ("mse", "entropy"):  # from ORT's histograms of absolute values
            find = _mse_threshold if method == "mse" else _entropy_threshold
            ranges = {t: (-thr, thr) for t, thr in ((t, find(h[0], h[1])) for t, h in histograms.items())}
        else:
            ranges = {}
            for tensor, td in calibrator.compute_data().items():
                lo, hi = (float(np.asarray(v).reshape(-1)[0]) for v in td.range_value)
                t = max(abs(lo), abs(hi))  # symmetric, as the quantizer (ActivationSymmetric) makes it
                ranges[tensor] = (-t, t)
    if name in histograms:
        # The network input is bounded by preprocessing and has no outliers to clip: a
        # clipping method would cut real pixels (on the digits, entropy clipped the
        # strokes: -0.84 points with conv1 in INT8). It keeps its full range.
        t = float(max(abs(histograms[name][2]), abs(histograms[name][3])))
        ranges[name] = (-t, t)
    return ranges


def _coarse_to_fine(cost, lo: int, hi: int, step: int = 16) -> int:
    """argmin of ``cost(i)`` over lo..hi: every ``step``-th candidate, then every one near the best."""
    coarse = list(range(lo, hi + 1, step)) + [hi]
    best = min(coarse, key=cost)
    return min(range(max(lo, best - step), min(hi, best + step) + 1), key=cost)


def _mse_threshold(hist: np.ndarray, edges: np.ndarray, levels: int = 127) -> float:
    """Clipping threshold T minimising E[(x - q(x))^2] for symmetric INT8 over |x|'s histogram.

    Inside [0, T] the rounding error of a uniform quantizer with step T/levels is step^2/12
    per value; beyond T a value is clipped and costs (|x| - T)^2.
    """
    hist = hist.astype(np.float64)
    if hist.sum() == 0 or float(edges[-1]) <= 0:
        return float(edges[-1]) or 1e-8
    centers = (edges[:-1].astype(np.float64) + edges[1:].astype(np.float64)) / 2
    inside = np.cumsum(hist)  # values in bins [0, i)

    def cost(i: int) -> float:  # threshold at the upper edge of bin i-1
        t = float(edges[i])
        clipped = centers[i:] - t
        return float(inside[i - 1] * (t / levels) ** 2 / 12 + np.dot(hist[i:], clipped * clipped))

    return float(edges[_coarse_to_fine(cost, max(1, hist.size // 64), hist.size)])


def _entropy_threshold(hist: np.ndarray, edges: np.ndarray, levels: int = QUANTIZED_BINS) -> float:
    """TensorRT's entropy calibration on a histogram of |x|: for each candidate number of
    bins i, P is the histogram clipped at bin i (outliers folded into the last bin) and Q is
    P merged into ``levels`` quantization levels and expanded back over P's non-empty bins;
    the threshold is the upper edge of the i minimising KL(P || Q). As in NVIDIA's
    implementation (pytorch-quantization), bin 0 takes bin 1's count first."""
    hist = hist.astype(np.float64)
    if hist.size > 1:
        hist[0] = hist[1]  # as NVIDIA's calibrator: the spike of exact zeros (after ReLU) is not information
    n = hist.size
    if n <= levels or hist.sum() == 0:
        return float(edges[-1]) or 1e-8
    tail = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # tail[i] = sum(hist[i:])

    def kl(i: int) -> float:
        p = hist[:i].copy()
        p[-1] += tail[i]
        nonzero = p > 0
        chunk = (np.arange(i) * levels) // i
        q_sum = np.bincount(chunk, weights=hist[:i], minlength=levels)
        q_cnt = np.bincount(chunk, weights=nonzero, minlength=levels)
        q = np.where(nonzero, q_sum[chunk] / np.maximum(q_cnt[chunk], 1), 0.0)
        if np.any(nonzero & (q <= 0)):
            return np.inf  # Q puts no mass where P has some
        ps, qs = p[nonzero] / p.sum(), q[nonzero] / q.sum()
        return float(np.sum(ps * np.log(ps / qs)))

    return float(edges[_coarse_to_fine(kl, levels, n)])
