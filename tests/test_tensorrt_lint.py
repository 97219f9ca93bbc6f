"""The Q/DQ lint against TensorRT's explicit-quantization rules, and the kit writer refusing what fails it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper

from edgeres.backends.tensorrt_lint import lint_model, lint_qdq, recipe_limits, version_limits
from edgeres.data import PreprocessSpec
from edgeres.errors import EdgeresError, UsageError
from edgeres.kit import write_kit

C = 4


def residual_model(qdq=True, zero_point=0, output_qdq=False, fuse_add=True, weight_axis=0, opset=17):
    """x -> Q/DQ -> conv1 -> relu -> Q/DQ -> conv2 -> Add(., residual) -> relu -> pool -> flatten -> logits.

    With ``qdq`` both convolutions are INT8 (per-channel weights on ``weight_axis``) and the
    residual input is quantized so the Add fuses; the other arguments break one rule each.
    """
    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal((C, C, 3, 3)).astype(np.float32) * 0.2 for _ in range(2))
    inits, nodes = [], []

    def q_dq(src, name, scale=0.05):
        zp = zero_point if name == "x" else 0   # only the input's Q/DQ pair is made asymmetric
        inits.extend([numpy_helper.from_array(np.array(scale, np.float32), f"{name}_s"),
                      numpy_helper.from_array(np.array(zp, np.int8), f"{name}_z")])
        nodes.extend([helper.make_node("QuantizeLinear", [src, f"{name}_s", f"{name}_z"], [f"{name}_q"], name=f"{name}_Q"),
                      helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"],
                                       name=f"{name}_DQ")])
        return f"{name}_dq"

    def weight(w, name):
        if not qdq:
            inits.append(numpy_helper.from_array(w, name))
            return name
        scale = np.abs(w).reshape(C, -1).max(1) / 127.0
        q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
        inits.extend([numpy_helper.from_array(q, f"{name}_i8"), numpy_helper.from_array(scale.astype(np.float32),
                                                                                        f"{name}_ws"),
                      numpy_helper.from_array(np.zeros(C, np.int8), f"{name}_wz")])
        nodes.append(helper.make_node("DequantizeLinear", [f"{name}_i8", f"{name}_ws", f"{name}_wz"], [f"{name}_w"],
                                      name=f"{name}_wDQ", axis=weight_axis))
        return f"{name}_w"

    x = q_dq("input", "x") if qdq else "input"
    nodes.append(helper.make_node("Conv", [x, weight(w1, "W1")], ["c1"], name="conv1", pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"], name="relu1"))
    r1 = q_dq("r1", "a1") if qdq else "r1"
    nodes.append(helper.make_node("Conv", [r1, weight(w2, "W2")], ["c2"], name="conv2", pads=[1, 1, 1, 1]))
    residual = x if (qdq and fuse_add) else "input"
    nodes.append(helper.make_node("Add", ["c2", residual], ["sum"], name="add"))
    nodes += [helper.make_node("Relu", ["sum"], ["r2"], name="relu2"),
              helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
              helper.make_node("Flatten", ["p"], ["f" if output_qdq else "logits"], name="flatten")]
    if output_qdq:
        nodes[-1].output[0] = "f"
        last = q_dq("f", "out")
        nodes.append(helper.make_node("Identity", [last], ["logits"], name="out_identity"))
    graph = helper.make_graph(nodes, "residual", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                ["N", C, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", C])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def test_a_tensorrt_ready_qdq_model_passes():
    assert lint_model(residual_model(), version_limits("8.5")) == []


def test_broken_qdq_model_gets_one_line_per_violation():
    broken = residual_model(zero_point=3, output_qdq=True, fuse_add=False)
    found = lint_model(broken)
    assert sorted(v.rule for v in found) == ["add-not-fused", "asymmetric", "output-quantized"]
    lines = [v.line("model_int8_qdq.onnx") for v in found]
    for line in lines:
        print(line)
    assert "model_int8_qdq.onnx: x_Q: zero point is 3, not 0: TensorRT supports only symmetric INT8" in lines[0]
    assert any(line.startswith("model_int8_qdq.onnx: out_DQ: Q/DQ on the network output logits") for line in lines)
    assert any("add: residual Add after the INT8 convolution conv2: its other input is not quantized" in line
               for line in lines)


def test_each_break_alone_is_one_line():
    assert [v.rule for v in lint_model(residual_model(fuse_add=False))] == ["add-not-fused"]
    assert [v.rule for v in lint_model(residual_model(output_qdq=True))] == ["output-quantized"]
    assert [v.rule for v in lint_model(residual_model(weight_axis=1))] == ["weight-axis", "weight-axis"]


def test_opset_beyond_a_recipes_parser_is_reported(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(residual_model(opset=19), str(path))
    found = lint_qdq(path, recipe_limits(["trt8.5-10.11", "trt10.12-10.x"]))
    assert [v.message for v in found] == ["opset 19 is above 17, the newest TensorRT 8.5 - 10.11 parses"]


def test_kit_writer_refuses_a_broken_qdq_onnx_and_writes_nothing(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fp32, broken = tmp_path / "fp32.onnx", tmp_path / "broken.onnx"
    onnx.save(residual_model(qdq=False), str(fp32))
    onnx.save(residual_model(zero_point=3, output_qdq=True, fuse_add=False), str(broken))
    x = np.random.default_rng(1).standard_normal((16, C, 8, 8)).astype(np.float32)
    ref = ort.InferenceSession(str(fp32)).run(None, {"input": x})[0]
    with pytest.raises(EdgeresError) as exc:
        write_kit(tmp_path / "kit", target="jetson", fp32_onnx=fp32, qdq_onnx=broken, precisions=["int8"], inputs=x,
                  labels=None, reference_logits=ref, preprocess=PreprocessSpec.for_size(8))
    msg = str(exc.value)
    own = [line.strip() for line in msg.splitlines() if line.strip().startswith("onnx/model_int8_qdq.onnx:")]
    lint = [line for line in own if "agreement" not in line]
    assert len(lint) == 3 and "not fit for TensorRT; nothing was written" in msg   # one line per violation
    assert any("zero point is 3" in line for line in lint) and any("network output" in line for line in lint)
    assert any("cannot fuse the Add" in line for line in lint)
    assert not (tmp_path / "kit").exists() and not (tmp_path / "kit.tar.gz").exists()
    assert not [p for p in Path(tmp_path).iterdir() if p.name.endswith(".tmp")]


def _with_output_chain(model, ops):
    """Replace the Identity between out_DQ and the logits with a chain of ``ops`` (Cast casts to FLOAT)."""
    tail = next(n for n in model.graph.node if n.name == "out_identity")
    model.graph.node.remove(tail)
    src = tail.input[0]
    for i, op in enumerate(ops):
        dst = "logits" if i == len(ops) - 1 else f"chain{i}"
        extra = {"to": TensorProto.FLOAT} if op == "Cast" else {}
        model.graph.node.append(helper.make_node(op, [src], [dst], name=f"chain_{op}_{i}", **extra))
        src = dst
    return model


@pytest.mark.parametrize("chain", [["Cast"], ["Identity", "Cast"], ["Flatten", "Identity", "Cast"]])
def test_qdq_on_the_output_is_found_through_casts_and_shape_only_ops(chain):
    model = _with_output_chain(residual_model(output_qdq=True), chain)
    found = lint_model(model)
    assert [(v.node, v.rule) for v in found] == [("out_DQ", "output-quantized")]


def test_the_fp16_converters_output_cast_after_a_dq_is_reported(tmp_path):
    pytest.importorskip("onnxconverter_common")
    from edgeres.backends.tensorrt_fp16 import qdq_fp16_copy

    src = tmp_path / "q.onnx"
    onnx.save(residual_model(output_qdq=True), str(src))
    half = onnx.load(str(qdq_fp16_copy(src, tmp_path / "q16.onnx").path))
    assert any(n.op_type == "Cast" for n in half.graph.node if "logits" in n.output)   # DQ -> ... -> Cast -> logits
    assert [v.rule for v in lint_model(half)] == ["output-quantized"]


def _with_ops(ops):
    model = residual_model()
    for op in ops:
        model.graph.node.append(helper.make_node(op, ["logits"], [f"{op}_out"], name=f"extra_{op}"))
    return model


def test_operators_tensorrt_parses_are_not_flagged():
    ops = ["Sqrt", "Exp", "Erf", "Max", "Min", "Pow", "Sigmoid", "Softmax", "Transpose", "Slice", "Gather", "Resize",
           "Tanh", "Where", "TopK", "Einsum"]
    assert lint_model(_with_ops(ops), version_limits("8.5")) == []
    assert lint_model(_with_ops(ops), recipe_limits()) == []


def test_an_operator_newer_than_a_parser_is_flagged_for_that_parser_only():
    model = _with_ops(["Gelu", "LayerNormalization"])
    found = lint_model(model, recipe_limits())
    assert [v.message for v in found] == [
        "operator Gelu is parsed from TensorRT 10.0 on, not by TensorRT 8.5 - 10.11",
        "operator LayerNormalization is parsed from TensorRT 8.6 on, not by TensorRT 8.5 - 10.11"]
    assert lint_model(model, version_limits("10.3")) == []
    assert lint_model(model) == []                       # no parser named: any TensorRT
    swish = lint_model(_with_ops(["Swish"]), version_limits("10.15"))
    assert [v.message for v in swish] == ["operator Swish is parsed from TensorRT 11.0 on, not by TensorRT 10.15"]


def test_operators_no_tensorrt_parses_are_flagged():
    found = lint_model(_with_ops(["StringNormalizer", "Bernoulli"]), recipe_limits())
    assert [v.message for v in found] == [
        "operator Bernoulli is not one TensorRT's ONNX parser supports (onnx-tensorrt's operator table)",
        "operator StringNormalizer is not one TensorRT's ONNX parser supports (onnx-tensorrt's operator table)"]
    custom = _with_ops([])
    custom.graph.node.append(helper.make_node("FusedConv", ["logits"], ["q"], name="ms", domain="com.microsoft"))
    assert [v.rule for v in lint_model(custom)] == ["op"]
    custom.graph.node.append(helper.make_node("QGemm", ["logits"], ["g"], name="qg", domain="com.microsoft"))
    assert [v.message for v in lint_model(custom)][-2] == (
        "ONNX Runtime's integer operators com.microsoft.QGemm (1): no TensorRT parses them; TensorRT reads INT8 only "
        "as QuantizeLinear/DequantizeLinear pairs (ONNX Runtime: quantize_static with quant_format=QuantFormat.QDQ, "
        "not QOperator or quantize_dynamic)")


def test_each_tensorrt_version_has_its_own_documented_opset_limit():
    assert [limit.max_opset for limit in [*version_limits("8.6"), *version_limits("9.2"), *version_limits("10.3"),
                                          *version_limits("10.15"), *version_limits("11.4"), *version_limits("11.5")]
            ] == [17, 19, 20, 24, 24, 25]
    assert [limit.max_opset for limit in recipe_limits()] == [17, 20, 24]   # each recipe's oldest version


@pytest.mark.parametrize("text", ["8.2", "8.4.3"])
def test_a_tensorrt_older_than_the_operator_tables_is_refused(text):
    with pytest.raises(UsageError, match="older than the lint knows: its operator tables start at 8.5"):
        version_limits(text)


def test_a_qdq_pair_between_the_convolution_and_its_residual_add_is_flagged():
    model = residual_model()
    add = next(n for n in model.graph.node if n.name == "add")
    model.graph.node.extend([
        helper.make_node("QuantizeLinear", ["c2", "a1_s", "a1_z"], ["c2_q"], name="c2_Q"),
        helper.make_node("DequantizeLinear", ["c2_q", "a1_s", "a1_z"], ["c2_dq"], name="c2_DQ")])
    add.input[0] = "c2_dq"
    found = lint_model(model)
    assert [(v.node, v.rule) for v in found] == [("add", "add-split")]
    assert "drop the Q/DQ between conv2 and the Add (keep the one on the residual input)" in found[0].message
