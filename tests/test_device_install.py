"""The device side installs and runs without torch: a fresh venv with only `pip install edgeres[onnxruntime,fleet]`
(no build extra) runs a bundle on an image, benches it, builds a kit on the fake TensorRT, and runs the fleet
worker's task, in processes where any `import torch` fails. Marked `device_install` (needs the package
registry, or pip's cache; takes about a minute)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_bundle_support import CLASSES, NO_TORCH, PREPROCESS, tiny_artifact, write_images

pytestmark = [pytest.mark.device_install, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# In the venv: the fake TensorRT and CUDA (tests/trt_fakes.py), then `edgeres kit build`; then the fleet worker.
DEVICE_SCRIPT = """
import importlib.abc, importlib.metadata, json, sys
sys.path.insert(0, sys.argv[1])  # tests/, for trt_fakes only

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "onnxscript"):
            raise ImportError(f"{name} is blocked: this process plays a device without torch")

sys.meta_path.insert(0, NoTorch())
from trt_fakes import FakeCuda, make_tensorrt
sys.modules["tensorrt"] = make_tensorrt("10.3.0.30", input_shape=(-1, 3, 16, 16), classes=4)
import edgeres.backends.tensorrt_cuda as cuda
cuda.cuda_runtime = lambda: FakeCuda(cc=(8, 7))
from edgeres.cli import main
assert main(["kit", "build", sys.argv[2], "--iterations", "2", "--min-seconds", "0.05", "--warmup", "0",
             "--batch", "1", "--json"]) == 0
from edgeres.fleet.worker import measure_on_device
data = open(sys.argv[3], "rb").read()
answer = json.loads(measure_on_device(data, sys.argv[4], json.dumps({"target": "cpu", "kind": "bundles",
                                      "device": "fresh-venv", "iterations": 2, "seconds": 0.05, "warmup": 0})))
assert answer["status"] == "ok", answer
assert main(["fleet", "join", "--address", "127.0.0.1:6379", "--target", "cpu", "--dry-run"]) == 0
import edgeres
assert not edgeres.__file__.startswith(sys.argv[5]), "imported the checkout, not the installed package"
try:
    importlib.metadata.version("torch")
    installed = True
except importlib.metadata.PackageNotFoundError:
    installed = False
print("TORCH_INSTALLED", installed, "TORCH_MODULES", sorted(m for m in sys.modules if m.split(".")[0] == "torch"),
      file=sys.stderr)
"""


def _run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("device") / "venv"
    start = time.perf_counter()
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    python = venv / "bin" / "python"
    pip = _run([str(python), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"),
                f"{ROOT}[onnxruntime,fleet]"], cwd=venv.parent)
    if pip.returncode != 0:
        pytest.skip(f"cannot install the device side from the package registry: {pip.stderr.strip()[-300:]}")
    print(f"\ndevice venv (edgeres[onnxruntime,fleet]) installed in {time.perf_counter() - start:.0f} s",
          file=sys.stderr)
    return python


def test_device_install_runs_bundle_bench_kit_and_fleet_worker_without_torch(device_venv, tmp_path):
    pytest.importorskip("onnxruntime")
    from test_kit import _write, make_tiny_onnx

    from edgeres.bundle import make_bundle, tarball_of
    from edgeres.fleet.payload import pack_bundles
    from edgeres.targets import get_target

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    artifact = tiny_artifact(tmp_path / "build", target="cpu")
    bundle = make_bundle(artifact, tmp_path / "bundle", target=get_target("cpu"),
                         model_info={"depth": 18, "num_classes": 10}, preprocess=PREPROCESS, labels=CLASSES)
    image = write_images(tmp_path / "images", 1)[0]
    run = _run([str(device_venv), "-c", NO_TORCH, str(tarball_of(bundle)), str(image), "--json"], env=env,
               cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["results"][0]["top"][0]["label"] in CLASSES and "TORCH_MODULES []" in run.stderr

    bench = _run([str(device_venv), "-c", NO_TORCH.replace('"edgeres.run"', '"edgeres.cli"'), "bench",
                  str(bundle), "--min-runs", "3", "--min-seconds", "0.1", "--json"], env=env, cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert json.loads(bench.stdout)["results"][0]["iterations"] >= 3 and "TORCH_MODULES []" in bench.stderr

    models = (make_tiny_onnx(tmp_path / "m" / "model.onnx"), make_tiny_onnx(tmp_path / "m" / "q.onnx", qdq=True))
    kit = _write(tmp_path, models, slice_size=8)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    from edgeres.backends import get_backend

    reference = get_backend("onnxruntime").load(artifact)(x)
    payload = pack_bundles(tmp_path / "fleet-cpu", get_target("cpu"), {"fp32": artifact}, model={},
                           preprocess=PREPROCESS, classes=CLASSES, validation=(x, None, reference))
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    device = _run([str(device_venv), "-c", DEVICE_SCRIPT, str(TESTS), str(kit.tarball), str(payload), sha, str(ROOT)],
                  env=env, cwd=tmp_path)
    assert device.returncode == 0, device.stderr[-3000:]
    assert "TORCH_INSTALLED False TORCH_MODULES []" in device.stderr
    kit_report, _ = json.JSONDecoder().raw_decode(device.stdout)  # then `fleet join --dry-run` prints its text
    assert kit_report["target"] == "jetson-orin" and len(kit_report["rows"]) == 3
