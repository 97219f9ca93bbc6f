"""The Q/DQ lint on ONNX files other tools wrote (ONNX Runtime's quantizer, NNCF) and on hand-made
corner cases of newer opsets (FP8 with ``saturate``, blocked INT4, uint4, external data)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper
from test_tensorrt_lint import residual_model

from edgeres.backends.tensorrt_lint import group_violations, lint_model, lint_onnx, version_limits
from edgeres.cli import main
from edgeres.errors import EdgeresError

K, N = 8, 4   # Gemm: input features, output channels (weight [N, K] with transB=1: output-channel axis 0)
FP8, INT4, UINT4 = TensorProto.FLOAT8E4M3FN, TensorProto.INT4, TensorProto.UINT4


def gemm_model(opset=17, act=TensorProto.INT8, weight=TensorProto.INT8, scales="channel", axis=0, block=0,
               saturate=None, bias=False, qdq=True):
    """x -> Q/DQ(act) -> Gemm(DQ(weight)) -> Relu -> logits. ``scales``: 'tensor', 'channel' (on ``axis``)
    or 'blocked' (``block`` inputs per scale along axis 1); ``qdq=False``: the float model."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((N, K)).astype(np.float32)
    inits, nodes = [], []
    x = "input"
    if qdq:
        q_attrs = {"saturate": saturate} if saturate is not None else {}
        inits += [numpy_helper.from_array(np.array(0.05, np.float32), "x_s"), helper.make_tensor("x_z", act, [], [0])]
        nodes += [helper.make_node("QuantizeLinear", ["input", "x_s", "x_z"], ["x_q"], name="x_Q", **q_attrs),
                  helper.make_node("DequantizeLinear", ["x_q", "x_s", "x_z"], ["x_dq"], name="x_DQ")]
        x = "x_dq"
        shape = {"tensor": [], "channel": [N] if axis in (0, -2) else [K], "blocked": [N, K // max(block, 1)]}[scales]
        scale = np.full(shape, 0.02, np.float32)
        q = np.clip(np.round(w / 0.02), -7, 7).astype(np.int64)
        q = np.abs(q) if weight == UINT4 else q
        inits += [numpy_helper.from_array(scale, "w_s"), helper.make_tensor("w_q", weight, [N, K], q.flatten().tolist()),
                  helper.make_tensor("w_z", weight, shape, [0] * int(np.prod(shape)))]
        dq_attrs = {"axis": axis} if scales != "tensor" else {}
        if scales == "blocked":
            dq_attrs = {"axis": 1, "block_size": block}
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="w_DQ", **dq_attrs))
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    gemm_in = [x, "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(N).astype(np.float32), "b"))
        gemm_in.append("b")
    nodes += [helper.make_node("Gemm", gemm_in, ["g"], name="fc", transB=1),
              helper.make_node("Relu", ["g"], ["logits"], name="relu")]
    graph = helper.make_graph(nodes, "gemm", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", K])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", N])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def rules(model, version=None):
    return [v.rule for v in lint_model(model, version_limits(version) if version else ())]


# --- hand-made corner cases -------------------------------------------------------------------

def test_per_tensor_and_per_channel_int8_weights_are_clean_whatever_the_axis_spelling():
    assert rules(gemm_model(scales="tensor"), "8.5") == []
    assert rules(gemm_model(axis=0), "8.5") == []
    assert rules(gemm_model(axis=-2), "8.5") == []          # NNCF writes axis=-2 for a [N, K] Gemm weight


def test_per_channel_weights_on_the_input_axis_are_flagged():
    found = lint_model(gemm_model(axis=1))
    assert [(v.node, v.rule) for v in found] == [("w_DQ", "weight-axis")]
    assert "on axis 1: TensorRT wants them on the output-channel axis 0" in found[0].message


def test_fp8_with_saturate_is_parsed_from_tensorrt_9():
    model = gemm_model(opset=19, act=FP8, weight=FP8, saturate=1)
    found = lint_model(model, version_limits("8.6"))
    assert [v.message for v in found] == [
        "FP8 (E4M3) Q/DQ is parsed from TensorRT 9.0 on, not by TensorRT 8.6",
        "FP8 (E4M3) Q/DQ is parsed from TensorRT 9.0 on, not by TensorRT 8.6",
        "opset 19 is above 17, the newest TensorRT 8.6 parses"]
    assert rules(model, "10.3") == []


def test_blocked_int4_weights_need_tensorrt_10_and_opset_21_needs_10_15():
    model = gemm_model(opset=21, weight=INT4, scales="blocked", block=4)
    assert rules(model, "8.6") == ["quant-type", "blocked", "opset"]
    assert [v.message for v in lint_model(model, version_limits("10.3"))] == [
        "opset 21 is above 20, the newest TensorRT 10.3 parses"]
    assert rules(model, "10.15") == []


def test_int4_activations_and_uint4_weights_are_flagged():
    assert rules(gemm_model(opset=21, act=INT4, weight=INT4, scales="tensor"), "10.15") == ["int4-activation"]
    found = lint_model(gemm_model(opset=21, weight=UINT4, scales="tensor"), version_limits("10.15"))
    assert [v.message for v in found] == [
        "quantizes to uint4: TensorRT quantizes to INT8, FP8 (E4M3), INT4, FP4 (E2M1) only"]


def test_external_data_is_read_for_scales_and_a_missing_data_file_is_one_error(tmp_path, capsys):
    path = tmp_path / "ext.onnx"
    onnx.save_model(gemm_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.onnx.data", size_threshold=0)
    assert lint_onnx(path, version_limits("10.3")) == ("qdq", [])
    (tmp_path / "ext.onnx.data").unlink()
    with pytest.raises(EdgeresError, match="cannot read its external data"):
        lint_onnx(path)
    assert main(["kit", "lint", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_same_rule_on_many_nodes_is_one_line_with_a_count():
    model = gemm_model()
    zps = [i for i in model.graph.initializer if i.name == "x_z"]
    zps[0].CopyFrom(helper.make_tensor("x_z", TensorProto.UINT8, [], [128]))
    found = lint_model(model) * 5
    groups = group_violations(found)
    assert len(groups) == 1 and groups[0].to_dict()["count"] == 5
    assert groups[0].line("m.onnx") == ("m.onnx: 5 nodes (x_Q, x_Q, x_Q, ...): quantizes to uint8: TensorRT "
                                        "quantizes to signed INT8 only (UINT8 is a network input/output type there); "
                                        "quantize to int8 with zero point 0")


# --- ONNX Runtime's quantizer and NNCF -------------------------------------------------------

SHAPES = {"residual": (1, 4, 8, 8), "gemm": (1, K)}


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("foreign")
    models = {"residual": residual_model(qdq=False), "gemm": gemm_model(qdq=False, bias=True)}
    paths = {name: root / f"{name}.onnx" for name in models}
    for name, model in models.items():
        onnx.save(model, str(paths[name]))
    return paths


def _samples(name):
    return [np.random.default_rng(i).standard_normal(SHAPES[name]).astype(np.float32) for i in range(2)]


def _ort_quantize(src, style):
    oq = pytest.importorskip("onnxruntime.quantization")

    class Reader(oq.CalibrationDataReader):
        def __init__(self):
            self.batches = iter({"input": x} for x in _samples(src.stem))

        def get_next(self):
            return next(self.batches, None)

    dst = src.with_name(f"{src.stem}_{style}.onnx")
    if style == "dynamic":
        oq.quantize_dynamic(str(src), str(dst))
    elif style == "qoperator":
        oq.quantize_static(str(src), str(dst), Reader(), quant_format=oq.QuantFormat.QOperator)
    elif style == "symmetric":
        oq.quantize_static(str(src), str(dst), Reader(), quant_format=oq.QuantFormat.QDQ, per_channel=True,
                           activation_type=oq.QuantType.QInt8, weight_type=oq.QuantType.QInt8,
                           extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    else:
        oq.quantize_static(str(src), str(dst), Reader(), quant_format=oq.QuantFormat.QDQ)
    return dst


def _grouped(path, version="10.3"):
    kind, found = lint_onnx(path, version_limits(version))
    return kind, {g.rule: len(g.nodes) for g in group_violations(found)}


def test_onnx_runtime_default_qdq_is_asymmetric_with_int32_biases(float_models):
    kind, found = _grouped(_ort_quantize(float_models["residual"], "default"))
    assert kind == "qdq" and found["asymmetric"] > 1 and "add-split" in found
    kind, found = _grouped(_ort_quantize(float_models["gemm"], "default"))
    assert found["int32-bias"] == 1 and found["asymmetric"] >= 1


def test_onnx_runtime_symmetric_per_channel_int8_breaks_only_the_real_tensorrt_rules(float_models):
    _, found = _grouped(_ort_quantize(float_models["residual"], "symmetric"))
    assert set(found) == {"add-split", "output-quantized"}      # no zero point, axis or per-channel complaint
    _, found = _grouped(_ort_quantize(float_models["gemm"], "symmetric"))
    assert set(found) == {"int32-bias", "output-quantized"}     # the per-channel int32 bias is one line, not two


@pytest.mark.parametrize("style, kind", [("qoperator", "qdq"), ("dynamic", "integer")])
def test_onnx_runtime_integer_operators_are_named_in_one_line(float_models, capsys, style, kind):
    path = _ort_quantize(float_models["residual"], style)
    assert _grouped(path)[0] == kind
    assert main(["kit", "lint", str(path), "--tensorrt", "10.3"]) == 1
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if "integer operators" in line]
    assert len(lines) == 1 and "no TensorRT parses them" in lines[0] and "QuantFormat.QDQ" in lines[0], out
    assert "Traceback" not in err


def test_nncf_uint8_activations_and_negative_weight_axes(float_models):
    nncf = pytest.importorskip("nncf")
    out = {}
    for name in ("residual", "gemm"):
        model = onnx.load(str(float_models[name]))
        quantized = nncf.quantize(model, nncf.Dataset(_samples(name), lambda x: {"input": x}), subset_size=2)
        out[name] = float_models[name].with_name(f"{name}_nncf.onnx")
        onnx.save(quantized, str(out[name]))
    _, found = _grouped(out["residual"])
    assert set(found) == {"uint8", "add-split"}                 # unsigned after ReLU; Q/DQ on the conv's output
    assert _grouped(out["gemm"]) == ("qdq", {})                 # axis=-2 on a [N, K] weight is the output axis


def test_scales_from_constant_nodes_and_through_identity_are_constants():
    model = gemm_model()
    scale = next(i for i in model.graph.initializer if i.name == "x_s")
    model.graph.initializer.remove(scale)
    model.graph.node.insert(0, helper.make_node("Constant", [], ["x_s0"], value_float=0.05))
    model.graph.node.insert(1, helper.make_node("Identity", ["x_s0"], ["x_s"]))
    assert rules(model, "10.3") == []
