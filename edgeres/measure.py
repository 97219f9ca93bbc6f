"""The one measurement step: run an artifact on the validation inputs, compare with the FP32
reference (and the labels), time it, and say what each number is: a report row.

``edgeres build`` (``pipeline``), ``edgeres kit build`` on the device, ``edgeres validate``
and ``edgeres bench`` all measure through here, so a row means the same wherever it was made.
numpy only: the device side imports it without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeres.artifact import Artifact
from edgeres.errors import EdgeresError
from edgeres.validate.latency import LatencyResult, measure_latency
from edgeres.validate.metrics import AccuracyResult, collect_logits, compare, run_batch


@dataclass
class Measurement:
    """One artifact, measured: accuracy against labels and the FP32 reference, and latency.

    ``latency`` is timed as the runner says (``runner.info["timed"]``); a runner that can also
    time on the device adds ``device_latency``.
    """

    target: str
    backend: str
    precision: str
    accuracy: AccuracyResult
    latency: list[LatencyResult]
    execution_precision: str | None = None
    device: str | None = None
    size_bytes: int | None = None
    fidelity_only: bool = False
    device_latency: list[LatencyResult] = field(default_factory=list)

    def row(self, **extra: Any) -> dict[str, Any]:
        """The report row (``edgeres.report.ResultRow`` keys): accuracy, then p50/p99 at
        the smallest batch and throughput at the largest."""
        acc, first, last = self.accuracy, self.latency[0], self.latency[-1]
        return {
            "target": self.target, "backend": self.backend, "precision": self.precision,
            "execution_precision": self.execution_precision,
            "top1": acc.top1, "top5": acc.top5, "top1_drop": acc.top1_drop, "agreement": acc.agreement,
            "cosine": acc.cosine, "centred_cosine": acc.centred_cosine, "p50_ms": first.p50_ms, "p99_ms": first.p99_ms, "batch": first.batch_size,
            "throughput": last.throughput, "size_bytes": self.size_bytes, "fidelity_only": self.fidelity_only,
            "device": self.device, "timed": first.timed, "threads": first.threads,
            "extra": {"throughput_batch": last.batch_size, "latency": [r.to_dict() for r in self.latency],
                      "n_images": acc.n,
                      "loss_interval": acc.loss_interval.to_dict() if acc.loss_interval else None, **extra},
        }


def artifact_bytes(artifact: Artifact) -> int:
    """Size on disk of the artifact and the files it needs (an IR's .bin), without its sidecar."""
    return sum(f.stat().st_size for f in [artifact.path, *artifact.files])


def label_map(dataset_classes: Sequence[str] | None, model_classes: Sequence[str] | None) -> np.ndarray | None:
    """Index map from the set's label numbering to the model's, when both name their classes
    and they are ordered differently; None when no remapping is needed or possible."""
    if not dataset_classes or not model_classes or list(dataset_classes) == list(model_classes):
        return None
    index = {name: i for i, name in enumerate(model_classes)}
    missing = [c for c in dataset_classes if c not in index]
    if missing:
        raise EdgeresError(f"the validation set has classes the model does not know: {missing[:5]}; "
                           f"the model's classes are {list(model_classes)[:10]}...")
    return np.asarray([index[c] for c in dataset_classes], dtype=np.int64)


def run_and_compare(runner: Any, data: Any, *, labels: np.ndarray | None = None,
                    reference: np.ndarray | None = None, remap: np.ndarray | None = None,
                    batch_size: int = 32, progress: str | None = None) -> AccuracyResult:
    """Run ``data`` (an ``edgeres.data`` set, or preprocessed (N, C, H, W) inputs) through ``runner``
    and compare its logits with ``labels`` (a set brings its own, renumbered by ``remap``, see
    ``label_map``) and the ``reference`` logits."""
    if hasattr(data, "batches"):
        logits, set_labels = collect_logits(runner, data, batch_size, progress=progress)
        if set_labels is not None and remap is not None:
            set_labels = remap[set_labels]
        labels = set_labels if labels is None else labels
    else:
        logits = run_batch(runner, np.ascontiguousarray(data, dtype=np.float32))
    return compare(logits, labels, reference)


def measure(runner: Any, data: Any, *, artifact: Artifact, target: str, input_shape: tuple[int, int, int],
            batch_sizes: Sequence[int], labels: np.ndarray | None = None, reference: np.ndarray | None = None,
            seconds: float | None = None, iterations: int | None = None, warmup: int = 10,
            fidelity_only: bool | None = None, progress: str | None = None) -> Measurement:
    """Run -> compare with the FP32 reference -> time: the ``Measurement`` of one artifact."""
    accuracy = run_and_compare(runner, data, labels=labels, reference=reference, progress=progress)
    info = runner.info
    timing = {"iterations": iterations, "seconds": seconds, "warmup": warmup}
    latency = measure_latency(runner, input_shape, batch_sizes=batch_sizes, **timing)
    device_latency: list[LatencyResult] = []
    if "device" in getattr(runner, "timing_modes", ()):
        runner.timing = "device"
        try:
            device_latency = measure_latency(runner, input_shape, batch_sizes=batch_sizes, **timing)
        finally:
            runner.timing = "host"
    return Measurement(
        target=target, backend=str(info.get("backend") or artifact.backend), precision=artifact.precision,
        accuracy=accuracy, latency=latency, device_latency=device_latency,
        execution_precision=info.get("execution_precision") or artifact.metadata.get("execution_precision"),
        device=info.get("device"), size_bytes=artifact_bytes(artifact),
        fidelity_only=accuracy.top1 is None if fidelity_only is None else fidelity_only)
