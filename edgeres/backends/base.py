"""The small interface every backend implements.

A backend builds an artifact from an ONNX graph and loads it into a runner.
Backends never import each other; only the pipeline knows the order of steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from edgeres.errors import EdgeresError
from edgeres.fileio import load_json, sha256_file, write_json_atomic

if TYPE_CHECKING:
    from edgeres.targets import Target

PRECISIONS = ("fp32", "bf16", "fp16", "int8")


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; when not, ``reason`` says why and what to do."""

    ok: bool
    reason: str = ""
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchProfile:
    """Smallest, most common and largest batch an artifact must serve."""

    min: int = 1
    opt: int = 1
    max: int = 8

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise EdgeresError(f"batch profile needs 1 <= min <= opt <= max, got {self.min}:{self.opt}:{self.max}")

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """'1:4:8' (min:opt:max) or a single '8' (1:8:8)."""
        try:
            parts = [int(p) for p in str(text).split(":")]
        except ValueError:
            raise EdgeresError(f"batch profile {text!r} is not MIN:OPT:MAX integers (e.g. 1:1:8)") from None
        if len(parts) == 1:
            return cls(1, parts[0], parts[0])
        if len(parts) != 3:
            raise EdgeresError(f"batch profile {text!r} is not MIN:OPT:MAX (e.g. 1:1:8)")
        return cls(*parts)

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"


@dataclass
class BuildSpec:
    """What to build: for which target, in which precision, from which calibration data, where."""

    target: Target
    precision: str
    out_dir: Path
    batch: BatchProfile = field(default_factory=BatchProfile)
    calibration: Any = None  # an edgeres.data set, for INT8 builds that calibrate in the backend
    options: dict[str, Any] = field(default_factory=dict)  # per-build overrides of target options

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise EdgeresError(f"unknown precision {self.precision!r}: choose from {', '.join(PRECISIONS)}")
        self.out_dir = Path(self.out_dir)

    def option(self, key: str, default: Any = None) -> Any:
        """A backend option: this build's override, else the target's, else ``default``."""
        if key in self.options:
            return self.options[key]
        return self.target.options.get(key, default)


@dataclass
class Artifact:
    """A built file (ONNX, OpenVINO IR, TensorRT engine) and what it was built from and for.

    ``metadata`` always has: backend, backend_version, precision, target, input (name,
    shape, dtype), output, sha256 of ``path``; backends add their own (TensorRT: GPU
    compute capability and TensorRT version). It lives beside ``path`` as ``<path>.json``.
    """

    path: Path
    metadata: dict[str, Any]
    files: list[Path] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return str(self.metadata["backend"])

    @property
    def precision(self) -> str:
        return str(self.metadata["precision"])

    @staticmethod
    def sidecar_of(path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        return path.with_name(path.name + ".json")

    @property
    def sidecar(self) -> Path:
        return self.sidecar_of(self.path)

    def all_files(self) -> list[Path]:
        """The main file, the extra files it needs (an IR's .bin) and the sidecar."""
        return [self.path, *self.files, self.sidecar]

    def save(self) -> Artifact:
        self.metadata["sha256"] = sha256_file(self.path)
        self.metadata["files"] = [f.name for f in self.files]
        self.metadata["files_sha256"] = {f.name: sha256_file(f) for f in self.files}
        write_json_atomic(self.sidecar, self.metadata)
        return self

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Artifact:
        path = Path(path)
        if path.is_dir():
            raise EdgeresError(f"{path} is a directory: name the artifact file inside it (model.onnx, model.xml, ...)")
        if not path.is_file():
            raise EdgeresError(f"artifact {path} does not exist")
        sidecar = cls.sidecar_of(path)
        if not sidecar.is_file():
            raise EdgeresError(f"artifact {path} has no metadata file {sidecar.name} beside it; rebuild it with edgeres")
        metadata = load_json(sidecar, "metadata", "rebuild the artifact")
        files = [path.parent / name for name in metadata.get("files", [])]
        return cls(path=path, metadata=metadata, files=files)

    def verify(self) -> None:
        """Refuse an artifact whose file changed after it was built."""
        expected = self.metadata.get("sha256")
        if expected and sha256_file(self.path) != expected:
            raise EdgeresError(f"{self.path} does not match the checksum recorded at build time: rebuild it")
        recorded = self.metadata.get("files_sha256") or {}
        for f in self.files:
            if not f.is_file():
                raise EdgeresError(f"{self.path} needs {f.name} beside it, and it is missing")
            if f.name in recorded and sha256_file(f) != recorded[f.name]:
                raise EdgeresError(f"{f} does not match the checksum recorded at build time: rebuild it")


@runtime_checkable
class Runner(Protocol):
    """A loaded artifact: NCHW float32 in, logits out."""

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


class Backend(Protocol):
    name: str

    def available(self) -> Availability: ...

    def unsupported(self, precision: str, target: Target) -> str | None:
        """Why this machine cannot build ``precision`` for ``target`` (None when it can)."""
        ...

    def build(self, graph: Path, spec: BuildSpec) -> Artifact: ...

    def load(self, artifact: Artifact) -> Runner: ...
