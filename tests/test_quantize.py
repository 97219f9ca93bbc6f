"""INT8 quantization: Q/DQ structure, ORT INT8 kernels, layer control, cache, refusals.

A seeded ResNet-18 (10 classes, 32x32) exported by edgeres and calibrated on a small array
set keeps these fast; the accuracy tests on the demo model are in test_quantize_demo.py.
"""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import numpy_helper

from edgeres.errors import EdgeresError
from edgeres.quantize import ORT_DISABLED_OPTIMIZERS, quantize_onnx
from edgeres.quantize.qdq import module_path, residual_adds, weighted_layers


class MemorySet:
    """The ImageSet interface over an in-memory array."""

    def __init__(self, x: np.ndarray, y: np.ndarray | None = None, name: str = "arrays") -> None:
        self.x, self.y, self.name = x, y, f"{name} ({len(x)} images)"
        self.has_labels = y is not None

    def __len__(self) -> int:
        return len(self.x)

    def batches(self, batch_size: int = 32, progress: str | None = None):
        for i in range(0, len(self.x), batch_size):
            yield self.x[i:i + batch_size], None if self.y is None else self.y[i:i + batch_size]

    def fingerprint(self) -> str:
        return hashlib.sha256(self.x.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def fp32(tmp_path_factory) -> Path:
    torch = pytest.importorskip("torch")
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    torch.manual_seed(0)
    model = ResNet(18, num_classes=10).eval()
    for m in model.modules():  # non-trivial BN statistics, so folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    out = tmp_path_factory.mktemp("fp32") / "model.onnx"
    export_onnx(model, out, input_size=32)
    return out


@pytest.fixture(scope="module")
def calib() -> MemorySet:
    return MemorySet(np.random.default_rng(0).standard_normal((32, 3, 32, 32)).astype(np.float32))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("calib-cache")


@pytest.fixture(scope="module")
def trt_int8(fp32, calib, cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("trt") / "model.int8.onnx"
    return quantize_onnx(fp32, calib, out, method="minmax", cache_dir=cache, keep_fp=[], log=None)


def _graph(path):
    m = onnx.load(str(path))
    init = {i.name: i for i in m.graph.initializer}
    producer = {o: n for n in m.graph.node for o in n.output}
    consumers = collections.defaultdict(list)
    for n in m.graph.node:
        for i in n.input:
            consumers[i].append(n)
    return m, init, producer, consumers


def test_layer_names_map_to_torch_modules(fp32):
    names = [layer.module for layer in weighted_layers(onnx.load(str(fp32)))]
    assert names[0] == "conv1" and names[-1] == "fc"
    assert "layer1.0.conv1" in names and "layer2.0.downsample.0" in names
    assert len(names) == 21  # 20 convolutions (3 of them projections) + fc


def test_qdq_structure_for_tensorrt(trt_int8):
    m, init, producer, consumers = _graph(trt_int8.path)
    q_nodes = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert q_nodes
    # symmetric INT8 everywhere: every zero point is int8 and 0
    for n in q_nodes:
        zp = numpy_helper.to_array(init[n.input[2]])
        assert zp.dtype == np.int8 and not zp.any(), n.name
    weighted = [n for n in m.graph.node if n.op_type in ("Conv", "Gemm")]
    assert len(weighted) == 21
    for n in weighted:
        # activations: per-tensor scale, from a DQ
        act_dq = producer[n.input[0]]
        assert act_dq.op_type == "DequantizeLinear"
        assert numpy_helper.to_array(init[act_dq.input[1]]).size == 1
        # weights: int8 initializer, one scale per output channel on axis 0
        w_dq = producer[n.input[1]]
        assert w_dq.op_type == "DequantizeLinear"
        w = numpy_helper.to_array(init[w_dq.input[0]])
        assert w.dtype == np.int8
        axis = {a.name: a.i for a in w_dq.attribute}.get("axis", 1)
        assert axis == 0
        assert numpy_helper.to_array(init[w_dq.input[1]]).shape == (w.shape[0],)
        # float bias (TensorRT folds it; an int32 bias would need input*weight scales)
        assert n.input[2] in init and init[n.input[2]].data_type == onnx.TensorProto.FLOAT
        # no Q/DQ on a weighted layer's output, unless it is a residual Add's shortcut (a projection)
        if any(c.op_type == "QuantizeLinear" for c in consumers[n.output[0]]):
            assert "downsample" in n.name and all(c.op_type == "QuantizeLinear" for c in consumers[n.output[0]])
    # residual Adds: the shortcut input is quantized, the convolution branch is not
    adds = [n for n in m.graph.node if n.op_type == "Add"]
    assert len(adds) == 8
    for add in adds:
        kinds = sorted(producer[i].op_type for i in add.input)
        assert kinds == ["Conv", "DequantizeLinear"], (add.name, kinds)
    # nothing on the network output
    assert producer[m.graph.output[0].name].op_type == "Gemm"
    assert m.graph.output[0].name == "logits"
    q = trt_int8.metadata["quantization"]
    assert trt_int8.metadata["precision"] == "int8" and trt_int8.metadata["backend"] == "onnx"
    assert q["placement"] == "tensorrt" and q["quantized_layers"] == 21 and trt_int8.metadata["keep_fp"] == []


def test_residual_add_picks_the_deeper_conv_in_a_downsample_block(fp32):
    m = onnx.load(str(fp32))
    found = residual_adds(m)
    fusing, residual = found["/layer2/layer2.0/Add"]
    assert "conv2" in fusing and "downsample" in residual


def _optimized_ops(path, tmp_path, disabled=ORT_DISABLED_OPTIMIZERS):
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled))
    return collections.Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)


def test_onnxruntime_placement_runs_int8_kernels(fp32, calib, cache, tmp_path):
    art = quantize_onnx(fp32, calib, tmp_path / "ort", method="minmax", cache_dir=cache, placement="onnxruntime",
                        log=None)
    assert art.path.name == "model.int8.onnx"
    assert art.metadata["onnxruntime"]["disabled_optimizers"] == list(ORT_DISABLED_OPTIMIZERS)
    m, _init, producer, _ = _graph(art.path)
    assert producer[m.graph.output[0].name].op_type == "Gemm"  # fc kept FP by default, output float
    ops = _optimized_ops(art.path, tmp_path)
    # default keeps conv1 and fc in FP: the other 19 convolutions run as QLinearConv, the adds as QLinearAdd
    assert ops["QLinearConv"] == 19 and ops["QLinearAdd"] == 8, ops
    assert ops["Conv"] + ops.get("FusedConv", 0) == 1


def test_int8_agrees_with_fp32(trt_int8, fp32, calib):
    from edgeres.quantize.sensitivity import ort_runner

    x = calib.x[:16]
    ref = ort_runner(fp32)(x)
    got = ort_runner(trt_int8.path, qdq=True)(x)
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.mean() > 0.98


def test_keep_fp_by_module_name_and_pattern(fp32, calib, cache, tmp_path):
    art = quantize_onnx(fp32, calib, tmp_path / "k.onnx", method="minmax", cache_dir=cache,
                        keep_fp=["layer1.0.conv1", "layer4.*"], log=None)
    m, _init, producer, _ = _graph(art.path)
    fp_layers = {module_path(n) for n in m.graph.node
                 if n.op_type in ("Conv", "Gemm") and producer.get(n.input[1]) is None}
    assert fp_layers == {"layer1.0.conv1", "layer4.0.conv1", "layer4.0.conv2", "layer4.0.downsample.0",
                         "layer4.1.conv1", "layer4.1.conv2"}
    assert art.metadata["keep_fp"][0] == "layer1.0.conv1"
    # a residual Add whose conv stays FP gets no residual Q/DQ (nothing to fuse into)
    for n in m.graph.node:
        if n.op_type == "Add" and "layer4" in n.name:
            assert all(producer[i].op_type != "DequantizeLinear" for i in n.input)


def test_default_keeps_first_conv_and_last_fc(fp32, calib, cache, tmp_path):
    art = quantize_onnx(fp32, calib, tmp_path / "d.onnx", method="minmax", cache_dir=cache, log=None)
    assert art.metadata["keep_fp"] == ["conv1", "fc"]
    assert art.metadata["quantization"]["quantized_layers"] == 19


def test_keep_fp_unknown_name_is_refused(fp32, calib, cache, tmp_path):
    with pytest.raises(EdgeresError, match="matches no Conv/Gemm layer"):
        quantize_onnx(fp32, calib, tmp_path / "x.onnx", cache_dir=cache, keep_fp=["layer9.*"], log=None)


def test_calibration_cache_hit_on_second_run(fp32, calib, tmp_path):
    messages: list[str] = []
    kw = {"method": "percentile", "percentile": 99.9, "cache_dir": tmp_path / "cache", "log": messages.append}
    first = quantize_onnx(fp32, calib, tmp_path / "a.onnx", **kw)
    assert not first.metadata["calibration_cache_hit"]
    assert not any("cache hit" in m for m in messages)
    messages.clear()
    second = quantize_onnx(fp32, calib, tmp_path / "b.onnx", **kw)
    assert second.metadata["calibration_cache_hit"]
    assert any("calibration cache hit" in m for m in messages)
    assert first.path.read_bytes() == second.path.read_bytes()
    # another option is another key
    third = quantize_onnx(fp32, calib, tmp_path / "c.onnx", **(kw | {"percentile": 99.99, "log": None}))
    assert not third.metadata["calibration_cache_hit"]
    assert len(list((tmp_path / "cache").glob("*.json"))) == 2


@pytest.mark.parametrize("method", ["entropy", "mse"])
def test_histogram_methods_give_symmetric_ranges(fp32, calib, cache, method):
    from edgeres.quantize.calibrate import calibrate

    cal = calibrate(fp32, MemorySet(calib.x[:8]), method=method, cache_dir=cache)
    assert cal.ranges and all(lo == pytest.approx(-hi) and hi > 0 for lo, hi in cal.ranges.values())


def test_empty_calibration_set_is_refused(fp32, cache, tmp_path):
    empty = MemorySet(np.zeros((0, 3, 32, 32), np.float32))
    with pytest.raises(EdgeresError, match="empty"):
        quantize_onnx(fp32, empty, tmp_path / "e.onnx", cache_dir=cache, log=None)
    assert not (tmp_path / "e.onnx").exists()


def test_wrong_image_size_is_refused(fp32, cache, tmp_path):
    big = MemorySet(np.zeros((4, 3, 64, 64), np.float32))
    with pytest.raises(EdgeresError, match="are 3x64x64 but the model takes 3x32x32"):
        quantize_onnx(fp32, big, tmp_path / "w.onnx", cache_dir=cache, log=None)


def test_already_quantized_model_is_refused(trt_int8, calib, cache, tmp_path):
    with pytest.raises(EdgeresError, match="already quantized"):
        quantize_onnx(trt_int8.path, calib, tmp_path / "q.onnx", cache_dir=cache, log=None)


def test_bad_method_and_placement(fp32, calib, cache, tmp_path):
    with pytest.raises(EdgeresError, match="unknown calibration method"):
        quantize_onnx(fp32, calib, tmp_path / "m.onnx", method="kl", cache_dir=cache, log=None)
    with pytest.raises(EdgeresError, match="placement"):
        quantize_onnx(fp32, calib, tmp_path / "m.onnx", placement="tflite", cache_dir=cache, log=None)


def test_budget_loop_with_every_layer_back_in_fp_ends_on_the_fp32_graph(fp32, tmp_path):
    """The onnxruntime placement quantizes Add/pool ops around INT8 layers; with none left the loop's
    last candidate must be the FP32 graph itself (loss 0), not Q/DQ around float layers."""
    from edgeres.quantize.sensitivity import Evaluation, fit_budget

    seen = []

    def evaluate(path):
        seen.append(Path(path).read_bytes() == Path(fp32).read_bytes())
        return Evaluation(loss=0.0 if seen[-1] else 50.0, metric="agreement", top1=None, agreement=1.0, cosine=1.0)

    evaluate.metric = "agreement"
    result = fit_budget(fp32, onnx.load(str(fp32)), {}, [], [], evaluate, 0.3, "onnxruntime", tmp_path / "m.onnx")
    assert result.met and seen == [True]
