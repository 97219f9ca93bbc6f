"""Camera frame to top-k: end-to-end latency beside engine-only latency, and the fused path
(preprocessing inside the engine, ``edgeres.bundle.frames``) checked against the host path.

What a camera app measures starts at a uint8 frame, not at a preprocessed float tensor. Three
things are timed at batch 1, interleaved round by round so a noisy neighbour hits them alike:

  engine only   float32 input already preprocessed -> logits      (the latency every row reports)
  e2e host      uint8 frame -> PreprocessSpec.normalize -> engine -> softmax, top-k
  e2e fused     uint8 frame -> engine with the frame input -> softmax, top-k

Decode, resize and crop stay on the host in both paths and are not timed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeres.data.preprocess import PreprocessSpec
from edgeres.errors import EdgeresError
from edgeres.validate.latency import summarize_times
from edgeres.validate.load import measure_under_load

TIMED = "host wall clock per call at batch 1, after 10 warm-up calls; decode, resize and crop not timed"


def top_k(logits: np.ndarray, k: int = 5) -> np.ndarray:
    """What an app does with the logits (softmax, then the k best), so e2e times it too."""
    from edgeres.bundle.runtime import softmax

    return np.argsort(-softmax(logits), axis=-1, kind="stable")[:, :k]


def frames_from_inputs(inputs: np.ndarray, spec: PreprocessSpec) -> np.ndarray | None:
    """The uint8 RGB frames that ``spec`` turned into ``inputs`` (float32, the spec's layout), or None
    when these inputs did not come from 8-bit images (a .npy set, say)."""
    x = np.asarray(inputs, np.float32)
    hwc = x.transpose(0, 2, 3, 1) if spec.layout == "NCHW" else x
    rgb = hwc * np.asarray(spec.std, np.float32) + np.asarray(spec.mean, np.float32)
    if spec.channel_order == "BGR":
        rgb = rgb[..., ::-1]
    frames = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    return frames if np.allclose(spec.normalize(frames), x, rtol=0, atol=1e-5) else None


def agreement(host: Callable[[np.ndarray], np.ndarray], fused: Callable[[np.ndarray], np.ndarray],
              frames: np.ndarray, spec: PreprocessSpec, order: str = "RGB") -> dict[str, Any]:
    """Top-1 agreement and the largest logit difference of the fused path vs the host path, one frame
    at a time (``frames`` are RGB; ``order`` is what the fused engine is fed)."""
    same, diff = 0, 0.0
    for f in frames:
        a = host(spec.normalize(f)[None])
        b = fused(np.ascontiguousarray((f if order == "RGB" else f[..., ::-1])[None]))
        same += int(a.argmax() == b.argmax())
        diff = max(diff, float(np.abs(a - b).max()))
    return {"frames": len(frames), "order": order, "top1_agreement": same / len(frames), "max_abs_logit_diff": diff}


def time_paths(runner: Callable[[np.ndarray], np.ndarray], fused: Callable[[np.ndarray], np.ndarray] | None,
               frame: np.ndarray, spec: PreprocessSpec, *, rounds: int = 10, per_round: int = 10,
               seconds: float | None = None) -> dict[str, dict[str, float]]:
    """p50/p90/p99... of engine only, e2e host and (with ``fused``) e2e fused for one RGB frame.
    ``seconds``: an overall budget that caps the number of rounds (at least 2)."""
    x = spec.normalize(frame)[None]
    f = np.ascontiguousarray(frame[None])
    cases: dict[str, Callable[[], Any]] = {"engine only": lambda: runner(x),
                                           "e2e host": lambda: top_k(runner(spec.normalize(f)))}
    if fused is not None:
        cases["e2e fused"] = lambda: top_k(fused(f))
    for fn in cases.values():
        for _ in range(10):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    start = time.perf_counter()
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order every round
            for _ in range(per_round):
                t0 = time.perf_counter()
                cases[name]()
                times[name].append((time.perf_counter() - t0) * 1000.0)
        if seconds is not None and r >= 1 and time.perf_counter() - start > seconds:
            break
    return {name: {**summarize_times(t, 1), "runs": len(t)} for name, t in times.items()}


def first_batch(dataset: Any, n: int) -> np.ndarray:
    """The first ``n`` preprocessed images of an ``edgeres.data`` set."""
    batches = dataset.batches(n)
    try:
        return next(iter(batches))[0]
    finally:
        getattr(batches, "close", lambda: None)()


def measure_frames(artifact: Any, runner: Callable[[np.ndarray], np.ndarray], spec: PreprocessSpec,
                   inputs: np.ndarray, *, seconds: float = 1.0) -> dict[str, Any]:
    """The build report's frame columns for one artifact: e2e (host and fused) p50 beside engine p50,
    and fused-vs-host agreement on ``inputs`` (preprocessed validation images)."""
    from edgeres.bundle.frames import frame_runner

    frames = frames_from_inputs(inputs, spec)
    if frames is None:
        return {"skipped": "the validation inputs are not 8-bit images: no frames to feed"}
    fused: Callable[[np.ndarray], np.ndarray] | None = None
    reason = ""
    try:
        fused = frame_runner(artifact, spec, "RGB")
    except EdgeresError as exc:  # TensorRT: the frame input is built into the engine from the frame ONNX
        reason = str(exc)
    lat, load = measure_under_load(lambda: time_paths(runner, fused, frames[0], spec, seconds=seconds))
    out: dict[str, Any] = {"engine_p50_ms": lat["engine only"]["p50_ms"], "e2e_host_p50_ms": lat["e2e host"]["p50_ms"],
                           "latency": lat, "timed": TIMED, "load": load.to_dict()}
    if fused is None:
        out["fused"] = reason
        return out
    out["e2e_fused_p50_ms"] = lat["e2e fused"]["p50_ms"]
    out["agreement"] = agreement(runner, fused, frames, spec)
    return out
