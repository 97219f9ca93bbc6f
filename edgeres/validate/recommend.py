"""The one recommendation rule: the fastest engine within the accuracy budget.

Shared by ``edgeres build`` (pipeline) and ``edgeres kit build`` on the device, so a Jetson's
GPU and DLA rows are judged exactly as any other target's precisions.
"""

from __future__ import annotations

from typing import Any


def recommend(rows: list[dict[str, Any]], budget: float, labeled: bool) -> str | None:
    """The fastest precision (p50 at batch 1) whose accuracy loss is within ``budget`` points.

    With labels the loss is the top-1 drop; without, the loss of top-1 agreement with FP32.
    Never assumes INT8 wins: every precision was measured on this target. A row the backend did
    not execute in its precision (an fp16 IR run in f32) is never the recommendation, nor a row
    whose held-out check (``heldout``, the accuracy budget judged on images it was not fitted on) failed.
    """
    from edgeres.validate.figures import executed_as_built

    ok = [r for r in rows
          if r.get("p50_ms") is not None and row_loss(r, labeled) <= budget + 1e-9 and executed_as_built(r)
          and (r.get("heldout") or {}).get("met") is not False]  # over the budget on held-out images
    return min(ok, key=lambda r: r["p50_ms"])["precision"] if ok else None


def row_loss(row: dict[str, Any], labeled: bool) -> float:
    """Points a row loses against FP32: the top-1 drop with labels, else the loss of top-1 agreement
    (what the recommendation and ``build --fail-over-budget`` compare with the budget)."""
    if labeled and row.get("top1_drop") is not None:
        return 100.0 * row["top1_drop"]
    return 100.0 * (1.0 - (row.get("agreement") or 0.0))
