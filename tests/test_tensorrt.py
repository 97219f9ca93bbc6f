"""The TensorRT backend without TensorRT: clear refusals, the API calls pinned on a fake
``tensorrt`` module, and mypy against tensorrt-stubs. GPU tests run only on a GPU with TensorRT."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trt_fakes import FakeCuda, make_tensorrt

from edgeres.artifact import Artifact, BatchProfile
from edgeres.backends import tensorrt as trt_backend
from edgeres.backends import tensorrt_cuda as trt_cuda
from edgeres.backends.base import BuildSpec
from edgeres.backends.tensorrt_plan import plan_engine
from edgeres.cli import main
from edgeres.errors import EdgeresError
from edgeres.targets import get_target

ROOT = Path(__file__).resolve().parent.parent
TRT_MODULES = ["edgeres/backends/tensorrt.py", "edgeres/backends/tensorrt_cuda.py", "edgeres/backends/tensorrt_runner.py",
               "edgeres/backends/tensorrt_plan.py",
               "edgeres/kit/build.py", "edgeres/kit/write.py",
               "edgeres/kit/layout.py", "edgeres/backends/tensorrt_recipes.py", "edgeres/backends/tensorrt_device.py",
               "edgeres/backends/tensorrt_fp16.py", "edgeres/backends/tensorrt_lint.py", "edgeres/backends/tensorrt_lint_qdq.py",
               "edgeres/backends/tensorrt_ops.py",
               "edgeres/backends/tensorrt_proof.py", "edgeres/backends/tensorrt_render.py",
               "edgeres/backends/tensorrt_target.py", "edgeres/kit/readme.py"]


def _no_real_tensorrt() -> bool:
    return trt_cuda._load_tensorrt()[0] is None


@pytest.fixture
def fake_trt(monkeypatch):
    """Install a fake TensorRT of a given version and a fake CUDA; returns (calls, install)."""
    calls: list = []

    def install(version="10.13.0.35", cc=(8, 7), **kw):
        calls.clear()
        monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt(version, calls, **kw))
        cuda = FakeCuda(cc=cc)
        monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: cuda)
        return cuda
    return calls, install


# --- refusals without TensorRT -----------------------------------------------------------------

@pytest.mark.skipif(not _no_real_tensorrt(), reason="TensorRT is installed here")
def test_available_says_why_not():
    a = trt_backend.BACKEND.available()
    assert not a.ok and "TensorRT is not installed" in a.reason


@pytest.mark.skipif(not _no_real_tensorrt(), reason="TensorRT is installed here")
def test_build_without_tensorrt_gives_the_clear_message(tmp_path):
    spec = BuildSpec(target=get_target("nvidia-gpu"), precision="fp16", out_dir=tmp_path)
    with pytest.raises(EdgeresError) as exc:
        trt_backend.BACKEND.build(tmp_path / "model.onnx", spec)
    assert "TensorRT is not installed / no NVIDIA GPU" in str(exc.value)
    assert "kit" in str(exc.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not _no_real_tensorrt(), reason="TensorRT is installed here")
def test_load_without_tensorrt_gives_the_clear_message(tmp_path):
    engine = tmp_path / "model_fp16.engine"
    engine.write_bytes(b"x")
    art = Artifact(engine, {"backend": "tensorrt", "precision": "fp16"}).save()
    with pytest.raises(EdgeresError, match="TensorRT is not installed / no NVIDIA GPU"):
        trt_backend.BACKEND.load(Artifact.load(art.path))


def test_stub_only_namespace_is_not_tensorrt(monkeypatch):
    import types

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    assert trt_cuda._load_tensorrt()[0] is None
    assert "only its type stubs" in trt_backend.BACKEND.available().reason


def test_no_gpu_message(monkeypatch):
    class NoGpu(FakeCuda):
        def device_count(self):
            return 0

    monkeypatch.setattr(trt_cuda, "cuda_runtime", lambda: NoGpu())
    with pytest.raises(EdgeresError, match="no NVIDIA GPU here"):
        trt_backend.gpu_info()


def test_no_cuda_binding_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def deny(name, *a, **k):
        if name.startswith(("cuda", "torch")):
            raise ImportError(name)
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", lambda name: deny(name))
    with pytest.raises(EdgeresError, match="cuda-python"):
        trt_cuda.cuda_runtime()


# --- the API calls, pinned on a fake tensorrt --------------------------------------------------

def _names(calls, kind):
    return [c[1] for c in calls if c[0] == kind]


def test_build_weakly_typed_int8_on_jetpack5(fake_trt, tmp_path):
    calls, install = fake_trt
    install("8.5.2.2", cc=(7, 2), dla_cores=2)
    onnx = tmp_path / "model_int8_qdq.onnx"
    onnx.write_bytes(b"onnx")
    plan = plan_engine("int8", (8, 5, 2, 2), {**get_target("jetson-xavier").options, "dla_core": 0},
                       batch=BatchProfile(1, 2, 4), num_dla_cores=2)  # the DLA-only option: dla_core = 0
    art = trt_backend.build_engine(onnx, tmp_path / "out" / "model_int8.engine", plan, target="jetson-xavier")
    assert _names(calls, "create_network") == [1 << 0]                    # EXPLICIT_BATCH only
    assert _names(calls, "set_flag") == ["INT8", "FP16", "GPU_FALLBACK"]
    assert ("set_memory_pool_limit", sys.modules["tensorrt"].MemoryPoolType.WORKSPACE, 1024 << 20) in calls
    assert ("config.default_device_type", sys.modules["tensorrt"].DeviceType.DLA) in calls
    assert ("config.DLA_core", 0) in calls
    assert not any(c[0] == "config.builder_optimization_level" for c in calls)   # 8.5 predates it
    assert ("set_shape", "input", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8)) in calls
    assert ("create_timing_cache", b"") in calls and ("set_timing_cache", False) in calls
    order = [c[0] for c in calls]
    assert order.index("parse_from_file") < order.index("build_serialized_network")
    meta = json.loads((tmp_path / "out" / "model_int8.engine.json").read_text())
    assert meta["typed_mode"] == "weak" and meta["tensorrt_version"] == "8.5.2.2"
    assert meta["compute_capability"] == "7.2" and meta["gpu"] == "Orin"
    assert meta["input"] == {"name": "input", "shape": [-1, 3, 8, 8], "dtype": "float32"}
    assert meta["output"]["name"] == "logits"
    assert meta["profile"] == {"batch": "1:2:4", "min": [1, 3, 8, 8], "opt": [2, 3, 8, 8], "max": [4, 3, 8, 8]}
    assert meta["onnx"]["file"] == "model_int8_qdq.onnx" and len(meta["onnx"]["sha256"]) == 64
    assert "--int8 --fp16" in meta["trtexec"]
    assert (tmp_path / "out" / "timing.cache").read_bytes() == b"TIMING"
    assert art.path.read_bytes().startswith(b"ENGINE")


def test_build_strongly_typed_int8_on_trt10_13(fake_trt, tmp_path):
    calls, install = fake_trt
    install("10.13.0.35")
    onnx = tmp_path / "q.onnx"
    onnx.write_bytes(b"onnx")
    (tmp_path / "timing.cache").write_bytes(b"OLD")
    plan = plan_engine("int8", (10, 13, 0, 35), {}, batch=BatchProfile(1, 1, 8))
    trt_backend.build_engine(onnx, tmp_path / "model_int8.engine", plan, target="nvidia-gpu")
    assert _names(calls, "create_network") == [1 << 1]                    # STRONGLY_TYPED only
    assert _names(calls, "set_flag") == []                                # no precision flags
    assert ("config.builder_optimization_level", 3) in calls
    assert ("create_timing_cache", b"OLD") in calls                       # loaded beside the engine


def test_build_fp32_clears_tf32(fake_trt, tmp_path):
    calls, install = fake_trt
    install("10.3.0.30")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    trt_backend.build_engine(onnx, tmp_path / "e.engine", plan_engine("fp32", (10, 3), {"timing_cache": False}),
                             target="t")
    assert _names(calls, "clear_flag") == ["TF32"] and _names(calls, "create_network") == [0]
    assert not any(c[0] == "create_timing_cache" for c in calls)
    assert not (tmp_path / "timing.cache").exists()


def test_parse_failure_is_one_clear_error(fake_trt, tmp_path):
    _, install = fake_trt
    install(parse_ok=False)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    with pytest.raises(EdgeresError, match="could not parse .*unsupported"):
        trt_backend.build_engine(onnx, tmp_path / "e.engine", plan_engine("fp32", (10, 13), {}), target="t")
    assert not (tmp_path / "e.engine").exists()


def test_backend_build_refuses_int8_on_maxwell(fake_trt, tmp_path):
    _, install = fake_trt
    install("10.3.0.30", cc=(5, 3))
    spec = BuildSpec(target=get_target("nvidia-gpu"), precision="int8", out_dir=tmp_path)
    with pytest.raises(EdgeresError, match="Maxwell"):
        trt_backend.BACKEND.build(tmp_path / "q.onnx", spec)
    nano = BuildSpec(target=get_target("jetson-nano"), precision="int8", out_dir=tmp_path)
    with pytest.raises(EdgeresError, match="jetson-nano does not support int8: no fast INT8 on Maxwell"):
        trt_backend.BACKEND.build(tmp_path / "q.onnx", nano)


def _fp16_engine(install, tmp_path):
    """An FP16 engine for an nvidia-gpu (cc 8.6, TensorRT 10.3) built on the fakes, dynamic batch 1:2:4."""
    install("10.3.0.30", cc=(8, 6))
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"onnx")
    spec = BuildSpec(target=get_target("nvidia-gpu"), precision="fp16", out_dir=tmp_path / "out",
                     batch=BatchProfile(1, 2, 4))
    return trt_backend.BACKEND.build(onnx, spec)


def test_backend_build_and_run_end_to_end_on_fakes(fake_trt, tmp_path):
    calls, install = fake_trt
    art = _fp16_engine(install, tmp_path)
    assert art.path.name == "model_fp16.engine" and _names(calls, "set_flag") == ["FP16"]
    runner = trt_backend.BACKEND.load(Artifact.load(art.path))
    x = np.random.default_rng(0).standard_normal((6, 3, 8, 8)).astype(np.float32)
    out = runner(x)                                        # 6 > max batch 4: runs in two chunks
    np.testing.assert_array_equal(out, x.reshape(6, -1)[:, :4])
    assert runner.info["max_batch"] == 4 and "host wall clock" in runner.info["timed"]
    assert runner.time_batch(x[:2]) > 0
    runner.timing = "device"
    assert runner.time_batch(x[:2]) == 0.5 and "CUDA events" in runner.info["timed"]
    assert runner.device_latency_ms(2, iterations=3, warmup=1) == [0.5, 0.5, 0.5]
    with pytest.raises(EdgeresError, match="does not match"):
        runner(np.zeros((1, 3, 4, 4), np.float32))
    runner.close()


def test_load_refuses_engine_from_other_gpu_or_version(fake_trt, tmp_path):
    _, install = fake_trt
    install("10.3.0.30", cc=(8, 7))
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    art = trt_backend.build_engine(onnx, tmp_path / "e.engine", plan_engine("fp16", (10, 3), {}), target="jetson-orin")
    install("10.3.0.30", cc=(7, 2))
    with pytest.raises(EdgeresError, match="compute capability 8.7 .*7.2.*Rebuild it on this device"):
        trt_backend.BACKEND.load(Artifact.load(art.path))
    install("8.6.2.3", cc=(8, 7))
    with pytest.raises(EdgeresError, match="TensorRT 10.3.0.30 but this machine has TensorRT 8.6.2.3"):
        trt_backend.BACKEND.load(Artifact.load(art.path))


def test_load_refuses_modified_engine(fake_trt, tmp_path):
    _, install = fake_trt
    install("10.3.0.30")
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"onnx")
    art = trt_backend.build_engine(onnx, tmp_path / "e.engine", plan_engine("fp16", (10, 3), {}), target="t")
    art.path.write_bytes(b"ENGINE-tampered")
    with pytest.raises(EdgeresError, match="checksum"):
        trt_backend.BACKEND.load(Artifact.load(art.path))


def test_doctor_details_on_fake_trt(fake_trt):
    _, install = fake_trt
    install("10.13.0.35", cc=(8, 7), dla_cores=2)
    a = trt_backend.BACKEND.available()
    assert a.ok and a.version == "10.13.0.35"
    d = a.details
    assert d["gpu"] == "Orin" and d["compute_capability"] == "8.7" and d["dla_cores"] == 2
    assert d["int8"] is True and d["fp16"] is True and "compute capability" in d["capability_source"]
    install("8.5.2.2", cc=(5, 3))
    d = trt_backend.BACKEND.available().details
    assert "Builder" in d["capability_source"] and "Maxwell" in d["int8_note"]


def test_doctor_cli_shows_tensorrt_details(fake_trt, capsys):
    _, install = fake_trt
    install("10.3.0.30", cc=(8, 7), dla_cores=2)
    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)["backends"]["tensorrt"]
    assert data["ok"] and data["details"]["compute_capability"] == "8.7" and data["details"]["dla_cores"] == 2


# --- static check against tensorrt-stubs -------------------------------------------------------

def test_mypy_against_tensorrt_stubs(tmp_path):
    """Every TensorRT call in the backend type-checks against tensorrt-stubs (run in CI by make test)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install 'edgeres[dev]')")
    prep = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_trt_stubs.py"), str(tmp_path / "stubs")],
                          capture_output=True, text=True, check=False)
    if prep.returncode == 3:
        pytest.skip("tensorrt-stubs is not installed (make setup installs it with --no-deps)")
    assert prep.returncode == 0, prep.stderr
    ini = tmp_path / "stubs" / "mypy.ini"
    probe = tmp_path / "probe.py"
    probe.write_text("import tensorrt as trt\nreveal_type(trt.Builder)\ntrt.Builder(0).create_netwrk(0)\n")
    check = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir",
                            str(tmp_path / "cache"), str(probe)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert "tensorrt_bindings.tensorrt.Builder" in check.stdout, check.stdout  # the stubs are really used
    assert "create_netwrk" in check.stdout                                    # and catch a wrong call
    result = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini), "--cache-dir",
                             str(tmp_path / "cache"), *TRT_MODULES], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# --- on a real GPU with TensorRT ---------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_gpu_engine_matches_onnx_reference(tmp_path, precision):
    from test_kit import make_tiny_onnx

    onnx_path = make_tiny_onnx(tmp_path / "tiny.onnx")
    spec = BuildSpec(target=get_target("nvidia-gpu"), precision=precision, out_dir=tmp_path / "out",
                     batch=BatchProfile(1, 2, 4))
    art = trt_backend.BACKEND.build(onnx_path, spec)
    runner = trt_backend.BACKEND.load(Artifact.load(art.path))
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(str(onnx_path)).run(None, {"input": x})[0]
    np.testing.assert_allclose(runner(x), ref, atol=2e-2 if precision == "fp16" else 1e-4)
    assert min(runner.device_latency_ms(1, iterations=5)) > 0
    shutil.rmtree(tmp_path / "out")


def test_runner_profiles_layers_with_the_tensorrt_layer_profiler(fake_trt, tmp_path):
    """IProfiler on the context (trtexec --dumpProfile --separateProfileRun), precision and tactic from
    the engine inspector (the build asks for detailed profiling verbosity), stages from the fused names."""
    from edgeres.validate.layers import profile_runner

    _calls, install = fake_trt
    art = _fp16_engine(install, tmp_path)
    with trt_backend.BACKEND.load(Artifact.load(art.path)) as runner:
        layers = runner.profile(batch=2, runs=3)
        doc = profile_runner(runner, batch=1, runs=2)
        assert runner.context.profiler is None  # removed after profiling: timing runs are not slowed
        with pytest.raises(EdgeresError, match="outside the engine's profile"):
            runner.profile(batch=5)
    assert [(t.name.split(" + ")[0], t.precision, t.ms) for t in layers] == [
        ("/conv1/Conv", "int8", 0.25), ("/layer1/layer1.0/conv1/Conv", "int8", 0.5),
        ("Reformatting CopyNode for Output Tensor 0", "fp32", 0.05)]
    assert layers[0].kernel.startswith("sm80_xmma") and layers[0].op == "CaskConvolution"
    assert [(s["stage"], s["ms"]) for s in doc["stages"]] == [("conv1", 0.25), ("layer1", 0.5), ("other", 0.05)]
