"""ONNX Runtime backend: build (copy + metadata + reuse), runner info, shapes, bad input, INT8 Q/DQ."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgeres.artifact import Artifact
from edgeres.backends import get_backend
from edgeres.backends.base import BuildSpec
from edgeres.errors import EdgeresError
from edgeres.targets import get_target
from edgeres.validate import load_runner

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    return export_onnx(ResNet(18, num_classes=10), tmp_path_factory.mktemp("onnx"), input_size=32)


@pytest.fixture(scope="module")
def qdq(exported, tmp_path_factory):
    """A Q/DQ INT8 graph made with ONNX Runtime's own quantizer (the quantize helper's job; here
    only so that the backend is tested on one)."""
    quantization = pytest.importorskip("onnxruntime.quantization")

    class Reader(quantization.CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.items = iter([{"input": rng.standard_normal((1, 3, 32, 32)).astype(np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.items, None)

    out = tmp_path_factory.mktemp("qdq") / "model_int8.onnx"
    quantization.quantize_static(str(exported.path), str(out), Reader(), quant_format=quantization.QuantFormat.QDQ,
                                 per_channel=True, activation_type=quantization.QuantType.QInt8,
                                 weight_type=quantization.QuantType.QInt8)
    return out


def _spec(tmp_path, precision="fp32", **options):
    return BuildSpec(target=get_target("cpu"), precision=precision, out_dir=tmp_path, options=options)


def test_cpu_target_parses_with_backend_options():
    target = get_target("cpu")
    assert target.backend == "onnxruntime" and set(target.precisions) == {"fp32", "int8"}
    assert get_target("ort").name == "cpu"


def test_available():
    a = get_backend("onnxruntime").available()
    assert a.ok and a.version == ort.__version__ and "CPUExecutionProvider" in a.details["providers"]


def test_build_copies_graph_with_metadata_and_reuses(exported, tmp_path):
    backend = get_backend("onnxruntime")
    artifact = backend.build(exported.path, _spec(tmp_path, threads=2))
    meta = Artifact.load(artifact.path).metadata
    assert artifact.path.parent == tmp_path and artifact.path.read_bytes() == exported.path.read_bytes()
    assert meta["backend"] == "onnxruntime" and meta["precision"] == "fp32" and meta["target"] == "cpu"
    assert meta["depth"] == 18 and meta["preprocess"]["crop"] == 32 and meta["options"]["threads"] == 2
    assert meta["source_sha256"] == exported.metadata["sha256"]
    again = backend.build(exported.path, _spec(tmp_path, threads=2))
    assert again.metadata.get("reused") is True
    changed = backend.build(exported.path, _spec(tmp_path, threads=1))
    assert not changed.metadata.get("reused")


def test_build_refuses_precision_mismatch(exported, tmp_path):
    backend = get_backend("onnxruntime")
    with pytest.raises(EdgeresError, match="fp32 graph but int8 was asked for"):
        backend.build(exported.path, _spec(tmp_path, "int8"))
    with pytest.raises(EdgeresError, match="precision fp16 is not offered"):
        backend.build(exported.path, _spec(tmp_path, "fp16"))
    with pytest.raises(EdgeresError, match="unknown ONNX Runtime option 'thread'"):
        backend.build(exported.path, _spec(tmp_path, thread=2))


def test_runner_runs_and_reports_info(exported):
    runner = load_runner(exported.path, threads=2)
    out = runner(np.zeros((4, 3, 32, 32), np.float32))
    assert out.shape == (4, 10) and out.dtype == np.float32
    info = runner.info
    assert info["threads"] == 2 and info["provider"] == "CPUExecutionProvider" and info["precision"] == "fp32"
    assert "host wall clock" in info["timed"] and info["fixed_batch"] is None
    # float64 and non-contiguous inputs are converted
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 64))[:, :, :, ::2]
    np.testing.assert_allclose(runner(x), runner(np.ascontiguousarray(x, np.float32)), rtol=1e-5, atol=1e-5)


def test_wrong_input_shape_is_a_clear_error(exported):
    runner = load_runner(exported.path)
    with pytest.raises(EdgeresError, match="model expects 3x32x32 inputs, got 3x64x64"):
        runner(np.zeros((1, 3, 64, 64), np.float32))
    with pytest.raises(EdgeresError, match="model expects a 4-d batch"):
        runner(np.zeros((3, 32, 32), np.float32))


def test_static_batch_mismatch_is_a_clear_error(tmp_path):
    from edgeres.export import export_onnx
    from edgeres.models import ResNet

    artifact = export_onnx(ResNet(18, num_classes=3), tmp_path, input_size=32, batch=2)
    runner = load_runner(artifact.path)
    assert runner.info["fixed_batch"] == 2
    with pytest.raises(EdgeresError, match="exported for batch 2, got a batch of 5"):
        runner(np.zeros((5, 3, 32, 32), np.float32))


def test_corrupt_artifact_file_is_refused(exported, tmp_path):
    import shutil

    copy = tmp_path / "model.onnx"
    shutil.copyfile(exported.path, copy)
    shutil.copyfile(exported.sidecar, Artifact.sidecar_of(copy))
    copy.write_bytes(copy.read_bytes()[:1000])
    with pytest.raises(EdgeresError, match="does not match the checksum"):
        load_runner(copy)
    from edgeres.backends.onnxruntime import ORTRunner

    with pytest.raises(EdgeresError, match="ONNX Runtime cannot load"):
        ORTRunner(copy)


def test_save_optimized_model(exported, tmp_path):
    artifact = get_backend("onnxruntime").build(exported.path, _spec(tmp_path, save_optimized=True,
                                                                     graph_optimization="extended"))
    optimized = tmp_path / artifact.metadata["optimized_model"]
    assert optimized.is_file() and optimized in artifact.files
    runner = load_runner(artifact.path)
    assert runner.info["graph_optimization"] == "disable"  # optimized offline already
    reference = load_runner(exported.path)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(runner(x), reference(x), rtol=1e-4, atol=1e-4)


def test_int8_qdq_graph_builds_and_runs(exported, qdq, tmp_path):
    artifact = get_backend("onnxruntime").build(qdq, _spec(tmp_path, "int8"))
    assert artifact.metadata["precision"] == "int8"
    runner = load_runner(artifact.path)
    assert runner.info["precision"] == "int8"
    x = np.random.default_rng(2).standard_normal((4, 3, 32, 32)).astype(np.float32)
    logits = runner(x)
    # structure only: random weights cannot judge INT8 fidelity (their logits barely differ between
    # images); test_quantize_demo.py judges it on the trained demo models
    assert logits.shape == load_runner(exported.path)(x).shape == (4, 10) and np.isfinite(logits).all()


def test_backend_modules_are_torch_free():
    import subprocess

    code = ("import sys; import edgeres.backends.onnxruntime, edgeres.validate, edgeres.onnxutil, "
            "edgeres.evaluate; assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
