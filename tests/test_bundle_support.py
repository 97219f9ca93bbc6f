"""Helpers shared by the bundle, run and report tests (no tests here): a tiny ONNX classifier
(Flatten + Gemm on a 3x32x32 input, 10 classes) as an ONNX Runtime artifact, and a target file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeres.artifact import Artifact
from edgeres.data.preprocess import PreprocessSpec

# Runs `python -m edgeres.run ARGS...` as a device would: any import of torch fails.
NO_TORCH = """
import importlib.abc, runpy, sys

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch.") or name in ("torchvision", "onnxscript"):
            raise ImportError(f"{name} is blocked: this process plays a device without torch")

sys.meta_path.insert(0, NoTorch())
sys.argv = ["edgeres.run", *sys.argv[1:]]
try:
    runpy.run_module("edgeres.run", run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision"))
print("TORCH_MODULES", heavy, file=sys.stderr)
sys.exit(code)
"""

CLASSES = [f"class-{i}" for i in range(10)]
PREPROCESS = PreprocessSpec(resize=36, crop=32)

TARGET_TOML = """\
name = "{name}"
description = "test target on ONNX Runtime"
backend = "onnxruntime"
aliases = [{aliases}]
precisions = ["fp32", "int8"]
default_precisions = ["fp32"]
batch_profile = "1:1:4"
accuracy_budget = 0.5

[options]
threads = 1
"""


def write_target(folder: Path, name: str = "test-cpu", aliases: tuple[str, ...] = ("test-ort",),
                 body: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    text = body if body is not None else TARGET_TOML.format(name=name, aliases=", ".join(f'"{a}"' for a in aliases))
    path.write_text(text)
    return path


def tiny_onnx(path: Path, seed: int = 0, batch: int | str = "batch") -> np.ndarray:
    """Write a Flatten + Gemm classifier; returns its weight matrix (10 x 3072)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((10, 3 * 32 * 32)) * 0.05).astype(np.float32)
    b = rng.standard_normal(10).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["input"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "B"], ["logits"], transB=1)],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 10])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w


def tiny_artifact(folder: Path, *, backend: str = "onnxruntime", precision: str = "fp32",
                  target: str | None = None, batch: int | str = "batch") -> Artifact:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    tiny_onnx(path, batch=batch)
    metadata = {
        "backend": backend, "backend_version": "test", "precision": precision, "target": target,
        "input": {"name": "input", "shape": [batch, 3, 32, 32], "dtype": "float32"},
        "output": {"name": "logits", "shape": [batch, 10], "dtype": "float32"},
        "depth": 18, "num_classes": 10, "input_size": 32, "preprocess": PREPROCESS.to_dict(), "classes": CLASSES,
    }
    return Artifact(path=path, metadata=metadata).save()


def write_images(folder: Path, n: int = 3) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)
        p = folder / f"img{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(arr).save(p)
        paths.append(p)
    return paths
