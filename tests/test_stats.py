"""Confidence intervals on paired predictions (edgeres.validate.stats)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeres.errors import EdgeresError
from edgeres.validate.stats import disagreement_interval, loss_interval, paired_drop_interval


def test_no_disagreement_still_has_an_upper_end_near_the_rule_of_three():
    ref = np.ones(359, bool)
    ref[:4] = False
    iv = paired_drop_interval(ref, ref.copy())
    assert iv.loss == 0.0 and iv.losses == 0 and iv.gains == 0
    assert 0.8 < iv.high < 1.3  # about 3.84 / 359 = 1.07 points, never [0, 0]
    assert -1.3 < iv.low < -0.8


def test_interval_contains_the_point_and_narrows_with_more_images():
    rng = np.random.default_rng(0)
    widths = []
    for n in (400, 4000):
        ref = rng.random(n) < 0.9
        cand = ref.copy()
        flip = rng.random(n) < 0.02
        cand[flip] = ~cand[flip]
        iv = paired_drop_interval(ref, cand)
        assert iv.low <= iv.loss <= iv.high
        widths.append(iv.high - iv.low)
    assert widths[1] < widths[0] / 2


def test_a_clear_loss_excludes_zero_and_fails_a_tight_budget():
    ref = np.ones(1000, bool)
    cand = ref.copy()
    cand[:50] = False  # 5 points lost
    iv = paired_drop_interval(ref, cand)
    assert iv.loss == pytest.approx(5.0)
    assert iv.low > 3.0 and iv.verdict(1.0) == "fails" and iv.verdict(10.0) == "holds"


def test_a_small_set_cannot_show_a_tight_budget_holds():
    ref = np.ones(359, bool)
    iv = paired_drop_interval(ref, ref.copy())
    assert iv.verdict(0.3) == "undecided"
    assert "too small" in iv.explain(0.3)


def test_disagreement_interval_is_wilson():
    a = np.arange(100)
    b = a.copy()
    b[:10] = -1
    iv = disagreement_interval(a, b)
    assert iv.loss == pytest.approx(10.0)
    assert iv.low == pytest.approx(5.52, abs=0.05) and iv.high == pytest.approx(17.44, abs=0.05)


def test_loss_interval_uses_labels_when_given():
    ref = np.eye(3)[[0, 1, 2, 0]]
    cand = np.eye(3)[[0, 1, 1, 0]]
    assert loss_interval(ref, cand, np.array([0, 1, 2, 0])).method.startswith("Tango")
    assert loss_interval(ref, cand, None).method.startswith("Wilson")


def test_unpaired_sets_are_refused():
    with pytest.raises(EdgeresError):
        paired_drop_interval(np.ones(3, bool), np.ones(4, bool))
