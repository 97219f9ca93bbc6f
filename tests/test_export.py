"""Export to ONNX: every depth passes onnx.checker and ORT parity; clean graph; metadata; bad input."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from edgeres.artifact import Artifact
from edgeres.errors import EdgeresError, UsageError
from edgeres.export import export_onnx, fold_batchnorm
from edgeres.export.exporter import checkpoint_info, export_resnet
from edgeres.models import ResNet
from edgeres.onnxutil import load_onnx, onnx_input_spec, read_metadata

ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def r18(tmp_path_factory):
    out = tmp_path_factory.mktemp("r18")
    classes = [f"class{i}" for i in range(10)]
    model = ResNet(18, num_classes=10)
    artifact = export_onnx(model, out, input_size=64, classes=classes)
    return model, artifact


def _check_graph(path):
    model = onnx.load(str(path))
    onnx.checker.check_model(str(path), full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Identity" not in ops
    assert not ops & {"Shape", "Constant", "ConstantOfShape"}
    names = [i.name for i in model.graph.initializer]
    assert len(names) == len(set(names))
    return model


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_every_depth_exports_checked_and_matches_torch(tmp_path, depth):
    resnet = ResNet(depth, num_classes=10)
    artifact = export_onnx(resnet, tmp_path / "m.onnx", input_size=32)
    model = _check_graph(artifact.path)
    parity = artifact.metadata["parity"]
    assert parity["max_abs_diff"] <= parity["tolerance"] and parity["cosine"] > 0.9999
    assert artifact.metadata["opset"] >= 17 and artifact.metadata["depth"] == depth
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    assert sum(n.op_type == "Conv" for n in model.graph.node) == sum(
        isinstance(m, torch.nn.Conv2d) for m in resnet.modules())


def test_zeropad_shortcut_exports_to_plain_pad_and_slice(tmp_path):
    artifact = export_onnx(ResNet(18, num_classes=10, shortcut="zeropad"), tmp_path, input_size=32)
    model = _check_graph(artifact.path)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("Pad") == 3 and "Slice" in ops
    assert artifact.metadata["shortcut"] == "zeropad"


def test_dynamic_batch_runs_at_1_and_5_and_matches_torch(r18):
    model, artifact = r18
    assert onnx_input_spec(artifact.path) == {"name": "input", "shape": ["batch", 3, 64, 64], "dtype": "float32"}
    session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
    model.eval()
    for n in (1, 5):
        x = np.random.default_rng(n).standard_normal((n, 3, 64, 64)).astype(np.float32)
        got = session.run(None, {"input": x})[0]
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_static_batch(tmp_path):
    artifact = export_onnx(ResNet(18, num_classes=4), tmp_path, input_size=32, batch=2)
    assert onnx_input_spec(artifact.path)["shape"] == [2, 3, 32, 32]
    assert artifact.metadata["batch"] == 2 and artifact.metadata["output"]["shape"] == [2, 4]


def test_metadata_round_trip(r18):
    _, artifact = r18
    loaded = Artifact.load(artifact.path)
    loaded.verify()
    in_file = read_metadata(artifact.path)
    for meta in (loaded.metadata, in_file):
        assert meta["backend"] == "onnx" and meta["precision"] == "fp32"
        assert meta["depth"] == 18 and meta["num_classes"] == 10 and meta["input_size"] == 64
        assert meta["classes"] == [f"class{i}" for i in range(10)]
        assert meta["preprocess"]["crop"] == 64 and meta["opset"] == 17
        assert meta["exporter"] == "torchscript" and meta["torch_version"] == torch.__version__
        assert meta["input"] == {"name": "input", "shape": ["batch", 3, 64, 64], "dtype": "float32"}
        assert meta["weights"] == "random" and meta["checkpoint_sha256"] is None
    props = {p.key: p.value for p in onnx.load(str(artifact.path)).metadata_props}
    assert props["depth"] == "18" and props["opset"] == "17" and json.loads(props["edgeres"])["depth"] == 18
    assert loaded.metadata["sha256"] and loaded.metadata["export_seconds"] > 0


def test_fold_batchnorm_keeps_outputs_and_leaves_model_alone():
    model = ResNet(18, num_classes=10).eval()
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-4)


def test_training_mode_model_is_exported_in_eval_mode_and_restored(tmp_path):
    model = ResNet(18, num_classes=3).train()
    export_onnx(model, tmp_path, input_size=32)
    assert model.training


def test_checkpoint_hash_and_companion_json(tmp_path):
    model = ResNet(18, num_classes=3)
    torch.save(model.state_dict(), tmp_path / "model.pth")
    (tmp_path / "model.json").write_text(json.dumps({
        "depth": 18, "num_classes": 3, "input_size": 40, "classes": ["a", "b", "c"],
        "preprocess": {"resize": 46, "crop": 40, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}))
    assert checkpoint_info(tmp_path / "model.pth")["num_classes"] == 3
    artifact = export_resnet(18, tmp_path / "out", weights=tmp_path / "model.pth")
    meta = artifact.metadata
    assert meta["checkpoint_sha256"] and meta["weights"] == "checkpoint"
    assert meta["classes"] == ["a", "b", "c"] and meta["input_size"] == 40 and meta["preprocess"]["mean"] == [0.5] * 3
    with pytest.raises(UsageError, match="ResNet-18, but --depth is 34"):
        export_resnet(34, tmp_path / "out2", weights=tmp_path / "model.pth")


@pytest.mark.parametrize("kwargs,message", [
    ({"opset": 13}, "opset must be between 17"),
    ({"batch": "many"}, "batch must be 'dynamic'"),
    ({"batch": 0}, "batch must be 'dynamic'"),
    ({"exporter": "magic"}, "unknown exporter"),
    ({"input_size": 16}, "at least 32x32"),
    ({"classes": ["a", "b"]}, "2 class names were given for a model with 10 classes"),
])
def test_bad_export_arguments(tmp_path, kwargs, message):
    kwargs = {"input_size": 32, **kwargs}
    with pytest.raises(EdgeresError, match=message):
        export_onnx(ResNet(18, num_classes=10), tmp_path, **kwargs)
    assert not (tmp_path / "model.onnx").exists()


def test_failed_parity_writes_nothing(tmp_path, monkeypatch):
    from edgeres.export import exporter

    real = exporter.onnx_parity

    def broken(*args, **kwargs):
        result = real(*args, **kwargs)
        result["max_abs_diff"] = 1e3
        return result

    monkeypatch.setattr(exporter, "onnx_parity", broken)
    with pytest.raises(EdgeresError, match="does not match PyTorch"):
        export_onnx(ResNet(18, num_classes=10), tmp_path, input_size=32)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_truncated_onnx_are_clear_errors(tmp_path, r18):
    _, artifact = r18
    data = artifact.path.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 3])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model at all" * 10)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for path in (truncated, garbage):
        with pytest.raises(EdgeresError, match="(not a readable ONNX model|not a usable ONNX model)"):
            load_onnx(path)
    with pytest.raises(EdgeresError, match="is empty"):
        load_onnx(empty)
    with pytest.raises(EdgeresError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")


@pytest.mark.slow
def test_dynamo_exporter(tmp_path):
    pytest.importorskip("onnxscript")
    artifact = export_onnx(ResNet(18, num_classes=10), tmp_path, input_size=32, exporter="dynamo", opset=18)
    _check_graph(artifact.path)
    assert artifact.metadata["exporter"] == "dynamo" and artifact.metadata["opset"] == 18
    assert onnx_input_spec(artifact.path)["shape"][0] == "batch"
