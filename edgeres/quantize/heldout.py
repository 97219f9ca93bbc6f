"""Judge an accuracy-budget result on images the budget loop never saw.

The loop (``sensitivity.fit_budget``) picks its fallback layers on the selection part of the
validation set; the loss it reaches there is optimistic. ``judge`` measures the chosen graph
on the held-out part against FP32, with a 95% interval on the paired predictions
(``edgeres.validate.stats``), and says in words whether the budget holds, fails, or whether
the held-out set is too small to tell.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgeres.data.split import DEFAULT_HOLDOUT, split_set
from edgeres.errors import EdgeresError
from edgeres.validate.stats import LossInterval, loss_interval


@dataclass
class HeldOut:
    """The budget's result where it counts: on images not used to choose the fallback layers."""

    budget: float
    metric: str                 # "top1" (drop against labels) or "agreement" (with FP32's top-1)
    split: str                  # how the held-out part was made
    selection_images: int
    heldout_images: int
    selection_loss: float | None  # what the loop saw (points), when the loop reports it
    interval: LossInterval      # the held-out loss and its interval

    @property
    def met(self) -> bool:
        """The held-out loss itself is within the budget (the report's pass/fail)."""
        return self.interval.loss <= self.budget + 1e-9

    @property
    def verdict(self) -> str:
        return self.interval.verdict(self.budget)

    def explain(self) -> str:
        seen = "" if self.selection_loss is None else f": {self.selection_loss:+.2f} pt"
        where = f"selection {self.selection_images} images{seen}; held-out {self.heldout_images} images: "
        text = where + self.interval.explain(self.budget)
        if not self.met:
            text += " - the budget is NOT met on held-out images"
            if self.selection_loss is not None and self.selection_loss <= self.budget + 1e-9:
                text += " (the fallback choice overfits the selection images)"
        return text

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update({"met": self.met, "verdict": self.verdict, "explanation": self.explain(),
                  "interval": self.interval.to_dict()})
        return d


def selection_and_heldout(val: Any, test: Any = None, holdout: float | None = DEFAULT_HOLDOUT,
                          seed: int = 0) -> tuple[Any, Any, str]:
    """(selection set, held-out set or None, how): a separate ``test`` set, else a split of ``val``.

    ``holdout`` 0 or None turns the split off: selection and judgement on the same images,
    as before (the report then says so).
    """
    if test is not None:
        return val, test, f"separate test set {getattr(test, 'name', test)}"
    if not holdout:
        return val, None, "none (fallback chosen and judged on the same images)"
    selection, held = split_set(val, holdout, seed)
    how = f"{holdout:g} of {getattr(val, 'name', 'the validation set')} held out (seed {seed}"
    return selection, held, how + (", stratified by label)" if val.has_labels else ")")


def judge(fp32_onnx: Path, candidate_onnx: Path, heldout: Any, *, budget: float, selection: Any,
          selection_loss: float | None, split: str, threads: int | None = None) -> HeldOut:
    """The Q/DQ candidate graph against the FP32 graph on ``heldout``, both on ONNX Runtime."""
    from edgeres.quantize.sensitivity import ort_runner

    return judge_runners(ort_runner(fp32_onnx, threads), ort_runner(candidate_onnx, threads, qdq=True), heldout,
                         budget=budget, selection_images=len(selection), selection_loss=selection_loss, split=split)


def judge_runners(reference: Any, candidate: Any, heldout: Any, *, budget: float, selection_images: int,
                  selection_loss: float | None, split: str, batch_size: int = 64) -> HeldOut:
    """Run FP32 and the candidate (any two runners) on ``heldout`` and compare them, paired, image by image."""
    from edgeres.validate import collect_logits

    ref, labels = collect_logits(reference, heldout, batch_size)
    cand, _ = collect_logits(candidate, heldout, batch_size)
    if ref.shape[0] == 0:
        raise EdgeresError(f"the held-out set {getattr(heldout, 'name', '')} has no readable images")
    interval = loss_interval(ref, cand, labels)
    return HeldOut(budget=budget, metric="top1" if labels is not None else "agreement", split=split,
                   selection_images=selection_images, heldout_images=int(ref.shape[0]),
                   selection_loss=selection_loss, interval=interval)
