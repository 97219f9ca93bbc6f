"""INT8 accuracy on the demo models (ResNet-18 and ResNet-50 trained on real handwritten digits).

The bars: with the default method, INT8 top-1 within 0.5 points of FP32, agreement with FP32
of at least 97%, and a mean cosine of centred logits (each minus its per-class mean over the
images: what varies between images) of at least CENTRED_COSINE_MIN on the digits validation
split; the accuracy-budget loop terminates and meets its budget. The CLI runs end to end,
twice (the second run hits the cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
data = pytest.importorskip("edgeres.data")
if not all(hasattr(data, name) for name in ("ensure_demo_model", "demo_digits_dir", "open_set", "DIGITS_PREPROCESS")):
    pytest.skip("edgeres.data has no demo model / digits set yet", allow_module_level=True)

from edgeres.quantize import quantize_onnx
from edgeres.quantize.sensitivity import ort_runner
from edgeres.validate import collect_logits, compare

AGREEMENT_MIN = 0.97
TOP1_DROP_MAX = 0.5  # points
CENTRED_COSINE_MIN = {18: 0.95, 50: 0.95}


def _demo(tmp_path_factory, depth: int = 18):
    from edgeres.export.exporter import export_resnet

    model_dir = data.ensure_demo_model(depth)
    out = tmp_path_factory.mktemp("demo") / "model.onnx"
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    export_resnet(int(meta["depth"]), out, weights=Path(model_dir) / "model.pth")
    calib = data.open_set(data.demo_digits_dir("train"), size=256, preprocess=data.DIGITS_PREPROCESS)
    val = data.open_set(data.demo_digits_dir("val"), preprocess=data.DIGITS_PREPROCESS, require_labels=True)
    ref, labels = collect_logits(ort_runner(out), val)
    return out, calib, val, ref, labels, tmp_path_factory.mktemp("demo-cache")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return _demo(tmp_path_factory, 18)


@pytest.fixture(scope="module")
def demo50(tmp_path_factory):
    return _demo(tmp_path_factory, 50)


def _check_default_int8(demo, tmp_path, placement: str, depth: int) -> None:
    fp32, calib, val, ref, labels, cache = demo
    art = quantize_onnx(fp32, calib, tmp_path / "int8", cache_dir=cache, placement=placement, log=None)
    assert art.metadata["method"] == "entropy"
    logits, _ = collect_logits(ort_runner(art.path, qdq=True), val)
    acc = compare(logits, labels, ref)
    drop = 100 * (acc.reference_top1 - acc.top1)
    assert acc.agreement >= AGREEMENT_MIN, acc.to_dict()
    assert drop <= TOP1_DROP_MAX, acc.to_dict()
    assert acc.centred_cosine >= CENTRED_COSINE_MIN[depth], acc.to_dict()


@pytest.mark.parametrize("placement", ["tensorrt", "onnxruntime"])
def test_default_int8_keeps_accuracy_on_real_digits(demo, tmp_path, placement):
    """tensorrt: the TensorRT graph, run by ORT as exact fake quantization; onnxruntime: ORT's
    own INT8 kernels (QLinearConv/QLinearAdd, checked structurally in test_quantize.py)."""
    _check_default_int8(demo, tmp_path, placement, 18)


@pytest.mark.parametrize("placement", ["tensorrt", "onnxruntime"])
def test_default_int8_keeps_a_trained_resnet50(demo50, tmp_path, placement):
    """The same bars for the trained ResNet-50 (bottleneck blocks, 53 weighted layers)."""
    _check_default_int8(demo50, tmp_path, placement, 50)


@pytest.mark.slow
def test_accuracy_budget_falls_back_until_met(demo, tmp_path):
    fp32, _calib, _val, _ref, _labels, cache = demo
    # every layer in INT8 with ranges clipped hard (95th percentile) loses points: the loop
    # must give layers back to FP, most sensitive first, and stop within the budget
    calib = data.open_set(data.demo_digits_dir("train"), size=64, preprocess=data.DIGITS_PREPROCESS)
    val = data.open_set(data.demo_digits_dir("val"), size=100, preprocess=data.DIGITS_PREPROCESS,
                        require_labels=True)
    art = quantize_onnx(fp32, calib, tmp_path / "budget", method="percentile", percentile=95.0, keep_fp=[],
                        cache_dir=cache, val=val, accuracy_budget=0.3, log=None)
    budget = art.metadata["accuracy_budget"]
    ranking = [r["layer"] for r in art.metadata["sensitivity"]["layers"]]
    assert budget["steps"][0]["loss"] > 0.3  # the all-INT8 graph was over budget
    assert budget["met"] and budget["final"]["loss"] <= 0.3
    assert budget["fallback"] and budget["fallback"] == ranking[: len(budget["fallback"])]
    assert art.metadata["keep_fp"] == budget["fallback"]
    assert len(budget["steps"]) == len(budget["fallback"]) + 1
    assert art.metadata["quantization"]["quantized_layers"] == 21 - len(budget["fallback"])
    assert {"all_int8", "after_fallback", "cost_ms"} <= set(budget["latency"])
    assert (tmp_path / "budget" / "sensitivity.json").is_file()
    # chosen on the selection half, judged on the held-out half (stratified, seeded) of the 100 images
    held = art.metadata["heldout"]
    assert held["selection_images"] == 50 and held["heldout_images"] == 50
    assert held["met"] == (held["interval"]["loss"] <= 0.3) and held["verdict"] in ("holds", "fails", "undecided")
    assert held["interval"]["low"] <= held["interval"]["loss"] <= held["interval"]["high"]
    assert "held-out 50 images" in held["explanation"]


def test_cli_quantize_twice_hits_the_cache(demo, tmp_path, capsys):
    from edgeres.cli import main

    fp32, *_ = demo
    args = ["quantize", str(fp32), "--calib", str(data.demo_digits_dir("train")), "--calib-size", "64",
            "--method", "percentile", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "q"), "--json"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    captured = capsys.readouterr()
    second = json.loads(captured.out)
    assert not first["calibration_cache_hit"] and second["calibration_cache_hit"]
    assert "calibration cache hit" in captured.err
    assert second["precision"] == "int8" and Path(second["path"]).is_file()


def test_cli_refuses_wrong_size_and_empty_sets(demo, tmp_path, capsys):
    from edgeres.cli import main

    fp32, *_ = demo
    big = tmp_path / "big.npy"
    np.save(big, np.zeros((4, 3, 64, 64), np.float32))
    assert main(["quantize", str(fp32), "--calib", str(big), "--out", str(tmp_path / "q")]) != 0
    err = capsys.readouterr().err
    assert "error:" in err and "64" in err and "Traceback" not in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["quantize", str(fp32), "--calib", str(empty), "--out", str(tmp_path / "q")]) != 0
    assert "error:" in capsys.readouterr().err
