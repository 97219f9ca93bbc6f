"""Per-layer profiles: runtime layer names map to torch modules and to the stages of ``edgeres
info``; ONNX Runtime's and OpenVINO's own profilers give per-layer time with kernel and precision;
``edgeres profile`` prints a stage table, one JSON document with --json, a plot; the FP cost of
each layer joins its sensitivity, and the budget loop can order layers by points per ms."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeres.backends.base import LayerTime, Runner
from edgeres.errors import EdgeresError
from edgeres.quantize.ordering import describe_choices, order_ranking
from edgeres.quantize.sensitivity import LayerSensitivity
from edgeres.validate.layers import (
    attribute,
    by_stage,
    cost_of_fp,
    join_sensitivity,
    module_of,
    stage_of,
)

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name, module, stage", [
    ("/layer2/layer2.0/downsample/downsample.0/Conv_token_129", "layer2.0.downsample.0", "layer2"),
    ("/layer3/layer3.1/conv2/Conv", "layer3.1.conv2", "layer3"),
    ("/layer1/layer1.0/Add", "layer1.0", "layer1"),
    ("/maxpool/MaxPool_output_0_nchwc", "maxpool", "conv1"),
    ("/fc/Gemm", "fc", "fc"),
    ("/Flatten_output_0_DequantizeLinear", "Flatten", "fc"),
    ("/layer4/layer4.1/conv1/Conv + /layer4/layer4.1/relu/Relu", "layer4.1.conv1", "layer4"),
    ("Transpose_token_116", "", "other"),
    ("/layer1/layer1.0/conv1/Conv/WithoutBiases", "layer1.0.conv1", "layer1"),  # OpenVINO
    ("/fc/Gemm/WithoutBiases", "fc", "fc"),
])
def test_runtime_names_map_to_modules_and_stages(name, module, stage):
    assert module_of(name) == module and stage_of(module) == stage


def test_a_conv_fused_with_its_relu_goes_back_to_the_conv():
    layers = attribute([LayerTime("/relu/Relu_output_0_nchwc", "Conv", "Conv (CPU)", "fp32", 1.0),
                        LayerTime("/layer1/layer1.0/relu_1/Relu_output_0_nchwc", "Conv", "Conv (CPU)", "fp32", 2.0),
                        LayerTime("/layer1/layer1.0/relu/Relu", "Relu", "Relu (CPU)", "fp32", 0.5)])
    assert [t.module for t in layers] == ["conv1", "layer1.0.conv2", "layer1.0.relu"]
    stages = by_stage(layers)
    assert [(s["stage"], s["ms"]) for s in stages] == [("conv1", 1.0), ("layer1", 2.5)]
    assert sum(s["share"] for s in stages) == pytest.approx(1.0)


def test_a_runner_without_a_profiler_says_so():
    with pytest.raises(EdgeresError, match="cannot report per-layer times"):
        Runner().profile()


def _sens(layer, loss, cosine=0.999):
    return LayerSensitivity(layer=layer, node=layer, loss=loss, top1=None, agreement=1.0, cosine=cosine)


def test_gain_per_ms_returns_cheap_layers_first_and_sensitivity_keeps_the_ranking():
    ranking = [_sens("layer4.0.conv1", 1.0), _sens("layer1.0.conv1", 0.8), _sens("fc", 0.0, 0.99)]
    costs = {"layer4.0.conv1": 2.0, "layer1.0.conv1": 0.2, "fc": 0.01}
    assert [r.layer for r in order_ranking(ranking, "sensitivity", costs)] == [r.layer for r in ranking]
    # 0.8 pt for 0.2 ms (4 pt/ms) beats 1.0 pt for 2 ms; a layer that costs 0 pt goes last
    assert [r.layer for r in order_ranking(ranking, "gain-per-ms", costs)] == ["layer1.0.conv1", "layer4.0.conv1", "fc"]
    with pytest.raises(EdgeresError, match="unknown fallback order"):
        order_ranking(ranking, "random")
    steps = [{"loss": 1.5}, {"loss": 0.7}, {"loss": 0.2}]
    choices = describe_choices(steps, ["layer1.0.conv1", "layer4.0.conv1"], costs, "top1")
    assert choices[0]["text"] == "keeping layer1.0.conv1 in FP: +0.200 ms, +0.80 pt of top1"
    assert choices[1]["gained_points"] == pytest.approx(0.5)
    tradeoffs = join_sensitivity([r.to_dict() for r in ranking], costs)
    assert tradeoffs[1].gain_per_ms == pytest.approx(4.0)


@pytest.fixture(scope="module")
def demo_onnx(tmp_path_factory):
    from edgeres.data import DIGITS_PREPROCESS, demo_digits_dir, open_set
    from edgeres.quantize import quantize_onnx

    data = pytest.importorskip("edgeres.data")
    from pathlib import Path

    from edgeres.export.exporter import export_resnet

    model_dir = data.ensure_demo_model()
    out = tmp_path_factory.mktemp("prof")
    meta = json.loads((Path(model_dir) / "model.json").read_text())
    export_resnet(int(meta["depth"]), out / "model.onnx", weights=Path(model_dir) / "model.pth")
    calib = open_set(demo_digits_dir("train"), size=32, preprocess=DIGITS_PREPROCESS)
    art = quantize_onnx(out / "model.onnx", calib, out / "int8", placement="onnxruntime",
                        cache_dir=out / "cache", log=None)
    return out / "model.onnx", art.path


def test_onnxruntime_profile_covers_every_stage_with_int8_kernels(demo_onnx):
    from edgeres.validate.layers import profile_artifact

    _fp32, int8 = demo_onnx
    doc = profile_artifact(int8, runs=3, threads=1)
    assert [s["stage"] for s in doc["stages"]][:6] == ["conv1", "layer1", "layer2", "layer3", "layer4", "fc"]
    convs = [t for t in doc["layers"] if t["op"] == "QLinearConv"]
    assert len(convs) == 19 and all(t["precision"] == "int8" and t["ms"] >= 0 for t in convs)
    assert {t["module"] for t in convs} >= {"layer3.1.conv2", "layer2.0.downsample.0"}
    assert doc["batch"] == 1 and doc["runs"] == 3 and "median" in doc["timed"]


def test_cli_profile_prints_stages_json_plot_and_fp_cost(demo_onnx, tmp_path, capsys):
    from edgeres.cli import main

    fp32, int8 = demo_onnx
    assert main(["profile", str(int8), "--runs", "2", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "layer3" in text and "% of it in INT8" in text
    plot = tmp_path / "stages.png"
    assert main(["profile", str(int8), "--runs", "2", "--threads", "1", "--compare", str(fp32), "--json",
                 "--plot", str(plot)]) == 0
    doc = json.loads(capsys.readouterr().out)  # exactly one JSON document
    layers = {r["layer"] for r in doc["compare"]["layers"]}
    assert {"conv1", "layer1.0.conv1", "layer4.1.conv2", "fc"} <= layers  # every weighted layer of the FP32 graph
    if doc.get("plot"):
        assert plot.stat().st_size > 0
    assert main(["profile", str(int8), "--sensitivity", "s.json"]) == 1
    assert "needs --compare" in capsys.readouterr().err


def test_fp_cost_is_fp32_minus_int8_time_of_the_same_module():
    fp = attribute([LayerTime("/layer1/layer1.0/conv1/Conv", "Conv", "", "fp32", 1.0)])
    q = attribute([LayerTime("/layer1/layer1.0/conv1/Conv_token_1", "QLinearConv", "", "int8", 0.3),
                   LayerTime("/layer1/layer1.0/conv1/Conv_output_0_DequantizeLinear", "DequantizeLinear", "", "", 0.1)])
    assert cost_of_fp(fp, q, ["layer1.0.conv1", "layer9"]) == pytest.approx({"layer1.0.conv1": 0.6, "layer9": 0.0})


def test_openvino_profile_reports_perf_counters(demo_onnx, tmp_path):
    pytest.importorskip("openvino")
    from edgeres.backends import BuildSpec, get_backend
    from edgeres.targets import get_target
    from edgeres.validate.layers import profile_artifact

    fp32, _ = demo_onnx
    art = get_backend("openvino").build(fp32, BuildSpec(target=get_target("intel-cpu"), precision="fp32",
                                                        out_dir=tmp_path / "ir"))
    doc = profile_artifact(art.path, runs=2, threads=1)
    stages = [s["stage"] for s in doc["stages"]]
    assert {"conv1", "layer1", "layer4", "fc"} <= set(stages)
    convs = [t for t in doc["layers"] if t["op"] == "Convolution"]
    assert convs and all(t["precision"] == "fp32" for t in convs) and all(t["kernel"] for t in convs)
    assert np.isfinite(doc["total_ms"])
