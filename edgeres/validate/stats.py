"""Confidence intervals for what a precision costs, from paired predictions.

FP32 and INT8 see the same images, so their accuracies are paired: what matters is how
often one is right where the other is wrong. ``paired_drop_interval`` gives the 95% interval
of the top-1 drop by Tango's score method (Tango 1998, as recommended by Fagerland, Lydersen
and Laake 2013 for paired proportions): it stays honest when the two models never disagree
(a Wald or bootstrap interval collapses to [0, 0] there, as if 359 images proved a 0.0-point
drop). Without labels the loss is the disagreement rate, a plain proportion:
``disagreement_interval`` gives its Wilson score interval. numpy and the standard library
only: this runs on the device.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from edgeres.errors import EdgeresError


@dataclass(frozen=True)
class LossInterval:
    """A loss in points (reference minus candidate; positive = worse) with its interval.

    ``losses``/``gains``: images the reference got right and the candidate wrong / the reverse
    (for agreement: images whose top-1 changed, and 0).
    """

    n: int
    loss: float
    low: float
    high: float
    confidence: float
    method: str
    losses: int
    gains: int

    def verdict(self, budget: float) -> str:
        """'holds', 'fails' or 'undecided' for a budget in points."""
        if self.high <= budget + 1e-9:
            return "holds"
        if self.low > budget + 1e-9:
            return "fails"
        return "undecided"

    @property
    def what(self) -> str:
        """What is lost: 'top-1 drop' (with labels) or 'agreement loss' (top-1 changed vs the reference)."""
        return "agreement loss" if "disagreement" in self.method else "top-1 drop"

    def span(self) -> str:
        """'+0.42 pt (95% interval -0.10 to +1.20, n=500)'."""
        return (f"{self.loss:+.2f} pt ({100 * self.confidence:.0f}% interval {self.low:+.2f} to {self.high:+.2f}, "
                f"n={self.n})")

    def explain(self, budget: float) -> str:
        """One sentence a person can act on."""
        span = self.span()
        verdict = self.verdict(budget)
        if verdict == "holds":
            return f"{span}: within the budget of {budget:g} pt"
        if verdict == "fails":
            return f"{span}: over the budget of {budget:g} pt"
        return (f"{span}: the set is too small to show the budget of {budget:g} pt holds "
                f"(the interval's upper end is above it); use more validation images")

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, **asdict(self)}


def _z(confidence: float) -> float:
    if not 0.5 <= confidence < 1.0:
        raise EdgeresError(f"confidence must be in [0.5, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def _tango_z(delta: float, b: int, c: int, n: int) -> float:
    """Tango's score statistic for H0: p(b) - p(c) = delta, with p(c) at its constrained MLE."""
    w = -b - c + (2 * n - b + c) * delta
    p21 = (np.sqrt(max(w * w + 8 * n * c * delta * (1 - delta), 0.0)) - w) / (4 * n)
    var = n * (2 * p21 + delta * (1 - delta))
    if var <= 0:
        return 0.0 if b - c - n * delta == 0 else float(np.sign(b - c - n * delta)) * np.inf
    return float((b - c - n * delta) / np.sqrt(var))


def _solve(b: int, c: int, n: int, z: float, lower: bool) -> float:
    """The delta where Tango's statistic crosses +z (lower end) or -z (upper end); it decreases in delta."""
    point = (b - c) / n
    lo, hi = (-1.0, point) if lower else (point, 1.0)
    target = z if lower else -z
    for _ in range(100):
        mid = (lo + hi) / 2
        if _tango_z(mid, b, c, n) > target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def paired_drop_interval(reference_correct: Any, candidate_correct: Any, confidence: float = 0.95) -> LossInterval:
    """Top-1 drop in points (reference minus candidate) with Tango's paired score interval."""
    ref = np.asarray(reference_correct, bool).reshape(-1)
    cand = np.asarray(candidate_correct, bool).reshape(-1)
    if ref.shape != cand.shape or ref.size == 0:
        raise EdgeresError(f"paired predictions need two equal, non-empty sets; got {ref.size} and {cand.size}")
    n = int(ref.size)
    b = int(np.sum(ref & ~cand))
    c = int(np.sum(~ref & cand))
    z = _z(confidence)
    low, high = _solve(b, c, n, z, lower=True), _solve(b, c, n, z, lower=False)
    return LossInterval(n=n, loss=100.0 * (b - c) / n, low=100.0 * low, high=100.0 * high, confidence=confidence,
                        method="Tango score interval on paired predictions", losses=b, gains=c)


def disagreement_interval(reference_top1: Any, candidate_top1: Any, confidence: float = 0.95) -> LossInterval:
    """Loss of top-1 agreement in points (100 - agreement %) with its Wilson score interval."""
    ref = np.asarray(reference_top1).reshape(-1)
    cand = np.asarray(candidate_top1).reshape(-1)
    if ref.shape != cand.shape or ref.size == 0:
        raise EdgeresError(f"paired predictions need two equal, non-empty sets; got {ref.size} and {cand.size}")
    n = int(ref.size)
    k = int(np.sum(ref != cand))
    z = _z(confidence)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return LossInterval(n=n, loss=100.0 * p, low=100.0 * max(0.0, centre - half), high=100.0 * min(1.0, centre + half),
                        confidence=confidence, method="Wilson score interval on top-1 disagreement", losses=k, gains=0)


def loss_interval(reference_logits: np.ndarray, candidate_logits: np.ndarray, labels: np.ndarray | None,
                  confidence: float = 0.95) -> LossInterval:
    """The loss a precision costs on these images: top-1 drop with labels, else disagreement."""
    ref_top1 = np.argmax(reference_logits, axis=1)
    cand_top1 = np.argmax(candidate_logits, axis=1)
    if labels is None:
        return disagreement_interval(ref_top1, cand_top1, confidence)
    labels = np.asarray(labels).reshape(-1)
    return paired_drop_interval(ref_top1 == labels, cand_top1 == labels, confidence)


# Ultralytics warns below this many calibration images; a few hundred images of the deployment
# domain is the usual advice for post-training INT8 calibration (TensorRT, OpenVINO POT: 300).
SMALL_CALIBRATION = 300


def size_warnings(n_calib: int | None, n_val: int | None, budget: float | None) -> list[str]:
    """What the set sizes cannot support: a calibration set too small for stable INT8 ranges, and a
    validation set where one image is worth more than the accuracy budget (in points)."""
    out = []
    if n_calib is not None and n_calib < SMALL_CALIBRATION:
        out.append(f"the calibration set has {n_calib} images; fewer than {SMALL_CALIBRATION} give noisy INT8 "
                   "ranges: pass --calib with a few hundred images like the ones the device will see")
    if n_val and budget is not None and budget > 0 and 100.0 / n_val > budget:
        needed = int(np.ceil(100.0 / budget))
        out.append(f"the validation set has {n_val} images: one image is {100.0 / n_val:.2f} points, more than the "
                   f"accuracy budget of {budget:g} points, so it cannot show the budget holds; use at least "
                   f"{needed} images (several times that for a useful 95% interval)")
    return out
