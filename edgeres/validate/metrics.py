"""Accuracy: top-1/top-5 against labels, and fidelity against a reference model's logits.

numpy only (no torch): runs on the device. Accuracies are fractions in [0, 1]; tables show
them as percentages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.table import format_table
from edgeres.validate.stats import LossInterval, loss_interval


@dataclass
class AccuracyResult:
    """What one model scored. Fractions in [0, 1]; None where it does not apply.

    top1 / top5: against labels (None without labels; top5 is None too for models with fewer
    than five classes, where "top-5" would count every class). agreement: fraction of inputs where the
    top-1 class equals the reference's; cosine: mean cosine similarity of logits to the
    reference's (plain); centred_cosine: the same on logits centred on their per-class mean over
    the images (what varies between images: see ``centred_cosine``; None for a single image);
    max_abs_diff / mean_abs_diff: over every logit (None without a reference).
    drop_interval / disagreement_interval: the top-1 drop against the reference (with labels) and
    the loss of top-1 agreement, in points with their paired 95% intervals (``edgeres.validate.stats``).
    """

    n: int
    top1: float | None = None
    top5: float | None = None
    agreement: float | None = None
    cosine: float | None = None
    centred_cosine: float | None = None
    max_abs_diff: float | None = None
    mean_abs_diff: float | None = None
    reference_top1: float | None = None
    drop_interval: LossInterval | None = None
    disagreement_interval: LossInterval | None = None
    top5_k: int = 5

    def loss(self, labeled: bool) -> LossInterval | None:
        """What a precision costs: the top-1 drop when ``labeled`` (and known), else the agreement loss."""
        return self.drop_interval if labeled and self.drop_interval is not None else self.disagreement_interval

    @property
    def has_labels(self) -> bool:
        return self.top1 is not None

    @property
    def top1_drop(self) -> float | None:
        """Reference top-1 minus this top-1 (fraction; positive = worse), when both are known."""
        if self.top1 is None or self.reference_top1 is None:
            return None
        return self.reference_top1 - self.top1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["top1_drop"] = self.top1_drop
        for key in ("drop_interval", "disagreement_interval"):
            interval = getattr(self, key)
            d[key] = interval.to_dict() if interval is not None else None
        return d

    def rows(self) -> list[tuple[str, str]]:
        """(metric, value) pairs for a table."""
        pct = _pct
        out: list[tuple[str, str]] = [("images", str(self.n))]
        if self.top1 is not None:
            out += [("top-1", pct(self.top1))] + ([("top-5", pct(self.top5))] if self.top5 is not None else [])
        if self.reference_top1 is not None:
            out += [("reference top-1", pct(self.reference_top1)), ("top-1 drop", _points(self.top1_drop))]
        i = self.loss(labeled=self.reference_top1 is not None)
        if i is not None:
            what = "top-1 drop" if self.reference_top1 is not None else "top-1 disagreement"
            out += [(f"{what}, {100 * i.confidence:.0f}% paired interval", f"{i.low:+.2f} to {i.high:+.2f} points")]
        if self.agreement is not None:
            out += [("top-1 agreement with reference", pct(self.agreement)),
                    ("mean cosine similarity of logits (plain)", f"{self.cosine:.6f}"),
                    ("mean cosine of centred logits (minus per-class mean)", _fixed(self.centred_cosine, 4)),
                    ("max abs logit diff", f"{self.max_abs_diff:.4g}"),
                    ("mean abs logit diff", f"{self.mean_abs_diff:.4g}")]
        return out

    def format(self) -> str:
        return format_table(["metric", "value"], self.rows(), align="lr")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:.2f}%"


def _fixed(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _points(x: float | None) -> str:
    return "-" if x is None else f"{100.0 * x:+.2f} points"


def cosine_similarity(a: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise cosine similarity of two (N, C) arrays (computed in float64)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    num = np.sum(a64 * b64, axis=1)
    den = np.linalg.norm(a64, axis=1) * np.linalg.norm(b64, axis=1)
    same = np.all(a64 == b64, axis=1)  # two all-zero rows are identical: similarity 1
    return np.where(same, 1.0, num / np.maximum(den, eps))


def centred_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Row-wise cosine of two (N, C) sets of logits, each centred on its own per-class mean over
    the N images; None for fewer than two images.

    Why: a network's logits share a large part that is the same for every image (a random
    network's differ between images by about 0.1% of their size), so the plain cosine stays
    near 1 whatever a quantizer did. Centring removes that shared part and compares what
    varies between images: what decides each image's class.
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a64.shape[0] < 2:
        return None
    return cosine_similarity(a64 - a64.mean(axis=0), b64 - b64.mean(axis=0))


def topk_accuracy(logits: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k largest logits (k capped at the class count)."""
    k = min(k, logits.shape[1])
    if k == 1:
        return float(np.mean(np.argmax(logits, axis=1) == labels))
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def _as_logits(x: Any, what: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise EdgeresError(f"{what} must be a non-empty (N, classes) array, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def compare(logits: np.ndarray, labels: np.ndarray | None = None,
            reference_logits: np.ndarray | None = None) -> AccuracyResult:
    """Accuracy against ``labels`` and fidelity against ``reference_logits``; either may be None."""
    logits = _as_logits(logits, "logits")
    n, classes = logits.shape
    result = AccuracyResult(n=n)
    if labels is not None:
        labels = np.asarray(labels).astype(np.int64).reshape(-1)
        if labels.shape[0] != n:
            raise EdgeresError(f"{labels.shape[0]} labels for {n} sets of logits")
        if labels.min() < 0 or labels.max() >= classes:
            raise EdgeresError(f"labels range over {labels.min()}..{labels.max()} but the model has {classes} classes: "
                               "is this the right validation set for this model?")
        result.top1 = topk_accuracy(logits, labels, 1)
        result.top5 = topk_accuracy(logits, labels, 5) if classes >= 5 else None
    if reference_logits is not None:
        ref = _as_logits(reference_logits, "reference logits")
        if ref.shape != logits.shape:
            raise EdgeresError(f"reference logits have shape {ref.shape}, these have {logits.shape}: "
                               "the two models must see the same inputs and have the same classes")
        diff = np.abs(logits.astype(np.float64) - ref.astype(np.float64))
        result.agreement = float(np.mean(np.argmax(logits, 1) == np.argmax(ref, 1)))
        result.cosine = float(np.mean(cosine_similarity(logits, ref)))
        centred = centred_cosine(logits, ref)
        result.centred_cosine = None if centred is None else float(np.mean(centred))
        result.max_abs_diff = float(diff.max())
        result.mean_abs_diff = float(diff.mean())
        result.disagreement_interval = loss_interval(ref, logits, None)
        if labels is not None:
            result.reference_top1 = topk_accuracy(ref, labels, 1)
            result.drop_interval = loss_interval(ref, logits, labels)
    return result


def _batch_limits(runner: Any) -> tuple[int | None, int | None]:
    """(fixed batch, largest batch) a runner declares in ``runner.info`` ("fixed_batch",
    "max_batch"), or None each: a static-batch ONNX or a TensorRT profile limits what it takes."""
    info = getattr(runner, "info", None) or {}
    fixed, largest = info.get("fixed_batch"), info.get("max_batch")
    return (int(fixed) if fixed else None), (int(largest) if largest else None)


def run_batch(runner: Any, batch: np.ndarray) -> np.ndarray:
    """``runner(batch)``, split or padded to fit a runner with a fixed or largest batch size."""
    fixed, largest = _batch_limits(runner)
    n = batch.shape[0]
    if fixed:
        outs = []
        for start in range(0, n, fixed):
            part = batch[start:start + fixed]
            short = fixed - part.shape[0]
            if short:
                part = np.concatenate([part, np.zeros((short, *part.shape[1:]), part.dtype)])
            outs.append(np.asarray(runner(part))[: fixed - short])
        return np.concatenate(outs)
    if largest and n > largest:
        return np.concatenate([np.asarray(runner(batch[s:s + largest])) for s in range(0, n, largest)])
    return np.asarray(runner(batch))


def collect_logits(runner: Any, dataset: Any, batch_size: int = 32,
                   progress: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Run every image of ``dataset`` (an ``edgeres.data`` set, anything with ``.batches()``)
    through ``runner``: (N, classes) float32 logits and (N,) int64 labels, or None when unlabeled."""
    if batch_size < 1:
        raise EdgeresError(f"batch size must be at least 1, got {batch_size}")
    logits: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    unlabeled = False
    batches: Iterable[tuple[np.ndarray, np.ndarray | None]] = dataset.batches(batch_size, progress=progress)
    for images, batch_labels in batches:
        out = run_batch(runner, np.ascontiguousarray(images, dtype=np.float32))
        if out.ndim != 2 or out.shape[0] != images.shape[0]:
            raise EdgeresError(f"the model returned shape {out.shape} for a batch of {images.shape[0]}: "
                               "expected (batch, classes) logits")
        logits.append(out.astype(np.float32, copy=False))
        if batch_labels is None:
            unlabeled = True
        else:
            labels.append(np.asarray(batch_labels, np.int64).reshape(-1))
    if not logits:
        raise EdgeresError(f"the set {getattr(dataset, 'name', dataset)!s} has no images")
    return np.concatenate(logits), (None if unlabeled else np.concatenate(labels))
