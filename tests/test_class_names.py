"""Class names travel with the model: --labels, model.json or the --val class folders, in that
order, into the ONNX metadata, the report, the bundle's labels.txt, and what the runtime prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgeres.classes import resolve_class_names
from edgeres.cli import main
from edgeres.data import demo_digits_dir
from edgeres.errors import EdgeresError
from edgeres.fileio import read_json

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--depth", "18", "--num-classes", "10", "--input-size", "32", "--calib", "demo", "--calib-size", "16",
         "--val", "demo-val", "--val-size", "24", "--bench-seconds", "0.05", "--precision", "fp32"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_labels_file_wins_over_model_json_which_wins_over_folders(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(DIGITS[:3]) + "\n\n")
    assert resolve_class_names(3, labels_file=labels, model_json=["a", "b", "c"], val_classes=["x", "y", "z"]) \
        .names == DIGITS[:3]
    got = resolve_class_names(3, model_json=["a", "b", "c"], val_classes=["x", "y", "z"])
    assert got.names == ["a", "b", "c"] and got.origin == "model.json"
    got = resolve_class_names(3, val_classes=["x", "y", "z"])
    assert got.names == ["x", "y", "z"] and "class folders" in got.origin
    assert resolve_class_names(3, val_classes=["x", "y"]).names is None  # folders that miss a class name nothing


@pytest.mark.parametrize("source", ["labels_file", "model_json"])
def test_a_class_count_that_differs_from_the_model_is_a_clear_error(tmp_path, source):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    kwargs = {"labels_file": labels} if source == "labels_file" else {"model_json": ["a", "b"]}
    with pytest.raises(EdgeresError, match="names 2 classes but the model has 10"):
        resolve_class_names(10, **kwargs)


def test_duplicate_names_are_refused(tmp_path):
    with pytest.raises(EdgeresError, match="twice"):
        resolve_class_names(3, model_json=["a", "b", "a"])


@pytest.fixture(scope="module")
def labeled_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("labels")
    labels = root / "digits.txt"
    labels.write_text("\n".join(DIGITS) + "\n")
    out = root / "out"
    assert main(["build", "--target", "cpu", *SMALL, "--labels", str(labels), "--out", str(out)]) == 0
    return out


def test_build_labels_reach_onnx_report_and_bundle(labeled_build):
    import onnx

    model = onnx.load(str(labeled_build / "onnx" / "model.onnx"), load_external_data=False)
    meta = json.loads({p.key: p.value for p in model.metadata_props}["edgeres"])
    assert meta["classes"] == DIGITS
    report = read_json(labeled_build / "report.json")
    assert report["model"]["classes"] == DIGITS and report["model"]["classes_from"].startswith("--labels")
    assert (labeled_build / "bundle" / "labels.txt").read_text().split() == DIGITS
    assert "class names from --labels" in (labeled_build / "report.md").read_text()


def test_runtime_prints_the_class_names(labeled_build, tmp_path):
    image = min((demo_digits_dir("val") / "3").iterdir())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "edgeres.run", str(labeled_build / "bundle"), str(image), "--json"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["results"][0]["top"]
    assert {p["label"] for p in top} <= set(DIGITS)


def test_build_without_labels_names_classes_by_the_val_folders(tmp_path):
    out = tmp_path / "out"
    assert main(["build", "--target", "cpu", *SMALL, "--out", str(out)]) == 0
    assert (out / "bundle" / "labels.txt").read_text().split() == sorted(p.name for p in demo_digits_dir("val")
                                                                          .iterdir() if p.is_dir())


def test_build_with_labels_of_the_wrong_count_is_one_line_exit_1(tmp_path, capsys):
    labels = tmp_path / "three.txt"
    labels.write_text("a\nb\nc\n")
    assert main(["build", "--target", "cpu", *SMALL, "--labels", str(labels), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "names 3 classes but the model has 10" in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "o" / "onnx").exists()  # refused before any work
