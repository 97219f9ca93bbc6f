"""A deterministic split of a validation set into a selection part and a held-out part.

The accuracy-budget loop chooses which layers fall back to FP by measuring candidates on
images; the drop it reports on those same images is optimistic (the choice overfits them).
So the loop runs on the *selection* part, and the result is judged on the *held-out* part,
which the loop never saw. The split is stratified by label when the set has labels (every
class keeps its proportion in both parts) and seeded, so the same set splits the same way on
every run and every machine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeres.data.sets import ImageSet
from edgeres.errors import EdgeresError

DEFAULT_HOLDOUT = 0.5
MIN_PART = 10  # fewer images than this in either part cannot say anything about a budget


class SubsetSet(ImageSet):
    """Some items of another set (``indices``, sorted, into the parent's selection)."""

    def __init__(self, parent: ImageSet, indices: np.ndarray, part: str) -> None:
        self.parent = parent
        self.indices = np.sort(np.asarray(indices, dtype=np.int64))
        self.part = part
        labels = None if parent.labels is None else parent.labels[self.indices]
        super().__init__(name=f"{parent.name}, {part} part ({len(self.indices)} images)", source=parent.source,
                         preprocess=parent.preprocess, classes=parent.classes, labels=labels,
                         requested_size=parent.requested_size, seed=parent.seed)
        self.kind = f"{parent.kind} {part} part"

    def __len__(self) -> int:
        return len(self.indices)

    def _load(self, indices: range) -> tuple[np.ndarray, np.ndarray]:
        """Load the parent's items in runs of consecutive indices (one parent read per run)."""
        wanted = self.indices[indices.start:indices.stop]
        xs, keeps = [], []
        start = 0
        while start < len(wanted):
            stop = start + 1
            while stop < len(wanted) and wanted[stop] == wanted[stop - 1] + 1:
                stop += 1
            x, keep = self.parent._load(range(int(wanted[start]), int(wanted[stop - 1]) + 1))
            xs.append(x)
            keeps.append(keep)
            start = stop
        if not xs:
            return self._empty(), np.zeros(0, dtype=bool)
        return np.concatenate(xs), np.concatenate(keeps)

    def _hash_contents(self, digest: Any) -> None:
        digest.update(self.parent.fingerprint().encode() + b"\0" + self.part.encode() + b"\0")
        digest.update(self.indices.astype("<i8").tobytes())

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"part": self.part, "parent": self.parent.fingerprint()}


def check_holdout(holdout: float | None) -> None:
    if holdout is not None and not (isinstance(holdout, (int, float)) and 0.0 <= holdout < 1.0):
        raise EdgeresError(f"--holdout must be a fraction in [0, 1), got {holdout!r} (0 turns the split off)")


def split_set(val: ImageSet, holdout: float = DEFAULT_HOLDOUT, seed: int = 0) -> tuple[SubsetSet, SubsetSet]:
    """(selection, held-out): ``holdout`` of the images held out, stratified by label, seeded."""
    check_holdout(holdout)
    n = len(val)
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if val.labels is None else [np.flatnonzero(val.labels == c) for c in np.unique(val.labels)]
    held: list[np.ndarray] = []
    for group in groups:
        order = rng.permutation(group)
        held.append(order[:round(len(group) * holdout)])
    held_idx = np.concatenate(held) if held else np.zeros(0, np.int64)
    select_idx = np.setdiff1d(np.arange(n), held_idx)
    if min(len(held_idx), len(select_idx)) < MIN_PART:
        raise EdgeresError(f"the validation set ({n} images) is too small to hold out {holdout:g} of it: each part "
                           f"needs at least {MIN_PART} images; give more images or a separate --test set")
    return SubsetSet(val, select_idx, "selection"), SubsetSet(val, held_idx, "held-out")
