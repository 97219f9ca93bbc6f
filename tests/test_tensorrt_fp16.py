"""FP16 ONNX for strongly typed TensorRT: onnxconverter-common's conversion, FP32 kept where FP16 overflows,
and the strongly typed INT8 form (opset 19, FP16 scales and float layers) checked on ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxconverter_common")
from onnx import TensorProto, helper, numpy_helper
from test_kit import make_tiny_onnx
from test_tensorrt_lint import residual_model

from edgeres.backends.tensorrt_fp16 import FP16_QDQ_OPSET, fp16_copy, qdq_fp16_copy
from edgeres.backends.tensorrt_lint import lint_model, recipe_limits
from edgeres.errors import EdgeresError


def _run(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def _overflow_model(path):
    """input * 1e5 (a constant FP16 cannot hold) * 1e-5, and input * 300 * 300 / 9e4 (an activation beyond 65504)."""
    inits = [numpy_helper.from_array(np.array(1e5, np.float32), "big"),
             numpy_helper.from_array(np.array(1e-5, np.float32), "small"),
             numpy_helper.from_array(np.array(300.0, np.float32), "k"),
             numpy_helper.from_array(np.array(1 / 9e4, np.float32), "inv")]
    nodes = [helper.make_node("Mul", ["input", "big"], ["a"], name="times_big"),
             helper.make_node("Mul", ["a", "small"], ["b"], name="times_small"),
             helper.make_node("Mul", ["input", "k"], ["c"], name="times_k"),
             helper.make_node("Mul", ["c", "k"], ["d"], name="times_k_again"),
             helper.make_node("Mul", ["d", "inv"], ["e"], name="back_down"),
             helper.make_node("Add", ["b", "e"], ["logits"], name="sum")]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("input", "logits")]
    model = helper.make_model(helper.make_graph(nodes, "overflow", vi[:1], vi[1:], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_fp16_copy_keeps_fp32_io_and_matches(tmp_path):
    src = make_tiny_onnx(tmp_path / "m.onnx")
    res = fp16_copy(src, tmp_path / "m16.onnx")
    m = onnx.load(str(res.path))
    assert {i.data_type for i in m.graph.initializer} == {TensorProto.FLOAT16}
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert res.converter.startswith("onnxconverter-common ") and res.kept_fp32 == []
    x = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_run(res.path, x), _run(src, x), atol=0.02, rtol=0.02)


def test_values_fp16_cannot_hold_stay_fp32(tmp_path):
    src = _overflow_model(tmp_path / "o.onnx")
    x = np.random.default_rng(1).uniform(1, 2, (16, 4)).astype(np.float32)
    res = fp16_copy(src, tmp_path / "o16.onnx", sample=x)
    kept = " ".join(res.kept_fp32)
    assert "times_big: constant big exceeds +-65504" in kept           # a weight beyond FP16: never clipped
    assert "times_k_again: output d reaches" in kept                     # an activation beyond FP16 on the sample
    np.testing.assert_allclose(_run(res.path, x), _run(src, x), rtol=2e-3)
    # Without sample inputs only the constant is seen. (ONNX Runtime's CPU provider computes FP16 Mul in FP32,
    # so it would not show the overflow a GPU's FP16 kernels hit: the range check on the sample is what catches it.)
    blind = fp16_copy(src, tmp_path / "blind.onnx")
    assert [k.split(":")[0] for k in blind.kept_fp32] == ["times_big"]


def test_strongly_typed_int8_onnx_has_fp16_float_layers_and_matches_the_qdq_model(tmp_path):
    src = tmp_path / "q.onnx"
    onnx.save(residual_model(), str(src))
    res = qdq_fp16_copy(src, tmp_path / "q16.onnx")
    m = onnx.load(str(res.path))
    assert res.opset == FP16_QDQ_OPSET
    inits = {i.name: i.data_type for i in m.graph.initializer}
    qdq = [n for n in m.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert qdq and all(inits[n.input[1]] == TensorProto.FLOAT16 for n in qdq)          # FP16 scales
    assert {t for n, t in inits.items() if n.endswith(("_z", "_wz", "_i8"))} == {TensorProto.INT8}
    assert TensorProto.FLOAT not in set(inits.values())                                # nothing left in FP32
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT            # I/O FP32
    assert lint_model(m, recipe_limits(["trt10.12-10.x"])) == []
    x = np.random.default_rng(2).standard_normal((16, 4, 8, 8)).astype(np.float32)
    a, b = _run(src, x), _run(res.path, x)
    assert np.mean(a.argmax(1) == b.argmax(1)) >= 0.9
    np.testing.assert_allclose(b, a, atol=0.1)


def test_conversions_refuse_the_wrong_input(tmp_path):
    src = make_tiny_onnx(tmp_path / "m.onnx")
    with pytest.raises(EdgeresError, match="not a Q/DQ"):
        qdq_fp16_copy(src, tmp_path / "x.onnx")
    q = make_tiny_onnx(tmp_path / "q.onnx", qdq=True)
    with pytest.raises(EdgeresError, match="qdq_fp16_copy"):
        fp16_copy(q, tmp_path / "y.onnx")


def test_a_strongly_typed_form_that_misses_the_reference_is_dropped_not_shipped(tmp_path, monkeypatch):
    from edgeres.backends import tensorrt_proof

    (tmp_path / "onnx").mkdir()
    files = {"fp32": "onnx/a.onnx", "int8": "onnx/b.onnx", "int8_fp16": "onnx/c.onnx"}
    for rel in files.values():
        (tmp_path / rel).write_bytes(b"x")

    def fake_check(key, path, inputs, labels, reference):
        ok = key != "int8_fp16"
        tol = tensorrt_proof.TOLERANCES[key].to_dict()
        return {"n": 4, "agreement": 1.0 if ok else 0.9, "cosine": 1.0 if ok else 0.8, "tolerance": tol, "ok": ok,
                "runtime": "fake"}

    monkeypatch.setattr(tensorrt_proof, "check_onnx", fake_check)
    monkeypatch.setattr(tensorrt_proof, "lint_files", lambda root, files: {})
    proof = tensorrt_proof.prove_kit_files(tmp_path, files, np.zeros((4, 3)), None, np.zeros((4, 3)))
    assert "int8_fp16" not in files and not (tmp_path / "onnx/c.onnx").exists()
    assert "FP32 float layers instead" in proof["dropped"]["onnx/c.onnx"]
    assert "not shipped: onnx/c.onnx" in tensorrt_proof.proof_summary(proof)


def _small_weight_scale_model(path):
    """x -> Q/DQ -> Conv(INT8 weights with scales near 1e-5, bias 0.5) -> Q/DQ -> pool -> logits.

    bias / (input scale x weight scale) is ~1e6, beyond FP16: a runtime that quantizes the bias to
    INT32 through FP16 (ONNX Runtime's WeightBiasQuantization pass on FP16 Q/DQ) makes it infinite.
    """
    rng = np.random.default_rng(3)
    w = (rng.uniform(-1, 1, (4, 4, 3, 3)) * 2e-3).astype(np.float32)
    scale = (np.abs(w).reshape(4, -1).max(1) / 127).astype(np.float32)
    q = np.clip(np.round(w / scale[:, None, None, None]), -127, 127).astype(np.int8)
    inits = [numpy_helper.from_array(np.array(0.03, np.float32), "xs"), numpy_helper.from_array(np.array(0, np.int8), "xz"),
             numpy_helper.from_array(q, "W_i8"), numpy_helper.from_array(scale, "W_ws"),
             numpy_helper.from_array(np.zeros(4, np.int8), "W_wz"), numpy_helper.from_array(np.full(4, 0.5, np.float32), "B"),
             numpy_helper.from_array(np.array(0.01, np.float32), "cs")]
    nodes = [helper.make_node("QuantizeLinear", ["input", "xs", "xz"], ["xq"], name="x_Q"),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xdq"], name="x_DQ"),
             helper.make_node("DequantizeLinear", ["W_i8", "W_ws", "W_wz"], ["W"], name="W_DQ", axis=0),
             helper.make_node("Conv", ["xdq", "W", "B"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "cs", "xz"], ["cq"], name="c_Q"),
             helper.make_node("DequantizeLinear", ["cq", "cs", "xz"], ["cdq"], name="c_DQ"),
             helper.make_node("GlobalAveragePool", ["cdq"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["logits"], name="flatten")]
    vi = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 4, 8, 8]),
          helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])]
    onnx.save(helper.make_model(helper.make_graph(nodes, "small_scales", vi[:1], vi[1:], inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_the_proof_runs_the_strongly_typed_form_as_written_so_small_weight_scales_pass(tmp_path):
    from edgeres.backends.tensorrt_proof import check_onnx, run_onnx

    src = _small_weight_scale_model(tmp_path / "q.onnx")
    res = qdq_fp16_copy(src, tmp_path / "q16.onnx")
    x = np.random.default_rng(4).uniform(0, 3, (32, 4, 8, 8)).astype(np.float32)
    reference = run_onnx(src, x)
    check = check_onnx("int8_fp16", res.path, x, None, reference)
    assert check["ok"] and check["cosine"] > 0.9999, check
    assert "graph as written" in check["runtime"]


def _scaled_fc(src, dst, factor=30000.0, names=True):
    """The tiny ResNet-like ONNX with its last FC's weights times ``factor``: logits beyond FP16 (~1e5);
    with ``names`` its nodes are named as torch's exporter names them (/fc/Gemm)."""
    m = onnx.load(str(src))
    for node in m.graph.node if names else ():
        node.name = f"/{node.op_type.lower()}/{node.op_type}"
    m.graph.node[-1].name = "/fc/Gemm" if names else ""
    for init in m.graph.initializer:
        if init.name == "FC":
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * np.float32(factor), "FC"))
    onnx.save(m, str(dst))
    return dst


def _producer(model, tensor):
    return next(n for n in model.graph.node if tensor in n.output)


@pytest.mark.parametrize("qdq", [False, True])
def test_logits_beyond_fp16_leave_the_kept_fc_in_fp32_with_fp32_output(tmp_path, qdq):
    src = _scaled_fc(make_tiny_onnx(tmp_path / "m.onnx", qdq=qdq), tmp_path / "big.onnx")
    x = np.random.default_rng(5).standard_normal((16, 3, 16, 16)).astype(np.float32)
    reference = _run(src, x)
    assert np.abs(reference).max() > 65504
    convert = qdq_fp16_copy if qdq else fp16_copy
    res = convert(src, tmp_path / "big16.onnx", sample=x)
    m = onnx.load(str(res.path))
    assert [o.type.tensor_type.elem_type for o in m.graph.output] == [TensorProto.FLOAT]
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    fc = _producer(m, "logits")
    assert fc.op_type == "Gemm" and any(k.startswith(f"{fc.name}: output logits reaches") for k in res.kept_fp32)
    out = _run(res.path, x)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, reference, rtol=0.05, atol=0.05 * np.abs(reference).max())
    assert lint_model(m) == []


def test_an_overflowing_value_read_by_two_kept_nodes_never_goes_through_fp16(tmp_path):
    """input * 300 * 300 feeds two readers: the converter leaves FP16 round trips where a value has two."""
    inits = [numpy_helper.from_array(np.array(300.0, np.float32), "k"),
             numpy_helper.from_array(np.array(1 / 9e4, np.float32), "inv"),
             numpy_helper.from_array(np.array(2 / 9e4, np.float32), "inv2")]
    nodes = [helper.make_node("Mul", ["input", "k"], ["c"], name="times_k"),
             helper.make_node("Mul", ["c", "k"], ["d"], name="times_k_again"),
             helper.make_node("Mul", ["d", "inv"], ["e1"], name="down1"),
             helper.make_node("Mul", ["d", "inv2"], ["e2"], name="down2"),
             helper.make_node("Add", ["e1", "e2"], ["logits"], name="sum")]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("input", "logits")]
    src = tmp_path / "two.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "two", vi[:1], vi[1:], inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(src))
    x = np.random.default_rng(6).uniform(1, 2, (16, 4)).astype(np.float32)
    res = fp16_copy(src, tmp_path / "two16.onnx", sample=x)
    m = onnx.load(str(res.path))
    assert {k.split(":")[0] for k in res.kept_fp32} >= {"times_k_again", "down1", "down2"}
    assert not [n for n in m.graph.node if n.op_type == "Cast" and "d" in n.input]   # d is read as FP32 only
    np.testing.assert_allclose(_run(res.path, x), _run(src, x), rtol=2e-3)


def test_a_kept_node_whose_output_fits_fp16_feeds_fp16_readers_through_a_cast(tmp_path):
    """input / 1e5 (a constant FP16 cannot hold: kept) -> Relu (FP16): one Cast to FP16 between them."""
    inits = [numpy_helper.from_array(np.array(1e5, np.float32), "big"),
             numpy_helper.from_array(np.array(1e4, np.float32), "up")]
    nodes = [helper.make_node("Div", ["input", "big"], ["a"], name="divide"),
             helper.make_node("Relu", ["a"], ["r"], name="relu"),
             helper.make_node("Mul", ["r", "up"], ["logits"], name="scale")]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("input", "logits")]
    src = tmp_path / "fits.onnx"
    onnx.save(helper.make_model(helper.make_graph(nodes, "fits", vi[:1], vi[1:], inits),
                                opset_imports=[helper.make_opsetid("", 17)]), str(src))
    x = np.random.default_rng(7).uniform(-2, 2, (16, 4)).astype(np.float32)
    res = fp16_copy(src, tmp_path / "fits16.onnx", sample=x)
    m = onnx.load(str(res.path))
    assert [k.split(":")[0] for k in res.kept_fp32] == ["divide"]
    relu = _producer(m, "r")
    cast = _producer(m, relu.input[0])
    assert cast.op_type == "Cast" and cast.attribute[0].i == TensorProto.FLOAT16
    assert _producer(m, cast.input[0]).name == "divide"
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    np.testing.assert_allclose(_run(res.path, x), _run(src, x), rtol=5e-3, atol=1e-3)


def test_nameless_nodes_are_not_all_kept_in_fp32(tmp_path):
    """node_block_list works by node name: a nameless node that overflows must not keep every nameless node."""
    src = _scaled_fc(make_tiny_onnx(tmp_path / "m.onnx"), tmp_path / "big.onnx", names=False)
    x = np.random.default_rng(8).standard_normal((16, 3, 16, 16)).astype(np.float32)
    res = fp16_copy(src, tmp_path / "big16.onnx", sample=x)
    m = onnx.load(str(res.path))
    conv = next(n for n in m.graph.node if n.op_type == "Conv")
    weight = next(i for i in m.graph.initializer if i.name == conv.input[1])
    assert weight.data_type == TensorProto.FLOAT16
    assert [k.split(":")[0] for k in res.kept_fp32] == [_producer(m, "logits").name]


def test_a_kit_with_logits_beyond_fp16_is_written_with_a_finite_fp16_form(tmp_path):
    """The reviewer's case: a kit of fp32,fp16 for a model whose logits reach ~1e5 was refused ("cosine nan")."""
    from edgeres.data import PreprocessSpec
    from edgeres.kit import write_kit

    src = _scaled_fc(make_tiny_onnx(tmp_path / "m.onnx"), tmp_path / "big.onnx")
    x = np.random.default_rng(9).standard_normal((32, 3, 16, 16)).astype(np.float32)
    ref = _run(src, x)
    res = write_kit(tmp_path / "kit", target="jetson", fp32_onnx=src, qdq_onnx=None, precisions=["fp32", "fp16"],
                    inputs=x, labels=None, reference_logits=ref, preprocess=PreprocessSpec.for_size(16),
                    tarball=False)
    proof = res.manifest["proof"]
    fp16 = next(c for c in proof["onnx"].values() if c["key"] == "fp16")
    assert fp16["ok"] and fp16["cosine"] > 0.9995
    assert any("Gemm" in k for k in proof["conversions"]["fp16"]["kept_fp32"])
