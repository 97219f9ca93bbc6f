"""Exit codes are a contract with scripts and CI: the README's table, and the gates that stop a
release (`validate --max-drop`, `build --fail-over-budget`) exiting 3."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from edgeres import errors
from edgeres.cli import main

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    """Two differently seeded ResNet-18s (10 classes, 32 px) and 24 unlabeled inputs."""
    import torch

    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    root = tmp_path_factory.mktemp("gate")
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        paths.append(export_onnx(ResNet(18, num_classes=10), root / f"m{seed}", input_size=32).path)
    inputs = root / "inputs.npy"
    np.save(inputs, np.random.default_rng(0).standard_normal((24, 3, 32, 32)).astype(np.float32))
    return paths[0], paths[1], inputs


def test_validate_max_drop_exits_3_when_the_loss_is_over_it(two_models, capsys):
    model, other, inputs = two_models
    argv = ["validate", str(model), "--val", str(inputs), "--reference", str(other), "--max-drop", "0"]
    assert main(argv) == errors.OVER_BUDGET == 3
    captured = capsys.readouterr()
    assert "over budget" in captured.err and "agreement loss" in captured.out and "95% interval" in captured.out
    assert main([*argv, "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["over_budget"] is True and doc["loss"]["loss"] > 0 and doc["loss"]["n"] == 24


def test_validate_max_drop_gates_on_the_measured_loss_and_says_when_the_set_is_too_small(two_models, capsys):
    model, _, inputs = two_models
    assert main(["validate", str(model), "--val", str(inputs), "--reference", str(model), "--max-drop", "0"]) == 0
    out = capsys.readouterr().out  # no loss measured, but 24 images cannot show 0 points holds
    assert "+0.00 pt" in out and "too small to show the budget" in out


def test_validate_max_drop_needs_a_reference(two_models, capsys):
    model, _, inputs = two_models
    assert main(["validate", str(model), "--val", str(inputs), "--max-drop", "1"]) == errors.USAGE
    assert "--max-drop needs --reference" in capsys.readouterr().err


def test_build_fail_over_budget_exits_3_and_still_writes_the_report(tmp_path, capsys):
    argv = ["build", "--target", "cpu", "--depth", "18", "--num-classes", "10", "--input-size", "32",
            "--calib", "demo", "--calib-size", "16", "--val", "demo-val", "--val-size", "24",
            "--bench-seconds", "0.05", "--accuracy-budget", "0", "--out", str(tmp_path / "b")]
    code = main([*argv, "--fail-over-budget", "--json"])
    doc = json.loads(capsys.readouterr().out)
    over = [r["precision"] for r in doc["rows"] if r["loss"]["loss"] > 0]
    assert over, "random INT8 against random FP32 on 24 inputs should change some top-1"
    assert code == 3 and doc["over_budget"] == over and (tmp_path / "b" / "report.json").is_file()
    assert main(argv) == 0  # without the flag the same build is a success that reports the loss


def test_readme_exit_code_table_matches_edgeres_errors():
    text = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\d+)` \| ([^|]+) \|", text, flags=re.MULTILINE))
    assert table, "README.md has an exit-code table"
    assert {int(k) for k in table} == {errors.OK, errors.ERROR, errors.USAGE, errors.OVER_BUDGET,
                                      errors.DEVICE_RUNS_FAILED, errors.BUSY, errors.INTERRUPTED}
