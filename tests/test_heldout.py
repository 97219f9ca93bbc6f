"""The accuracy budget is chosen on a selection part and judged on a held-out part.

The split is deterministic, stratified and disjoint; a fallback choice that meets the budget on
the selection images but not on the held-out ones is reported as failing (and never
recommended); the demo model's budget run reports both sizes, the held-out drop and its 95%
interval, in words.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeres.data import ArraySet
from edgeres.data.split import split_set
from edgeres.errors import EdgeresError
from edgeres.quantize.heldout import judge_runners, selection_and_heldout


def _digits_like(tmp_path, n=200, classes=4):
    """Tensors whose first pixel is the image's index (so a fake model can see which image it runs)."""
    x = np.zeros((n, 3, 4, 4), np.float32)
    x[:, 0, 0, 0] = np.arange(n)
    y = np.arange(n) % classes
    path = tmp_path / "set.npz"
    np.savez(path, x=x, y=y)
    return ArraySet(path), y


def test_split_is_deterministic_disjoint_and_stratified(tmp_path):
    val, y = _digits_like(tmp_path)
    sel, held = split_set(val, 0.2, seed=3)
    _, again_held = split_set(val, 0.2, seed=3)
    assert list(held.indices) == list(again_held.indices) and held.fingerprint() == again_held.fingerprint()
    assert len(sel) == 160 and len(held) == 40
    assert set(sel.indices).isdisjoint(held.indices) and set(sel.indices) | set(held.indices) == set(range(200))
    assert np.bincount(held.labels).tolist() == [10] * 4  # every class keeps its share
    images, labels = held.load_all()
    assert images[:, 0, 0, 0].astype(int).tolist() == held.indices.tolist()  # the right images, in order
    assert labels.tolist() == y[held.indices].tolist()
    assert split_set(val, 0.2, seed=4)[1].fingerprint() != held.fingerprint()


def test_split_refuses_a_set_too_small_to_hold_out(tmp_path):
    val, _ = _digits_like(tmp_path, n=12)
    with pytest.raises(EdgeresError, match="too small"):
        split_set(val, 0.5)
    with pytest.raises(EdgeresError, match="fraction"):
        split_set(val, 1.5)


class _Model:
    """Right on every image except those listed (a fallback choice fitted to other images)."""

    def __init__(self, labels, wrong=()):
        self.labels, self.wrong = labels, {int(i) for i in wrong}

    def __call__(self, batch):
        idx = batch[:, 0, 0, 0].astype(int)
        pred = np.array([(self.labels[i] + (1 if i in self.wrong else 0)) % 4 for i in idx])
        return np.eye(4, dtype=np.float32)[pred]


def test_a_choice_that_passes_on_selection_and_fails_on_heldout_is_reported_failing(tmp_path):
    val, y = _digits_like(tmp_path)
    selection, held, how = selection_and_heldout(val, None, 0.5)
    # the candidate is perfect on the selection images (the loop saw 0.0 points) and loses
    # 10 held-out images (10 points on 100): over a 1-point budget
    wrong = held.indices[:10]
    result = judge_runners(_Model(y), _Model(y, wrong), held, budget=1.0, selection_images=len(selection),
                           selection_loss=0.0, split=how)
    d = result.to_dict()
    assert d["selection_images"] == 100 and d["heldout_images"] == 100
    assert d["interval"]["loss"] == pytest.approx(10.0) and d["interval"]["losses"] == 10
    assert d["met"] is False and d["verdict"] == "fails"
    assert "NOT met on held-out" in d["explanation"] and "overfits" in d["explanation"]
    json.dumps(d)

    from edgeres.validate.recommend import recommend

    rows = [{"precision": "fp32", "p50_ms": 2.0, "top1_drop": 0.0},
            {"precision": "int8", "p50_ms": 1.0, "top1_drop": 0.0, "heldout": d}]
    assert recommend(rows, budget=1.0, labeled=True) == "fp32"


def test_a_small_heldout_set_says_it_cannot_show_the_budget(tmp_path):
    val, y = _digits_like(tmp_path, n=40)
    selection, held, how = selection_and_heldout(val, None, 0.5)
    d = judge_runners(_Model(y), _Model(y), held, budget=0.3, selection_images=len(selection),
                      selection_loss=0.0, split=how).to_dict()
    assert d["interval"]["loss"] == 0.0 and d["interval"]["high"] > 0.3
    assert d["met"] is True and d["verdict"] == "undecided"
    assert "too small to show the budget" in d["explanation"]


def test_without_labels_the_heldout_loss_is_disagreement(tmp_path):
    x = np.zeros((60, 3, 4, 4), np.float32)
    x[:, 0, 0, 0] = np.arange(60)
    np.save(tmp_path / "u.npy", x)
    val = ArraySet(tmp_path / "u.npy")
    selection, held, how = selection_and_heldout(val, None, 0.5)
    labels = np.arange(60) % 4
    d = judge_runners(_Model(labels), _Model(labels, held.indices[:3]), held, budget=1.0,
                      selection_images=len(selection), selection_loss=0.0, split=how).to_dict()
    assert d["metric"] == "agreement" and d["interval"]["losses"] == 3 and d["met"] is False


def test_cli_refuses_bad_holdout_values(tmp_path, capsys):
    from edgeres.cli import main

    assert main(["quantize", "m.onnx", "--calib", "demo", "--val", "demo-val", "--holdout", "0.5",
                 "--out", str(tmp_path)]) == 2
    assert "--accuracy-budget" in capsys.readouterr().err
    assert main(["quantize", "m.onnx", "--calib", "demo", "--val", "demo-val", "--accuracy-budget", "0.3",
                 "--holdout", "1.5", "--out", str(tmp_path)]) == 2
    assert "fraction" in capsys.readouterr().err


def test_build_with_a_budget_chooses_on_selection_and_reports_the_heldout_check(tmp_path):
    from edgeres.fileio import read_json
    from edgeres.pipeline import BuildRequest, build

    req = BuildRequest(target="cpu", depth=18, out_dir=tmp_path / "b", num_classes=10, input_size=32, calib="demo",
                       calib_size=32, val="demo-val", val_size=48, bench_seconds=0.1, accuracy_budget=100.0,
                       holdout=0.5)
    result = build(req)
    int8 = next(r for r in result.rows if r["precision"] == "int8")
    held = int8["heldout"]
    n_sel, n_held = held["selection_images"], held["heldout_images"]
    assert n_sel + n_held == 48 and abs(n_sel - n_held) <= 10 and held["met"] is True  # stratified by class
    sidecar = read_json(tmp_path / "b" / "onnx" / "model.int8.onnxruntime.onnx.json")
    assert sidecar["heldout"]["selection_images"] == n_sel  # the Q/DQ loop saw the selection part only
    assert sidecar["sensitivity"]["validation_set"].endswith(f"selection part ({n_sel} images)")
    md = (tmp_path / "b" / "report.md").read_text()
    assert f"held-out check: selection {n_sel} images" in md
    assert "## Per-layer time by stage" in md and "| layer3 |" in md  # the runtime's profile, by stage
