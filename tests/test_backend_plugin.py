"""A fourth backend written the way a user would: its own module (this file), registered with
``register_backend`` or an ``edgeres.backends`` entry point, a target TOML in the user's own
targets folder, and ``edgeres build`` drives it end to end with no edit anywhere else."""

from __future__ import annotations

import shutil
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgeres import backends
from edgeres.artifact import Artifact
from edgeres.backends import Availability, Backend, BuildSpec, Runner, RunnerInfo, register_backend
from edgeres.cli import main
from edgeres.fileio import read_json

NAME = "numpy-reference"
TARGET = f"""
name = "numpy-ref"
description = "the ONNX reference evaluator, in numpy: slow, but needs nothing else"
backend = "{NAME}"
precisions = ["fp32"]
batch_profile = "1:1:1"
"""
SMALL = ["--depth", "18", "--num-classes", "10", "--input-size", "32", "--calib", "demo", "--calib-size", "16",
         "--val", "demo-val", "--val-size", "16", "--bench-seconds", "0.05"]


class ReferenceRunner(Runner):
    def __init__(self, artifact: Artifact) -> None:
        import onnx
        from onnx.reference import ReferenceEvaluator

        self.session: Any = ReferenceEvaluator(onnx.load(str(artifact.path)))
        spec = artifact.metadata["input"]
        self.input_name, self.input_shape = spec["name"], list(spec["shape"])
        self.info = RunnerInfo(backend=NAME, precision=artifact.precision, timed="host wall clock, numpy",
                               device="cpu", threads=1)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.session.run(None, {self.input_name: self.check_input(batch)})[0])

    def close(self) -> None:
        self.session = None


class ReferenceBackend(Backend):
    """Builds by copying the FP32 ONNX; runs it with ``onnx.reference``."""

    name = NAME
    python_packages = ("numpy", "onnx")

    def available(self) -> Availability:
        return Availability(True, version="1")

    def build(self, graph: Path, spec: BuildSpec) -> Artifact:
        spec.out_dir.mkdir(parents=True, exist_ok=True)
        out = spec.out_dir / f"model_{spec.precision}.onnx"
        shutil.copyfile(graph, out)
        source = Artifact.load(graph).metadata
        return Artifact(out, {"backend": NAME, "backend_version": "1", "precision": spec.precision,
                              "target": spec.target.name, "input": source["input"],
                              "output": source["output"]}).save()

    def load(self, artifact: Artifact, **options: Any) -> ReferenceRunner:
        artifact.verify()
        return ReferenceRunner(artifact)


BACKEND = ReferenceBackend()


@pytest.fixture
def targets_dir(tmp_path):
    d = tmp_path / "targets"
    d.mkdir()
    (d / "numpy-ref.toml").write_text(TARGET)
    return d


@pytest.fixture
def clean_registry():
    yield
    backends._factories.pop(NAME, None)
    backends._instances.pop(NAME, None)


def test_a_registered_backend_builds_validates_and_bundles_through_edgeres_build(tmp_path, targets_dir,
                                                                                clean_registry, capsys):
    register_backend(NAME, ReferenceBackend)
    out = tmp_path / "out"
    assert main(["build", "--target", "numpy-ref", "--targets-dir", str(targets_dir), *SMALL,
                 "--out", str(out), "--json"]) == 0
    rows = {r["precision"]: r for r in read_json(out / "report.json")["rows"]}
    assert set(rows) == {"fp32"}
    assert rows["fp32"]["backend"] == NAME and rows["fp32"]["agreement"] == 1.0 and rows["fp32"]["p50_ms"] > 0
    manifest = read_json(out / "bundle" / "manifest.json")
    assert manifest["backend"]["name"] == NAME
    assert manifest["requirements"]["python_packages"] == ["numpy", "onnx"]


def test_an_entry_point_backend_is_found_by_name(monkeypatch, clean_registry):
    point = EntryPoint(name=NAME, value=f"{__name__}:BACKEND", group=backends.ENTRY_POINT_GROUP)
    monkeypatch.setattr(backends, "entry_points", lambda group: [point] if group == point.group else [])
    assert NAME in backends.backend_names()
    assert backends.get_backend(NAME) is BACKEND
