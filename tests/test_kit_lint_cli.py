"""`edgeres kit lint FILE.onnx [--tensorrt VERSION] [--json]`: the kit's Q/DQ lint from the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

onnx = pytest.importorskip("onnx")
from test_tensorrt_lint import residual_model

from edgeres.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def files(tmp_path):
    out = {"good": residual_model(), "broken": residual_model(zero_point=3, output_qdq=True, fuse_add=False),
           "fp32": residual_model(qdq=False), "opset19": residual_model(opset=19)}
    paths = {}
    for name, model in out.items():
        paths[name] = tmp_path / f"{name}.onnx"
        onnx.save(model, str(paths[name]))
    paths["junk"] = tmp_path / "junk.onnx"
    paths["junk"].write_text("not a model")
    return paths


def test_a_clean_qdq_model_exits_0_with_nothing_on_stdout(files, capsys):
    assert main(["kit", "lint", str(files["good"])]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "no violations" in err and "TensorRT 8.5 - 10.11, TensorRT 10.12 - 10.x, TensorRT 11.x" in err


def test_violations_are_one_line_each_and_exit_1(files, capsys):
    path = str(files["broken"])
    assert main(["kit", "lint", path]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: x_Q: zero point is 3, not 0: TensorRT supports only symmetric INT8 (zero point 0)",
        (f"{path}: out_DQ: Q/DQ on the network output logits: the logits would be rounded to INT8; leave the "
        "output in float"),
        (f"{path}: add: residual Add after the INT8 convolution conv2: its other input is not quantized, so TensorRT "
        "cannot fuse the Add into the convolution; put Q/DQ on the residual input")]
    assert "3 violations" in err and "Traceback" not in err


def test_the_tensorrt_version_decides_the_opset_limit(files, capsys):
    assert main(["kit", "lint", str(files["opset19"]), "--tensorrt", "8.6"]) == 1
    assert capsys.readouterr().out.strip().endswith("opset 19 is above 17, the newest TensorRT 8.6 parses")
    assert main(["kit", "lint", str(files["opset19"]), "--tensorrt", "10.3"]) == 0   # 10.x parses opset 9 - 20
    assert main(["kit", "lint", str(files["opset19"]), "--tensorrt", "10.12"]) == 0
    assert main(["kit", "lint", str(files["opset19"])]) == 1     # default: every recipe, 8.5 - 10.11 included


@pytest.mark.parametrize("case, args, needle", [
    ("missing", ["{missing}"], "does not exist"),
    ("junk", ["{junk}"], "is not a readable ONNX model"),
    ("version", ["{good}", "--tensorrt", "ten"], "is not a TensorRT version"),
    ("old-version", ["{good}", "--tensorrt", "7.2"], "older than the lint knows"),
    ("pre-8.5", ["{good}", "--tensorrt", "8.2"], "older than the lint knows"),
])
def test_what_cannot_be_linted_is_one_error_line_and_exit_2(files, capsys, case, args, needle):
    names = {k: str(v) for k, v in files.items()} | {"missing": str(files["good"].with_name("nope.onnx"))}
    assert main(["kit", "lint", *[a.format(**names) for a in args]]) == 2
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if "error:" in line]
    assert out == "" and len(errors) == 1 and needle in errors[0] and "Traceback" not in err, err


def test_a_float_model_has_only_its_opset_and_operators_checked(files, capsys):
    assert main(["kit", "lint", str(files["fp32"]), "--tensorrt", "10.3"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no Q/DQ nodes (a float model: only its opset and operators are checked): no violations" in err
    assert main(["kit", "lint", str(files["fp32"]), "--tensorrt", "8.6", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["quantization"] == "none" and doc["ok"] is True


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "edgeres.cli", "kit", "lint", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, check=False, timeout=120)


def test_json_is_exactly_one_document_on_stdout_for_violations_and_errors(files):
    proc = _cli(str(files["broken"]), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["schema"] == "edgeres.kit.lint" and doc["ok"] is False
    assert [v["rule"] for v in doc["violations"]] == ["asymmetric", "output-quantized", "add-not-fused"]
    assert [t["label"] for t in doc["tensorrt"]] == ["TensorRT 8.5 - 10.11", "TensorRT 10.12 - 10.x", "TensorRT 11.x"]
    assert doc["groups"][0] == {"rule": "asymmetric", "count": 1, "nodes": ["x_Q"], "message": doc["violations"][0]
                                ["message"]}
    proc = _cli(str(files["junk"]), "--json", "--tensorrt", "10.3")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and doc["exit_code"] == 2 and "is not a readable ONNX model" in doc["error"]
