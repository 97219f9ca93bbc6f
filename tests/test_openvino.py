"""OpenVINO target: IR build, precision honesty, INT8, cache, runner, errors.

Fast: ResNet-18 with 10 classes at 64x64, real photographs (scikit-image ships them) as
calibration and test images.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

ov = pytest.importorskip("openvino")
pytest.importorskip("nncf")

from edgeres.artifact import Artifact
from edgeres.backends import AccuracyControl, BuildSpec, get_backend
from edgeres.backends import openvino as ovb
from edgeres.errors import EdgeresError
from edgeres.targets import get_target
from edgeres.validate.throughput import measure_throughput

SIZE = 64
CENTRED_COSINE_MIN = 0.95  # trained demo ResNet-18, NNCF INT8, logits centred over the 359 held-out digits
BACKEND = get_backend("openvino")


def _torch_model():
    import torch

    from edgeres.models import ResNet

    torch.manual_seed(0)
    return ResNet(18, num_classes=10).eval()


@pytest.fixture(scope="module")
def model():
    return _torch_model()


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory, model) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    try:
        from edgeres.export import export_onnx

        export_onnx(model, out, input_size=SIZE)
    except ImportError:  # until edgeres.export lands
        import torch

        torch.onnx.export(model, torch.zeros(1, 3, SIZE, SIZE), str(out), input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          opset_version=17, dynamo=False)
    return out


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """Real photographs, preprocessed the ImageNet way to 64x64 (N,3,64,64)."""
    try:
        from edgeres.data import demo_photos_dir, open_set

        images = open_set(demo_photos_dir(), preprocess=_spec())
        return np.concatenate([x for x, _ in images.batches(64)])
    except ImportError:
        pass
    import skimage
    from PIL import Image

    folder = Path(skimage.__file__).parent / "data"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".png", ".jpg"))
    spec = _spec()
    arrays = []
    for f in files:
        with Image.open(f) as im:
            arrays.append(spec(im))
    return np.stack(arrays)


def _spec():
    from edgeres.data.preprocess import PreprocessSpec

    return PreprocessSpec.for_size(SIZE)


@pytest.fixture(scope="module")
def target():
    return get_target("intel-cpu")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, onnx_path, target) -> Artifact:
    return BACKEND.build(onnx_path, BuildSpec(target, "fp32", tmp_path_factory.mktemp("fp32")))


@pytest.fixture(scope="module")
def int8(tmp_path_factory, onnx_path, target, photos) -> Artifact:
    return BACKEND.build(onnx_path, BuildSpec(target, "int8", tmp_path_factory.mktemp("int8"), calibration=photos))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Compiled-model caches go to the test's folder, not the user's ~/.cache."""
    monkeypatch.setenv("EDGERES_CACHE", str(tmp_path / "edgeres-cache"))


def _cpu_has(cap: str) -> bool:
    return cap in ovb.device_capabilities(ov.Core(), "CPU")


# --- target file ------------------------------------------------------------------------------

def test_target_aliases_and_options(target):
    assert get_target("openvino").name == get_target("x86").name == "intel-cpu"
    assert target.backend == "openvino"
    assert set(target.options) <= set(ovb.OPTIONS)
    assert target.options["performance_hint"] == "LATENCY"


def test_bad_target_option_is_named(tmp_path):
    from edgeres.targets import load_target_file

    bad = tmp_path / "t.toml"
    bad.write_text('name = "t"\nbackend = "openvino"\nprecisions = ["fp32"]\n[options]\nperformance_hnt = "LATENCY"\n')
    with pytest.raises(EdgeresError, match="performance_hint"):
        load_target_file(bad)


# --- IR build ---------------------------------------------------------------------------------

def test_ir_files_and_metadata(fp32):
    out = fp32.path.parent
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "model.xml", "model.xml.json"]
    m = fp32.metadata
    assert m["backend"] == "openvino" and m["precision"] == "fp32" and m["device"] == "CPU"
    assert m["xml_sha256"] == m["sha256"] == ovb.sha256_file(fp32.path)
    assert m["bin_sha256"] == ovb.sha256_file(out / "model.bin")
    assert m["input"]["shape"][1:] == [3, SIZE, SIZE]
    assert m["compress_to_fp16"] is False
    # Artifact.load from the xml alone, then dispatch by the recorded backend
    loaded = Artifact.load(fp32.path)
    runner = get_backend(loaded.backend).load(loaded)
    assert runner(np.zeros((2, 3, SIZE, SIZE), np.float32)).shape == (2, 10)


def test_ir_written_atomically(tmp_path, onnx_path, target, fp32, monkeypatch):
    out = tmp_path / "ir"
    shutil.copytree(fp32.path.parent, out)
    before = {p.name: ovb.sha256_file(p) for p in out.iterdir()}
    real_save = ov.save_model

    def broken_save(model, path, **kw):  # writes the IR, then dies like a full disk or Ctrl-C would
        real_save(model, path, **kw)
        Path(path).with_suffix(".bin").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ov, "save_model", broken_save)
    with pytest.raises(KeyboardInterrupt):
        BACKEND.build(onnx_path, BuildSpec(target, "fp32", out))
    # the previous IR is untouched and nothing temporary is left behind
    assert {p.name: ovb.sha256_file(p) for p in out.iterdir()} == before
    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        BACKEND.build(onnx_path, BuildSpec(target, "fp32", fresh))
    assert list(fresh.iterdir()) == []


def test_compress_to_fp16_option(tmp_path, onnx_path, target, fp32):
    art = BACKEND.build(onnx_path, BuildSpec(target, "fp32", tmp_path, options={"compress_to_fp16": True}))
    assert art.metadata["compress_to_fp16"] is True
    assert (tmp_path / "model.bin").stat().st_size < 0.6 * (fp32.path.parent / "model.bin").stat().st_size
    # storage only: the weights read as f16 (runtimePrecision) but the kernels compute in f32
    assert art.metadata["execution_precision"] == "f32"
    assert set(art.metadata["kernel_precisions"]["Convolution"]) == {"f32"}
    assert set(art.metadata["layer_precisions"]["Convolution"]) == {"f16"}


# --- precision honesty ------------------------------------------------------------------------

def test_fp32_sets_and_reports_f32(fp32):
    m = fp32.metadata
    assert m["inference_precision_hint"] == "f32" and m["inference_precision_readback"] == "f32"
    assert m["execution_precision"] == "f32"
    assert set(m["layer_precisions"]["Convolution"]) == set(m["kernel_precisions"]["Convolution"]) == {"f32"}
    runner = BACKEND.load(fp32)
    assert runner.info["inference_precision_readback"] == "f32"
    assert runner.info["execution_precision"] == "f32"
    assert set(runner.info["layer_precisions"]["Convolution"]) == {"f32"}


def test_bf16_set_and_reported_or_refused(tmp_path, onnx_path, target):
    spec = BuildSpec(target, "bf16", tmp_path)
    if _cpu_has("BF16"):
        art = BACKEND.build(onnx_path, spec)
        assert art.metadata["inference_precision_hint"] == "bf16"
        assert set(art.metadata["kernel_precisions"]["Convolution"]) == {"bf16"}
        assert BACKEND.load(art).info["inference_precision_readback"] == "bf16"
    else:
        # this CPU would silently run bf16 in f32: refused, saying why
        with pytest.raises(EdgeresError, match="does not support bf16.*OPTIMIZATION_CAPABILITIES"):
            BACKEND.build(onnx_path, spec)
        assert not (tmp_path / "model.xml").exists()


def test_fp16_refused_without_capability(tmp_path, onnx_path, target):
    if _cpu_has("FP16"):
        pytest.skip("this CPU runs f16")
    with pytest.raises(EdgeresError, match="does not support f16"):
        BACKEND.build(onnx_path, BuildSpec(target, "fp16", tmp_path))


def test_silent_fallback_is_detected():
    """If the device reports a precision other than the one asked for, the runner refuses."""
    if _cpu_has("BF16"):
        pytest.skip("this CPU honours bf16")
    core = ov.Core()
    param = ov.opset13.parameter([1, 4], ov.Type.f32)
    model = ov.Model([ov.opset13.relu(param)], [param])
    with pytest.raises(EdgeresError, match="asked OpenVINO for bf16.*reports f32"):
        ovb._compile(core, model, "CPU", "bf16", {}, None)


# --- INT8 -------------------------------------------------------------------------------------

def test_int8_ir_has_quantized_weights_and_runs_int8(int8):
    m = int8.metadata
    assert m["precision"] == "int8" and m["int8_source"] == "nncf"
    assert m["calibration"]["samples"] > 0 and m["nncf"]["preset"] == "performance"
    model = ov.Core().read_model(str(int8.path))
    types = {op.get_type_name() for op in model.get_ops()}
    i8_consts = [op for op in model.get_ops() if op.get_type_name() == "Constant"
                 and op.get_element_type() in (ov.Type.i8, ov.Type.u8)]
    assert "FakeQuantize" in types or i8_consts
    assert len(i8_consts) >= 20  # one int8 weight tensor per convolution (ResNet-18: 20) and the fc
    assert m["int8_conv_fraction"] >= 0.9
    runner = BACKEND.load(int8)
    convs = runner.info["layer_precisions"]["Convolution"]
    assert sum(n for p, n in convs.items() if p in ("u8", "i8")) / sum(convs.values()) >= 0.9
    assert runner.info["int8_conv_fraction"] == m["int8_conv_fraction"]


def test_int8_from_qdq_onnx(tmp_path, onnx_path, target, photos):
    qdq = _qdq_onnx(onnx_path, photos, tmp_path)
    art = BACKEND.build(qdq, BuildSpec(target, "int8", tmp_path / "ir"))
    assert art.metadata["int8_source"] == "qdq-onnx" and art.metadata["source"]["qdq"] is True
    assert art.metadata["int8_conv_fraction"] >= 0.8
    with pytest.raises(EdgeresError, match="Q/DQ"):
        BACKEND.build(qdq, BuildSpec(target, "fp32", tmp_path / "ir2"))


def _qdq_onnx(onnx_path: Path, photos: np.ndarray, tmp: Path) -> Path:
    try:
        from edgeres.data import open_set
        from edgeres.quantize import quantize_onnx
    except ImportError:
        quantize_onnx = None
    if quantize_onnx is not None:
        np.save(tmp / "calib.npy", photos)
        return quantize_onnx(onnx_path, open_set(tmp / "calib.npy"), tmp / "qdq.onnx").path
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"input": photos[i:i + 1]} for i in range(len(photos))])

        def get_next(self):
            return next(self.it, None)

    out = tmp / "qdq.onnx"
    quantize_static(str(onnx_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return out


def test_int8_with_accuracy_control(tmp_path, onnx_path, target, photos):
    """A validation set and a budget switch to nncf.quantize_with_accuracy_control (agreement without labels)."""
    art = BACKEND.build(onnx_path, BuildSpec(target, "int8", tmp_path, calibration=photos[:16],
                                             accuracy_control=AccuracyControl(photos[:16], 1.0),
                                             options={"preset": "mixed", "fast_bias_correction": False}))
    m = art.metadata
    assert m["accuracy_control"]["metric"] == "agreement" and m["accuracy_control"]["budget_points"] == 1.0
    assert m["nncf"] == {"preset": "mixed", "fast_bias_correction": False, "subset_size": 16}
    assert m["int8_conv_fraction"] > 0


def test_int8_needs_calibration(tmp_path, onnx_path, target):
    with pytest.raises(EdgeresError, match="calibration"):
        BACKEND.build(onnx_path, BuildSpec(target, "int8", tmp_path))
    wrong = np.zeros((4, 3, 32, 32), np.float32)
    with pytest.raises(EdgeresError, match="32x32 but the model takes 64x64"):
        BACKEND.build(onnx_path, BuildSpec(target, "int8", tmp_path, calibration=wrong))


# --- runner -----------------------------------------------------------------------------------

def test_cache_dir_reused(tmp_path, fp32):
    cache = tmp_path / "cache"
    cold = BACKEND.load(fp32, cache_dir=cache)
    files = sorted(p.name for p in cache.iterdir())
    assert files and cold.info["loaded_from_cache"] is False
    warm = BACKEND.load(fp32, cache_dir=cache)
    assert warm.info["loaded_from_cache"] is True
    assert sorted(p.name for p in cache.iterdir()) == files  # nothing new compiled


def test_runner_sync_async_agree(fp32, photos):
    runner = BACKEND.load(fp32)
    x = photos[:8]
    sync = runner(x)
    assert np.allclose(np.concatenate([runner(x[:5]), runner(x[5:])]), sync, atol=1e-4)
    assert np.allclose(np.concatenate(runner.run_async([x[:4], x[4:]])), sync, atol=1e-4)
    tp = measure_throughput(runner, (3, x.shape[2], x.shape[3]), (1,), min_runs=4, min_seconds=0.0)
    assert tp.mode == "async, THROUGHPUT hint" and tp.batch == 1 and tp.runs >= 4 and tp.images_per_second > 0
    assert tp.requests >= 1 and tp.streams >= 1 and tp.requests_used == tp.requests
    thr = BACKEND.load(fp32, performance_hint="THROUGHPUT", streams=2, threads=2)
    assert thr.info["performance_hint"] == "THROUGHPUT" and thr.info["streams"] == 2
    assert np.allclose(np.concatenate(thr.run_async([x[:4], x[4:]])), sync, atol=1e-4)
    with pytest.raises(EdgeresError, match="does not fit"):
        runner(np.zeros((1, 3, 32, 32), np.float32))


def test_runner_reads_a_reused_input_array_as_it_is_now(fp32, photos):
    """The request keeps reading the array it was given (no tensor set per call): a buffer the
    caller refills in place, or another array, gives that input's output."""
    runner = BACKEND.load(fp32)
    first, second = np.ascontiguousarray(photos[:1]), np.ascontiguousarray(photos[1:2])
    want_first, want_second = runner(first.copy()), runner(second.copy())
    buffer = first.copy()
    assert np.allclose(runner(buffer), want_first, atol=1e-4)
    buffer[...] = second
    assert np.allclose(runner(buffer), want_second, atol=1e-4)
    assert np.allclose(runner(first), want_first, atol=1e-4)


def test_fp32_ir_matches_torch_on_real_images(model, fp32, int8, photos):
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(photos)).numpy()
    got = BACKEND.load(fp32)(photos)
    assert np.abs(got - ref).max() < 1e-3 * max(1.0, np.abs(ref).max())
    assert (got.argmax(1) == ref.argmax(1)).all()
    assert BACKEND.load(int8)(photos).shape == ref.shape  # INT8 fidelity: on trained weights, below


def test_nncf_int8_keeps_the_trained_demo_model(tmp_path, target):
    """The default INT8 build of the trained demo ResNet-18, on the held-out digits: fidelity
    judged where it means something (a random network's logits barely differ between images)."""
    from edgeres.data import ensure_demo_model, open_set
    from edgeres.export.exporter import export_resnet
    from edgeres.validate import collect_logits, compare

    onnx_file = tmp_path / "demo.onnx"
    export_resnet(18, onnx_file, weights=ensure_demo_model(18, progress=False) / "model.pth")
    calib, _ = open_set("demo", size=128).load_all()
    val = open_set("demo-val")
    builds = {p: BACKEND.build(onnx_file, BuildSpec(target, p, tmp_path / p, calibration=calib if p == "int8" else None))
              for p in ("fp32", "int8")}
    ref, labels = collect_logits(BACKEND.load(builds["fp32"]), val)
    acc = compare(collect_logits(BACKEND.load(builds["int8"]), val)[0], labels, ref)
    assert acc.agreement >= 0.97 and acc.top1_drop <= 0.005, acc.to_dict()
    assert acc.centred_cosine >= CENTRED_COSINE_MIN, acc.to_dict()


# --- bad input --------------------------------------------------------------------------------

def test_missing_bin_is_a_clear_error(tmp_path, fp32):
    for f in fp32.all_files():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "model.bin").unlink()
    with pytest.raises(EdgeresError, match="model.bin.*missing"):
        BACKEND.load(Artifact.load(tmp_path / "model.xml"))


def test_unknown_device_lists_available(tmp_path, onnx_path, target, fp32):
    with pytest.raises(EdgeresError, match=r"no device 'GPU'.*available devices: CPU"):
        BACKEND.load(fp32, device="GPU")
    with pytest.raises(EdgeresError, match=r"no device 'GPU'.*available devices: CPU"):
        BACKEND.build(onnx_path, BuildSpec(target, "fp32", tmp_path, options={"device": "GPU"}))


def test_not_an_openvino_artifact(tmp_path, fp32):
    for f in fp32.all_files():
        shutil.copy(f, tmp_path / f.name)
    art = Artifact.load(tmp_path / "model.xml")
    art.metadata["backend"] = "tensorrt"
    with pytest.raises(EdgeresError, match="not an OpenVINO IR"):
        BACKEND.load(art)
