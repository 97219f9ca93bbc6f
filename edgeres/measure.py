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
from edgeres.validate.figures import execution_note
from edgeres.validate.latency import DEFAULT_MIN_RUNS, DEFAULT_MIN_SECONDS, LatencyResult, measure_latency
from edgeres.validate.metrics import AccuracyResult, collect_logits, compare, run_batch
from edgeres.validate.throughput import ThroughputResult, measure_throughput


@dataclass
class Measurement:
    """One artifact, measured: accuracy against labels and the FP32 reference, latency, and
    throughput as its own measurement in the runner's throughput mode.

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
    throughput: ThroughputResult | None = None

    def row(self, **extra: Any) -> dict[str, Any]:
        """The report row (``edgeres.report.ResultRow`` keys): accuracy, p50/p99 and their run count
        at the smallest batch, throughput from its own measurement (or the largest batch's
        synchronous rate without one), what the backend executed, and the load warning if any."""
        acc, first, last, tput = self.accuracy, self.latency[0], self.latency[-1], self.throughput
        warnings = [w for w in [*(r.load_warning for r in self.latency), tput and tput.load.get("warning")] if w]
        return {
            "target": self.target, "backend": self.backend, "precision": self.precision,
            "execution_precision": self.execution_precision,
            "execution_note": execution_note(self.precision, self.execution_precision),
            "top1": acc.top1, "top5": acc.top5, "top1_drop": acc.top1_drop, "agreement": acc.agreement,
            "cosine": acc.cosine, "centred_cosine": acc.centred_cosine, "p50_ms": first.p50_ms,
            "p99_ms": first.p99_ms, "runs": first.iterations,
            "batch": first.batch_size, "throughput": tput.images_per_second if tput else last.throughput,
            "throughput_label": tput.label() if tput else f"synchronous, batch {last.batch_size}",
            "load_warning": warnings[0] if warnings else None,
            "size_bytes": self.size_bytes, "fidelity_only": self.fidelity_only,
            "loss": (loss := acc.loss(labeled=not self.fidelity_only)) and loss.to_dict(), "n_val": acc.n,
            "device": self.device, "timed": first.timed, "threads": first.threads,
            "extra": {"throughput_batch": tput.batch if tput else last.batch_size,
                      "latency": [r.to_dict() for r in self.latency],
                      "throughput": tput.to_dict() if tput else None, "n_images": acc.n, **extra},
        }


def artifact_bytes(artifact: Artifact) -> int:
    """Size on disk of the artifact and the files it needs (an IR's .bin), without its sidecar."""
    return sum(f.stat().st_size for f in [artifact.path, *artifact.files])


def label_map(dataset_classes: Sequence[str] | None, model_classes: Sequence[str] | None) -> np.ndarray | None:
    """Index map from the set's label numbering to the model's, when both name their classes
    and they are ordered differently; None when no remapping is needed or possible. Folders that
    share no name with the model's classes (WordNet ids against human names) keep their sorted
    order as the class index, as torchvision's ImageFolder numbers them."""
    if not dataset_classes or not model_classes or list(dataset_classes) == list(model_classes):
        return None
    index = {name: i for i, name in enumerate(model_classes)}
    if len(dataset_classes) == len(model_classes) and not any(c in index for c in dataset_classes):
        return None
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
            min_runs: int = DEFAULT_MIN_RUNS, min_seconds: float = DEFAULT_MIN_SECONDS, warmup: int = 10,
            throughput_batches: Sequence[int] | None = None, fidelity_only: bool | None = None,
            progress: str | None = None) -> Measurement:
    """Run -> compare with the FP32 reference -> time -> throughput: the ``Measurement`` of one artifact.

    Latency is timed at each of ``batch_sizes`` until ``min_runs`` runs and ``min_seconds``; then
    throughput, for at least ``min_seconds``, in the runner's best mode over ``throughput_batches``
    (default: ``batch_sizes``; see ``edgeres.validate.throughput``)."""
    accuracy = run_and_compare(runner, data, labels=labels, reference=reference, progress=progress)
    info = runner.info
    timing = {"min_runs": min_runs, "min_seconds": min_seconds, "warmup": warmup}
    bench = f"bench {artifact.precision}" if progress else None
    latency = time_batches(runner, input_shape, batch_sizes, bench, **timing)
    device_latency: list[LatencyResult] = []
    if "device" in getattr(runner, "timing_modes", ()):
        runner.timing = "device"
        try:
            device_latency = time_batches(runner, input_shape, batch_sizes, bench and f"{bench} (device time)",
                                          **timing)
        finally:
            runner.timing = "host"
    tput = measure_throughput(runner, input_shape, tuple(throughput_batches or batch_sizes), min_seconds=min_seconds)
    return Measurement(
        target=target, backend=str(info.get("backend") or artifact.backend), precision=artifact.precision,
        accuracy=accuracy, latency=latency, device_latency=device_latency, throughput=tput,
        execution_precision=info.get("execution_precision") or artifact.metadata.get("execution_precision"),
        device=info.get("device"), size_bytes=artifact_bytes(artifact),
        fidelity_only=accuracy.top1 is None if fidelity_only is None else fidelity_only)


def time_batches(runner: Any, input_shape: tuple[int, int, int], batch_sizes: Sequence[int], progress: str | None,
                 **timing: Any) -> list[LatencyResult]:
    """``measure_latency`` one batch size at a time, so a long benchmark shows n/N as it runs."""
    from edgeres.progress import Progress

    with Progress(len(batch_sizes), f"{progress} (batch {', '.join(map(str, batch_sizes))})",
                  enabled=progress is not None) as bar:
        results = []
        for b in batch_sizes:
            results += measure_latency(runner, input_shape, batch_sizes=[b], **timing)
            bar.update()
    return results
