"""`edgeres bench` times a model edgeres did not write (an OpenVINO IR, an ONNX) as benchmark_app
would: no sidecar needed, nothing written beside it, the precision it holds and the runtime's own
default; a file it cannot time is one clear error (no timing asserted)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeres.cli import main

onnx = pytest.importorskip("onnx")
ov = pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper

QUICK = ["--min-runs", "3", "--min-seconds", "0", "--warmup", "1", "--threads", "1"]


def _tiny_onnx(path: Path, batch: int | str = "N", hw: tuple = (16, 16), inputs: int = 1, qdq: bool = False,
               input_type: int = TensorProto.FLOAT) -> Path:
    """Conv -> ReLU -> global pool -> logits on [batch, 3, H, W]; optionally Q/DQ in front of the conv,
    or an input of another type cast to float first (a model with its preprocessing inside)."""
    weights = np.random.default_rng(0).standard_normal((8, 3, 3, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(weights, "w")]
    nodes = []
    x, w = "x", "w"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    if qdq:
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
                  numpy_helper.from_array(np.array(0, np.int8), "z")]
        for name in (x, "w"):
            nodes += [helper.make_node("QuantizeLinear", [name, "s", "z"], [f"{name}q"]),
                      helper.make_node("DequantizeLinear", [f"{name}q", "s", "z"], [f"{name}d"])]
        x, w = f"{x}d", "wd"
    nodes += [helper.make_node("Conv", [x, w], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["r"]),
              helper.make_node("GlobalAveragePool", ["r"], ["g"]), helper.make_node("Flatten", ["g"], ["y"])]
    ins = [helper.make_tensor_value_info("x", input_type, [batch, 3, *hw])]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])]
    if inputs == 2:
        ins.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, 8]))
        nodes.append(helper.make_node("Mul", ["y", "mask"], ["masked"]))
        outs = [helper.make_tensor_value_info("masked", TensorProto.FLOAT, [batch, 8])]
    model = helper.make_model(helper.make_graph(nodes, "tiny", ins, outs, initializer=inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def _tiny_ir(folder: Path, name: str = "model", **kwargs) -> Path:
    """An IR as ``ovc`` writes it (model.xml + model.bin), from a tiny ONNX made elsewhere."""
    onnx_path = _tiny_onnx(folder.parent / f"{folder.name}-{name}-src.onnx", **kwargs)
    folder.mkdir(exist_ok=True)
    xml = folder / f"{name}.xml"
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml))
    return xml


def _bench_json(capsys, *argv: str) -> dict:
    assert main(["bench", *argv, *QUICK, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_foreign_ir_is_timed_with_openvinos_default_precision_and_nothing_written_beside_it(tmp_path, capsys):
    xml = _tiny_ir(tmp_path / "user")
    before = sorted(p.name for p in xml.parent.iterdir())
    assert main(["bench", str(xml), *QUICK, "--batch", "1,2"]) == 0  # the throughput mode too
    text = capsys.readouterr().out
    assert "openvino" in text and "input 3x16x16" in text
    assert "precision: fp32, what the model holds" in text and "none forced, as benchmark_app does" in text
    assert "throughput (its own measurement)" in text
    data = _bench_json(capsys, str(xml), "--no-throughput")
    assert data["foreign"] is True and data["backend"] == "openvino" and data["precision"] == "fp32"
    assert data["input"] == {"name": "x", "shape": ["?", 3, 16, 16], "dtype": "float32"}
    assert data["runner"]["inference_precision_hint"] is None  # the device's default, read back:
    assert data["runner"]["inference_precision_readback"] in ("f32", "bf16", "f16")
    assert [r["batch_size"] for r in data["results"]] == [1]
    assert sorted(p.name for p in xml.parent.iterdir()) == before


@pytest.mark.parametrize("backend", [None, "openvino"])
def test_a_foreign_onnx_is_timed_on_onnxruntime_or_on_openvino_when_asked(tmp_path, capsys, backend):
    model = _tiny_onnx(tmp_path / "model.onnx")
    data = _bench_json(capsys, str(model), "--no-throughput", *(["--backend", backend] if backend else []))
    assert data["backend"] == data["runner"]["backend"] == (backend or "onnxruntime")
    assert data["precision"] == "fp32" and data["input_shape"] == [3, 16, 16]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_quantized_foreign_onnx_reports_int8(tmp_path, capsys, backend):
    model = _tiny_onnx(tmp_path / "q.onnx", qdq=True)
    data = _bench_json(capsys, str(model), "--no-throughput", "--backend", backend)
    assert data["precision"] == "int8"


def test_a_fixed_batch_foreign_model_times_its_batch_and_refuses_another(tmp_path, capsys):
    xml = _tiny_ir(tmp_path / "user", batch=2)
    data = _bench_json(capsys, str(xml), "--no-throughput")
    assert [r["batch_size"] for r in data["results"]] == [2]
    assert main(["bench", str(xml), *QUICK, "--no-throughput", "--batch", "4"]) != 0
    assert "model.xml was built for batch 2 only: use --batch 2" in capsys.readouterr().err


@pytest.mark.parametrize(("input_type", "dtype", "backend"), [
    (TensorProto.UINT8, "uint8", None), (TensorProto.UINT8, "uint8", "openvino"),
    (TensorProto.FLOAT16, "float16", None)])
def test_a_foreign_model_is_fed_its_own_input_type(tmp_path, capsys, input_type, dtype, backend):
    """A model with its preprocessing inside takes uint8 pixels (an FP16 one, float16): bench makes
    batches of that type, so no conversion is timed and no runtime refuses a float32 tensor."""
    model = _tiny_onnx(tmp_path / "pre.onnx", input_type=input_type)
    args = ["--batch", "1,2", *(["--backend", backend] if backend else [])]
    data = _bench_json(capsys, str(model), *args)
    assert data["input"]["dtype"] == dtype and [r["batch_size"] for r in data["results"]] == [1, 2]
    assert data["throughput"]["images_per_second"] > 0
    assert main(["bench", str(model), *QUICK, "--no-throughput", *args]) == 0
    assert f"input 3x16x16 {dtype}" in capsys.readouterr().out


def _int64_input(tmp: Path) -> Path:
    return _tiny_onnx(tmp / "ids.onnx", input_type=TensorProto.INT64)


def _two_inputs(tmp: Path) -> Path:
    return _tiny_onnx(tmp / "two.onnx", inputs=2)


def _dynamic_hw(tmp: Path) -> Path:
    return _tiny_onnx(tmp / "dyn.onnx", hw=("H", "W"))


def _garbage(tmp: Path) -> Path:
    (tmp / "garbage.onnx").write_bytes(b"\x00\x01 not a model " * 20)
    return tmp / "garbage.onnx"


def _xml_without_bin(tmp: Path) -> Path:
    xml = _tiny_ir(tmp / "user")
    xml.with_suffix(".bin").unlink()
    return xml


def _broken_xml(tmp: Path) -> Path:
    xml = _tiny_ir(tmp / "user")
    xml.write_text('<?xml version="1.0"?><net><layers>')
    return xml


@pytest.mark.parametrize(("make", "backend", "message"), [
    (_two_inputs, None, "two.onnx has 2 inputs (x, mask)"),
    (_two_inputs, "openvino", "two.onnx has 2 inputs"),
    (_dynamic_hw, None, "C, H and W must be fixed"),
    (_int64_input, None, "its input 'x' is int64; edgeres bench feeds float32, float16, uint8, int8 batches"),
    (_dynamic_hw, "openvino", "C, H and W must be fixed"),
    (_garbage, None, "garbage.onnx is not a readable ONNX model"),
    (_garbage, "openvino", "garbage.onnx is not a model OpenVINO"),
    (_xml_without_bin, None, "needs its weights file model.bin beside it"),
    (_broken_xml, None, "model.xml is not a model OpenVINO"),
    (lambda tmp: _tiny_ir(tmp / "user"), "onnxruntime", "--backend onnxruntime cannot run a .xml file"),
])
def test_a_model_bench_cannot_time_is_one_clear_error(tmp_path, capfd, make, backend, message):
    model = make(tmp_path)
    argv = ["bench", str(model), *QUICK, *(["--backend", backend] if backend else [])]
    assert main(argv) != 0
    err = capfd.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().count("\n") == 0, err  # one line, no runtime's own log lines
    assert main([*argv, "--json"]) != 0
    assert message in json.loads(capfd.readouterr().out)["error"]


def test_without_the_onnx_package_an_onnx_is_timed_as_is_and_still_checked(tmp_path, capsys, monkeypatch):
    """A device install has ONNX Runtime but not ``onnx``: the input is read from ONNX Runtime."""
    model = _tiny_onnx(tmp_path / "model.onnx")
    two = _tiny_onnx(tmp_path / "two.onnx", inputs=2)
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    data = _bench_json(capsys, str(model), "--no-throughput")
    assert data["precision"] == "as-is" and data["input"]["shape"] == ["?", 3, 16, 16]
    assert main(["bench", str(two), *QUICK]) != 0
    assert "two.onnx has 2 inputs (x, mask)" in capsys.readouterr().err
