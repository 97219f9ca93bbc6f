"""`edgeres export` from the command line."""

from __future__ import annotations

import json

import pytest

from edgeres.cli import main

pytest.importorskip("onnxruntime")


def test_export_cli_writes_checked_model(tmp_path, capsys):
    assert main(["export", "--depth", "18", "--num-classes", "5", "--input-size", "32", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.onnx.json").is_file()
    assert "onnx.checker (full) passed" in captured.out and "max abs diff" in captured.out
    assert "random weights" in captured.err


def test_export_cli_json_static_batch(tmp_path, capsys):
    argv = ["export", "--depth", "18", "--num-classes", "5", "--input-size", "32", "--batch", "4",
            "--out", str(tmp_path / "r18.onnx"), "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"]["shape"] == [4, 3, 32, 32] and data["path"].endswith("r18.onnx")


@pytest.mark.parametrize("argv,message", [
    (["--depth", "42"], "unsupported depth 42"),
    (["--depth", "18", "--batch", "lots"], "batch must be 'dynamic'"),
    (["--depth", "18", "--opset", "11"], "opset must be between 17"),
    (["--depth", "18", "--weights", "/nonexistent/model.pth"], "does not exist"),
])
def test_export_cli_errors_are_one_line(tmp_path, capsys, argv, message):
    code = main(["export", *argv, "--input-size", "32", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if "error:" in line]
    assert code != 0 and len(errors) == 1 and message in errors[0] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "model.onnx").exists()
